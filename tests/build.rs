//! Builds the test-only tc and XDP programs (`tests-ebpf`) with aya-build,
//! as bench/build.rs builds bench-ebpf, so that the `tests` library embeds
//! them (`tests::vlan_tc`, `tests::tag_probe`).
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "tests-ebpf")
        .ok_or_else(|| anyhow!("the tests-ebpf package is missing from the workspace"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
