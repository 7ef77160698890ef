//! Prometheus metrics: the text format of a [`Snapshot`] of the datapath's
//! counters, built with the `prometheus` crate's model and encoder.
//!
//! Counters are read from the kernel's maps at scrape time and summed over
//! CPUs; reading them never blocks forwarding. A million members make five
//! million samples, so the text is produced in pieces of [`CHUNK`] members
//! ([`render_chunks`]) that the HTTP server streams out: the model and the
//! text of one piece exist at a time, never those of the whole scrape.
use prometheus::{
    Encoder as _, TextEncoder,
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use router_common::{MemberCounters, reason};

/// Everything a scrape reports.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Member ids, back to back (a million members take a few megabytes,
    /// not a string each).
    ids: String,
    /// Where each member's id ends in `ids`.
    ends: Vec<u32>,
    /// Per member, in the same order: its counters.
    counters: Vec<MemberCounters>,
    /// Per interface: name and packet counters indexed by [`reason`].
    pub interfaces: Vec<(String, [u64; reason::COUNT as usize])>,
    /// The member routes, when `[routes]` exports them.
    pub routes: Option<RoutesGauges>,
    /// PPPoE sessions and RADIUS requests, when `[pppoe]` is configured.
    pub pppoe: Option<crate::sessions::PppoeGauges>,
}

/// The member routes' gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoutesGauges {
    /// The kernel table they are in.
    pub table: u32,
    /// Our routes in the table.
    pub exported: u64,
    pub drained: bool,
}

impl Snapshot {
    /// Room for `members` members.
    pub fn with_capacity(members: usize) -> Snapshot {
        Snapshot {
            ids: String::with_capacity(members * 8),
            ends: Vec::with_capacity(members),
            counters: Vec::with_capacity(members),
            interfaces: Vec::new(),
            routes: None,
            pppoe: None,
        }
    }

    /// Sets the members: their ids, and their counters in the same order.
    pub fn set_members<'a>(
        &mut self,
        ids: impl Iterator<Item = &'a str>,
        counters: Vec<MemberCounters>,
    ) {
        self.ids.clear();
        self.ends.clear();
        for id in ids {
            self.ids.push_str(id);
            self.ends.push(self.ids.len() as u32);
        }
        assert_eq!(self.ends.len(), counters.len(), "one id per member");
        self.counters = counters;
    }

    /// Adds a member's counters.
    pub fn push_member(&mut self, id: &str, counters: MemberCounters) {
        self.ids.push_str(id);
        self.ends.push(self.ids.len() as u32);
        self.counters.push(counters);
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.counters.len()
    }

    /// Member `i`: id and counters.
    fn member(&self, i: usize) -> (&str, &MemberCounters) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (&self.ids[start..self.ends[i] as usize], &self.counters[i])
    }

    /// Members `range`, in order.
    pub fn members(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (&str, &MemberCounters)> + '_ {
        range.map(|i| self.member(i))
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn counter(labels: Vec<LabelPair>, value: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value as f64);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_gauge(g);
    m
}

/// Members per piece of the streamed text.
pub const CHUNK: usize = 4096;

/// The per-member families: name, help, and the counter they report.
type MemberFamily = (&'static str, &'static str, fn(&MemberCounters) -> u64);
const MEMBER_FAMILIES: [MemberFamily; 5] = [
    (
        "collecte_member_receive_packets_total",
        "Packets received from the member (upload) that passed the source check.",
        |c| c.rx_packets,
    ),
    (
        "collecte_member_receive_bytes_total",
        "IP bytes received from the member (upload).",
        |c| c.rx_bytes,
    ),
    (
        "collecte_member_transmit_packets_total",
        "Packets forwarded to the member (download).",
        |c| c.tx_packets,
    ),
    (
        "collecte_member_transmit_bytes_total",
        "IP bytes forwarded to the member (download).",
        |c| c.tx_bytes,
    ),
    (
        "collecte_member_spoofed_packets_total",
        "Packets dropped from the member's attachment because their source is not the member's.",
        |c| c.spoofed_packets,
    ),
];

