//! Prometheus metrics: the text format of a [`Snapshot`] of the datapath's
//! counters, built with the `prometheus` crate's model and encoder.
//!
//! Counters are read from the kernel's per-CPU maps at scrape time and summed
//! over CPUs; reading them never blocks forwarding.
use prometheus::{
    Encoder as _, TextEncoder,
    proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType},
};
use router_common::{MemberCounters, reason};

/// Everything a scrape reports.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Per member: id and counters.
    pub members: Vec<(String, MemberCounters)>,
    /// Per interface: name and packet counters indexed by [`reason`].
    pub interfaces: Vec<(String, [u64; reason::COUNT as usize])>,
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

/// The metric families of a snapshot.
pub fn families(s: &Snapshot) -> Vec<MetricFamily> {
    let per_member = |name: &str, help: &str, get: fn(&MemberCounters) -> u64| {
        let metrics = s
            .members
            .iter()
            .map(|(id, c)| counter(vec![label("member", id)], get(c)))
            .collect();
        family(name, help, MetricType::COUNTER, metrics)
    };
    let mut out = vec![
        per_member(
            "collecte_member_receive_packets_total",
            "Packets received from the member (upload) that passed the source check.",
            |c| c.rx_packets,
        ),
        per_member(
            "collecte_member_receive_bytes_total",
            "IP bytes received from the member (upload).",
            |c| c.rx_bytes,
        ),
        per_member(
            "collecte_member_transmit_packets_total",
            "Packets forwarded to the member (download).",
            |c| c.tx_packets,
        ),
        per_member(
            "collecte_member_transmit_bytes_total",
            "IP bytes forwarded to the member (download).",
            |c| c.tx_bytes,
        ),
        per_member(
            "collecte_member_spoofed_packets_total",
            "Packets dropped from the member's attachment because their source is not the member's.",
            |c| c.spoofed_packets,
        ),
    ];
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
    out.push(family(
        "collecte_datapath_packets_total",
        "Packets seen by the XDP program, by ingress interface, action and reason.",
        MetricType::COUNTER,
        datapath,
    ));
    out.push(family(
        "collecte_members",
        "Members in the datapath.",
        MetricType::GAUGE,
        vec![gauge(vec![], s.members.len() as f64)],
    ));
    out.push(family(
        "collecte_build_info",
        "The running collecte's version.",
        MetricType::GAUGE,
        vec![gauge(
            vec![label("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        )],
    ));
    out
}

/// The Prometheus text format of a snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&families(s), &mut buf)
        .expect("encoding counters into memory cannot fail");
    String::from_utf8(buf).expect("the text format is UTF-8")
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_values() {
        let mut counts = [0u64; reason::COUNT as usize];
        counts[reason::DROP_SPOOFED as usize] = 7;
        let s = Snapshot {
            members: vec![(
                "alice".into(),
                MemberCounters {
                    rx_packets: 3,
                    rx_bytes: 300,
                    tx_packets: 4,
                    tx_bytes: 400,
                    spoofed_packets: 5,
                },
            )],
            interfaces: vec![("acc0".into(), counts)],
        };
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
}
