//! HubSpot simulator: fault injection — random 5xx answers, injected 429 throttles and lost
//! write responses (the write is done, the client sees a 504), with rates changeable at run time.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::http;
use super::Inner;

/// A probability in `[0, 1]`; NaN and negatives become 0.
fn clamp(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// One rate stored as `f64` bits.
struct Rate(AtomicU64);

impl Rate {
    fn new(rate: f64) -> Rate {
        Rate(AtomicU64::new(clamp(rate).to_bits()))
    }

    fn set(&self, rate: f64) {
        self.0.store(clamp(rate).to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Whether this request draws the fault.
    fn roll(&self) -> bool {
        let rate = self.get();
        rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
    }
}

/// The fault rates of one simulator.
pub(crate) struct Faults {
    error: Rate,
    throttle: Rate,
    lost: Rate,
    /// Listings answer an empty first page, as an app in an outage or a token that lost its
    /// read rights can (the pages lie; reads by id still work).
    pub(crate) empty_listings: std::sync::atomic::AtomicBool,
}

/// What the gate does with one authenticated API request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    /// Answer a 5xx without doing anything.
    Error,
    /// Answer a 429 without doing anything.
    Throttle,
    /// Do the write, then answer 504 instead of its response.
    LoseResponse,
}

impl Faults {
    pub(crate) fn new(error_rate: f64, throttle_rate: f64, lost_response_rate: f64) -> Faults {
        Faults {
            error: Rate::new(error_rate),
            throttle: Rate::new(throttle_rate),
            lost: Rate::new(lost_response_rate),
            empty_listings: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn set(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.error.set(error_rate);
        self.throttle.set(throttle_rate);
        self.lost.set(lost_response_rate);
    }

    /// Draws the fault for a request: errors first, then throttles, then (writes only) lost
    /// responses.
    pub(crate) fn draw(&self, method: &Method, path: &str) -> Fault {
        if !path.starts_with(API_PREFIX) {
            return Fault::None;
        }
        if self.error.roll() {
            Fault::Error
        } else if self.throttle.roll() {
            Fault::Throttle
        } else if is_write(method, path) && self.lost.roll() {
            Fault::LoseResponse
        } else {
            Fault::None
        }
    }
}

const API_PREFIX: &str = "/crm/v3/objects/";

/// Create / update / archive, single or batch (upsert included); not reads nor search.
pub(crate) fn is_write(method: &Method, path: &str) -> bool {
    let Some(rest) = path.strip_prefix(API_PREFIX) else {
        return false;
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segs.as_slice() {
        [_object] => method == Method::POST,
        [_object, "search"] => false,
        [_object, _id] => method == Method::PATCH || method == Method::DELETE,
        [_object, "batch", op] => {
            method == Method::POST && matches!(*op, "create" | "update" | "upsert" | "archive")
        }
        _ => false,
    }
}

/// The 429 of the `TEN_SECONDLY_ROLLING` policy. `retry_after` None (injected throttles)
/// leaves `Retry-After` out so clients fall back to their own back-off.
pub(crate) fn rate_limited(inner: &Inner, retry_after: Option<u64>) -> Response {
    let mut resp = http::json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": http::correlation_id(),
            "policyName": "TEN_SECONDLY_ROLLING",
        }),
    );
    if let Some(limiter) = &inner.limiter {
        limiter.headers(resp.headers_mut(), 0);
    }
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A random 500, 502 or 503: HubSpot's JSON error for 500 and 503, a gateway's plain text
/// for 502.
pub(crate) fn server_error() -> Response {
    match rand::random::<u8>() % 3 {
        0 => http::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "internal error",
        ),
        1 => plain(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
        _ => http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "INTERNAL_ERROR",
            "internal error",
        ),
    }
}

/// What the client sees when the response to its write was lost.
pub(crate) fn gateway_timeout() -> Response {
    plain(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_writes() {
        let w = |m: Method, p: &str| is_write(&m, p);
        assert!(w(Method::POST, "/crm/v3/objects/contacts"));
        assert!(w(Method::PATCH, "/crm/v3/objects/contacts/12"));
        assert!(w(Method::DELETE, "/crm/v3/objects/deals/12"));
        for op in ["create", "update", "upsert", "archive"] {
            assert!(w(
                Method::POST,
                &format!("/crm/v3/objects/contacts/batch/{op}")
            ));
        }
        assert!(!w(Method::POST, "/crm/v3/objects/contacts/batch/read"));
        assert!(!w(Method::POST, "/crm/v3/objects/contacts/search"));
        assert!(!w(Method::GET, "/crm/v3/objects/contacts/12"));
        assert!(!w(Method::GET, "/crm/v3/objects/contacts"));
        assert!(!w(Method::POST, "/elsewhere"));
    }

    #[test]
    fn rates_clamp_and_roll() {
        let f = Faults::new(f64::NAN, 7.0, -1.0);
        assert_eq!(
            (f.error.get(), f.throttle.get(), f.lost.get()),
            (0.0, 1.0, 0.0)
        );
        assert_eq!(
            f.draw(&Method::GET, "/crm/v3/objects/contacts"),
            Fault::Throttle
        );
        assert_eq!(f.draw(&Method::GET, "/other"), Fault::None);
        f.set(0.0, 0.0, 1.0);
        assert_eq!(
            f.draw(&Method::GET, "/crm/v3/objects/contacts"),
            Fault::None
        );
        assert_eq!(
            f.draw(&Method::POST, "/crm/v3/objects/contacts"),
            Fault::LoseResponse
        );
        f.set(1.0, 1.0, 1.0);
        assert_eq!(
            f.draw(&Method::POST, "/crm/v3/objects/contacts"),
            Fault::Error
        );
    }
}
