//! The command line of `collecte`, and how `collecte member` arguments
//! become requests of the API's client ([`client::Request`]).
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api::client::{self, MemberFields, MemberSource};

/// collecte: the XDP fast path of an associative ISP's collection router.
#[derive(Debug, Parser)]
#[command(name = "collecte", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router: load (or take over) the pinned XDP program and tables,
    /// attach it, keep its tables in step with the configuration, the API and
    /// the kernel, serve metrics. SIGHUP reloads the configuration; SIGTERM
    /// or SIGINT exit and leave the datapath forwarding with its last tables
    /// (`collecte stop --detach` removes it).
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
    /// Take the fast path away: detach the XDP program from every interface
    /// and remove the pinned tables and counters under the configuration's
    /// pin_dir, and the member routes from its [routes] table; send a final
    /// router advertisement (lifetime 0) on every attachment of an IPv6
    /// member; turn the VLAN offloads collecte turned off back on. (SIGTERM
    /// alone leaves the datapath forwarding with its last tables and the
    /// routes announced, so that a restart or upgrade never interrupts the
    /// members.) Stop the daemon first.
    Stop {
        /// The TOML configuration (for [datapath] pin_dir and state, the
        /// interfaces and the members).
        #[arg(
            long,
            short,
            value_name = "FILE",
            default_value = "/etc/collecte/collecte.toml"
        )]
        config: PathBuf,
        /// Required: detaching interrupts the fast path.
        #[arg(long, required = true)]
        detach: bool,
    },
    /// Check a configuration file and print what it declares.
    Check {
        /// The TOML configuration.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run every packet of a pcap through the real XDP program and print what
    /// it did with each: `N forward IFACE member=ID`, `N pass REASON` or
    /// `N drop REASON member=ID`. When a daemon has pinned its tables under
    /// the configuration's pin_dir, the tracer reads those live tables;
    /// otherwise it builds them from the configuration. No counter moves.
    ///
    /// A frame shorter than an Ethernet header is `N drop malformed`, as the
    /// program treats it. A record captured shorter than it was on the wire
    /// is traced as captured, its line ending in `(captured C of W bytes)`.
    /// A frame the kernel's test run cannot take whole (larger than about a
    /// page: at most 3520 bytes with 4 KiB pages on x86-64) gets
    /// `N error: ...` and the trace goes on; a file that ends inside a
    /// record gets `N error: record N is cut short: ...` and the trace ends
    /// there.
    ///
    /// Exit status: 0 when every record was traced; 3 when some got an error
    /// line (frames that could not be traced, a file cut short), every other
    /// record having been traced; 1 when the trace could not run or had to
    /// stop (the configuration, --ingress, the input or the output file is
    /// at fault; the error says which); 2 for a bad command line.
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
        /// Save the frames as the program left them (rewritten for
        /// forwards, unchanged otherwise and for frames that could not be
        /// traced), one record per record read, with its timestamp.
        #[arg(long, value_name = "OUT.pcap")]
        write: Option<PathBuf>,
        /// Under each line, the steps the program took, in plain words:
        /// the headers and tags it found, the prefix and member each
        /// address fell in, the checks passed or failed, the rewrite, and
        /// why that action. They come from what the program itself recorded
        /// while deciding (its tracer instance), not from a re-reading.
        #[arg(long)]
        explain: bool,
    },
    /// Manage the members of a running collecte through its provisioning
    /// API ([api] in its configuration). Members of the configuration file
    /// can be listed and shown, not changed.
    Member(MemberArgs),
    /// The member routes a running collecte exports to its [routes] table,
    /// through the provisioning API: drain (withdraw them all, while
    /// forwarding goes on), undrain, or show their state.
    Routes(RoutesArgs),
    /// The PPPoE sessions of a running collecte, through its provisioning
    /// API: list them (up or negotiating), or show one with its counters.
    Session(SessionArgs),
    /// A live view of a running collecte from its metrics endpoint,
    /// refreshed every second: members busiest first (download and upload
    /// in bit/s and packets/s, spoofed packets/s) and the datapath's
    /// non-zero reasons per interface. Keys: q quits, up/down or j/k
    /// scroll, s cycles the sort column, p pauses.
    Top {
        /// The metrics endpoint ([metrics] listen of the configuration).
        #[arg(
            long,
            value_name = "URL",
            default_value = "http://127.0.0.1:9570/metrics"
        )]
        metrics: String,
    },
}

