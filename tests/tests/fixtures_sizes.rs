//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::sizes` (MTU edges, pushed tags and Ethernet padding)
//! under [`CONFIG`], in a harness of their own. They also run with every
//! other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, sizes};

#[test]
fn sizes_fixtures() {
    fixtures::run_feature("fixtures-sizes", CONFIG, &sizes::rows());
}
