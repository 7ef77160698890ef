//! The counters of the metrics: RADIUS requests by kind and result
//! (`collecte_radius_requests_total`), sessions by state
//! (`collecte_pppoe_sessions`) and the engine's discovery counters.
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pppoe::Counters;
use crate::radius::RadiusError;

/// A RADIUS request's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadiusKind {
    Auth,
    Acct,
}

/// A RADIUS request's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RadiusResult {
    /// Access-Accept, or an Accounting-Response.
    Accept,
    /// Access-Reject.
    Reject,
    /// No server answered.
    Timeout,
    /// Anything else (a challenge, a socket or encoding error).
    Error,
}

impl RadiusResult {
    pub const ALL: [RadiusResult; 4] = [
        RadiusResult::Accept,
        RadiusResult::Reject,
        RadiusResult::Timeout,
        RadiusResult::Error,
    ];

    /// The result of an exchange.
    pub fn of<T>(r: &Result<T, RadiusError>) -> RadiusResult {
        match r {
            Ok(_) => RadiusResult::Accept,
            Err(RadiusError::Rejected { .. }) => RadiusResult::Reject,
            Err(RadiusError::Unreachable { .. }) => RadiusResult::Timeout,
            Err(_) => RadiusResult::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RadiusResult::Accept => "accept",
            RadiusResult::Reject => "reject",
            RadiusResult::Timeout => "timeout",
            RadiusResult::Error => "error",
        }
    }
}

impl RadiusKind {
    pub const ALL: [RadiusKind; 2] = [RadiusKind::Auth, RadiusKind::Acct];

    pub fn as_str(self) -> &'static str {
        match self {
            RadiusKind::Auth => "auth",
            RadiusKind::Acct => "acct",
        }
    }
}

/// RADIUS requests counted by kind and result.
#[derive(Debug, Default)]
pub struct RadiusStats {
    counts: [[AtomicU64; 4]; 2],
}

impl RadiusStats {
    pub fn count(&self, kind: RadiusKind, result: RadiusResult) {
        self.counts[kind as usize][result as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, kind: RadiusKind, result: RadiusResult) -> u64 {
        self.counts[kind as usize][result as usize].load(Ordering::Relaxed)
    }
}

/// What a scrape reports of PPPoE: sessions by state, RADIUS requests by
/// kind and result, the engine's counters.
#[derive(Clone, Debug, Default)]
pub struct PppoeGauges {
    pub by_state: Vec<(&'static str, usize)>,
    pub radius: Vec<(&'static str, &'static str, u64)>,
    pub engine: Counters,
}
