use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use router_common::{MAX_MEMBERS_LIMIT, route};

use super::read::read_in_batches;
use super::*;
use crate::member::{MacAddr, Member, MemberError, Owner};

const BASE: &str = r#"
[[uplink]]
interface = "core0"

[[access]]
interface = "acc0"

[[access]]
interface = "acc1"
"#;

/// `BASE` plus `extra`, parsed and validated.
fn parse_with(extra: &str) -> Result<Config, ConfigError> {
    Config::parse(&format!("{BASE}\n{extra}"))
}

fn member(id: &str, prefixes: &[&str]) -> Member {
    Member {
        id: id.to_owned(),
        interface: "acc0".to_owned(),
        s_vlan: None,
        c_vlan: None,
        mac: None,
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

const FULL: &str = r#"
[datapath]
pin_dir = "/sys/fs/bpf/test"
max_members = 1000
route_groups = 5000

[metrics]
listen = "[::1]:9100"

[api]
listen = "127.0.0.1:9571"
token_file = "/etc/collecte/token"

[log]
level = "collecte=debug,info"

[[uplink]]
interface = "core0"
gateway4 = "192.0.2.1"
gateway6 = "fe80::1"
gateway_mac = "02:00:00:00:00:01"
vlan = 200

[[access]]
interface = "acc0"

[[member]]
id = "alice"
interface = "acc0"
s_vlan = 10
c_vlan = 101
mac = "02-00-00-00-01-0A"
prefixes = ["198.51.100.7/32", "2001:db8:100::/48"]

[[member]]
id = "bob.b-2_"
interface = "acc0"
prefixes = ["198.51.100.8/29"]
"#;

#[test]
fn full_example_parses_and_round_trips() {
    let config = Config::parse(FULL).unwrap();
    assert_eq!(config.datapath.pin_dir, Path::new("/sys/fs/bpf/test"));
    assert_eq!(config.datapath.max_members, 1000);
    assert_eq!(config.datapath.route_groups(), 5000);
    assert_eq!(config.metrics.listen, "[::1]:9100".parse().unwrap());
    assert_eq!(config.api.listen.as_deref(), Some("127.0.0.1:9571"));
    assert_eq!(
        config.api.token_file.as_deref(),
        Some(Path::new("/etc/collecte/token"))
    );
    assert_eq!(config.log.level, "collecte=debug,info");
    let up = &config.uplinks[0];
    assert_eq!(up.interface, "core0");
    assert_eq!(up.gateway4, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(up.gateway6, Some("fe80::1".parse().unwrap()));
    assert_eq!(up.gateway_mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
    assert_eq!(up.vlan, Some(200));
    assert_eq!(
        config.access,
        vec![Access {
            interface: "acc0".into()
        }]
    );
    let alice = &config.members[0];
    assert_eq!(alice.s_vlan, Some(10));
    assert_eq!(alice.c_vlan, Some(101));
    assert_eq!(alice.mac, Some(MacAddr([2, 0, 0, 0, 1, 0x0a])));
    assert_eq!(
        alice.prefixes,
        vec![net("198.51.100.7/32"), net("2001:db8:100::/48")]
    );
    assert_eq!(config.members[1].id, "bob.b-2_");

    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("mac = \"02:00:00:00:01:0a\""), "{text}");
    let again = Config::parse(&text).unwrap();
    assert_eq!(again, config);
}

#[test]
fn member_serializes_in_config_shape() {
    let mut m = member("carol", &["203.0.113.0/28", "2001:db8:200::/56"]);
    m.c_vlan = Some(7);
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "carol",
            "interface": "acc0",
            "c_vlan": 7,
            "prefixes": ["203.0.113.0/28", "2001:db8:200::/56"],
        })
    );
    let back: Member = serde_json::from_value(json).unwrap();
    assert_eq!(back, m);
}

#[test]
fn defaults_applied() {
    let config = Config::parse("").unwrap();
    assert_eq!(config.datapath.pin_dir, Path::new(DEFAULT_PIN_DIR));
    assert_eq!(config.datapath.max_members, 65536);
    assert_eq!(config.datapath.route_groups, None);
    assert_eq!(config.datapath.route_groups(), 65536 / 4 + 4096);
    assert_eq!(config.metrics.listen, "127.0.0.1:9570".parse().unwrap());
    assert_eq!(config.api, ApiConfig::default());
    assert!(config.api.listen.is_none() && config.api.token_file.is_none());
    assert_eq!(config.log.level, "info");
    assert!(config.uplinks.is_empty() && config.access.is_empty() && config.members.is_empty());
    assert_eq!(config, Config::default());

    let config = Config::parse("[datapath]\nmax_members = 1000\n").unwrap();
    assert_eq!(config.datapath.pin_dir, Path::new(DEFAULT_PIN_DIR));
    assert_eq!(config.datapath.route_groups(), 1000 / 4 + 4096);
    assert_eq!(
        DatapathConfig::default_route_groups(MAX_MEMBERS_LIMIT),
        MAX_ROUTE_GROUPS
    );
}

