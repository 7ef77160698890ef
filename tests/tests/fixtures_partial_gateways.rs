//! The partial-gateways fixtures: `tests::fixtures::partial_gateways`'s rows
//! under [`CONFIG_PARTIAL_GATEWAYS`] (no IPv4 gateway with a MAC).
use tests::{
    fixtures::{CONFIG_PARTIAL_GATEWAYS, partial_gateways},
    harness::Harness,
};

#[test]
fn partial_gateways_fixtures() {
    let mut h = Harness::new("fixtures-gw", CONFIG_PARTIAL_GATEWAYS);
    h.run_table(&partial_gateways::rows());
}
