//! `collecte`: wires the library's modules to the command line.
use anyhow::Context as _;
use clap::Parser as _;
use collecte::{
    cli::{Cli, Command},
    config::Config,
    daemon, neighbors,
    trace::Tracer,
};
use tracing_subscriber::EnvFilter;

/// Large tables get transparent huge pages (see [`collecte::alloc`]).
#[global_allocator]
static ALLOC: collecte::alloc::HugePages = collecte::alloc::HugePages;

fn main() -> anyhow::Result<()> {
    collecte::alloc::one_arena();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, log_level } => {
            // Read once: the level comes from --log-level, else from the
            // configuration's [log] level; a configuration that does not
            // read is reported once logging is set up.
            let parsed = Config::read(&config);
            let level = log_level.unwrap_or_else(|| match &parsed {
                Ok((c, _)) => c.log.level.clone(),
                Err(_) => "info".into(),
            });
            // netlink-packet-route warns about every attribute newer than
            // itself; that is noise for an operator.
            let filter = EnvFilter::try_new(format!("{level},netlink_packet_route=error"))
                .with_context(|| format!("bad log level {level:?}"))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(daemon::run(&config, parsed))
                .with_context(|| format!("collecte run --config {}", config.display()))
        }
        Command::Stop { config, detach: _ } => {
            let cfg = Config::from_file(&config)?;
            let pin_dir = &cfg.datapath.pin_dir;
            let removed = collecte::datapath::remove_pins(pin_dir)
                .with_context(|| format!("removing the pins under {}", pin_dir.display()))?;
            if removed.is_empty() {
                println!("nothing pinned under {}", pin_dir.display());
            }
            for path in removed {
                println!("removed {}", path.display());
            }
            Ok(())
        }
        Command::Check { config } => {
            let (cfg, members) = Config::read(&config)?;
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
        Command::Trace {
            config,
            ingress,
            input,
            write,
        } => {
            let cfg = Config::from_file(&config)?;
            let system =
                neighbors::snapshot_blocking().context("reading this machine's interfaces")?;
            let mut tracer = Tracer::new(&cfg, &system).context("building the tracer")?;
            for (name, l) in &tracer.synthetic {
                let m = l.mac;
                eprintln!(
                    "note: interface {name} does not exist here; tracing it as ifindex {} with MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} and MTU {}",
                    l.ifindex, m[0], m[1], m[2], m[3], m[4], m[5], l.mtu
                );
            }
            let summary = tracer.run_pcap(&ingress, &input, write.as_deref(), |entry| {
                println!("{entry}");
            })?;
            if summary.errors > 0 {
                eprintln!(
                    "collecte trace: {} of {} record(s) of {} could not be traced (see their error lines)",
                    summary.errors,
                    summary.records,
                    input.display()
                );
                std::process::exit(collecte::trace::EXIT_UNTRACED);
            }
            Ok(())
        }
        Command::Member(args) => {
            // The API's message, without a backtrace: this is a client.
            if let Err(e) = collecte::api::client::run(&args) {
                eprintln!("collecte member: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Top { metrics } => collecte::top::run(&metrics).context("collecte top"),
    }
}