#[test]
fn unknown_field_rejected() {
    for (text, key) in [
        ("[datapath]\nmax_member = 5\n", "max_member"),
        ("[metrics]\nlisten = \"127.0.0.1:1\"\nport = 3\n", "port"),
        (
            "[[uplink]]\ninterface = \"core0\"\ngateway = \"192.0.2.1\"\n",
            "gateway",
        ),
        ("[bogus]\n", "bogus"),
    ] {
        let err = Config::parse(text).unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
        assert!(err.to_string().contains(key), "{err}");
    }
    let err = parse_with(
        "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefix = [\"198.51.100.7/32\"]\n",
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
    assert!(err.to_string().contains("prefix"), "{err}");
}

#[test]
fn toml_error_has_position() {
    let err = Config::parse("[datapath]\nmax_members = \"many\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");

    let err = parse_with(
        "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7\"]\n",
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
    assert!(
        err.to_string().contains("invalid prefix \"198.51.100.7\""),
        "{err}"
    );

    let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nmac = \"02:00:00:00:01\"\nprefixes = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
    assert!(matches!(err, ConfigError::Toml { .. }), "{err:?}");
    assert!(err.to_string().contains("invalid MAC address"), "{err}");
}

#[test]
fn io_error_names_file() {
    let path = Path::new("/nonexistent/collecte-test.toml");
    let err = Config::from_file(path).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/collecte-test.toml"),
        "{err}"
    );
}

#[test]
fn file_errors_name_file() {
    let dir = std::env::temp_dir().join(format!("collecte-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[datapath]\nmax_members = 0\n").unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert!(matches!(err, ConfigError::InFile { .. }), "{err:?}");
    assert!(
        matches!(err.innermost(), ConfigError::BadMaxMembers { value: 0 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad.toml"), "{err}");
    assert!(err.to_string().contains("max_members"), "{err}");

    let good = dir.join("good.toml");
    std::fs::write(&good, FULL).unwrap();
    assert_eq!(
        Config::from_file(&good).unwrap(),
        Config::parse(FULL).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_prefix_host_bits() {
    let err = parse_with(
        "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.7/24\"]\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::BadPrefix { member, prefix, .. })
            if member == "alice" && prefix == "198.51.100.7/24"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("alice") && msg.contains("prefixes"), "{msg}");
    assert!(
        msg.contains("198.51.100.7/24 has host bits set; did you mean 198.51.100.0/24?"),
        "{msg}"
    );

    let err = member("bob", &["2001:db8:100:1::/48"])
        .validate_fields()
        .unwrap_err();
    assert!(
        err.to_string().contains("did you mean 2001:db8:100::/48?"),
        "{err}"
    );
}

#[test]
fn bad_prefix_reserved() {
    for p in [
        "224.0.0.1/32",
        "0.0.0.0/0",
        "127.0.0.1/32",
        "169.254.1.0/24",
        "fe80::/64",
        "ff02::1/128",
        "::1/128",
        "::ffff:198.51.100.7/128",
    ] {
        let err = member("alice", &[p]).validate_fields().unwrap_err();
        assert!(
            matches!(&err, MemberError::BadPrefix { member, .. } if member == "alice"),
            "{p}: {err:?}"
        );
        assert!(
            err.to_string().contains("never routed to a member"),
            "{err}"
        );
    }
    for p in [
        "10.0.0.0/8",
        "100.64.0.1/32",
        "2001:db8::/32",
        "fc00::/7",
        "223.255.255.0/24",
    ] {
        member("alice", &[p]).validate_fields().unwrap();
    }
}

#[test]
fn overlap_between_members() {
    let err = parse_with(
        r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.0/24"]

[[member]]
id = "bob"
interface = "acc1"
prefixes = ["2001:db8::/48", "198.51.100.128/25"]
"#,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::Overlap { member, prefix, other_member, other_prefix })
                if member == "bob" && *prefix == net("198.51.100.128/25")
                && other_member == "alice" && *other_prefix == net("198.51.100.0/24")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"bob\"") && msg.contains("\"alice\"") && msg.contains("prefixes"),
        "{msg}"
    );

    // The wider prefix coming second is caught too.
    let members = [
        member("a", &["2001:db8:1:2::/64"]),
        member("b", &["2001:db8::/32"]),
    ];
    let err = validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::Overlap { member, other_member, .. })
            if member == "b" && other_member == "a"),
        "{err:?}"
    );
}

#[test]
fn overlap_within_member() {
    let err = member(
        "alice",
        &["198.51.100.0/24", "2001:db8::/48", "198.51.100.7/32"],
    )
    .validate_fields()
    .unwrap_err();
    assert!(
        matches!(&err, MemberError::Overlap { member, prefix, other_member, other_prefix }
                if member == "alice" && other_member == "alice"
                && *prefix == net("198.51.100.7/32") && *other_prefix == net("198.51.100.0/24")),
        "{err:?}"
    );
    assert!(err.to_string().contains("same member"), "{err}");

    let err = member("alice", &["2001:db8::/48", "2001:db8::/48"])
        .validate_fields()
        .unwrap_err();
    assert!(matches!(err, MemberError::Overlap { .. }), "{err:?}");
}

#[test]
fn disjoint_neighbours_accepted() {
    let members = [
        member("a", &["198.51.100.0/25", "2001:db8::/48"]),
        member("b", &["198.51.100.128/25", "2001:db8:1::/48"]),
        member("c", &["198.51.101.0/24", "2001:db8:0:ffff::/64"]),
    ];
    let err = validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::Overlap { member, other_member, .. })
            if member == "c" && other_member == "a"),
        "{err:?}"
    );

    let members = [
        member("a", &["198.51.100.0/25", "2001:db8::/48"]),
        member("b", &["198.51.100.128/25", "2001:db8:1::/48"]),
        member("c", &["198.51.101.0/24", "2001:db8:2::/47"]),
    ];
    validate_members(&members, &HashSet::from(["acc0"]), 10).unwrap();

    // Prefixes of the two families never collide.
    let mut claims = Claims::default();
    claims.add(0, &net("10.0.0.0/8"));
    claims.add(1, &net("::a00:0/104"));
    assert_eq!(claims.first_overlap(), None);
    claims.add(2, &net("::a00:0/112"));
    assert_eq!(
        claims.first_overlap().map(|o| (o.member, o.other)),
        Some((2, 1))
    );
}

