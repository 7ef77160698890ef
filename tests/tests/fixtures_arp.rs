//! One feature of the fixture table alone: the rows of `tests::fixtures::arp`
//! (ARP for the gateway answered on untagged, 802.1Q and QinQ lines, and
//! every request that is not) under [`CONFIG`], in a harness of their own.
//! They also run with every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, arp};

#[test]
fn arp_fixtures() {
    fixtures::run_feature("fixtures-arp", CONFIG, &arp::rows());
}
