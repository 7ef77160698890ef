//! One feature of the fixture table alone: the rows of
//! `tests::fixtures::icmp_errors` (time exceeded, fragmentation needed and
//! packet too big, built in XDP, both directions, every kind of line)
//! under [`CONFIG`], in a harness of their own; then with `[edge]
//! icmp_rate = 0` (none sent: the kernel's, as before) and at the rate's
//! limit (dropped, `rate-limited`). They also run with every other
//! feature's rows in `fixtures.rs`.
use collecte::datapath::action::{DROP, PASS, TX};
use router_common::reason;
use tests::fixtures::{self, CONFIG, icmp_errors};
use tests::harness::Harness;

#[test]
fn icmp_error_fixtures() {
    fixtures::run_feature("fixtures-icmp", CONFIG, &icmp_errors::rows());
}

/// The reason a packet had before the fast path sent errors.
fn before(r: u32) -> u32 {
    match r {
        reason::REPLY_TIME_EXCEEDED => reason::PASS_TTL_EXCEEDED,
        reason::REPLY_FRAG_NEEDED | reason::REPLY_PACKET_TOO_BIG => reason::PASS_TOO_BIG,
        r => r,
    }
}

#[test]
fn no_icmp_error_with_icmp_rate_0() {
    let config = format!("{CONFIG}\n[edge]\nicmp_rate = 0\n");
    let rows: Vec<_> = icmp_errors::rows()
        .into_iter()
        .filter(|f| f.action == TX)
        .map(|mut f| {
            f.name = format!("icmp_rate 0: {}", f.name);
            f.reason = before(f.reason);
            f.action = PASS;
            f.output = f.input.clone();
            f.egress = None;
            f
        })
        .collect();
    fixtures::run_feature("fixtures-icmp-off", &config, &rows);
}

/// Pins the calling thread to CPU 0: the rate is per CPU.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with one CPU set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// With `icmp_rate = 1` and `icmp_burst = 2`, two errors go at once, the
/// third is dropped (`rate-limited`), on the same CPU. (The forwarding
/// instance only: the tracer's spends no rate, and would answer.)
#[test]
fn icmp_errors_over_the_rate_are_dropped() {
    pin_to_cpu0();
    let config = format!("{CONFIG}\n[edge]\nicmp_rate = 1\nicmp_burst = 2\n");
    let mut h = Harness::new("fixtures-icmp-rate", &config);
    let row = icmp_errors::rows()
        .into_iter()
        .find(|f| f.action == TX)
        .expect("an error row");
    for n in 1..=2 {
        let (action, frame) = h.run(row.ingress, &row.input);
        assert_eq!(
            (action, &frame),
            (TX, &row.output),
            "error {n} of the burst"
        );
    }
    let limited = h.counter(row.ingress, reason::DROP_RATE_LIMITED);
    let (action, frame) = h.run(row.ingress, &row.input);
    assert_eq!(
        (action, &frame),
        (DROP, &row.input),
        "over the rate: dropped as it came"
    );
    assert_eq!(
        h.counter(row.ingress, reason::DROP_RATE_LIMITED),
        limited + 1,
        "counted as rate-limited"
    );
    assert_eq!(h.counter(row.ingress, row.reason), 2, "{}", row.name);
}
