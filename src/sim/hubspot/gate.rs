//! HubSpot simulator: the gate every request passes — bearer-token auth (401), the
//! `TEN_SECONDLY_ROLLING` budget with its `X-HubSpot-RateLimit-*` headers and HubSpot's 429
//! body, injected faults rendered as HubSpot answers them (which requests are writes, 5xx
//! bodies), latency and stats, on the shared simulator core.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use super::{http, Inner};
use crate::sim::core::faults::{gateway_timeout, plain};
use crate::sim::core::{route_label, Fault, Faults, RateBudgets};

/// The budget of the `TEN_SECONDLY_ROLLING` policy (over all API requests).
pub(crate) const TEN_SECONDLY: &str = "ten_secondly_rolling";

const API_PREFIX: &str = "/crm/v3/objects/";

/// The rate budgets of a simulator: `rate_limit` requests per rolling window, or none.
pub(crate) fn budgets(rate_limit: Option<(u32, Duration)>) -> RateBudgets {
    match rate_limit {
        Some((max, window)) => RateBudgets::new().with(TEN_SECONDLY, max, window),
        None => RateBudgets::new(),
    }
}

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

/// Draws the fault for a request: only the objects API draws any (errors first, then
/// throttles, then, for writes only, lost responses).
pub(crate) fn draw(faults: &Faults, method: &Method, path: &str) -> Fault {
    if !path.starts_with(API_PREFIX) {
        return Fault::None;
    }
    faults.draw(is_write(method, path))
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && token.trim() == inner.token
}

fn unauthorized() -> Response {
    http::error(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

/// The Max / Remaining / Interval headers of the ten-secondly budget (none without one).
fn rate_headers(inner: &Inner, h: &mut HeaderMap, remaining: u32) {
    let Some(budget) = inner.budgets.get(TEN_SECONDLY) else {
        return;
    };
    h.insert("x-hubspot-ratelimit-max", HeaderValue::from(budget.limit()));
    h.insert(
        "x-hubspot-ratelimit-remaining",
        HeaderValue::from(remaining),
    );
    let ms = u64::try_from(budget.window().as_millis()).unwrap_or(u64::MAX);
    h.insert(
        "x-hubspot-ratelimit-interval-milliseconds",
        HeaderValue::from(ms),
    );
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
    rate_headers(inner, resp.headers_mut(), 0);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// An injected 5xx: HubSpot's JSON error for 500 and 503, a gateway's plain text for 502.
fn server_error(status: StatusCode) -> Response {
    match status {
        StatusCode::BAD_GATEWAY => plain(status, "502 Bad Gateway\n"),
        _ => http::error(status, "INTERNAL_ERROR", "internal error"),
    }
}

/// Auth (401, neither counted nor delayed), then the rest of [`admit`]; every authenticated
/// request is counted, then answered after the configured latency.
pub(crate) async fn gate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    if !authorized(&inner, req.headers()) {
        return unauthorized();
    }
    let label = route_label(req.method(), req.uri().path());
    let resp = admit(&inner, req, next).await;
    inner.stats.record(&label, resp.status());
    inner.faults.delay().await;
    resp
}

/// Rate limit (429 + headers), injected faults (5xx, 429, lost write responses), the handler,
/// and the rate headers on its answer.
async fn admit(inner: &Inner, req: Request, next: Next) -> Response {
    let remaining = match inner.budgets.take_all(&[TEN_SECONDLY], inner.clock.now()) {
        Ok(taken) => taken.first().map(|(_, r)| *r),
        Err((_, secs)) => return rate_limited(inner, Some(secs)),
    };
    let fault = draw(&inner.faults, req.method(), req.uri().path());
    inner.stats.record_fault(fault);
    match fault {
        Fault::None | Fault::LoseResponse => {}
        Fault::ServerError(status) => return server_error(status),
        Fault::Throttle => return rate_limited(inner, None),
    }
    let mut resp = next.run(req).await;
    if fault == Fault::LoseResponse {
        // The write happened (webhooks included); only the answer is lost on the way back.
        return gateway_timeout();
    }
    if let Some(r) = remaining {
        rate_headers(inner, resp.headers_mut(), r);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::core::{FaultSettings, Verdict};
    use chrono::{DateTime, TimeDelta};

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
        let f = Faults::new(&FaultSettings {
            error_rate: f64::NAN,
            throttle_rate: 7.0,
            lost_response_rate: -1.0,
            ..FaultSettings::default()
        });
        let s = f.settings();
        assert_eq!(
            (s.error_rate, s.throttle_rate, s.lost_response_rate),
            (0.0, 1.0, 0.0)
        );
        assert_eq!(
            draw(&f, &Method::GET, "/crm/v3/objects/contacts"),
            Fault::Throttle
        );
        assert_eq!(draw(&f, &Method::GET, "/other"), Fault::None);
        f.set_rates(0.0, 0.0, 1.0);
        assert_eq!(
            draw(&f, &Method::GET, "/crm/v3/objects/contacts"),
            Fault::None
        );
        assert_eq!(
            draw(&f, &Method::POST, "/crm/v3/objects/contacts"),
            Fault::LoseResponse
        );
        f.set_rates(1.0, 1.0, 1.0);
        assert!(matches!(
            draw(&f, &Method::POST, "/crm/v3/objects/contacts"),
            Fault::ServerError(_)
        ));
    }

    #[test]
    fn rolling_window() {
        let budgets = budgets(Some((2, Duration::from_secs(10))));
        let l = budgets.get(TEN_SECONDLY).expect("budget");
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        assert_eq!(l.take(t0), Verdict::Allowed { remaining: 1 });
        assert_eq!(
            l.take(t0 + TimeDelta::seconds(1)),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(
            l.take(t0 + TimeDelta::seconds(2)),
            Verdict::Exhausted {
                retry_after_secs: 8
            }
        );
        assert_eq!(
            l.take(t0 + TimeDelta::milliseconds(9_999)),
            Verdict::Exhausted {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            l.take(t0 + TimeDelta::seconds(10)),
            Verdict::Allowed { remaining: 0 }
        );
        assert!(super::budgets(None).get(TEN_SECONDLY).is_none());
    }

    #[test]
    fn server_errors_render_as_hubspot_and_its_gateway_answer() {
        for (status, json) in [(500, true), (502, false), (503, true)] {
            let resp = server_error(StatusCode::from_u16(status).expect("status"));
            assert_eq!(resp.status().as_u16(), status);
            let ct = resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap_or("")
                .to_string();
            assert_eq!(ct.starts_with("application/json"), json, "{status}: {ct}");
        }
    }
}
