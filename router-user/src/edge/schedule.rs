//! When each attachment gets its next unsolicited router advertisement,
//! and how many go out per second: pure (times are milliseconds on the
//! caller's clock, randomness from a seeded generator), so that a million
//! attachments can be simulated in a test.
//!
//! RFC 4861 6.2.4, per attachment (each is a link of its own to its
//! member): the first advertisement within [`FIRST_DELAY_MS`] of the
//! attachment's first IPv6 member; the first [`INITIAL_ADVERTS`] at
//! intervals of at most [`MAX_INITIAL_INTERVAL_MS`]; then one every
//! random interval in [MinRtrAdvInterval, MaxRtrAdvInterval], with
//! MaxRtrAdvInterval = `[edge] ra_interval` and MinRtrAdvInterval = 0.33 ×
//! that, never under [`MIN_DELAY_BETWEEN_MS`] (MIN_DELAY_BETWEEN_RAS).
//! An interval starts when the advertisement goes out, not when it was
//! due, so a late one never causes a burst.
//!
//! Across attachments, a [`TokenBucket`] bounds the rate: when more are due
//! than it lets out, the earliest due go first and the rest wait, each
//! attachment's turn coming in order (a million new attachments make no
//! burst of a million frames).
use std::{cmp::Reverse, collections::BinaryHeap};

use hashbrown::HashMap;
use router_core::changes::Attachment;

/// MAX_INITIAL_RTR_ADVERTISEMENTS.
pub const INITIAL_ADVERTS: u8 = 3;
/// MAX_INITIAL_RTR_ADVERT_INTERVAL, in ms.
pub const MAX_INITIAL_INTERVAL_MS: u64 = 16_000;
/// MIN_DELAY_BETWEEN_RAS, in ms.
pub const MIN_DELAY_BETWEEN_MS: u64 = 3_000;
/// The first advertisement on a new attachment goes out within this delay
/// (MAX_RA_DELAY_TIME), randomised so that attachments that appear
/// together spread out.
pub const FIRST_DELAY_MS: u64 = 500;

/// The intervals between advertisements on one attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// MinRtrAdvInterval, ms.
    pub min_ms: u64,
    /// MaxRtrAdvInterval, ms.
    pub max_ms: u64,
}

impl Pacing {
    /// RFC 4861's pacing for MaxRtrAdvInterval = `ra_interval` seconds.
    pub fn from_interval(ra_interval: u32) -> Pacing {
        let max_ms = u64::from(ra_interval) * 1000;
        Pacing {
            min_ms: (max_ms * 33 / 100).max(MIN_DELAY_BETWEEN_MS).min(max_ms),
            max_ms,
        }
    }
}

/// A small, fast, seeded generator (SplitMix64): good enough to spread
/// timers, and reproducible in tests.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens, in thousandths.
    milli: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// Full at `now_ms`.
    pub fn new(rate: u64, burst: u64, now_ms: u64) -> TokenBucket {
        let rate = rate.max(1);
        let burst = burst.max(1);
        TokenBucket {
            rate,
            burst,
            milli: burst * 1000,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.milli = (self.milli + elapsed * self.rate).min(self.burst * 1000);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    /// When the next token is there (`now_ms` if it is).
    pub fn next_token_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        if self.milli >= 1000 {
            now_ms
        } else {
            now_ms + (1000 - self.milli).div_ceil(self.rate)
        }
    }
}

/// An attachment as one number: interface slot, S-tag, C-tag.
pub fn pack(a: Attachment) -> u64 {
    u64::from(a.iface) << 32 | u64::from(a.s_vlan) << 16 | u64::from(a.c_vlan)
}

/// The attachment [`pack`] made `key` of.
pub fn unpack(key: u64) -> Attachment {
    Attachment {
        iface: (key >> 32) as u16,
        s_vlan: (key >> 16) as u16,
        c_vlan: key as u16,
    }
}

const KEY_BITS: u64 = (1 << 48) - 1;

