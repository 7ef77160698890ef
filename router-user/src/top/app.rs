//! `collecte top`'s state, apart from the terminal: the last scrapes, the
//! rates between them, the sort, the scroll, the pause, and what each key
//! does. Pure, so that the keys and the order are unit-tested.
use std::time::{Duration, Instant, SystemTime};

use super::scrape::{MemberRates, Rates, Snapshot, rates};

/// The column the members are sorted by (busiest first, or by id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Download + upload, bits per second.
    Total,
    DownBits,
    DownPackets,
    UpBits,
    UpPackets,
    Spoofed,
    /// Member id, alphabetical.
    Id,
}

impl SortKey {
    /// The order `s` goes through.
    pub const CYCLE: [SortKey; 7] = [
        SortKey::Total,
        SortKey::DownBits,
        SortKey::DownPackets,
        SortKey::UpBits,
        SortKey::UpPackets,
        SortKey::Spoofed,
        SortKey::Id,
    ];

    /// The next key in [`SortKey::CYCLE`].
    pub fn next(self) -> SortKey {
        let i = Self::CYCLE.iter().position(|k| *k == self).unwrap_or(0);
        Self::CYCLE[(i + 1) % Self::CYCLE.len()]
    }

    /// How the header names it.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Total => "total bit/s",
            SortKey::DownBits => "download bit/s",
            SortKey::DownPackets => "download pkt/s",
            SortKey::UpBits => "upload bit/s",
            SortKey::UpPackets => "upload pkt/s",
            SortKey::Spoofed => "spoofed pkt/s",
            SortKey::Id => "member",
        }
    }

    fn value(self, m: &MemberRates) -> f64 {
        match self {
            SortKey::Total | SortKey::Id => m.total_bps(),
            SortKey::DownBits => m.down_bps,
            SortKey::DownPackets => m.down_pps,
            SortKey::UpBits => m.up_bps,
            SortKey::UpPackets => m.up_pps,
            SortKey::Spoofed => m.spoofed_pps,
        }
    }
}

/// Sorts members by `key`: busiest first (ties by id), or by id.
pub fn sort_members(members: &mut [MemberRates], key: SortKey) {
    if key == SortKey::Id {
        members.sort_by(|a, b| a.id.cmp(&b.id));
    } else {
        members.sort_by(|a, b| {
            key.value(b)
                .total_cmp(&key.value(a))
                .then_with(|| a.id.cmp(&b.id))
        });
    }
}

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Sort,
    Pause,
}

/// Maps a typed character to its [`Key`].
pub fn key_for_char(c: char) -> Option<Key> {
    Some(match c {
        'q' | 'Q' => Key::Quit,
        'k' => Key::Up,
        'j' => Key::Down,
        'g' => Key::Home,
        'G' => Key::End,
        's' => Key::Sort,
        'p' | ' ' => Key::Pause,
        _ => return None,
    })
}

/// The last scrape that worked.
#[derive(Clone, Debug)]
struct Taken {
    at: Instant,
    snapshot: Snapshot,
}

/// Everything the screen shows.
#[derive(Debug)]
pub struct App {
    /// The endpoint's URL.
    pub url: String,
    /// The scrape interval.
    pub every: Duration,
    pub sort: SortKey,
    /// First member row shown.
    pub scroll: usize,
    /// Member rows the screen shows at once (set by the view).
    pub page: usize,
    pub paused: bool,
    /// The last scrape's error, until one works again.
    pub error: Option<String>,
    /// When the last scrape was applied (wall clock, for the header).
    pub updated: Option<SystemTime>,
    last: Option<Taken>,
    /// Rates between the last two applied scrapes, members sorted.
    pub rates: Option<Rates>,
}

impl App {
    pub fn new(url: &str, every: Duration) -> App {
        App {
            url: url.to_string(),
            every,
            sort: SortKey::Total,
            scroll: 0,
            page: 10,
            paused: false,
            error: None,
            updated: None,
            last: None,
            rates: None,
        }
    }

