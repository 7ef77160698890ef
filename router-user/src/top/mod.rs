//! `collecte top`: a live view of a running collecte, from its metrics
//! endpoint, refreshed every second: the members busiest first (download
//! and upload in bits and packets per second, spoofed packets per
//! second) and the datapath's non-zero reasons per interface.
//!
//! A client of `/metrics` only: no BPF, no datapath access, so it runs
//! anywhere the endpoint can be reached (over an SSH tunnel too).
//!
//! - [`scrape`]: fetch, parse, rates (pure but for the fetch).
//! - [`app`]: the state and the keys (pure).
//! - [`view`]: the layout.
//!
//! A thread scrapes; the main thread draws and reads the keys, so a slow
//! or unreachable endpoint never freezes the keys. The terminal is
//! restored on every way out: `q`, Ctrl-C, SIGTERM, SIGHUP or SIGINT, an
//! error, a panic.
pub mod app;
pub mod scrape;
pub mod view;

use std::{
    io::IsTerminal as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant, SystemTime},
};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use self::{
    app::{App, Key, key_for_char},
    scrape::{Endpoint, ScrapeError},
};

/// Time between scrapes.
pub const EVERY: Duration = Duration::from_secs(1);
/// How long a connection and each read of a scrape may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often keys and signals are looked at.
const TICK: Duration = Duration::from_millis(100);

/// Why `collecte top` could not run (an unreachable endpoint is not one:
/// the screen says so and the scrapes go on).
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// `--metrics` is not a URL `top` can scrape.
    #[error(transparent)]
    Endpoint(#[from] ScrapeError),
    /// Standard output is not a terminal.
    #[error(
        "standard output is not a terminal: collecte top is interactive (use curl URL for the raw metrics)"
    )]
    NotATerminal,
    /// The terminal could not be set up, drawn or read.
    #[error("the terminal: {0}")]
    Terminal(#[source] std::io::Error),
    /// A signal handler could not be installed.
    #[error("cannot catch signal {signal}: {source}")]
    Signal {
        signal: i32,
        #[source]
        source: std::io::Error,
    },
}

/// Puts the terminal back (cooked mode, main screen, cursor) when dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the view until `q`, Ctrl-C or a signal.
pub fn run(url: &str) -> Result<(), TopError> {
    let endpoint = Endpoint::parse(url)?;
    if !std::io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
    ] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|source| TopError::Signal { signal, source })?;
    }

    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("scrape".into())
        .spawn(move || {
            loop {
                let start = Instant::now();
                let outcome = scrape::scrape(&endpoint, TIMEOUT).map_err(|e| e.to_string());
                if tx
                    .send((Instant::now(), SystemTime::now(), outcome))
                    .is_err()
                {
                    return;
                }
                std::thread::sleep(EVERY.saturating_sub(start.elapsed()));
            }
        })
        .map_err(TopError::Terminal)?;

    let mut terminal = ratatui::try_init().map_err(TopError::Terminal)?;
    let _restore = Restore;
    let mut app = App::new(url, EVERY);
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        while let Ok((at, wall, outcome)) = rx.try_recv() {
            app.scraped(at, wall, outcome);
            dirty = true;
        }
        if dirty {
            terminal
                .draw(|frame| view::draw(frame, &mut app))
                .map_err(TopError::Terminal)?;
            dirty = false;
        }
        if !event::poll(TICK).map_err(TopError::Terminal)? {
            continue;
        }
        match event::read().map_err(TopError::Terminal)? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                let key = match k.code {
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        Some(Key::Quit)
                    }
                    KeyCode::Char(c) => key_for_char(c),
                    KeyCode::Esc => Some(Key::Quit),
                    KeyCode::Up => Some(Key::Up),
                    KeyCode::Down => Some(Key::Down),
                    KeyCode::PageUp => Some(Key::PageUp),
                    KeyCode::PageDown => Some(Key::PageDown),
                    KeyCode::Home => Some(Key::Home),
                    KeyCode::End => Some(Key::End),
                    _ => None,
                };
                if let Some(key) = key {
                    if !app.key(key) {
                        break;
                    }
                    dirty = true;
                }
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
    Ok(())
}