/// An attachment in the schedule: the generation of its live timer (the
/// heap may hold older ones, skipped when they come up), and how many of
/// its initial advertisements are still to go.
#[derive(Clone, Copy, Debug)]
struct Entry {
    generation: u16,
    initial_left: u8,
}

/// Every advertised attachment and its next advertisement.
#[derive(Clone, Debug)]
pub struct Schedule {
    pacing: Pacing,
    /// (due ms, packed attachment | generation << 48), earliest first.
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    entries: HashMap<u64, Entry>,
    generation: u16,
    rng: Rng,
}

/// An advertisement that is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub attachment: Attachment,
    /// How late it is, ms.
    pub late_ms: u64,
}

impl Schedule {
    pub fn new(pacing: Pacing, seed: u64) -> Schedule {
        Schedule {
            pacing,
            heap: BinaryHeap::new(),
            entries: HashMap::new(),
            generation: 0,
            rng: Rng::new(seed),
        }
    }

    /// The intervals of the advertisements scheduled from now on.
    pub fn set_pacing(&mut self, pacing: Pacing) {
        self.pacing = pacing;
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    /// Attachments in the schedule.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, a: Attachment) -> bool {
        self.entries.contains_key(&pack(a))
    }

    /// Starts advertising on `a` as on a new attachment (initial
    /// advertisements first); nothing if it is already advertised.
    pub fn add(&mut self, a: Attachment, now_ms: u64) {
        let key = pack(a);
        if !self.entries.contains_key(&key) {
            self.start(key, now_ms);
        }
    }

    fn start(&mut self, key: u64, now_ms: u64) {
        self.generation = self.generation.wrapping_add(1);
        let entry = Entry {
            generation: self.generation,
            initial_left: INITIAL_ADVERTS,
        };
        self.entries.insert(key, entry);
        let due = now_ms + self.rng.between(0, FIRST_DELAY_MS);
        self.push(due, key, entry.generation);
    }

    fn push(&mut self, due: u64, key: u64, generation: u16) {
        self.heap
            .push(Reverse((due, key | u64::from(generation) << 48)));
    }

    /// Stops advertising on `a`.
    pub fn remove(&mut self, a: Attachment) {
        // Its timer stays in the heap, skipped when it comes up.
        self.entries.remove(&pack(a));
    }

    /// Advertises again as on new attachments (initial advertisements
    /// first) on every attachment `which` selects: e.g. those of an
    /// interface that comes back.
    pub fn restart(&mut self, which: impl Fn(Attachment) -> bool, now_ms: u64) -> usize {
        let keys: Vec<u64> = self
            .entries
            .keys()
            .copied()
            .filter(|k| which(unpack(*k)))
            .collect();
        for &k in &keys {
            self.start(k, now_ms);
        }
        keys.len()
    }

