//! Simulator core: what every app simulator shares — a controllable clock, run-time fault
//! knobs, named rate budgets, an ordered webhook sender, request stats, query strings and the
//! server's start and stop. Nothing here knows any app; an app simulator adds its wire format.

pub mod budget;
pub mod clock;
pub mod faults;
pub mod query;
pub mod server;
pub mod stats;
pub mod webhook;

use std::sync::{Mutex, MutexGuard};

pub use budget::{RateBudget, RateBudgets, Verdict};
pub use clock::SimClock;
pub use faults::{Fault, FaultArgs, FaultSettings, Faults};
pub use query::Query;
pub use server::{bind, Bound, Shutdown};
pub use stats::{route_label, RequestStats, StatsSnapshot};
pub use webhook::{DeliveryPolicy, WebhookCounts, WebhookFormat, WebhookSender};

/// Locks a std mutex, ignoring poisoning (simulator state stays consistent per operation).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
