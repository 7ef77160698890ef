//! The members every benchmark uses, allocated as an ISP does: each member
//! has one IPv4 prefix — mostly a /32, about 5% a /29 to /24 — handed out
//! sequentially, round-robin from four pools, and one IPv6 prefix — a /48
//! (1 in 8), a /56 (2 in 8) or a /64 (5 in 8) — handed out sequentially from
//! one pool per length. Member `i` is the same in every population, so a
//! small table is a prefix of a large one.
use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use anyhow::{Context as _, bail};
use ipnet::{Ipv4Net, Ipv6Net};
use router_core::{
    config::Config,
    member::Member,
    tables::{LinkInfo, Tables},
};
use serde_json::json;

/// IPv4 pools: (first address, prefix length).
const V4_POOLS: [([u8; 4], u8); 4] = [
    ([100, 64, 0, 0], 10),
    ([10, 0, 0, 0], 8),
    ([172, 16, 0, 0], 12),
    ([45, 128, 0, 0], 10),
];
/// IPv6 pools: (prefix length handed out, first address).
const V6_POOLS: [(u8, &str); 3] = [
    (48, "2a01:1000::"),
    (56, "2a02:2000::"),
    (64, "2a03:3000::"),
];

/// The CPE MAC of every plain (untagged) member, and of every QinQ member.
/// Members of one kind share their attachment and MAC so that a bench frame
/// whose source address is drawn at random passes the source check: the
/// check reads the same entries whatever their values.
pub const CPE_PLAIN: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x01];
pub const CPE_QINQ: [u8; 6] = [0x02, 0xc0, 0, 0, 0, 0x02];
/// The QinQ members' tags.
pub const S_VLAN: u16 = 100;
pub const C_VLAN: u16 = 200;

/// One member's prefixes.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub v4: Ipv4Net,
    pub v6: Ipv6Net,
}

impl Spec {
    /// An address of the IPv4 prefix (a host of it), network byte order.
    pub fn host4(&self) -> [u8; 4] {
        let net = u32::from(self.v4.network());
        let a = if self.v4.prefix_len() == 32 {
            net
        } else {
            net + 1
        };
        a.to_be_bytes()
    }

    /// An address of the IPv6 prefix.
    pub fn host6(&self) -> [u8; 16] {
        (u128::from(self.v6.network()) + 1).to_be_bytes()
    }
}

/// IPv4 prefix length of member `i`.
fn v4_len(i: usize) -> u8 {
    match i % 1024 {
        0..=31 => 29,
        32..=39 => 28,
        40..=43 => 27,
        44..=45 => 26,
        46 => 25,
        47 => 24,
        _ => 32,
    }
}

/// IPv6 pool of member `i`.
fn v6_pool(i: usize) -> usize {
    match i % 8 {
        0 => 0,
        1 | 2 => 1,
        _ => 2,
    }
}

/// The prefixes of members `0..n`.
pub fn specs(n: usize) -> anyhow::Result<Vec<Spec>> {
    let mut v4_next: Vec<u64> = V4_POOLS
        .iter()
        .map(|(a, _)| u64::from(u32::from_be_bytes(*a)))
        .collect();
    let mut v6_next: Vec<u128> = V6_POOLS
        .iter()
        .map(|(_, a)| a.parse::<Ipv6Addr>().map(u128::from))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let pool = i % V4_POOLS.len();
        let len = v4_len(i);
        let size = 1u64 << (32 - len);
        let start = v4_next[pool].div_ceil(size) * size;
        let (base, plen) = V4_POOLS[pool];
        let end = u64::from(u32::from_be_bytes(base)) + (1u64 << (32 - plen));
        if start + size > end {
            bail!(
                "IPv4 pool {}/{plen} exhausted at member {i}",
                Ipv4Addr::from(base)
            );
        }
        v4_next[pool] = start + size;
        let v4 = Ipv4Net::new(Ipv4Addr::from(start as u32), len)?;
        let p6 = v6_pool(i);
        let len6 = V6_POOLS[p6].0;
        let v6 = Ipv6Net::new(Ipv6Addr::from(v6_next[p6]), len6)?;
        v6_next[p6] += 1u128 << (128 - len6);
        out.push(Spec { v4, v6 });
    }
    Ok(out)
}