#[test]
fn duplicate_id() {
    let err = parse_with(
        r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.7/32"]

[[member]]
id = "alice"
interface = "acc1"
prefixes = ["198.51.100.8/32"]
"#,
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::DuplicateId { member }) if member == "alice"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("\"alice\"") && err.to_string().contains("unique"),
        "{err}"
    );
}

#[test]
fn unknown_interface() {
    // An uplink is not an access interface.
    let err = parse_with(
        "[[member]]\nid = \"alice\"\ninterface = \"core0\"\nprefixes = [\"198.51.100.7/32\"]\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownInterface { member, interface, allowed }
            if member == "alice" && interface == "core0" && allowed == &["acc0", "acc1"]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"alice\"") && msg.contains("interface") && msg.contains("acc0, acc1"),
        "{msg}"
    );
}

#[test]
fn bad_vlan() {
    for (field, value) in [
        ("c_vlan", 0u16),
        ("c_vlan", 4095),
        ("s_vlan", 4095),
        ("s_vlan", 0),
    ] {
        let mut m = member("alice", &["198.51.100.7/32"]);
        m.c_vlan = Some(100);
        match field {
            "c_vlan" => m.c_vlan = Some(value),
            _ => m.s_vlan = Some(value),
        }
        let err = m.validate_fields().unwrap_err();
        assert!(
            matches!(&err, MemberError::BadVlan { member_or_section: Owner::Member(id), field: f, value: v }
                if id == "alice" && *f == field && *v == value),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("alice") && msg.contains(field) && msg.contains("1..=4094"),
            "{msg}"
        );
    }

    let err = Config::parse("[[uplink]]\ninterface = \"core0\"\nvlan = 4095\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::BadVlan { member_or_section: Owner::Uplink(i), field: "vlan", value: 4095 })
            if i == "core0"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("[[uplink]] \"core0\", vlan"), "{msg}");

    let mut m = member("alice", &["198.51.100.7/32"]);
    m.s_vlan = Some(4094);
    m.c_vlan = Some(1);
    m.validate_fields().unwrap();
}

#[test]
fn s_vlan_without_c_vlan() {
    let err = parse_with(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\ns_vlan = 10\nprefixes = [\"198.51.100.7/32\"]\n",
        )
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::SVlanWithoutCVlan { member }) if member == "alice"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("alice") && msg.contains("s_vlan") && msg.contains("c_vlan"),
        "{msg}"
    );
}

