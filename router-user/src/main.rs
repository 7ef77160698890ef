//! `collecte`: wires the library's modules to the command line.
use anyhow::Context as _;
use clap::Parser as _;
use collecte::{
    cli::{Cli, Command},
    config::Config,
    neighbors,
    trace::Tracer,
};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => {
            let cfg = Config::from_file(&config)?;
            println!(
                "{}: valid: {} uplink(s), {} access interface(s), {} member(s), {} prefix(es)",
                config.display(),
                cfg.uplinks.len(),
                cfg.access.len(),
                cfg.members.len(),
                cfg.members.iter().map(|m| m.prefixes.len()).sum::<usize>()
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
            let system = neighbors::snapshot_blocking()
                .context("reading this machine's interfaces")?;
            let mut tracer = Tracer::new(&cfg, &system).context("building the tracer")?;
            for (name, l) in &tracer.synthetic {
                let m = l.mac;
                eprintln!(
                    "note: interface {name} does not exist here; tracing it as ifindex {} with MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} and MTU {}",
                    l.ifindex, m[0], m[1], m[2], m[3], m[4], m[5], l.mtu
                );
            }
            for line in tracer.run_pcap(&ingress, &input, write.as_deref())? {
                println!("{line}");
            }
            Ok(())
        }
    }
}