    /// Drops the timers of attachments gone or restarted from the top of
    /// the heap.
    fn skip_stale(&mut self) {
        while let Some(Reverse((_, tagged))) = self.heap.peek() {
            let key = tagged & KEY_BITS;
            let generation = (tagged >> 48) as u16;
            match self.entries.get(&key) {
                Some(e) if e.generation == generation => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// When the next advertisement is due, if any.
    pub fn next_due_ms(&mut self) -> Option<u64> {
        self.skip_stale();
        self.heap.peek().map(|Reverse((due, _))| *due)
    }

    /// The earliest advertisement due at `now_ms`, if any: it is taken as
    /// sent, and the attachment's next one scheduled.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Due> {
        self.skip_stale();
        let Reverse((due, tagged)) = *self.heap.peek()?;
        if due > now_ms {
            return None;
        }
        self.heap.pop();
        let key = tagged & KEY_BITS;
        let entry = self.entries.get_mut(&key).expect("not stale");
        let Pacing { min_ms, max_ms } = self.pacing;
        let mut interval = self.rng.between(min_ms, max_ms);
        if entry.initial_left > 1 {
            // One of the initial ones was just sent, and another follows.
            entry.initial_left -= 1;
            interval = interval.clamp(MIN_DELAY_BETWEEN_MS, MAX_INITIAL_INTERVAL_MS);
        } else {
            entry.initial_left = 0;
        }
        let generation = entry.generation;
        self.push(now_ms + interval, key, generation);
        Some(Due {
            attachment: unpack(key),
            late_ms: now_ms - due,
        })
    }

    /// Bytes the schedule holds (its tables' capacity).
    pub fn memory_bytes(&self) -> usize {
        self.heap.capacity() * std::mem::size_of::<Reverse<(u64, u64)>>()
            + self.entries.capacity() * (std::mem::size_of::<(u64, Entry)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn att(iface: u16, s_vlan: u16, c_vlan: u16) -> Attachment {
        Attachment {
            iface,
            s_vlan,
            c_vlan,
        }
    }

    /// Runs the schedule from `from` to `to` ms with a bucket of `rate`
    /// per second, a tick every `tick` ms; returns each send time by
    /// attachment.
    fn simulate(
        s: &mut Schedule,
        bucket: &mut TokenBucket,
        from: u64,
        to: u64,
        tick: u64,
    ) -> BTreeMap<u64, Vec<u64>> {
        let mut sent: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut now = from;
        while now < to {
            while bucket.next_token_ms(now) == now {
                let Some(d) = s.pop_due(now) else { break };
                assert!(bucket.take(now));
                sent.entry(pack(d.attachment)).or_default().push(now);
            }
            now += tick;
        }
        sent
    }

    #[test]
    fn pack_and_unpack_are_inverse() {
        for a in [att(0, 0, 0), att(1, 0, 101), att(255, 4094, 4094)] {
            assert_eq!(unpack(pack(a)), a);
            assert!(pack(a) <= KEY_BITS);
        }
    }

    #[test]
    fn pacing_follows_rfc_4861() {
        assert_eq!(
            Pacing::from_interval(200),
            Pacing {
                min_ms: 66_000,
                max_ms: 200_000
            }
        );
        // MinRtrAdvInterval never under 3 s, nor over the maximum.
        assert_eq!(Pacing::from_interval(4).min_ms, 3_000);
        assert_eq!(Pacing::from_interval(1800).min_ms, 594_000);
    }

    /// One attachment: the first within 0.5 s, three initial ones at most
    /// 16 s (at least 3 s) apart, then intervals in [min, max].
    #[test]
    fn one_attachment_gets_initial_then_paced_adverts() {
        for seed in 0..50 {
            let mut s = Schedule::new(Pacing::from_interval(30), seed);
            let mut b = TokenBucket::new(1000, 100, 0);
            s.add(att(1, 10, 102), 1000);
            let sent = simulate(&mut s, &mut b, 1000, 1000 + 600_000, 10);
            let times = &sent[&pack(att(1, 10, 102))];
            assert!(times[0] - 1000 <= FIRST_DELAY_MS + 10, "{times:?}");
            for w in times.windows(2).take(2) {
                let gap = w[1] - w[0];
                assert!((3_000..=16_010).contains(&gap), "initial gap {gap}");
            }
            for w in times.windows(2).skip(2) {
                let gap = w[1] - w[0];
                assert!((9_900..=30_010).contains(&gap), "gap {gap} (seed {seed})");
            }
            // 600 s at a mean of ~20 s, after the initial ones.
            assert!((20..=60).contains(&times.len()), "{} adverts", times.len());
        }
    }

    #[test]
    fn removed_attachments_stop_and_readded_ones_start_again() {
        let mut s = Schedule::new(Pacing::from_interval(10), 7);
        let mut b = TokenBucket::new(1000, 100, 0);
        let a = att(2, 0, 5);
        s.add(a, 0);
        s.add(a, 0);
        assert_eq!(s.len(), 1);
        let sent = simulate(&mut s, &mut b, 0, 30_000, 10);
        assert!(sent[&pack(a)].len() >= 3);
        s.remove(a);
        assert!(s.is_empty());
        let sent = simulate(&mut s, &mut b, 30_000, 90_000, 10);
        assert!(sent.is_empty(), "{sent:?}");
        assert_eq!(s.next_due_ms(), None, "stale timers are dropped");
        // Back: a new attachment again, its first within 0.5 s, and one
        // timer only (not one more per removal).
        s.add(a, 90_000);
        let sent = simulate(&mut s, &mut b, 90_000, 91_000, 10);
        assert_eq!(sent[&pack(a)].len(), 1);
        s.remove(a);
        s.add(a, 91_000);
        let sent = simulate(&mut s, &mut b, 91_000, 200_000, 10);
        let times = &sent[&pack(a)];
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= MIN_DELAY_BETWEEN_MS, "{times:?}");
        }
    }

    #[test]
    fn restart_gives_an_interface_its_initial_adverts_again() {
        let mut s = Schedule::new(Pacing::from_interval(1800), 3);
        let mut b = TokenBucket::new(1000, 100, 0);
        s.add(att(1, 0, 1), 0);
        s.add(att(2, 0, 1), 0);
        simulate(&mut s, &mut b, 0, 100_000, 100);
        // Both are past their initial ones: nothing for ~10 minutes.
        assert_eq!(s.restart(|a| a.iface == 2, 100_000), 1);
        let sent = simulate(&mut s, &mut b, 100_000, 101_000, 10);
        assert_eq!(
            sent.keys().copied().collect::<Vec<_>>(),
            [pack(att(2, 0, 1))]
        );
    }

    #[test]
    fn the_bucket_bounds_the_rate_and_refills() {
        let mut b = TokenBucket::new(100, 10, 0);
        let burst = (0..50).filter(|_| b.take(0)).count();
        assert_eq!(burst, 10);
        assert_eq!(b.next_token_ms(0), 10);
        assert!(!b.take(5));
        assert!(b.take(10));
        // A second later: 100 more, capped at the burst.
        assert_eq!((0..500).filter(|_| b.take(2_000)).count(), 10);
    }

    /// 100,000 new attachments at once: no burst beyond the bucket, each
    /// attachment's first advertisement in due order, and the schedule's
    /// cost in memory and time (printed: `cargo test -- --nocapture`).
    #[test]
    fn a_hundred_thousand_attachments_spread_out() {
        const N: u32 = 100_000;
        const RATE: u64 = 2_000;
        let started = std::time::Instant::now();
        let mut s = Schedule::new(Pacing::from_interval(200), 1);
        let mut b = TokenBucket::new(RATE, 200, 0);
        for i in 0..N {
            s.add(
                att(
                    1 + (i >> 24) as u16,
                    (i >> 12) as u16 & 0xfff,
                    i as u16 & 0xfff,
                ),
                0,
            );
        }
        let added = started.elapsed();
        let memory = s.memory_bytes();
        // 400 s of schedule, a tick every 10 ms.
        let t = std::time::Instant::now();
        let mut per_second = vec![0u64; 400];
        let mut sent = 0u64;
        let mut now = 0;
        while now < 400_000 {
            while b.next_token_ms(now) == now {
                let Some(_) = s.pop_due(now) else { break };
                assert!(b.take(now));
                per_second[(now / 1000) as usize] += 1;
                sent += 1;
            }
            now += 10;
        }
        let ran = t.elapsed();
        let peak = *per_second.iter().max().unwrap();
        assert!(
            peak <= RATE + 200,
            "at most rate + burst in a second: {peak}"
        );
        // The first round (and the initial ones) keep the bucket busy,
        // then the schedule settles at N / mean interval (~752/s).
        assert!(sent >= 3 * u64::from(N), "{sent} adverts");
        assert!(memory < 8 << 20, "{memory} bytes");
        eprintln!(
            "schedule of {N} attachments: {:.1} MiB, added in {:?}; 400 s simulated in {:?} ({sent} adverts, {:.0} ns each); busiest second {peak}",
            memory as f64 / (1 << 20) as f64,
            added,
            ran,
            ran.as_nanos() as f64 / sent as f64,
        );
    }
}
