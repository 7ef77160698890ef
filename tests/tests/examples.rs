//! The example configurations stay valid as the schema evolves.
use std::path::{Path, PathBuf};

use router_core::config::Config;

fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn example(name: &str) -> Config {
    let path = path(name);
    Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_production_example_is_valid() {
    let c = example("collecte.toml");
    assert_eq!(c.members.len(), 3);
    assert_eq!(c.access.len(), 2);
    assert!(c.api.listen.is_some());
}

/// Its commented-out `[pppoe]` and `[radius]` sections, uncommented, are
/// valid too, and give the defaults.
#[test]
fn the_production_examples_pppoe_sections_are_valid_once_uncommented() {
    let path = path("collecte.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = text
        .find("# [pppoe]")
        .expect("a commented-out [pppoe] section");
    let end = start + text[start..].find("\n\n").expect("a blank line after it");
    let sections: Vec<&str> = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#')))
        .collect();
    let c = Config::parse(&format!("{text}\n{}\n", sections.join("\n")))
        .unwrap_or_else(|e| panic!("{} with [pppoe] and [radius]: {e}", path.display()));
    let pppoe = c.pppoe.expect("[pppoe]");
    assert_eq!(pppoe.interfaces, ["acc1"]);
    assert_eq!((pppoe.mru, pppoe.echo_failures), (1492, 3));
    let radius = c.radius.expect("[radius]");
    assert_eq!(radius.interim_interval, 300);
    assert_eq!(radius.retries, 3);
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
