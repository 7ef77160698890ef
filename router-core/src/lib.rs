//! router-core: what collecte's tables should hold, computed from what it
//! is told, with no kernel and no network in it.
//!
//! - [`member`]: a member and the rules of its own fields;
//! - [`config`]: the configuration file: schema, reading, validation;
//! - [`store`]: members kept compactly, and the streaming JSON reader of
//!   member lists;
//! - [`routes`]: the prefix table, a multibit trie laid out as the datapath
//!   reads it;
//! - [`tables`]: the plan of every datapath table (member slots,
//!   attachments, interfaces, prefixes), changed member by member or by
//!   whole sets;
//! - [`changes`]: what the plan hands the datapath to write;
//! - [`export`]: the member routes exported to a kernel table (`[routes]`):
//!   what to add and remove.
pub mod changes;
pub mod config;
pub mod export;
pub mod member;
pub mod routes;
pub mod store;
pub mod tables;
