//! `collecte top` in a real terminal: tmux (a server of the test's own,
//! killed at the end whatever happens) runs it at 80×24 against a
//! daemon with alice, bob and carol and steady traffic through the fast
//! path; the test reads the screen, types keys, and checks that `q` and
//! Ctrl-C end it with the terminal given back (cooked mode, echo, main
//! screen, cursor shown).
//!
//! Tools: tmux (Debian package tmux), and what the daemon tests need.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use tests::{
    daemon::binary,
    traffic::{Mix, Traffic, site},
};

/// A tmux server of this test's own, with one session; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` (sh) in a detached session of `width`×`height`.
    fn start(tag: &str, width: u16, height: u16, command: &str) -> Tmux {
        let t = Tmux {
            socket: format!("clt-{tag}-{}", std::process::id()),
        };
        t.run(&[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is missing: install the Debian package `tmux`");
        assert!(
            out.status.success(),
            "tmux {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// `#{alternate_on} #{cursor_flag}` of the pane: "0 1" once a program
    /// left the alternate screen and showed the cursor again.
    fn modes(&self) -> String {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            "top",
            "#{alternate_on} #{cursor_flag}",
        ])
        .trim()
        .to_string()
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen.
    fn wait(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() >= end {
                panic!("{what}: not on the screen after {timeout:?}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The shell command of a session: top, then what the terminal looks like
/// once it exited; the pane stays open to be read.
fn session(ns: &str, url: &str) -> String {
    format!(
        "ip netns exec {ns} {} top --metrics {url}; \
         echo \"top exited with status $?\"; \
         echo \"tty: $(stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo|isig)$' | tr '\\n' ' ')\"; \
         sleep 600",
        binary().display()
    )
}

/// A value as `top` prints it (`512`, `12.3k`, `1.50M`).
fn number(s: &str) -> f64 {
    let (digits, factor) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1e3),
        Some('M') => (&s[..s.len() - 1], 1e6),
        Some('G') => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    digits
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {s:?}"))
        * factor
}

/// The member rows of the screen: (id, [down bit/s, down pkt/s, up bit/s,
/// up pkt/s, spoofed pkt/s]), top to bottom.
fn members(screen: &str) -> Vec<(String, [f64; 5])> {
    screen
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches(['│', ' ']).split_whitespace().collect();
            if cells.len() != 6 || !["alice", "bob", "carol"].contains(&cells[0]) {
                return None;
            }
            Some((
                cells[0].to_string(),
                std::array::from_fn(|i| number(cells[i + 1])),
            ))
        })
        .collect()
}

fn order(screen: &str) -> Vec<String> {
    members(screen).into_iter().map(|(id, _)| id).collect()
}

/// A reason row: interface, action, reason, packets/s.
fn reason(screen: &str, iface: &str, action: &str, why: &str) -> Option<f64> {
    screen.lines().find_map(|l| {
        let cells: Vec<&str> = l.trim_matches(['│', ' ']).split_whitespace().collect();
        (cells.len() == 4 && cells[..3] == [iface, action, why]).then(|| number(cells[3]))
    })
}

#[test]
fn top_shows_members_by_traffic_and_the_reasons() {
    let (t, _daemon) = site("top", 9581);
    // Per tick, for alice, bob, carol: download 6, 3, 1; upload 0, 1, 4;
    // bob also sends one datagram with alice's source. Every packet is
    // 128 bytes, so bits follow packets: total alice 6, carol 5, bob 4;
    // download alice, bob, carol; upload carol, bob, alice.
    let traffic = Traffic::start(
        &t,
        Mix {
            down: [6, 3, 1],
            up: [0, 1, 4],
            spoofed_by_bob: 1,
        },
    );
    let url = "http://127.0.0.1:9581/metrics";
    let tmux = Tmux::start("top", 80, 24, &session(t.router.name(), url));

    let busiest = |s: &str| {
        s.contains("sort: total bit/s")
            && members(s).len() == 3
            && members(s).iter().all(|(id, r)| id == "alice" || r[2] > 0.0)
            && order(s) == ["alice", "carol", "bob"]
    };
    let s = tmux.wait(
        "the members, busiest first",
        Duration::from_secs(20),
        busiest,
    );
    eprintln!("collecte top, 80x24:\n{s}");
    assert!(s.contains(&format!("collecte top  {url}")), "{s}");
    assert!(s.contains("members 3"), "{s}");
    let rows = members(&s);
    let (alice, bob, carol) = (rows[0].1, rows[2].1, rows[1].1);
    for (id, r) in [("alice", alice), ("bob", bob), ("carol", carol)] {
        assert!(
            r[0] > 0.0 && r[1] > 0.0,
            "{id}'s download is not moving:\n{s}"
        );
        // 128-byte packets: 1024 bits each.
        let bits_per_packet = r[0] / r[1];
        assert!(
            (900.0..1150.0).contains(&bits_per_packet),
            "{id}: {} bit/s for {} pkt/s:\n{s}",
            r[0],
            r[1]
        );
    }
    assert!(bob[2] > 0.0 && carol[2] > bob[2], "upload rates:\n{s}");
    assert_eq!(alice[2], 0.0, "alice uploads nothing:\n{s}");
    assert!(bob[4] > 0.0, "bob's spoofed packets/s:\n{s}");
    assert_eq!((alice[4], carol[4]), (0.0, 0.0), "{s}");
    for (iface, action, why) in [
        ("up0", "forward", "downstream"),
        ("acc1", "forward", "upstream"),
        ("acc1", "drop", "spoofed"),
    ] {
        let pps = reason(&s, iface, action, why)
            .unwrap_or_else(|| panic!("no {iface} {action} {why} row:\n{s}"));
        assert!(pps > 0.0, "{iface} {action} {why}:\n{s}");
    }
    let down = reason(&s, "up0", "forward", "downstream").unwrap();
    assert!(
        (down - (alice[1] + bob[1] + carol[1])).abs() <= 0.2 * down,
        "up0's downstream forwards ({down}/s) are the members' downloads:\n{s}"
    );

    // s: download bit/s, then (after download pkt/s) upload bit/s.
    tmux.keys(&["s"]);
    tmux.wait("sorted by download", Duration::from_secs(5), |s| {
        s.contains("sort: download bit/s") && order(s) == ["alice", "bob", "carol"]
    });
    tmux.keys(&["s", "s"]);
    tmux.wait("sorted by upload", Duration::from_secs(5), |s| {
        s.contains("sort: upload bit/s") && order(s) == ["carol", "bob", "alice"]
    });
    // p pauses: the header says so, and the numbers stop moving.
    tmux.keys(&["p"]);
    let paused = tmux.wait("paused", Duration::from_secs(5), |s| s.contains("[PAUSED]"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        members(&tmux.screen()),
        members(&paused),
        "paused, yet the rates moved"
    );
    tmux.keys(&["p"]);
    tmux.wait("resumed", Duration::from_secs(5), |s| {
        !s.contains("[PAUSED]")
    });

    // q quits, and the terminal is the shell's again.
    tmux.keys(&["q"]);
    let s = tmux.wait("top's exit", Duration::from_secs(5), |s| s.contains("tty:"));
    assert!(s.contains("top exited with status 0"), "{s}");
    assert!(
        s.contains("tty: isig icanon echo"),
        "raw mode left on:\n{s}"
    );
    assert!(
        !s.contains("MEMBER"),
        "the alternate screen is still shown:\n{s}"
    );
    assert_eq!(tmux.modes(), "0 1", "alternate screen off, cursor shown");
    traffic.stop();
}

#[test]
fn top_keeps_retrying_an_endpoint_it_cannot_reach() {
    // Nothing listens on port 1 of a fresh namespace.
    let ns = tests::Netns::new("top-down");
    let url = "http://127.0.0.1:1/metrics";
    let tmux = Tmux::start("top-down", 80, 24, &session(ns.name(), url));
    let s = tmux.wait("the error line", Duration::from_secs(10), |s| {
        s.contains(&format!("error: cannot reach {url}"))
    });
    assert!(s.contains("waiting for the first scrape"), "{s}");
    // Still running, still saying so.
    std::thread::sleep(Duration::from_millis(2500));
    let s = tmux.screen();
    assert!(!s.contains("top exited"), "top gave up:\n{s}");
    assert!(s.contains("retrying every 1 s"), "{s}");
    // Ctrl-C ends it like q, the terminal restored.
    tmux.keys(&["C-c"]);
    let s = tmux.wait("top's exit", Duration::from_secs(5), |s| s.contains("tty:"));
    assert!(s.contains("top exited with status 0"), "{s}");
    assert!(
        s.contains("tty: isig icanon echo"),
        "raw mode left on:\n{s}"
    );
    assert_eq!(tmux.modes(), "0 1");
}

#[test]
fn top_refuses_a_bad_url_and_a_missing_terminal() {
    let out = Command::new(binary())
        .args(["top", "--metrics", "https://127.0.0.1:9570/metrics"])
        .output()
        .expect("run collecte top");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--metrics https://127.0.0.1:9570/metrics") && err.contains("plain HTTP"),
        "{err}"
    );
    // Standard output a pipe: no terminal to draw on.
    let out = Command::new(binary())
        .args(["top", "--metrics", "http://127.0.0.1:9570/metrics"])
        .output()
        .expect("run collecte top");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("standard output is not a terminal"), "{err}");
    assert!(out.stdout.is_empty(), "nothing drawn on a pipe");
}
