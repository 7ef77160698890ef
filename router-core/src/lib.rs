//! router-core: what collecte's tables should hold, computed from what it
//! is told, with no kernel and no network in it.
//!
//! - [`member`]: a member and the rules of its own fields;
//! - [`config`]: the configuration file: schema, reading, validation;
//! - [`store`]: members kept compactly, and the streaming JSON reader of
//!   member lists.
pub mod config;
pub mod member;
pub mod store;
