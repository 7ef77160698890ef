//! The command line of `collecte`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// collecte: the XDP fast path of an associative ISP's collection router.
#[derive(Debug, Parser)]
#[command(name = "collecte", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router: load and attach the XDP program, keep its tables in
    /// step with the configuration and the kernel, serve metrics. SIGHUP
    /// reloads the configuration; SIGTERM or SIGINT detaches and exits.
    Run {
        /// The TOML configuration.
        #[arg(
            long,
            short,
            value_name = "FILE",
            default_value = "/etc/collecte/collecte.toml"
        )]
        config: PathBuf,
        /// Log level (error, warn, info, debug, trace), or a tracing filter;
        /// overrides [log] level.
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
    },
    /// Check a configuration file and print what it declares.
    Check {
        /// The TOML configuration.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run every packet of a pcap through the real XDP program, with tables
    /// built from a configuration, and print what it did with each:
    /// `N forward IFACE member=ID`, `N pass REASON` or `N drop REASON member=ID`.
    /// No counter of a running datapath moves.
    Trace {
        /// The TOML configuration.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// The interface the packets arrive on (an [[uplink]] or [[access]]
        /// interface of the configuration).
        #[arg(long, value_name = "IFACE")]
        ingress: String,
        /// The packets, as a pcap file of Ethernet frames.
        #[arg(value_name = "IN.pcap")]
        input: PathBuf,
        /// Save the frames as the program left them.
        #[arg(long, value_name = "OUT.pcap")]
        write: Option<PathBuf>,
    },
}