#[test]
fn too_many_members() {
    let text = format!(
            "[datapath]\nmax_members = 2\n{BASE}{}",
            (0..3)
                .map(|i| format!("[[member]]\nid = \"m{i}\"\ninterface = \"acc0\"\nprefixes = [\"198.51.100.{i}/32\"]\n"))
                .collect::<String>()
        );
    let err = Config::parse(&text).unwrap_err();
    assert!(
        matches!(err, ConfigError::TooManyMembers { count: 3, max: 2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_members"), "{err}");
}

#[test]
fn bad_id() {
    let long = "x".repeat(65);
    for (id, why) in [
        ("", "is empty"),
        (long.as_str(), "65 characters"),
        ("al ice", "' '"),
        ("alice/1", "'/'"),
        ("élise", "'é'"),
    ] {
        let err = member(id, &["198.51.100.7/32"])
            .validate_fields()
            .unwrap_err();
        assert!(
            matches!(&err, MemberError::BadId { id: i, .. } if i == id),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(why) && msg.contains("A-Z a-z 0-9 _ . -"),
            "{msg}"
        );
        assert!(msg.contains(&format!("{id:?}")), "{msg}");
    }
    member(&"x".repeat(64), &["198.51.100.7/32"])
        .validate_fields()
        .unwrap();
    member("A.b-c_9", &["198.51.100.7/32"])
        .validate_fields()
        .unwrap();
}

#[test]
fn bad_mac() {
    let mut m = member("alice", &["198.51.100.7/32"]);
    m.mac = Some("01:00:5e:00:00:01".parse().unwrap());
    let err = m.validate_fields().unwrap_err();
    assert!(
        matches!(&err, MemberError::BadMac { member_or_section: Owner::Member(id), field: "mac", .. }
            if id == "alice"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("alice") && msg.contains("mac") && msg.contains("multicast"),
        "{msg}"
    );

    m.mac = Some(MacAddr::BROADCAST);
    assert!(matches!(
        m.validate_fields(),
        Err(MemberError::BadMac { .. })
    ));

    let err =
        Config::parse("[[uplink]]\ninterface = \"core0\"\ngateway_mac = \"00:00:00:00:00:00\"\n")
            .unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::BadMac { member_or_section: Owner::Uplink(i), field: "gateway_mac", .. })
            if i == "core0"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("core0") && msg.contains("gateway_mac") && msg.contains("all zeros"),
        "{msg}"
    );
}

#[test]
fn mac_parse_and_display() {
    let mac: MacAddr = "02:AB:cd:00:01:ff".parse().unwrap();
    assert_eq!(mac, MacAddr([0x02, 0xab, 0xcd, 0x00, 0x01, 0xff]));
    assert_eq!(mac.to_string(), "02:ab:cd:00:01:ff");
    assert_eq!("02-AB-CD-00-01-FF".parse::<MacAddr>().unwrap(), mac);
    assert!(mac.is_unicast() && !mac.is_multicast() && !mac.is_zero());
    assert!(MacAddr::ZERO.is_zero() && !MacAddr::ZERO.is_unicast());
    assert!(MacAddr::BROADCAST.is_multicast());
    for bad in [
        "",
        "02:00:00:00:01",
        "02:00:00:00:01:01:01",
        "02:00-00:00:01:01",
        "02.00.00.00.01.01",
        "0g:00:00:00:01:01",
        "+2:00:00:00:01:01",
        "0200:00:00:01:01:",
    ] {
        let err = bad.parse::<MacAddr>().unwrap_err();
        assert_eq!(err.input, bad);
        assert!(err.to_string().contains("02:00:00:00:01:01"), "{err}");
    }
}

#[test]
fn duplicate_interface() {
    let err = Config::parse("[[uplink]]\ninterface = \"eth0\"\n[[access]]\ninterface = \"eth0\"\n")
        .unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateInterface { interface, first: Section::Uplink, second: Section::Access }
            if interface == "eth0"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("\"eth0\"") && msg.contains("[[uplink]]") && msg.contains("[[access]]"),
        "{msg}"
    );

    let err = Config::parse("[[access]]\ninterface = \"acc0\"\n[[access]]\ninterface = \"acc0\"\n")
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::DuplicateInterface {
                first: Section::Access,
                second: Section::Access,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_interface_name_and_count() {
    for name in ["", "an-interface-name", "eth0:1", "a b", ".."] {
        let err = Config::parse(&format!("[[access]]\ninterface = {name:?}\n")).unwrap_err();
        assert!(
            matches!(&err, ConfigError::BadInterface { section: Section::Access, interface, .. }
                if interface == name),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("[[access]] interface"), "{err}");
    }
    let text: String = (0..MAX_INTERFACES + 1)
        .map(|i| format!("[[access]]\ninterface = \"acc{i}\"\n"))
        .collect();
    let err = Config::parse(&text).unwrap_err();
    assert!(
        matches!(err, ConfigError::TooManyInterfaces { count: 64 }),
        "{err:?}"
    );
    let text: String = (0..MAX_INTERFACES)
        .map(|i| format!("[[access]]\ninterface = \"acc{i}\"\n"))
        .collect();
    Config::parse(&text).unwrap();
}

#[test]
fn bad_max_members() {
    for value in [0, MAX_MEMBERS_LIMIT + 1] {
        let err = Config::parse(&format!("[datapath]\nmax_members = {value}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadMaxMembers { value: v } if v == value),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("[datapath] max_members")
                && msg.contains(&format!("1..={MAX_MEMBERS_LIMIT}")),
            "{msg}"
        );
    }
    Config::parse(&format!("[datapath]\nmax_members = {MAX_MEMBERS_LIMIT}\n")).unwrap();
}

#[test]
fn bad_route_groups() {
    for value in [0, MAX_ROUTE_GROUPS + 1] {
        let err = Config::parse(&format!("[datapath]\nroute_groups = {value}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadRouteGroups { value: v } if v == value),
            "{err:?}"
        );
        assert!(err.to_string().contains("[datapath] route_groups"), "{err}");
    }
    // Both halves of the largest table stay addressable.
    assert!(2 * u64::from(route::half_entries(MAX_ROUTE_GROUPS)) <= u64::from(u32::MAX));
}

#[test]
fn bad_pin_dir() {
    let err = Config::parse("[datapath]\npin_dir = \"relative/dir\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::BadPinDir { .. }), "{err:?}");
    assert!(err.to_string().contains("pin_dir"), "{err}");
}

#[test]
fn state_path_and_api_settings() {
    let config = Config::parse("").unwrap();
    assert_eq!(config.datapath.state, Path::new(DEFAULT_STATE_PATH));
    assert_eq!(config.api.body_limit, DEFAULT_BODY_LIMIT);
    assert_eq!(config.api.endpoint().unwrap(), None);

    let err = Config::parse("[datapath]\nstate = \"state.json\"\n").unwrap_err();
    assert!(matches!(err, ConfigError::BadStatePath { .. }), "{err:?}");

    let config = Config::parse(
            "[api]\nlisten = \"unix:/run/collecte/api.sock\"\ntoken_file = \"/t\"\nbody_limit = \"1 GiB\"\n",
        )
        .unwrap();
    assert_eq!(
        config.api.endpoint().unwrap(),
        Some(ApiEndpoint::Unix("/run/collecte/api.sock".into()))
    );
    assert_eq!(config.api.body_limit, ByteSize(1 << 30));
    let config =
        Config::parse("[api]\nlisten = \"[::1]:80\"\ntoken_file = \"/t\"\nbody_limit = 4096\n")
            .unwrap();
    assert_eq!(
        config.api.endpoint().unwrap(),
        Some(ApiEndpoint::Tcp("[::1]:80".parse().unwrap()))
    );
    assert_eq!(config.api.body_limit, ByteSize(4096));
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&text).unwrap(), config);

    for (text, field) in [
        ("[api]\nlisten = \"127.0.0.1:1\"\n", "token_file"),
        (
            "[api]\nlisten = \"localhost\"\ntoken_file = \"/t\"\n",
            "listen",
        ),
        (
            "[api]\nlisten = \"unix:rel.sock\"\ntoken_file = \"/t\"\n",
            "listen",
        ),
        ("[api]\nbody_limit = 10\n", "body_limit"),
    ] {
        let err = Config::parse(text).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadApi { field: f, .. } if f == field),
            "{text}: {err:?}"
        );
    }
    let err = Config::parse("[api]\nbody_limit = \"12 parsecs\"\n").unwrap_err();
    assert!(err.to_string().contains("invalid size"), "{err}");
}

#[test]
fn byte_sizes() {
    for (text, bytes) in [
        ("0", 0),
        ("512B", 512),
        ("256MiB", 256 << 20),
        ("256 mib", 256 << 20),
        ("2kB", 2000),
        ("3MB", 3_000_000),
        ("1GiB", 1 << 30),
    ] {
        assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
    }
    for bad in ["", "MiB", "-1", "1.5MiB", "99999999999999GiB", "1 TB"] {
        assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
    }
    assert_eq!(DEFAULT_BODY_LIMIT.to_string(), "256MiB");
    assert_eq!(ByteSize(1000).to_string(), "1000B");
}

#[test]
fn bad_gateway() {
    let err =
        Config::parse("[[uplink]]\ninterface = \"core0\"\ngateway4 = \"224.0.0.1\"\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::BadGateway { uplink, field: "gateway4", .. } if uplink == "core0"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("core0") && err.to_string().contains("gateway4"),
        "{err}"
    );
    let err = Config::parse("[[uplink]]\ninterface = \"core0\"\ngateway6 = \"::\"\n").unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::BadGateway {
                field: "gateway6",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn no_prefixes() {
    for prefixes in ["prefixes = []\n", ""] {
        let err = parse_with(&format!(
            "[[member]]\nid = \"alice\"\ninterface = \"acc0\"\n{prefixes}"
        ))
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Member(MemberError::NoPrefixes { member }) if member == "alice"),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("alice") && msg.contains("prefixes"), "{msg}");
    }
}

#[test]
fn shared_attachment_allowed() {
    let config = parse_with(
        r#"
[[member]]
id = "alice"
interface = "acc0"
prefixes = ["198.51.100.7/32"]

[[member]]
id = "bob"
interface = "acc0"
prefixes = ["198.51.100.8/32"]

[[member]]
id = "carol"
interface = "acc1"
s_vlan = 10
c_vlan = 20
prefixes = ["198.51.100.9/32"]

[[member]]
id = "dave"
interface = "acc1"
s_vlan = 10
c_vlan = 20
prefixes = ["198.51.100.10/32"]
"#,
    )
    .unwrap();
    assert_eq!(config.members.len(), 4);
}

#[test]
fn many_members_validate() {
    const N: u32 = 100_000;
    let members: Vec<Member> = (0..N)
        .map(|i| {
            let v4 = Ipv4Addr::from(0x0a00_0000 + i); // 10.0.0.0 + i
            let v6 = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 0);
            Member {
                id: format!("m{i}"),
                interface: "acc0".to_owned(),
                s_vlan: Some((i % 4094 + 1) as u16),
                c_vlan: Some(((i / 4094) % 4094 + 1) as u16),
                mac: None,
                prefixes: vec![
                    IpNet::V4(Ipv4Net::new(v4, 32).unwrap()),
                    IpNet::V6(Ipv6Net::new(v6, 64).unwrap()),
                ],
            }
        })
        .collect();
    let access = HashSet::from(["acc0"]);
    validate_members(&members, &access, N).unwrap();
    let err = validate_members(&members, &access, N - 1).unwrap_err();
    assert!(matches!(err, ConfigError::TooManyMembers { count, .. } if count == N as usize));

    // One member in the middle overlapping another deep in the table.
    let mut bad = members.clone();
    bad[70_000].prefixes.push(net("10.0.0.0/24"));
    let err = validate_members(&bad, &access, N).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::Overlap { member, other_member, other_prefix, .. })
            if member == "m70000" && other_member == "m0" && *other_prefix == net("10.0.0.0/32")),
        "{err:?}"
    );

    let mut bad = members;
    bad[N as usize - 1].prefixes[1] = net("2001:db8:0:1234::/64");
    let err = validate_members(&bad, &access, N).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Member(MemberError::Overlap { member, other_member, .. })
            if member == "m99999" && other_member == "m4660"),
        "{err:?}"
    );
}

