//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::hairpin` (member to member, through the router) under
//! [`CONFIG`], in a harness of their own. They also run with every other
//! feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, hairpin};

#[test]
fn hairpin_fixtures() {
    fixtures::run_feature("fixtures-hairpin", CONFIG, &hairpin::rows());
}
