//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::spoofing` (the source check, its attribution, and
//! unknown attachments) under [`CONFIG`], in a harness of their own. They
//! also run with every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, spoofing};

#[test]
fn spoofing_fixtures() {
    fixtures::run_feature("fixtures-spoofing", CONFIG, &spoofing::rows());
}
