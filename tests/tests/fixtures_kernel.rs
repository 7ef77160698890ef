//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::kernel` (what goes to the kernel) under [`CONFIG`], in a
//! harness of their own. They also run with every other feature's rows in
//! `fixtures.rs`.
use tests::fixtures::{self, CONFIG, kernel};

#[test]
fn kernel_fixtures() {
    fixtures::run_feature("fixtures-kernel", CONFIG, &kernel::rows());
}
