//! The tagged-uplink fixtures: `tests::fixtures::tagged_uplink`'s rows under
//! [`CONFIG_TAGGED_UPLINK`] (upstream leaves through tagged up1; up0 is left
//! unconfigured).
use tests::{
    fixtures::{CONFIG_TAGGED_UPLINK, tagged_uplink},
    harness::Harness,
};

#[test]
fn tagged_uplink_fixtures() {
    let mut h = Harness::new("fixtures-tagged", CONFIG_TAGGED_UPLINK);
    h.run_table(&tagged_uplink::rows());
}
