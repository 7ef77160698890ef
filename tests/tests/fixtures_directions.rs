//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::directions` (both directions, both families, untagged,
//! 802.1Q and QinQ members) under [`CONFIG`], in a harness of their own. They
//! also run with every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, directions};

#[test]
fn directions_fixtures() {
    fixtures::run_feature("fixtures-directions", CONFIG, &directions::rows());
}
