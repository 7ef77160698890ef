//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::malformed` (runts, truncated headers and inconsistent
//! lengths) under [`CONFIG`], in a harness of their own. They also run with
//! every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, malformed};

#[test]
fn malformed_fixtures() {
    fixtures::run_feature("fixtures-malformed", CONFIG, &malformed::rows());
}