/// `Config::read` gives what `Config::from_file` gives, member for
/// member, or the same error, whatever the file's layout.
#[test]
fn reading_in_batches_agrees_with_the_whole_file() {
    let dir = std::env::temp_dir().join(format!("collecte-config-read-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.toml");
    let many: String = (0..3000)
            .map(|i| {
                format!(
                    "[[member]] # {i}\nid = \"m{i}\"\ninterface = \"acc0\"\nprefixes = [\n  \"10.{}.{}.0/24\",\n]\n\n",
                    i / 256,
                    i % 256
                )
            })
            .collect();
    let cases = [
        FULL.to_string(),
        FULL.replace('\n', "\r\n"),
        // Members before the interfaces and settings after them.
        format!(
            "[[member]]\nid = \"z\"\ninterface = \"acc0\"\nprefixes = [\"203.0.113.9/32\"]\n{FULL}"
        ),
        format!(
            "[[access]]\ninterface = \"acc0\"\n[datapath]\nmax_members = 4000\n{many}[log]\nlevel = \"warn\"\n"
        ),
        // Constructs read the whole-file way.
        FULL.replace(
            "level = \"collecte=debug,info\"",
            "level = \"\"\"collecte=debug,info\"\"\"",
        ),
        FULL.replace("[[member]]\nid = \"alice\"", "[[ member ]]\nid = \"alice\""),
        // Errors: the whole-file reading's.
        FULL.replace("bob.b-2_", "alice"),
        FULL.replace("198.51.100.8/29", "198.51.100.0/29"),
        FULL.replace(
            "interface = \"acc0\"\nprefixes = [\"198.51.100.8/29\"]",
            "interface = \"acc9\"\nprefixes = [\"198.51.100.8/29\"]",
        ),
        FULL.replace("max_members = 1000", "max_members = 1"),
        FULL.replace(
            "prefixes = [\"198.51.100.8/29\"]",
            "prefixes = [\"198.51.100.8/29\"\ncolour = 1",
        ),
        FULL.replace(
            "[[member]]\nid = \"bob.b-2_\"",
            "[member.x]\nid = \"bob.b-2_\"",
        ),
        format!(
            "{FULL}\n[[member]]\nid = \"x\"\ninterface = \"acc0\"\nprefixes = [\n[\"198.51.100.99/32\"]]\n"
        ),
    ];
    for (k, text) in cases.iter().enumerate() {
        std::fs::write(&path, text).unwrap();
        // The valid ones without a multi-line string are read in
        // batches, not the whole-file way.
        let batched = k < 4 || k == 5;
        assert_eq!(
            read_in_batches(&path).unwrap().is_some(),
            batched,
            "case {k}"
        );
        let whole = Config::from_file(&path);
        let read = Config::read(&path);
        match (whole, read) {
            (Ok(mut w), Ok((c, members))) => {
                let wm = std::mem::take(&mut w.members);
                assert_eq!(w, c, "case {k}");
                let rm: Vec<Member> = members.iter().map(|(_, m)| m.to_member()).collect();
                assert_eq!(wm, rm, "case {k}");
            }
            (Err(w), Err(r)) => assert_eq!(w.to_string(), r.to_string(), "case {k}"),
            (w, r) => panic!("case {k}: {w:?} vs {:?}", r.map(|(c, _)| c)),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn edge_settings() {
    let config = Config::parse("").unwrap();
    assert_eq!(config.edge, EdgeConfig::default());
    assert_eq!(config.edge.icmp_rate, 1000);
    assert_eq!(config.edge.router_lifetime, 1800);
    let config = Config::parse(
        "[edge]\nicmp_rate = 0\nicmp_burst = 5\nrouter_lifetime = 0\nra_interval = 4\nra_hop_limit = 0\n",
    )
    .unwrap();
    assert_eq!(
        config.edge,
        EdgeConfig {
            icmp_rate: 0,
            icmp_burst: 5,
            router_lifetime: 0,
            ra_interval: 4,
            ra_hop_limit: 0,
        }
    );
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&text).unwrap(), config);

    for (text, field, says) in [
        ("icmp_rate = 1000001", "icmp_rate", "0..=1000000"),
        ("icmp_burst = 0", "icmp_burst", "1..=1000000"),
        ("ra_interval = 3", "ra_interval", "4..=1800"),
        ("ra_interval = 1801", "ra_interval", "4..=1800"),
        (
            "ra_interval = 600\nrouter_lifetime = 599",
            "router_lifetime",
            "ra_interval (600)..=9000",
        ),
        ("router_lifetime = 9001", "router_lifetime", "..=9000"),
    ] {
        let err = Config::parse(&format!("[edge]\n{text}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadEdge { field: f, .. } if f == field),
            "{text}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("[edge] {field}: ")) && message.contains(says),
            "{text}: {message}"
        );
    }
    let err = Config::parse("[edge]\nicmp_rates = 5\n").unwrap_err();
    assert!(err.to_string().contains("icmp_rates"), "{err}");
}

const RADIUS: &str =
    "[radius]\nservers = [\"127.0.0.1:1812\"]\nsecret_file = \"/etc/collecte/radius.secret\"\n";

#[test]
fn pppoe_and_radius_defaults() {
    let config = parse_with(&format!("[pppoe]\ninterfaces = [\"acc0\"]\n{RADIUS}")).unwrap();
    let pppoe = config.pppoe.as_ref().unwrap();
    assert_eq!(pppoe.interfaces, ["acc0"]);
    assert_eq!(pppoe.ac_name, DEFAULT_AC_NAME);
    assert_eq!(pppoe.mru, 1492);
    assert_eq!(pppoe.echo_interval, 30);
    assert_eq!(pppoe.echo_failures, 3);
    let radius = config.radius.as_ref().unwrap();
    assert_eq!(radius.servers, ["127.0.0.1:1812"]);
    assert_eq!(radius.accounting_servers(), ["127.0.0.1:1813"]);
    assert_eq!(radius.secret_file, Path::new("/etc/collecte/radius.secret"));
    assert_eq!(radius.nas_identifier, "collecte");
    assert_eq!(radius.interim_interval, 300);
    assert_eq!(radius.timeout, Seconds(std::time::Duration::from_secs(3)));
    assert_eq!(radius.retries, 3);
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&text).unwrap(), config);

    // Neither section: no PPPoE.
    let config = parse_with("").unwrap();
    assert!(config.pppoe.is_none() && config.radius.is_none());
    // [radius] alone is allowed (nothing uses it yet, but it is valid).
    assert!(parse_with(RADIUS).unwrap().pppoe.is_none());
}

#[test]
fn pppoe_and_radius_settings() {
    let config = parse_with(
        "[pppoe]\ninterfaces = [\"acc0\", \"acc1\"]\nac_name = \"bng-1\"\nmru = 1480\n\
         echo_interval = 10\necho_failures = 5\n\
         [radius]\nservers = [\"192.0.2.1:1812\", \"[2001:db8::1]:1812\", \"radius.example:1645\"]\n\
         accounting_servers = [\"192.0.2.2:1813\"]\nsecret_file = \"/s\"\n\
         nas_identifier = \"bng-1\"\ninterim_interval = 10\ntimeout = \"500ms\"\nretries = 1\n",
    )
    .unwrap();
    let pppoe = config.pppoe.as_ref().unwrap();
    assert_eq!((pppoe.mru, pppoe.echo_failures), (1480, 5));
    assert_eq!(pppoe.echo_interval(), std::time::Duration::from_secs(10));
    let radius = config.radius.as_ref().unwrap();
    assert_eq!(radius.servers.len(), 3);
    assert_eq!(radius.accounting_servers(), ["192.0.2.2:1813"]);
    assert_eq!(radius.timeout.0, std::time::Duration::from_millis(500));
    assert_eq!(
        radius.interim_interval(),
        std::time::Duration::from_secs(10)
    );
    let text = toml::to_string(&config).unwrap();
    assert_eq!(Config::parse(&text).unwrap(), config);
    for (written, seconds) in [("\"2s\"", 2000), ("4", 4000), ("\"1m\"", 60_000)] {
        let config = parse_with(&format!("{RADIUS}timeout = {written}\n")).unwrap();
        assert_eq!(
            config.radius.unwrap().timeout.0,
            std::time::Duration::from_millis(seconds)
        );
    }
}

#[test]
fn pppoe_needs_radius_and_access_interfaces() {
    let err = parse_with("[pppoe]\ninterfaces = [\"acc0\"]\n").unwrap_err();
    assert!(matches!(err, ConfigError::PppoeWithoutRadius), "{err:?}");
    assert!(err.to_string().contains("[radius]"), "{err}");

    for (interfaces, says) in [
        ("[]", "is empty"),
        (
            "[\"core0\"]",
            "\"core0\" is not one of the [[access]] interfaces (acc0, acc1)",
        ),
        (
            "[\"eth9\"]",
            "\"eth9\" is not one of the [[access]] interfaces",
        ),
        ("[\"acc0\", \"acc1\", \"acc0\"]", "\"acc0\" is listed twice"),
    ] {
        let err = parse_with(&format!("[pppoe]\ninterfaces = {interfaces}\n{RADIUS}")).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::BadPppoe {
                    field: "interfaces",
                    ..
                }
            ),
            "{interfaces}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with("[pppoe] interfaces: ") && message.contains(says),
            "{interfaces}: {message}"
        );
    }
    let err = parse_with(&format!("[pppoe]\n{RADIUS}")).unwrap_err();
    assert!(err.to_string().contains("interfaces"), "{err}");
}