/// One per-member family over `members`.
fn member_family<'a>(
    f: &MemberFamily,
    members: impl Iterator<Item = (&'a str, &'a MemberCounters)>,
) -> MetricFamily {
    let (name, help, get) = f;
    let metrics = members
        .map(|(id, c)| counter(vec![label("member", id)], get(c)))
        .collect();
    family(name, help, MetricType::COUNTER, metrics)
}

/// The families that do not grow with the members.
fn fixed_families(s: &Snapshot) -> Vec<MetricFamily> {
    let mut datapath = Vec::new();
    for (iface, counts) in &s.interfaces {
        for (r, value) in counts.iter().enumerate() {
            let (action, why) = reason::NAMES[r];
            datapath.push(counter(
                vec![
                    label("action", action),
                    label("interface", iface),
                    label("reason", why),
                ],
                *value,
            ));
        }
    }
    let routes = |name: &str, help: &str, value: fn(&RoutesGauges) -> f64| {
        let metrics = s
            .routes
            .iter()
            .map(|r| gauge(vec![label("table", &r.table.to_string())], value(r)));
        family(name, help, MetricType::GAUGE, metrics.collect())
    };
    let mut families = vec![
        family(
            "collecte_datapath_packets_total",
            "Packets seen by the XDP program, by ingress interface, action and reason.",
            MetricType::COUNTER,
            datapath,
        ),
        family(
            "collecte_members",
            "Members in the datapath.",
            MetricType::GAUGE,
            vec![gauge(vec![], s.member_count() as f64)],
        ),
        routes(
            "collecte_routes_exported",
            "Member routes in the kernel routing table of [routes] (0 while drained or detached).",
            |r| r.exported as f64,
        ),
        routes(
            "collecte_routes_drained",
            "1 while the router is drained (every member route withdrawn), else 0.",
            |r| f64::from(u8::from(r.drained)),
        ),
        family(
            "collecte_build_info",
            "The running collecte's version.",
            MetricType::GAUGE,
            vec![gauge(
                vec![label("version", env!("CARGO_PKG_VERSION"))],
                1.0,
            )],
        ),
    ];
    if let Some(p) = &s.pppoe {
        families.extend(pppoe_families(p));
    }
    families
}

/// The PPPoE and RADIUS families.
fn pppoe_families(p: &crate::sessions::PppoeGauges) -> Vec<MetricFamily> {
    let sessions = p
        .by_state
        .iter()
        .map(|(state, n)| gauge(vec![label("state", state)], *n as f64))
        .collect();
    let radius = p
        .radius
        .iter()
        .map(|(kind, result, n)| counter(vec![label("kind", kind), label("result", result)], *n))
        .collect();
    let e = &p.engine;
    let discovery = [
        ("padi", e.padi),
        ("pado", e.pado),
        ("padr", e.padr),
        ("pads", e.pads),
        ("padt_received", e.padt_received),
        ("padt_sent", e.padt_sent),
    ]
    .into_iter()
    .map(|(k, v)| counter(vec![label("packet", k)], v))
    .collect();
    let other = [
        ("malformed", e.malformed),
        ("ignored", e.ignored),
        ("unknown_session", e.unknown_session),
        ("echo_requests_sent", e.echo_requests_sent),
        ("echo_replies_received", e.echo_replies_received),
        ("protocol_rejects", e.protocol_rejects),
        ("dhcpv6_replies", e.dhcpv6_replies),
    ]
    .into_iter()
    .map(|(k, v)| counter(vec![label("event", k)], v))
    .collect();
    vec![
        family(
            "collecte_pppoe_sessions",
            "PPPoE sessions by state (lcp, auth, network, up).",
            MetricType::GAUGE,
            sessions,
        ),
        family(
            "collecte_radius_requests_total",
            "RADIUS requests by kind (auth, acct) and result (accept, reject, timeout, error).",
            MetricType::COUNTER,
            radius,
        ),
        family(
            "collecte_pppoe_discovery_packets_total",
            "PPPoE discovery packets received (padi, padr, padt_received) and sent (pado, pads, padt_sent).",
            MetricType::COUNTER,
            discovery,
        ),
        family(
            "collecte_pppoe_events_total",
            "PPPoE frames the daemon's engine ignored or answered, by event.",
            MetricType::COUNTER,
            other,
        ),
    ]
}

