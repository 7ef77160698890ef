//! collecte: the daemon, tracer and CLI of the collecte XDP router, over
//! the planning of `router_core`.
//!
//! The daemon's roles, one module each: [`daemon`] runs `collecte run`
//! around the [`router`], the [`api`] and the [`metrics`]; members added
//! through the API are kept by [`provisioning`]; [`datapath`] is the only
//! module that touches aya and the kernel maps, [`netlink`] the only one
//! that talks to the kernel over rtnetlink about interfaces, [`routes`]
//! the one that keeps the member routes in a kernel routing table;
//! [`trace`] runs pcaps through
//! the program; [`top`] is a live terminal view of the metrics; [`cli`] is
//! the command line; [`alloc`] the allocator and
//! memory helpers; [`edge`] what the router does on members' lines besides
//! forwarding (router advertisements, VLAN offloads).
pub mod alloc;
pub mod api;
pub mod cli;
pub mod daemon;
pub mod datapath;
pub mod edge;
pub mod explain;
pub mod metrics;
pub mod netlink;
pub mod packet_socket;
pub mod pppoe;
pub mod provisioning;
pub mod radius;
pub mod router;
pub mod routes;
pub mod sessions;
pub mod top;
pub mod trace;