    /// The last scrape that worked.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.last.as_ref().map(|t| &t.snapshot)
    }

    /// A scrape's outcome. While paused, the screen keeps what it shows
    /// (the next scrape after the pause gives the average since).
    pub fn scraped(&mut self, at: Instant, wall: SystemTime, outcome: Result<Snapshot, String>) {
        if self.paused {
            return;
        }
        match outcome {
            Err(e) => self.error = Some(e),
            Ok(snapshot) => {
                self.error = None;
                self.updated = Some(wall);
                if let Some(prev) = &self.last {
                    let mut r = rates(&prev.snapshot, &snapshot, at - prev.at);
                    sort_members(&mut r.members, self.sort);
                    self.rates = Some(r);
                    self.clamp_scroll();
                }
                self.last = Some(Taken { at, snapshot });
            }
        }
    }

    fn member_rows(&self) -> usize {
        self.rates.as_ref().map_or(0, |r| r.members.len())
    }

    fn clamp_scroll(&mut self) {
        let max = self.member_rows().saturating_sub(self.page.max(1));
        self.scroll = self.scroll.min(max);
    }

    /// Applies a key; false when it asks to quit.
    pub fn key(&mut self, key: Key) -> bool {
        match key {
            Key::Quit => return false,
            Key::Up => self.scroll = self.scroll.saturating_sub(1),
            Key::Down => self.scroll += 1,
            Key::PageUp => self.scroll = self.scroll.saturating_sub(self.page.max(1)),
            Key::PageDown => self.scroll += self.page.max(1),
            Key::Home => self.scroll = 0,
            Key::End => self.scroll = usize::MAX,
            Key::Sort => {
                self.sort = self.sort.next();
                if let Some(r) = &mut self.rates {
                    sort_members(&mut r.members, self.sort);
                }
            }
            Key::Pause => self.paused = !self.paused,
        }
        self.clamp_scroll();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::scrape::MemberCounters;

    fn snapshot(members: &[(&str, f64, f64)]) -> Snapshot {
        let mut s = Snapshot::default();
        for (id, down, up) in members {
            s.members.insert(
                id.to_string(),
                MemberCounters {
                    tx_packets: *down,
                    tx_bytes: down * 100.0,
                    rx_packets: *up,
                    rx_bytes: up * 100.0,
                    spoofed_packets: 0.0,
                },
            );
        }
        s
    }

    fn order(app: &App) -> Vec<String> {
        app.rates
            .as_ref()
            .unwrap()
            .members
            .iter()
            .map(|m| m.id.clone())
            .collect()
    }

    #[test]
    fn sorts_and_cycles() {
        let t0 = Instant::now();
        let mut app = App::new("http://x/metrics", Duration::from_secs(1));
        let zero = [("a", 0.0, 0.0), ("b", 0.0, 0.0), ("c", 0.0, 0.0)];
        app.scraped(t0, SystemTime::now(), Ok(snapshot(&zero)));
        assert!(app.rates.is_none(), "one scrape gives no rate");
        app.scraped(
            t0 + Duration::from_secs(1),
            SystemTime::now(),
            Ok(snapshot(&[
                ("a", 6.0, 0.0),
                ("b", 3.0, 1.0),
                ("c", 1.0, 4.0),
            ])),
        );
        assert_eq!(order(&app), ["a", "c", "b"], "total");
        app.key(Key::Sort);
        assert_eq!(app.sort, SortKey::DownBits);
        assert_eq!(order(&app), ["a", "b", "c"]);
        app.key(Key::Sort);
        app.key(Key::Sort);
        assert_eq!(app.sort, SortKey::UpBits);
        assert_eq!(order(&app), ["c", "b", "a"]);
        for _ in 0..3 {
            app.key(Key::Sort);
        }
        assert_eq!(app.sort, SortKey::Id);
        assert_eq!(order(&app), ["a", "b", "c"]);
        app.key(Key::Sort);
        assert_eq!(app.sort, SortKey::Total);
        // A later scrape keeps the chosen sort.
        app.key(Key::Sort);
        app.scraped(
            t0 + Duration::from_secs(2),
            SystemTime::now(),
            Ok(snapshot(&[
                ("a", 6.0, 0.0),
                ("b", 13.0, 1.0),
                ("c", 1.0, 4.0),
            ])),
        );
        assert_eq!(order(&app), ["b", "a", "c"]);
    }

    #[test]
    fn errors_pause_and_scroll() {
        let t0 = Instant::now();
        let mut app = App::new("http://x/metrics", Duration::from_secs(1));
        app.page = 2;
        let many: Vec<(String, f64, f64)> = (0..5).map(|i| (format!("m{i}"), 0.0, 0.0)).collect();
        let many: Vec<(&str, f64, f64)> =
            many.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        app.scraped(t0, SystemTime::now(), Err("cannot reach x".into()));
        assert_eq!(app.error.as_deref(), Some("cannot reach x"));
        app.scraped(t0, SystemTime::now(), Ok(snapshot(&many)));
        assert_eq!(app.error, None);
        app.scraped(
            t0 + Duration::from_secs(1),
            SystemTime::now(),
            Ok(snapshot(&many)),
        );
        assert!(app.key(Key::Down));
        assert_eq!(app.scroll, 1);
        app.key(Key::End);
        assert_eq!(app.scroll, 3, "the last page shows the last two of five");
        app.key(Key::Down);
        assert_eq!(app.scroll, 3);
        app.key(Key::PageUp);
        assert_eq!(app.scroll, 1);
        app.key(Key::Home);
        assert_eq!(app.scroll, 0);
        app.key(Key::Up);
        assert_eq!(app.scroll, 0);

        // Paused: scrapes change nothing, errors included.
        app.key(Key::Pause);
        let before = app.rates.clone();
        app.scraped(
            t0 + Duration::from_secs(2),
            SystemTime::now(),
            Err("gone".into()),
        );
        app.scraped(
            t0 + Duration::from_secs(3),
            SystemTime::now(),
            Ok(snapshot(&[("new", 9.0, 9.0)])),
        );
        assert_eq!(app.rates, before);
        assert_eq!(app.error, None);
        app.key(Key::Pause);
        assert!(!app.paused);
        assert!(!app.key(Key::Quit));
        assert_eq!(key_for_char('q'), Some(Key::Quit));
        assert_eq!(key_for_char('s'), Some(Key::Sort));
        assert_eq!(key_for_char('x'), None);
    }
}
