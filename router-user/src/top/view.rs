//! `collecte top`'s screen: a header, the members (busiest first), the
//! datapath's non-zero reasons, and a footer with the keys and the last
//! error. Plain text and a few attributes, readable in 80×24 over SSH.
use std::time::SystemTime;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Line,
    widgets::{Block, Paragraph, Row, Table, Wrap},
};

use super::app::{App, SortKey};

/// `v` with an SI prefix, three significant digits: `512`, `12.3k`,
/// `1.50M`.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return "?".into();
    }
    let prefixes = ["", "k", "M", "G", "T", "P"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 999.5 && i + 1 < prefixes.len() {
        v /= 1000.0;
        i += 1;
    }
    let p = prefixes[i];
    if i == 0 {
        format!("{v:.0}")
    } else if v >= 99.95 {
        format!("{v:.0}{p}")
    } else if v >= 9.995 {
        format!("{v:.1}{p}")
    } else {
        format!("{v:.2}{p}")
    }
}

/// Local wall-clock time, `HH:MM:SS`.
pub fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes only into the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return "--:--:--".into();
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

const MEMBER_COLUMNS: [(&str, SortKey); 5] = [
    ("DOWN bit/s", SortKey::DownBits),
    ("DOWN pkt/s", SortKey::DownPackets),
    ("UP bit/s", SortKey::UpBits),
    ("UP pkt/s", SortKey::UpPackets),
    ("SPOOF pkt/s", SortKey::Spoofed),
];

/// Reason rows shown at most.
const MAX_REASONS: usize = 8;

