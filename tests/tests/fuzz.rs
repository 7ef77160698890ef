//! The program against mutated frames: 100,000 of them, made from every
//! fixture row's input (all features, every kind of line) by flipping
//! bytes, cutting, growing, and setting the fields the program decides on
//! (tags, EtherType, lengths, TTL) to the values at their edges, each run
//! through the forwarding instance with `BPF_PROG_TEST_RUN`. Whatever the
//! frame, the program:
//! - never returns XDP_ABORTED, nor anything but drop, pass, tx and
//!   redirect;
//! - hands the kernel the frame as it came (`pass` changes nothing);
//! - never forwards a packet whose TTL or hop limit was 0 or 1;
//! - transmits or redirects only frames whose IP lengths match the frame
//!   and whose IPv4 header checksum is right (when the input's was), and
//!   whose ICMP or ICMPv6 checksum is right when it built the message
//!   (errors, Neighbor Discovery; an echo reply's is the request's,
//!   updated: right when the request's was).
//!
//! The generator is a fixed-seed xorshift: a failure names the iteration,
//! and the same run reproduces it.
use collecte::datapath::action::{ABORTED, DROP, PASS, REDIRECT, TX};
use tests::{
    fixtures::{CONFIG, table},
    frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6},
    harness::Harness,
    wire::{check_frame, check_lengths, internet_checksum, l3_of},
};

const FRAMES: usize = 100_000;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Values at the edges of what the program checks.
const EDGE_BYTES: [u8; 8] = [0, 1, 2, 0x45, 0x60, 0x7f, 0x80, 0xff];
const ETHERTYPES: [u16; 6] = [
    ETH_P_IP,
    ETH_P_IPV6,
    ETH_P_ARP,
    ETH_P_8021Q,
    ETH_P_8021AD,
    0x9100,
];

/// Rewrites the IPv4 header checksum of `f`, if it carries IPv4.
fn fix_ipv4_checksum(f: &mut [u8]) {
    let Some((l3, ETH_P_IP)) = l3_of(f) else {
        return;
    };
    let Some(&vihl) = f.get(l3) else { return };
    let ihl = (vihl & 0x0f) as usize * 4;
    if ihl < 20 || f.len() < l3 + ihl {
        return;
    }
    f[l3 + 10] = 0;
    f[l3 + 11] = 0;
    let sum = internet_checksum(&f[l3..l3 + ihl]).to_be_bytes();
    f[l3 + 10] = sum[0];
    f[l3 + 11] = sum[1];
}

/// Whether the IPv4 header of `f` has a right checksum (true if not IPv4).
fn ipv4_checksum_ok(f: &[u8]) -> bool {
    match l3_of(f) {
        Some((l3, ETH_P_IP)) if f.len() >= l3 + 20 => {
            let ihl = ((f[l3] & 0x0f) as usize * 4).max(20);
            f.len() < l3 + ihl || internet_checksum(&f[l3..l3 + ihl]) == 0
        }
        _ => true,
    }
}

/// The TTL or hop limit of the IP packet in `f`, if any.
fn ttl(f: &[u8]) -> Option<u8> {
    match l3_of(f)? {
        (l3, ETH_P_IP) => f.get(l3 + 8).copied(),
        (l3, ETH_P_IPV6) => f.get(l3 + 7).copied(),
        _ => None,
    }
}

/// The ICMP (IPv4) or ICMPv6 type of an answer, if it is one.
fn icmp_type(f: &[u8]) -> Option<u8> {
    match l3_of(f)? {
        (l3, ETH_P_IP) if f.get(l3 + 9) == Some(&1) => {
            f.get(l3 + (f[l3] & 0x0f) as usize * 4).copied()
        }
        (l3, ETH_P_IPV6) if f.get(l3 + 6) == Some(&58) => f.get(l3 + 40).copied(),
        _ => None,
    }
}

