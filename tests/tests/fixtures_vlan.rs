//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::vlan` (VLAN tag variants: TPIDs, priority bits, tag
//! counts, uplink tags) under [`CONFIG`], in a harness of their own. They
//! also run with every other feature's rows in `fixtures.rs`.
use tests::fixtures::{self, CONFIG, vlan};

#[test]
fn vlan_fixtures() {
    fixtures::run_feature("fixtures-vlan", CONFIG, &vlan::rows());
}
