//! Builds the bench-only XDP programs (`bench-ebpf`) with aya-build, as
//! router-user/build.rs builds the datapath, so that `bench` embeds them.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("reading the workspace metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "bench-ebpf")
        .ok_or_else(|| anyhow!("the bench-ebpf package is missing from the workspace"))?;
    let root = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("no parent for {}", ebpf.manifest_path))?;
    // bench-ebpf compiles the datapath's bench prologue from router-ebpf.
    let shared = root.join("../router-ebpf/src/bench.rs");
    println!("cargo:rerun-if-changed={shared}");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