/// One to three mutations of `seed`.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut f = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let l3 = l3_of(&f).map_or(14, |(l3, _)| l3);
        match rng.below(10) {
            0..=2 => {
                // Flip bytes in the headers.
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(f.len().min(l3 + 64));
                    f[at] ^= 1 << rng.below(8);
                }
            }
            3 => {
                // An edge value anywhere in the first 96 bytes.
                let at = rng.below(f.len().min(96));
                f[at] = EDGE_BYTES[rng.below(EDGE_BYTES.len())];
            }
            4 => {
                // TTL / hop limit at its edges.
                let at = l3
                    + if f.get(l3).is_some_and(|b| b >> 4 == 6) {
                        7
                    } else {
                        8
                    };
                if at < f.len() {
                    f[at] = [0, 1, 2, 255][rng.below(4)];
                }
            }
            5 => {
                // Cut.
                let len = 14 + rng.below(f.len() - 13);
                f.truncate(len);
            }
            6 => {
                // Grow, with random bytes.
                for _ in 0..rng.below(64) {
                    f.push(rng.byte());
                }
            }
            7 => {
                // Another EtherType or tag where one is.
                let at = [12, 16, 20][rng.below(3)];
                if at + 2 <= f.len() {
                    let t = ETHERTYPES[rng.below(ETHERTYPES.len())].to_be_bytes();
                    f[at..at + 2].copy_from_slice(&t);
                }
            }
            8 => {
                // An IP length field: IPv4 total length, IPv6 payload
                // length, at its edges or random.
                let at = l3
                    + if f.get(l3).is_some_and(|b| b >> 4 == 6) {
                        4
                    } else {
                        2
                    };
                if at + 2 <= f.len() {
                    let v = match rng.below(3) {
                        0 => 0u16,
                        1 => (f.len() - l3) as u16,
                        _ => rng.next() as u16,
                    };
                    f[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
            _ => {
                // Random bytes after the headers (ICMP, ND options, ARP).
                let from = (l3 + 20).min(f.len());
                for b in f.iter_mut().skip(from).take(48) {
                    if rng.below(4) == 0 {
                        *b = rng.byte();
                    }
                }
            }
        }
    }
    if rng.below(2) == 0 {
        fix_ipv4_checksum(&mut f);
    }
    f
}

#[test]
fn mutated_frames_never_abort_nor_forward_garbage() {
    // A rate that never limits: every error and reply is built.
    let config = format!("{CONFIG}\n[edge]\nicmp_rate = 1000000\nicmp_burst = 1000000\n");
    let mut h = Harness::new("fuzz", &config);
    let seeds: Vec<(&'static str, Vec<u8>)> =
        table().into_iter().map(|f| (f.ingress, f.input)).collect();
    assert!(seeds.len() > 100, "{} seeds", seeds.len());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = std::collections::BTreeMap::<u32, usize>::new();
    let mut failures = Vec::new();
    for i in 0..FRAMES {
        let (ingress, seed) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        let (action, out) = h.run(ingress, &input);
        *seen.entry(action).or_default() += 1;
        let mut fail = |what: String| {
            if failures.len() < 20 {
                failures.push(format!(
                    "frame {i} on {ingress}: {what}\n  in  {}\n  out {}",
                    tests::harness::hex(&input),
                    tests::harness::hex(&out)
                ));
            }
        };
        match action {
            ABORTED => fail("XDP_ABORTED".into()),
            PASS if out != input => fail("passed to the kernel changed".into()),
            PASS | DROP => {}
            REDIRECT => {
                if ttl(&input).is_some_and(|t| t <= 1) {
                    fail(format!("forwarded with TTL {:?}", ttl(&input)));
                }
                if let Err(e) = check_lengths(&out, true) {
                    fail(format!("forwarded inconsistent: {e}"));
                }
                if ipv4_checksum_ok(&input) && !ipv4_checksum_ok(&out) {
                    fail("forwarded with a wrong IPv4 checksum".into());
                }
            }
            TX => {
                let echo = matches!(icmp_type(&out), Some(0) | Some(129));
                if let Err(e) = check_frame(&out, !echo, true) {
                    fail(format!("answer inconsistent: {e}"));
                }
                if echo && l3_of(&input) == l3_of(&out) {
                    let ok_in = check_frame(&input, true, true).is_ok();
                    if ok_in && check_frame(&out, true, true).is_err() {
                        fail("echo reply checksum broken".into());
                    }
                }
            }
            other => fail(format!("action {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures (first 20):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The mutations reach every outcome.
    for a in [DROP, PASS, TX, REDIRECT] {
        assert!(seen.get(&a).copied().unwrap_or(0) > 100, "{seen:?}");
    }
}
