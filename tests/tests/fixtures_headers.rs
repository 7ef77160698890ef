//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::headers` (IPv4 options and fragments, IPv6 extension
//! headers, other protocols) under [`CONFIG`], in a harness of their own.
//! They also run with every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, headers};

#[test]
fn headers_fixtures() {
    fixtures::run_feature("fixtures-headers", CONFIG, &headers::rows());
}
