//! Figures, their anchors and targets: the console table,
//! `results.json`, `results.md` and the lookup plot.
use std::{fmt::Write as _, path::Path};

use anyhow::{Context as _, anyhow};
use serde::Serialize;

/// One figure, with the anchor it is read against.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// Table section.
    pub group: String,
    pub name: String,
    /// `None`: the measurement could not be produced (see `note`).
    pub value: Option<f64>,
    pub unit: String,
    pub anchor: String,
    pub anchor_value: Option<f64>,
    /// `value / anchor_value`.
    pub ratio: Option<f64>,
    /// The target, in words; `None` for figures reported for information.
    pub target: Option<String>,
    /// Whether the target is met; `None` without a target (or a value).
    pub met: Option<bool>,
    /// How the figure was obtained, or why it is missing.
    pub note: String,
    /// A figure that is knowingly not measured yet (not a failure).
    pub pending: bool,
}

/// How a figure is checked against its target.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    None,
    /// value ≤ x
    AtMost(f64),
    /// ratio ≤ x
    RatioAtMost(f64),
    /// ratio ≥ x
    RatioAtLeast(f64),
    /// value ≤ a and ratio ≤ b
    AtMostAndRatioAtMost(f64, f64),
}

impl Figure {
    #[expect(
        clippy::too_many_arguments,
        reason = "a figure is a row of the report: value, anchor, target and note"
    )]
    pub fn new(
        group: &str,
        name: impl Into<String>,
        value: Option<f64>,
        unit: &str,
        anchor: impl Into<String>,
        anchor_value: Option<f64>,
        target: Option<&str>,
        check: Check,
        note: impl Into<String>,
    ) -> Figure {
        let value = value.filter(|v| v.is_finite());
        let anchor_value = anchor_value.filter(|v| v.is_finite());
        let ratio = match (value, anchor_value) {
            (Some(v), Some(a)) if a != 0.0 => Some(v / a),
            _ => None,
        };
        let met = match check {
            Check::None => None,
            Check::AtMost(x) => value.map(|v| v <= x),
            Check::RatioAtMost(x) => ratio.map(|r| r <= x),
            Check::RatioAtLeast(x) => ratio.map(|r| r >= x),
            Check::AtMostAndRatioAtMost(a, b) => match (value, ratio) {
                (Some(v), Some(r)) => Some(v <= a && r <= b),
                _ => None,
            },
        };
        Figure {
            group: group.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            anchor: anchor.into(),
            anchor_value,
            ratio,
            target: target.map(str::to_string),
            met,
            note: note.into(),
            pending: false,
        }
    }
}

pub fn fmt_value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) => {
            let digits = if v.abs() >= 100.0 {
                0
            } else if v.abs() >= 10.0 {
                1
            } else {
                2
            };
            format!("{v:.digits$} {unit}")
        }
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        None => "—".into(),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
    }
}

fn fmt_met(f: &Figure) -> &'static str {
    if f.pending {
        return "pending";
    }
    match (f.value, f.met) {
        (None, _) => "NO VALUE",
        (_, Some(true)) => "met",
        (_, Some(false)) => "MISSED",
        (_, None) => "",
    }
}

/// The console table.
pub fn table(figures: &[Figure]) -> String {
    let rows: Vec<[String; 7]> = figures
        .iter()
        .map(|f| {
            [
                f.name.clone(),
                fmt_value(f.value, &f.unit),
                f.anchor.clone(),
                fmt_value(f.anchor_value, &f.unit_of_anchor()),
                fmt_ratio(f.ratio),
                f.target.clone().unwrap_or_default(),
                fmt_met(f).into(),
            ]
        })
        .collect();
    let head = [
        "figure",
        "value",
        "anchor",
        "anchor value",
        "ratio",
        "target",
        "",
    ];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 1 || i == 3 || i == 4 {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str("  ");
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&head.map(String::from));
    out.push_str(&line(&w.map(|n| "-".repeat(n))));
    let mut group = "";
    for (f, r) in figures.iter().zip(&rows) {
        if f.group != group {
            group = &f.group;
            out.push_str(&format!("[{group}]\n"));
        }
        out.push_str(&line(r));
    }
    out
}

impl Figure {
    /// Anchors share the figure's unit, except ratios of sizes.
    fn unit_of_anchor(&self) -> String {
        self.unit.clone()
    }
}