/// Where the API is, with which token, and how to print: the options of
/// every command that talks to a running collecte.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API: http://ADDRESS:PORT, or unix:/PATH for a Unix socket.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "http://127.0.0.1:9571"
    )]
    pub api: String,
    /// The file holding the API's bearer token.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "/etc/collecte/api.token"
    )]
    pub token_file: PathBuf,
    /// Print the API's JSON instead of a table or a line.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ApiArgs {
    /// The client's options.
    pub fn options(&self) -> client::Options {
        client::Options {
            api: self.api.clone(),
            token_file: self.token_file.clone(),
            json: self.json,
        }
    }
}

/// `collecte member`: where the API is, and what to do.
#[derive(Debug, Args)]
pub struct MemberArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: MemberCommand,
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List every member: ID, origin (config or api), counter slot, attachment
    /// and prefixes.
    List,
    /// Show one member.
    Show {
        /// The member's id.
        id: String,
    },
    /// Create or replace an API member. The member is replaced whole: give
    /// every field it should have, as flags or as a file.
    Set {
        /// The member's id.
        id: String,
        /// Its [[access]] interface.
        #[arg(long, value_name = "IFACE")]
        interface: Option<String>,
        /// Outer VLAN tag (802.1ad); needs --c-vlan.
        #[arg(long, value_name = "VLAN")]
        s_vlan: Option<u16>,
        /// Inner VLAN tag, or the single 802.1Q tag.
        #[arg(long, value_name = "VLAN")]
        c_vlan: Option<u16>,
        /// The member's CPE MAC.
        #[arg(long, value_name = "MAC")]
        mac: Option<String>,
        /// A prefix of the member (repeat for several).
        #[arg(long, value_name = "PREFIX")]
        prefix: Vec<String>,
        /// The member as a JSON or TOML file (a [[member]] table's fields),
        /// instead of the flags.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with_all = ["interface", "s_vlan", "c_vlan", "mac", "prefix"]
        )]
        file: Option<PathBuf>,
    },
    /// Delete an API member.
    Delete {
        /// The member's id.
        id: String,
    },
    /// Replace every API member with those of FILE: JSON ({"members": [...]}
    /// or a list) or TOML ([[member]] tables). Members absent from FILE are
    /// deleted; unchanged ones keep their counters.
    Sync {
        /// The members.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// `collecte session`: where the API is, and what to do.
#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: SessionCommand,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List every PPPoE session: id (User-Name), state, line (interface,
    /// tags, client MAC), session id, MRU and addresses.
    List,
    /// Show one session, with its counters.
    Show {
        /// The session's id: its User-Name.
        id: String,
    },
}

impl SessionArgs {
    /// Where the API is, with which token, and how to print.
    pub fn options(&self) -> client::Options {
        self.api.options()
    }

    /// The request the subcommand asks for.
    pub fn request(&self) -> client::Request {
        match &self.command {
            SessionCommand::List => client::Request::Sessions,
            SessionCommand::Show { id } => client::Request::Session { id: id.clone() },
        }
    }
}

/// `collecte routes`: where the API is, and what to do.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: RoutesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Withdraw every member route from the table (the routing daemon stops
    /// announcing them, and traffic moves to the other routers) while the
    /// fast path goes on forwarding. Kept across restarts.
    Drain,
    /// Put the member routes back.
    Undrain,
    /// The table, how many routes it holds, and whether the router is
    /// drained.
    Status,
}

impl RoutesArgs {
    /// Where the API is, with which token, and how to print.
    pub fn options(&self) -> client::Options {
        self.api.options()
    }

    /// The request the subcommand asks for.
    pub fn request(&self) -> client::Request {
        match self.command {
            RoutesCommand::Drain => client::Request::Drain { drained: true },
            RoutesCommand::Undrain => client::Request::Drain { drained: false },
            RoutesCommand::Status => client::Request::Routes,
        }
    }
}

impl MemberArgs {
    /// Where the API is, with which token, and how to print.
    pub fn options(&self) -> client::Options {
        self.api.options()
    }

    /// The request the subcommand asks for.
    pub fn request(&self) -> client::Request {
        match &self.command {
            MemberCommand::List => client::Request::List,
            MemberCommand::Show { id } => client::Request::Show { id: id.clone() },
            MemberCommand::Set {
                id,
                interface,
                s_vlan,
                c_vlan,
                mac,
                prefix,
                file,
            } => client::Request::Set {
                id: id.clone(),
                member: match file {
                    Some(f) => MemberSource::File(f.clone()),
                    None => MemberSource::Fields(MemberFields {
                        interface: interface.clone(),
                        s_vlan: *s_vlan,
                        c_vlan: *c_vlan,
                        mac: mac.clone(),
                        prefixes: prefix.clone(),
                    }),
                },
            },
            MemberCommand::Delete { id } => client::Request::Delete { id: id.clone() },
            MemberCommand::Sync { file } => client::Request::Sync { file: file.clone() },
        }
    }
}