/// Draws the whole screen; sets `app.page` to the member rows that fit.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let reasons = app.rates.as_ref().map_or(0, |r| r.reasons.len());
    let reason_height = reasons.clamp(1, MAX_REASONS) as u16 + 3;
    let width = frame.area().width.max(1) as usize;
    let footer_height = 1 + app
        .error
        .as_ref()
        .map_or(0, |e| error_line(app, e).chars().count().div_ceil(width))
        as u16;
    let [header, members, datapath, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(4),
        Constraint::Length(reason_height),
        Constraint::Length(footer_height),
    ])
    .areas(frame.area());
    // Borders and the column names take three rows.
    app.page = (members.height as usize).saturating_sub(3).max(1);
    draw_header(frame, header, app);
    draw_members(frame, members, app);
    draw_reasons(frame, datapath, app);
    draw_footer(frame, footer, app);
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let snapshot = app.snapshot();
    let version = snapshot
        .and_then(|s| s.version.as_deref())
        .map(|v| format!("  collecte {v}"))
        .unwrap_or_default();
    let members = snapshot
        .map(|s| s.member_count().to_string())
        .unwrap_or_else(|| "?".into());
    let updated = app.updated.map(clock).unwrap_or_else(|| "--:--:--".into());
    let mut second = format!(
        "members {members}   updated {updated}   every {} s   sort: {}",
        app.every.as_secs_f64(),
        app.sort.name()
    );
    if app.paused {
        second += "   [PAUSED]";
    }
    let lines = vec![
        Line::styled(format!("collecte top  {}{version}", app.url), bold),
        Line::from(second),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn draw_members(frame: &mut Frame, area: Rect, app: &App) {
    let Some(rates) = &app.rates else {
        let text = if app.snapshot().is_some() {
            "measuring: rates need a second scrape"
        } else {
            "waiting for the first scrape"
        };
        frame.render_widget(
            Paragraph::new(text).block(Block::bordered().title(" members ")),
            area,
        );
        return;
    };
    let total = rates.members.len();
    let shown: Vec<_> = rates
        .members
        .iter()
        .skip(app.scroll)
        .take(app.page)
        .collect();
    let title = if total == 0 {
        " members: none in the datapath ".to_string()
    } else {
        format!(
            " members {}-{} of {total} ",
            app.scroll + 1,
            app.scroll + shown.len()
        )
    };
    let sorted = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
    let mut header =
        vec![
            ratatui::widgets::Cell::from("MEMBER").style(if app.sort == SortKey::Id {
                sorted
            } else {
                Style::default()
            }),
        ];
    for (name, key) in MEMBER_COLUMNS {
        let style = if app.sort == key
            || (app.sort == SortKey::Total && matches!(key, SortKey::DownBits | SortKey::UpBits))
        {
            sorted
        } else {
            Style::default()
        };
        header.push(ratatui::widgets::Cell::from(Line::from(name).right_aligned()).style(style));
    }
    let rows = shown.iter().map(|m| {
        Row::new(vec![
            ratatui::widgets::Cell::from(m.id.clone()),
            right(human(m.down_bps)),
            right(human(m.down_pps)),
            right(human(m.up_bps)),
            right(human(m.up_pps)),
            right(human(m.spoofed_pps)),
        ])
    });
    let widths = [
        Constraint::Min(8),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(11),
        Constraint::Length(11),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

fn right(s: String) -> ratatui::widgets::Cell<'static> {
    ratatui::widgets::Cell::from(Line::from(s).right_aligned())
}

fn draw_reasons(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered().title(" datapath: packets/s by interface, action, reason ");
    let Some(rates) = &app.rates else {
        frame.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    if rates.reasons.is_empty() {
        frame.render_widget(
            Paragraph::new("no packet in the last interval").block(block),
            area,
        );
        return;
    }
    let rows = rates.reasons.iter().take(MAX_REASONS).map(|r| {
        Row::new(vec![
            ratatui::widgets::Cell::from(r.interface.clone()),
            ratatui::widgets::Cell::from(r.action.clone()),
            ratatui::widgets::Cell::from(r.reason.clone()),
            right(human(r.pps)),
        ])
    });
    let widths = [
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(18),
        Constraint::Length(10),
    ];
    let mut title = " datapath: packets/s by interface, action, reason ".to_string();
    if rates.reasons.len() > MAX_REASONS {
        title = format!(
            " datapath: packets/s by interface, action, reason (busiest {MAX_REASONS} of {}) ",
            rates.reasons.len()
        );
    }
    let table = Table::new(rows, widths)
        .header(
            Row::new(vec![
                ratatui::widgets::Cell::from("INTERFACE"),
                ratatui::widgets::Cell::from("ACTION"),
                ratatui::widgets::Cell::from("REASON"),
                right("PKT/S".into()),
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(Block::bordered().title(title));
    frame.render_widget(table, area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines = Vec::new();
    if let Some(e) = &app.error {
        lines.push(Line::styled(
            error_line(app, e),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(
        "q quit   up/down j/k scroll   PgUp/PgDn page   s sort   p pause",
    ));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn error_line(app: &App, e: &str) -> String {
    format!("error: {e} (retrying every {} s)", app.every.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::top::scrape::{MemberCounters, Snapshot};

    #[test]
    fn human_numbers() {
        for (v, s) in [
            (0.0, "0"),
            (512.0, "512"),
            (999.0, "999"),
            (999.6, "1.00k"),
            (12_345.0, "12.3k"),
            (1_500_000.0, "1.50M"),
            (123_456_789.0, "123M"),
            (9.87e9, "9.87G"),
            (-3.0, "0"),
            (f64::NAN, "?"),
        ] {
            assert_eq!(human(v), s, "{v}");
        }
    }

    fn screen(app: &mut App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The whole screen fits 80×24: members busiest first with their
    /// rates, the reasons, the keys, and the error line.
    #[test]
    fn an_80_by_24_screen() {
        let mut app = App::new("http://127.0.0.1:9570/metrics", Duration::from_secs(1));
        let t0 = Instant::now();
        let snap = |k: f64| {
            let mut s = Snapshot::default();
            for (i, id) in ["alice", "bob", "carol"].iter().enumerate() {
                let n = k * (i + 1) as f64;
                s.members.insert(
                    id.to_string(),
                    MemberCounters {
                        tx_packets: n * 100.0,
                        tx_bytes: n * 125_000.0,
                        rx_packets: n,
                        rx_bytes: n * 100.0,
                        spoofed_packets: if *id == "bob" { k * 3.0 } else { 0.0 },
                    },
                );
            }
            s.datapath.insert(
                ("up0".into(), "forward".into(), "downstream".into()),
                k * 600.0,
            );
            s.datapath
                .insert(("acc1".into(), "drop".into(), "spoofed".into()), k * 3.0);
            s.datapath
                .insert(("acc0".into(), "pass".into(), "not-ip".into()), 5.0);
            s.members_gauge = Some(3.0);
            s.version = Some("0.1.0".into());
            s
        };
        app.scraped(t0, SystemTime::now(), Ok(snap(0.0)));
        let waiting = screen(&mut app, 80, 24);
        assert!(waiting.contains("rates need a second scrape"), "{waiting}");
        app.scraped(
            t0 + Duration::from_secs(1),
            SystemTime::now(),
            Ok(snap(1.0)),
        );
        let s = screen(&mut app, 80, 24);
        assert!(
            s.contains("collecte top  http://127.0.0.1:9570/metrics  collecte 0.1.0"),
            "{s}"
        );
        assert!(s.contains("members 3"), "{s}");
        assert!(s.contains("sort: total bit/s"), "{s}");
        let rows: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("alice") || l.contains("bob") || l.contains("carol"))
            .collect();
        assert_eq!(rows.len(), 3, "{s}");
        assert!(
            rows[0].contains("carol") && rows[0].contains("3.00M") && rows[0].contains("300"),
            "{s}"
        );
        assert!(
            rows[1].contains("bob") && rows[1].contains("2.00M") && rows[1].ends_with("3│"),
            "{s}"
        );
        assert!(rows[2].contains("alice"), "{s}");
        assert!(s.contains("up0"), "{s}");
        let reasons: Vec<&str> = s
            .lines()
            .filter(|l| l.contains("forward") || l.contains("drop") || l.contains("pass"))
            .collect();
        assert_eq!(
            reasons.len(),
            2,
            "the reason that did not move is left out:\n{s}"
        );
        assert!(
            reasons[0].contains("downstream") && reasons[0].contains("600"),
            "{s}"
        );
        assert!(reasons[1].contains("spoofed"), "{s}");
        assert!(s.contains("q quit"), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= 80));

        app.scraped(
            t0,
            SystemTime::now(),
            Err("cannot reach http://127.0.0.1:9570/metrics: Connection refused".into()),
        );
        let s = screen(&mut app, 80, 24);
        let tail: Vec<&str> = s.lines().rev().take(3).collect();
        let joined = tail.into_iter().rev().collect::<Vec<_>>().join(" ");
        let words: Vec<&str> = joined.split_whitespace().collect();
        assert!(
            words.join(" ").contains("error: cannot reach http://127.0.0.1:9570/metrics: Connection refused (retrying every 1 s)"),
            "{s}"
        );
        assert!(s.contains("carol"), "the last rates stay on screen:\n{s}");
    }
}
