//! One feature of the fixture table alone: the rows of `tests::fixtures::ttl`
//! (TTL and hop limit at the edge, IPv4 checksums that wrap) under
//! [`CONFIG`], in a harness of their own. They also run with every other
//! feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, ttl};

#[test]
fn ttl_fixtures() {
    fixtures::run_feature("fixtures-ttl", CONFIG, &ttl::rows());
}
