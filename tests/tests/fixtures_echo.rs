//! One feature of the fixture table alone: the rows of `tests::fixtures::echo`
//! (pings to the gateway answered on untagged, 802.1Q and QinQ lines)
//! under [`CONFIG`], in a harness of their own; and with `[edge]
//! icmp_rate = 0`, where the fast path answers none and they go to the
//! kernel. They also run with every other feature's rows in `fixtures.rs`.
use collecte::datapath::action::PASS;
use router_common::reason;
use tests::fixtures::{self, CONFIG, echo};

#[test]
fn echo_fixtures() {
    fixtures::run_feature("fixtures-echo", CONFIG, &echo::rows());
}

#[test]
fn no_echo_reply_with_icmp_rate_0() {
    let config = format!("{CONFIG}\n[edge]\nicmp_rate = 0\n");
    let rows: Vec<_> = echo::rows()
        .into_iter()
        .map(|mut f| {
            f.name = format!("icmp_rate 0: {}", f.name);
            let local = if f.reason == reason::REPLY_ECHO {
                reason::PASS_LOCAL
            } else {
                f.reason
            };
            // Link-local pings were the kernel's before: `pass link-local`,
            // nobody counted.
            if f.name.contains("link-local") {
                f.reason = reason::PASS_LINK_LOCAL;
                f.members.clear();
            } else {
                f.reason = local;
            }
            f.action = PASS;
            f.output = f.input.clone();
            f.egress = None;
            f
        })
        .collect();
    fixtures::run_feature("fixtures-echo-off", &config, &rows);
}
