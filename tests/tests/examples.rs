//! The example configurations stay valid as the schema evolves.
use std::path::Path;

use router_core::config::Config;

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_production_example_is_valid() {
    let c = example("collecte.toml");
    assert_eq!(c.members.len(), 3);
    assert_eq!(c.access.len(), 2);
    assert!(c.api.listen.is_some());
}

#[test]
fn the_demo_configuration_is_valid() {
    let c = example("demo.toml");
    let ids: Vec<&str> = c.members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["alice", "bob", "carol"]);
    assert!(c.datapath.pin_dir.starts_with("/run/collecte-demo"));
    // The demo's members are stock CPEs: the router learns their MACs.
    for m in &c.members {
        assert_eq!(m.mac, None, "{} has a configured mac", m.id);
    }
}
