//! Simulator core: request statistics — calls per route, per status, 429s and 5xx, and the
//! faults injected (5xx, 429, lost responses) — with a reset, recorded once per answered
//! request.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::{Method, StatusCode};

use super::faults::Fault;
use super::lock;

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Every answered request (refused ones included).
    pub requests: u64,
    /// Requests per route label (see [`route_label`]).
    pub by_route: BTreeMap<String, u64>,
    /// Requests per response status.
    pub by_status: BTreeMap<u16, u64>,
    /// Responses with status 429.
    pub throttled: u64,
    /// Responses with a 5xx status.
    pub server_errors: u64,
    /// Requests answered with an injected 5xx.
    pub errors_injected: u64,
    /// Requests answered with an injected 429 (also counted in `throttled`).
    pub throttles_injected: u64,
    /// Writes performed but answered 504 (also counted in `server_errors`).
    pub lost_responses: u64,
}

impl StatsSnapshot {
    /// Requests recorded under `route` (0 if none).
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }

    /// Responses recorded with `status` (0 if none).
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Thread-safe request counters.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<StatsSnapshot>,
}

impl RequestStats {
    pub fn new() -> RequestStats {
        RequestStats::default()
    }

    /// Counts one answered request.
    pub fn record(&self, route: &str, status: StatusCode) {
        let mut c = lock(&self.counts);
        c.requests += 1;
        *c.by_route.entry(route.to_string()).or_default() += 1;
        *c.by_status.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::TOO_MANY_REQUESTS {
            c.throttled += 1;
        }
        if status.is_server_error() {
            c.server_errors += 1;
        }
    }

    /// Counts one injected fault (`Fault::None` counts nothing); the response it produced is
    /// recorded with [`RequestStats::record`] as usual.
    pub fn record_fault(&self, fault: Fault) {
        let mut c = lock(&self.counts);
        match fault {
            Fault::None => {}
            Fault::ServerError(_) => c.errors_injected += 1,
            Fault::Throttle => c.throttles_injected += 1,
            Fault::LoseResponse => c.lost_responses += 1,
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        lock(&self.counts).clone()
    }

    pub fn reset(&self) {
        *lock(&self.counts) = StatsSnapshot::default();
    }
}

/// `METHOD /path` with every id-like segment (all digits, or 16+ hex characters) replaced by
/// `{id}` and a trailing `.json` dropped, e.g. `GET /api/v2/users/{id}`.
pub fn route_label(method: &Method, path: &str) -> String {
    let path = path.strip_suffix(".json").unwrap_or(path);
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            let s = s.strip_suffix(".json").unwrap_or(s);
            let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let hex = s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
            if digits || hex {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_collapse_ids() {
        assert_eq!(
            route_label(&Method::GET, "/api/v2/users/10000000001.json"),
            "GET /api/v2/users/{id}"
        );
        assert_eq!(
            route_label(&Method::GET, "/api/v2/users.json"),
            "GET /api/v2/users"
        );
        assert_eq!(
            route_label(
                &Method::GET,
                "/api/v2/job_statuses/8b726e606741012ffc2d782bcb7848fe"
            ),
            "GET /api/v2/job_statuses/{id}"
        );
        assert_eq!(
            route_label(&Method::PUT, "/api/v2/users/update_many"),
            "PUT /api/v2/users/update_many"
        );
    }

    #[test]
    fn counts_and_resets() {
        let s = RequestStats::new();
        s.record("GET /a", StatusCode::OK);
        s.record("GET /a", StatusCode::TOO_MANY_REQUESTS);
        s.record("POST /b", StatusCode::BAD_GATEWAY);
        s.record("POST /b", StatusCode::GATEWAY_TIMEOUT);
        let snap = s.snapshot();
        assert_eq!(snap.requests, 4);
        assert_eq!((snap.route("GET /a"), snap.route("POST /b")), (2, 2));
        assert_eq!((snap.throttled, snap.server_errors), (1, 2));
        assert_eq!((snap.status(200), snap.status(404)), (1, 0));
        s.record_fault(Fault::None);
        s.record_fault(Fault::ServerError(StatusCode::BAD_GATEWAY));
        s.record_fault(Fault::Throttle);
        s.record_fault(Fault::Throttle);
        s.record_fault(Fault::LoseResponse);
        let snap = s.snapshot();
        assert_eq!(
            (
                snap.errors_injected,
                snap.throttles_injected,
                snap.lost_responses
            ),
            (1, 2, 1)
        );
        assert_eq!(snap.requests, 4, "faults are not requests");
        s.reset();
        assert_eq!(s.snapshot(), StatsSnapshot::default());
    }
}
