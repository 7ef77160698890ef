//! collecte: the userspace side of the collecte XDP router.
//!
//! One module per concern:
//! - [`config`]: the TOML configuration and its validation.
//! - [`routes`]: the prefix table (multibit trie) as the datapath reads it.
//! - [`members`]: the desired state of every datapath table, from the
//!   configuration and the interfaces.
//! - [`daemon`]: `collecte run`, the loop that keeps everything in step.
//! - [`datapath`]: the only module that touches aya and the kernel maps.
//! - [`metrics`]: the Prometheus text format of the counters.
//! - [`neighbors`]: interfaces and neighbours, from the kernel.
//! - [`trace`]: runs packets through the real program (the packet tracer).
//! - [`api`]: the provisioning API (HTTP), and its client `collecte member`.
//! - [`state`]: the member set's origins and the persistent API members.
//! - [`cli`]: the command line.
//! - [`alloc`]: the allocator, with huge pages for large tables.
pub mod alloc;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod datapath;
pub mod members;
pub mod metrics;
pub mod neighbors;
pub mod routes;
pub mod state;
pub mod top;
pub mod trace;