/// The text of `families`, leaving out those without a sample (no member,
/// no interface), as the Prometheus client libraries do: the encoder
/// refuses a family without a metric. An exposition without any sample
/// of a family is valid (`promtool check metrics` accepts it), and says
/// what the empty family would: there is nothing of that kind.
fn encode(families: &[MetricFamily]) -> Vec<u8> {
    let mut buf = Vec::new();
    for f in families.iter().filter(|f| !f.get_metric().is_empty()) {
        TextEncoder::new()
            .encode(std::slice::from_ref(f), &mut buf)
            .expect("encoding a family with metrics into memory cannot fail");
    }
    buf
}

/// The Prometheus text format of a snapshot, in pieces: each per-member
/// family [`CHUNK`] members at a time (its `# HELP` and `# TYPE` lines only
/// before the first piece), then the other families. The pieces joined are
/// exactly what the encoder writes for the whole model. A family without a
/// sample is left out: with no member, the per-member families' pieces
/// are empty.
pub fn render_chunks(s: Snapshot) -> impl Iterator<Item = Vec<u8>> + Send {
    let s = std::sync::Arc::new(s);
    let pieces = s.member_count().div_ceil(CHUNK).max(1);
    let members = {
        let s = s.clone();
        MEMBER_FAMILIES.iter().flat_map(move |f| {
            let s = s.clone();
            (0..pieces).map(move |k| {
                let end = ((k + 1) * CHUNK).min(s.member_count());
                let text = encode(&[member_family(f, s.members(k * CHUNK..end))]);
                if k == 0 {
                    text
                } else {
                    // The encoder starts every family with its two comment
                    // lines; later pieces continue the first one's family.
                    text.split_inclusive(|&b| b == b'\n')
                        .skip_while(|line| line.starts_with(b"# "))
                        .flatten()
                        .copied()
                        .collect()
                }
            })
        })
    };
    members.chain(std::iter::once_with(move || encode(&fixed_families(&s))))
}

