//! One feature of the fixture table alone: the rows of `tests::fixtures::ndp`
//! (Neighbor and Router Solicitations answered on untagged, 802.1Q and
//! QinQ lines, and RFC 4861's discards) under [`CONFIG`], in a harness of
//! their own. They also run with every other feature's rows in
//! `fixtures.rs`.
use tests::fixtures::{self, CONFIG, ndp};

#[test]
fn ndp_fixtures() {
    fixtures::run_feature("fixtures-ndp", CONFIG, &ndp::rows());
}
