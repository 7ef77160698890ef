//! `collecte`: wires the library's modules to the command line, one
//! function per command.
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser as _;
use collecte::{
    api::client,
    cli::{Cli, Command, MemberArgs, RoutesArgs, SessionArgs},
    daemon, datapath, edge, netlink, provisioning, routes,
    trace::{self, Tracer},
};
use router_core::{config::Config, store::MemberStore};
use tracing_subscriber::EnvFilter;

/// Large tables get transparent huge pages (see [`collecte::alloc`]).
#[global_allocator]
static ALLOC: collecte::alloc::HugePages = collecte::alloc::HugePages;

fn main() -> anyhow::Result<()> {
    collecte::alloc::one_arena();
    match Cli::parse().command {
        Command::Run { config, log_level } => run(&config, log_level),
        Command::Stop { config, detach: _ } => stop(&config),
        Command::Check { config } => check(&config),
        Command::Trace {
            config,
            ingress,
            input,
            write,
            explain,
        } => trace(&config, &ingress, &input, write, explain),
        Command::Member(args) => member(&args),
        Command::Routes(args) => routes_command(&args),
        Command::Session(args) => session_command(&args),
        Command::Top { metrics } => collecte::top::run(&metrics).context("collecte top"),
    }
}

/// `collecte run`.
fn run(config: &Path, log_level: Option<String>) -> anyhow::Result<()> {
    // Read once: the level comes from --log-level, else from the
    // configuration's [log] level; a configuration that does not read is
    // reported once logging is set up.
    let parsed = Config::read(config);
    let level = log_level.unwrap_or_else(|| match &parsed {
        Ok((c, _)) => c.log.level.clone(),
        Err(_) => "info".into(),
    });
    // netlink-packet-route warns about every attribute newer than itself;
    // that is noise for an operator.
    let filter = EnvFilter::try_new(format!("{level},netlink_packet_route=error"))
        .with_context(|| format!("bad log level {level:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(daemon::run(config, parsed))
        .with_context(|| format!("collecte run --config {}", config.display()))
}

/// `collecte stop --detach`.
fn stop(config: &Path) -> anyhow::Result<()> {
    let (cfg, members) = Config::read(config)?;
    let pin_dir = &cfg.datapath.pin_dir;
    let removed = datapath::remove_pins(pin_dir)
        .with_context(|| format!("removing the pins under {}", pin_dir.display()))?;
    if removed.is_empty() {
        println!("nothing pinned under {}", pin_dir.display());
    }
    let detached = !removed.is_empty();
    for path in removed {
        println!("removed {}", path.display());
    }
    if let Some(r) = &cfg.routes {
        let n = routes::remove_all(r.table)
            .with_context(|| format!("removing the member routes from table {}", r.table))?;
        println!("removed {n} member route(s) from routing table {}", r.table);
    }
    if detached {
        final_adverts(&cfg, &members)?;
    }
    let state = &cfg.datapath.state;
    let restored = edge::tags::restore(state).with_context(|| {
        format!(
            "restoring the VLAN offloads recorded in {}",
            edge::record::path_for(state).display()
        )
    })?;
    for line in restored.lines {
        println!("{line}");
    }
    Ok(())
}

/// `collecte stop --detach`: the members learn that the router no longer
/// forwards (router lifetime 0), on the attachments of the file's members
/// and the API's (from the state file).
fn final_adverts(cfg: &Config, members: &MemberStore) -> anyhow::Result<()> {
    let api = match provisioning::read(&cfg.datapath.state) {
        Ok(state) => state.members,
        Err(e) => {
            eprintln!(
                "collecte stop: the API's members are left out of the final router advertisements: {e}"
            );
            MemberStore::new()
        }
    };
    let system = netlink::snapshot_blocking().context("reading this machine's interfaces")?;
    let all = members.iter().chain(api.iter()).map(|(_, m)| m);
    let done = edge::detach::final_adverts(cfg, all, &system);
    for (interface, sent) in &done.sent {
        println!("sent {sent} final router advertisement(s) (router lifetime 0) on {interface}");
    }
    for p in &done.problems {
        eprintln!("collecte stop: no final router advertisement: {p}");
    }
    Ok(())
}

/// `collecte check`.
fn check(config: &Path) -> anyhow::Result<()> {
    let (cfg, members) = Config::read(config)?;
    println!(
        "{}: valid: {} uplink(s), {} access interface(s), {} member(s), {} prefix(es)",
        config.display(),
        cfg.uplinks.len(),
        cfg.access.len(),
        members.len(),
        members
            .iter()
            .map(|(_, m)| m.prefixes().count())
            .sum::<usize>()
    );
    Ok(())
}

/// `collecte trace`: exits with [`trace::EXIT_UNTRACED`] when some record
/// could not be traced.
fn trace(
    config: &Path,
    ingress: &str,
    input: &Path,
    write: Option<PathBuf>,
    explain: bool,
) -> anyhow::Result<()> {
    let cfg = Config::from_file(config)?;
    let system = netlink::snapshot_blocking().context("reading this machine's interfaces")?;
    let mut tracer = Tracer::new(&cfg, &system).context("building the tracer")?;
    tracer.set_explain(explain);
    for (name, link) in &tracer.synthetic {
        eprintln!("{}", trace::synthetic_note(name, link));
    }
    let summary = tracer.run_pcap(ingress, input, write.as_deref(), |entry| {
        println!("{entry}");
    })?;
    if summary.errors > 0 {
        eprintln!(
            "collecte trace: {} of {} record(s) of {} could not be traced (see their error lines)",
            summary.errors,
            summary.records,
            input.display()
        );
        std::process::exit(trace::EXIT_UNTRACED);
    }
    Ok(())
}

/// `collecte routes`: exits with 1 on error.
fn routes_command(args: &RoutesArgs) -> anyhow::Result<()> {
    match client::run(&args.options(), &args.request()) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("collecte routes: {:#}", anyhow::Error::from(e));
            std::process::exit(1);
        }
    }
    Ok(())
}

/// `collecte session`: exits with 1 on error.
fn session_command(args: &SessionArgs) -> anyhow::Result<()> {
    match client::run(&args.options(), &args.request()) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("collecte session: {:#}", anyhow::Error::from(e));
            std::process::exit(1);
        }
    }
    Ok(())
}

/// `collecte member`: exits with 1 on error.
fn member(args: &MemberArgs) -> anyhow::Result<()> {
    match client::run(&args.options(), &args.request()) {
        Ok(out) => print!("{out}"),
        Err(e) => {
            // The API's message, without a backtrace: this is a client.
            // The chain of causes, on one line.
            eprintln!("collecte member: {:#}", anyhow::Error::from(e));
            std::process::exit(1);
        }
    }
    Ok(())
}