/// The content type of [`render_chunks`]' output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces joined.
    fn render(s: &Snapshot) -> String {
        String::from_utf8(render_chunks(s.clone()).flatten().collect()).unwrap()
    }

    /// The encoder's text for the whole model at once.
    fn whole(s: &Snapshot) -> String {
        let mut families: Vec<MetricFamily> = MEMBER_FAMILIES
            .iter()
            .map(|f| member_family(f, s.members(0..s.member_count())))
            .collect();
        families.extend(fixed_families(s));
        String::from_utf8(encode(&families)).unwrap()
    }

    #[test]
    fn renders_every_metric_with_values() {
        let mut counts = [0u64; reason::COUNT as usize];
        counts[reason::DROP_SPOOFED as usize] = 7;
        let mut s = Snapshot::default();
        s.push_member(
            "alice",
            MemberCounters {
                rx_packets: 3,
                rx_bytes: 300,
                tx_packets: 4,
                tx_bytes: 400,
                spoofed_packets: 5,
            },
        );
        s.interfaces = vec![("acc0".into(), counts)];
        let text = render(&s);
        for line in [
            "collecte_member_receive_packets_total{member=\"alice\"} 3",
            "collecte_member_receive_bytes_total{member=\"alice\"} 300",
            "collecte_member_transmit_packets_total{member=\"alice\"} 4",
            "collecte_member_transmit_bytes_total{member=\"alice\"} 400",
            "collecte_member_spoofed_packets_total{member=\"alice\"} 5",
            "collecte_datapath_packets_total{action=\"drop\",interface=\"acc0\",reason=\"spoofed\"} 7",
            "collecte_datapath_packets_total{action=\"forward\",interface=\"acc0\",reason=\"upstream\"} 0",
            "collecte_members 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("collecte_build_info{version=\""));
        assert!(text.contains("# TYPE collecte_members gauge"));
    }

    /// No member and no interface: a daemon started with an empty
    /// configuration. The families without samples are left out, the
    /// others are there, and the pieces still join into the whole.
    #[test]
    fn renders_an_empty_member_set() {
        let s = Snapshot::default();
        let pieces: Vec<Vec<u8>> = render_chunks(s.clone()).collect();
        assert_eq!(pieces.len(), 5 + 1, "one (empty) piece per member family");
        for (piece, f) in pieces.iter().zip(&MEMBER_FAMILIES) {
            assert!(
                piece.is_empty(),
                "{}: {:?}",
                f.0,
                String::from_utf8_lossy(piece)
            );
        }
        let text = String::from_utf8(pieces.concat()).unwrap();
        assert_eq!(text, whole(&s));
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            text,
            format!(
                "# HELP collecte_members Members in the datapath.\n\
                 # TYPE collecte_members gauge\n\
                 collecte_members 0\n\
                 # HELP collecte_build_info The running collecte's version.\n\
                 # TYPE collecte_build_info gauge\n\
                 collecte_build_info{{version=\"{version}\"}} 1\n"
            )
        );

        // Interfaces without traffic, still no member: every (interface,
        // action, reason) sample at 0.
        let s = Snapshot {
            interfaces: vec![("acc0".into(), [0; reason::COUNT as usize])],
            ..Snapshot::default()
        };
        let text = render(&s);
        assert_eq!(text, whole(&s));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("collecte_datapath_packets_total{"))
                .count(),
            reason::COUNT as usize
        );
        assert!(
            text.lines().any(|l| l
                == "collecte_datapath_packets_total{action=\"drop\",interface=\"acc0\",reason=\"malformed\"} 0"),
            "{text}"
        );
        assert!(!text.contains("collecte_member_"), "{text}");
        assert!(text.lines().any(|l| l == "collecte_members 0"), "{text}");
    }

    /// With `[routes]`: the gauges, labelled with the table; without it,
    /// nothing of them.
    #[test]
    fn renders_the_routes_gauges_when_routes_are_exported() {
        let mut s = Snapshot::default();
        assert!(!render(&s).contains("collecte_routes"));
        s.routes = Some(RoutesGauges {
            table: 100,
            exported: 6,
            drained: false,
        });
        let text = render(&s);
        assert_eq!(text, whole(&s));
        for line in [
            "# TYPE collecte_routes_exported gauge",
            "collecte_routes_exported{table=\"100\"} 6",
            "collecte_routes_drained{table=\"100\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        s.routes = Some(RoutesGauges {
            table: 100,
            exported: 0,
            drained: true,
        });
        assert!(
            render(&s)
                .lines()
                .any(|l| l == "collecte_routes_drained{table=\"100\"} 1")
        );
    }

    #[test]
    fn pieces_join_into_the_whole_encoding() {
        let mut s = Snapshot::default();
        for i in 0..2 * CHUNK + 5 {
            let n = i as u64;
            s.push_member(
                &format!("m{i}"),
                MemberCounters {
                    rx_packets: n,
                    rx_bytes: 2 * n,
                    tx_packets: 3 * n,
                    tx_bytes: 4 * n,
                    spoofed_packets: 5 * n,
                },
            );
        }
        s.interfaces = vec![("acc0".into(), [1; reason::COUNT as usize])];
        let pieces: Vec<Vec<u8>> = render_chunks(s.clone()).collect();
        assert_eq!(pieces.len(), 5 * 3 + 1, "three pieces per member family");
        assert_eq!(String::from_utf8(pieces.concat()).unwrap(), whole(&s));
        let text = render(&s);
        assert_eq!(
            text.matches("# TYPE collecte_member_transmit_bytes_total counter")
                .count(),
            1
        );
        assert!(
            text.lines()
                .any(|l| l == "collecte_member_spoofed_packets_total{member=\"m8196\"} 40980")
        );
    }
}