/// `results.md`.
/// The figures that have a target, one line each.
pub fn targets(figures: &[Figure]) -> Vec<String> {
    figures
        .iter()
        .filter(|f| f.target.is_some())
        .map(|f| {
            format!(
                "{}: {} — {} ({}; ratio {} to {} {})",
                fmt_met(f),
                f.name,
                f.target.as_deref().unwrap_or(""),
                fmt_value(f.value, &f.unit),
                fmt_ratio(f.ratio),
                f.anchor,
                fmt_value(f.anchor_value, &f.unit),
            )
        })
        .collect()
}

pub fn markdown(
    title: &str,
    preamble: &str,
    figures: &[Figure],
    notes: &[String],
    analysis: &[String],
) -> String {
    let mut s = format!("# {title}\n\n{preamble}\n\n## Targets\n\n");
    for t in targets(figures) {
        let _ = writeln!(s, "- {t}");
    }
    if !analysis.is_empty() {
        s.push_str("\n## What the probes say\n\n");
        for a in analysis {
            let _ = writeln!(s, "- {a}");
        }
    }
    let mut group = "";
    for f in figures {
        if f.group != group {
            group = &f.group;
            let _ = write!(
                s,
                "\n## {group}\n\n| figure | value | anchor | anchor value | ratio | target | |\n|---|---:|---|---:|---:|---|---|\n"
            );
        }
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            f.name,
            fmt_value(f.value, &f.unit),
            f.anchor,
            fmt_value(f.anchor_value, &f.unit),
            fmt_ratio(f.ratio),
            f.target.clone().unwrap_or_default(),
            fmt_met(f)
        );
    }
    let with_notes: Vec<&Figure> = figures.iter().filter(|f| !f.note.is_empty()).collect();
    if !with_notes.is_empty() {
        s.push_str("\n## How each figure is obtained\n\n");
        for f in with_notes {
            let _ = writeln!(s, "- **{}**: {}", f.name, f.note);
        }
    }
    if !notes.is_empty() {
        s.push_str("\n## Notes\n\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// What the parts report, gathered for `main` to write out: each part's
/// `figures` adds to it, in the order the parts run.
#[derive(Default)]
pub struct Report {
    pub figures: Vec<Figure>,
    /// Measurements that could not be produced, in words.
    pub errors: Vec<String>,
    /// Each part's results as measured, by key (`cost.N`, `forward`,
    /// `daemon.N`, `control.N`), for `results.json`.
    pub raw: serde_json::Map<String, serde_json::Value>,
    pub notes: Vec<String>,
    /// The lookup plot's series.
    pub plot: Vec<Series>,
    /// Where the random-lookup time goes, in words, from the probes.
    pub analysis: Vec<String>,
}

/// One series of the lookup plot: (members, ns).
pub struct Series {
    pub name: String,
    pub color: (u8, u8, u8),
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// The lookup-cost plot (log-log). Values below the axis (1 ns at least)
/// are drawn on it.
pub fn plot(path: &Path, title: &str, series: &[Series]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("reading {FONT} (Debian package fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{FONT} is not a usable font"))?;

    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if pts.is_empty() {
        return Err(anyhow!("nothing to plot"));
    }
    let xmin = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min) / 1.5;
    let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max) * 1.5;
    let ymax = pts.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let ymin = (pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) / 2.0).max(1.0);
    let root = BitMapBackend::new(path, (1000, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(75)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("members in the table")
        .y_desc("ns per lookup (random destinations)")
        .x_label_formatter(&|x| size_label(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (k, s) in series.iter().enumerate() {
        // Value labels alternate above and below the points.
        let lift = if k % 2 == 0 { 1.15 } else { 0.80 };
        let color = RGBColor(s.color.0, s.color.1, s.color.2);
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, y.max(ymin))).collect();
        let style = color.stroke_width(if s.dashed { 2 } else { 3 });
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
                .map_err(|e| anyhow!("{e}"))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(|e| anyhow!("{e}"))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 5, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(points.iter().map(|&(x, y)| {
                Text::new(
                    format!("{y:.0}"),
                    (x, y * lift),
                    ("sans-serif", 14).into_font().color(&color),
                )
            }))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

pub fn size_label(n: f64) -> String {
    let n = n.round() as u64;
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}