#[test]
fn pppoe_field_errors() {
    for (text, field, says) in [
        ("mru = 575", "mru", "576..=1492"),
        ("mru = 1500", "mru", "RFC 4638"),
        ("echo_failures = 0", "echo_failures", "1 or more"),
        ("echo_interval = 0", "echo_interval", "1..=3600"),
        ("ac_name = \"\"", "ac_name", "1-253 bytes"),
    ] {
        let err = parse_with(&format!(
            "[pppoe]\ninterfaces = [\"acc0\"]\n{text}\n{RADIUS}"
        ))
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::BadPppoe { field: f, .. } if f == field),
            "{text}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("[pppoe] {field}: ")) && message.contains(says),
            "{text}: {message}"
        );
    }
    let err = parse_with(&format!(
        "[pppoe]\ninterfaces = [\"acc0\"]\nmtu = 1492\n{RADIUS}"
    ))
    .unwrap_err();
    assert!(err.to_string().contains("mtu"), "{err}");
}

#[test]
fn radius_field_errors() {
    for (text, field, says) in [
        ("servers = []\nsecret_file = \"/s\"", "servers", "is empty"),
        ("secret_file = \"/s\"", "servers", "is empty"),
        (
            "servers = [\"127.0.0.1\"]\nsecret_file = \"/s\"",
            "servers",
            "has no port",
        ),
        (
            "servers = [\"127.0.0.1:0\"]\nsecret_file = \"/s\"",
            "servers",
            "1..=65535",
        ),
        (
            "servers = [\"127.0.0.1:99999\"]\nsecret_file = \"/s\"",
            "servers",
            "1..=65535",
        ),
        (
            "servers = [\":1812\"]\nsecret_file = \"/s\"",
            "servers",
            "has no host",
        ),
        (
            "servers = [\"2001:db8::1:1812\"]\nsecret_file = \"/s\"",
            "servers",
            "without brackets",
        ),
        (
            "servers = [\"[nohost]:1812\"]\nsecret_file = \"/s\"",
            "servers",
            "not an IPv6 address",
        ),
        (
            "servers = [\"127.0.0.1:1812\"]\naccounting_servers = [\"x\"]\nsecret_file = \"/s\"",
            "accounting_servers",
            "has no port",
        ),
        (
            "servers = [\"127.0.0.1:1812\"]\nsecret_file = \"rel\"",
            "secret_file",
            "absolute",
        ),
    ] {
        let err = Config::parse(&format!("[radius]\n{text}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadRadius { field: f, .. } if f == field),
            "{text}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("[radius] {field}: ")) && message.contains(says),
            "{text}: {message}"
        );
    }
    for (text, field, says) in [
        (
            "interim_interval = 9",
            "interim_interval",
            "10 seconds or more",
        ),
        ("timeout = \"0s\"", "timeout", "1ms..=60s"),
        ("timeout = \"61s\"", "timeout", "1ms..=60s"),
        ("retries = 0", "retries", "1..=20"),
        ("nas_identifier = \"\"", "nas_identifier", "1-253 bytes"),
    ] {
        let err = Config::parse(&format!("{RADIUS}{text}\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadRadius { field: f, .. } if f == field),
            "{text}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("[radius] {field}: ")) && message.contains(says),
            "{text}: {message}"
        );
    }
    // A timeout that is not a duration, a missing secret_file: the TOML
    // error names the key.
    for (text, says) in [
        (
            format!("{RADIUS}timeout = \"3 parsecs\"\n"),
            "invalid duration",
        ),
        (format!("{RADIUS}timeout = -1\n"), "negative"),
        (
            "[radius]\nservers = [\"127.0.0.1:1812\"]\n".to_owned(),
            "secret_file",
        ),
    ] {
        let err = Config::parse(&text).unwrap_err();
        assert!(matches!(err, ConfigError::Toml { .. }), "{text}: {err:?}");
        assert!(err.to_string().contains(says), "{text}: {err}");
    }
}
