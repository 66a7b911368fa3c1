//! Simulators of the apps ferry syncs with: local HTTP servers that follow the vendors' wire
//! formats strictly (auth, paging, batch semantics, errors, rate limits, signed webhooks), so the
//! engine can be tested and benchmarked offline.

pub mod core;
pub mod hubspot;
pub mod stripe;
pub mod zendesk;