/// Where a member is attached.
#[derive(Clone, Copy, Debug)]
pub struct Attachment<'a> {
    pub interface: &'a str,
    /// (S-tag, C-tag).
    pub tags: Option<(u16, u16)>,
    pub mac: [u8; 6],
}

pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Member `i` of the configuration.
pub fn member(i: usize, spec: &Spec, at: Attachment) -> anyhow::Result<Member> {
    let mut v = json!({
        "id": format!("m{i}"),
        "interface": at.interface,
        "mac": mac_text(at.mac),
        "prefixes": [spec.v4.to_string(), spec.v6.to_string()],
    });
    if let Some((s, c)) = at.tags {
        v["s_vlan"] = json!(s);
        v["c_vlan"] = json!(c);
    }
    serde_json::from_value(v).context("building a member")
}

/// The `max_members` setting for `n` members.
pub fn max_members(n: usize) -> u32 {
    (n.max(64) as u32).next_power_of_two()
}

/// A configuration: one uplink with a static gateway MAC, access
/// interfaces, `members`; its pins and state under `work`.
pub struct Setup<'a> {
    pub uplink: &'a str,
    pub gateway_mac: [u8; 6],
    pub access: &'a [&'a str],
    pub max_members: u32,
    pub route_groups: u32,
    pub pin_dir: &'a Path,
    pub state: &'a Path,
    pub metrics: &'a str,
}

pub fn config(s: &Setup, members: Vec<Member>) -> anyhow::Result<Config> {
    let v = json!({
        "datapath": {
            "max_members": s.max_members,
            "route_groups": s.route_groups,
            "pin_dir": s.pin_dir,
            "state": s.state,
        },
        "metrics": { "listen": s.metrics },
        "log": { "level": "warn" },
        "uplink": [{
            "interface": s.uplink,
            "gateway4": "192.0.2.1",
            "gateway6": "2001:db8::1",
            "gateway_mac": mac_text(s.gateway_mac),
        }],
        "access": s.access.iter().map(|a| json!({ "interface": a })).collect::<Vec<_>>(),
    });
    let mut c: Config = serde_json::from_value(v).context("building the configuration")?;
    c.members = members;
    Ok(c)
}

/// The configuration file: the settings, then one `[[member]]` table per
/// member.
pub fn config_toml(c: &Config) -> anyhow::Result<String> {
    let mut head = c.clone();
    head.members.clear();
    let mut out = toml::to_string(&head).context("serializing the configuration")?;
    for m in &c.members {
        out.push_str("\n[[member]]\n");
        out.push_str(&toml::to_string(m).context("serializing a member")?);
    }
    Ok(out)
}

/// Route groups the members' prefixes need, plus headroom.
pub fn route_groups(specs: &[Spec]) -> anyhow::Result<u32> {
    let mut t = router_core::routes::RouteTable::new(u32::MAX);
    for (slot, s) in specs.iter().enumerate() {
        t.insert(s.v4.into(), slot as u32 + 1)?;
        t.insert(s.v6.into(), slot as u32 + 1)?;
    }
    Ok(t.groups_used() + 64)
}

/// The tables of a configuration, as the daemon builds them.
pub fn tables(
    c: &Config,
    links: &std::collections::BTreeMap<String, LinkInfo>,
) -> anyhow::Result<Tables> {
    Tables::from_config(c, links, &Default::default()).context("building the tables")
}

/// Measures each member count of `sizes` with `one` (given the first `n`
/// members and the log), logging `what` before each and any failure after:
/// a failed size does not stop the others.
pub fn each_size<T>(
    sizes: &[usize],
    specs: &[Spec],
    what: &str,
    log: &mut dyn FnMut(&str),
    mut one: impl FnMut(&[Spec], &mut dyn FnMut(&str)) -> anyhow::Result<T>,
) -> Vec<anyhow::Result<T>> {
    let mut out = Vec::new();
    for &n in sizes {
        log(&format!("{what}: {n} members"));
        let r = one(&specs[..n], log).with_context(|| format!("{what} at {n} members"));
        if let Err(e) = &r {
            log(&format!("  failed: {e:#}"));
        }
        out.push(r);
    }
    out
}
