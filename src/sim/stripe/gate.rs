//! Stripe simulator: the gate every request passes — `Request-Id`, secret-key auth (Bearer or
//! Basic), the per-mode rate budget, injected faults and `lock_timeout`, form decoding,
//! idempotency keys (replay, mismatch, in use), lost responses, latency and stats.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::form;
use super::idempotency::{fingerprint, Claim, Stored};
use super::knobs::Counters;
use super::params::Params;
use super::wire::{json_response, random_id, Mode, NotExecuted, StripeError};
use super::Inner;
use crate::sim::core::faults::gateway_timeout;
use crate::sim::core::Fault;

const MAX_BODY: usize = 1 << 20;

/// What the handlers learn from the gate.
#[derive(Clone, Debug)]
pub(crate) struct ReqCtx {
    pub mode: Mode,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub params: Params,
}

/// `METHOD /v1/...` with object ids replaced by `{id}`.
pub(crate) fn route_label(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| {
            let id = ["cus_", "in_", "evt_", "ii_"]
                .iter()
                .any(|p| s.starts_with(p));
            if id {
                "{id}"
            } else {
                s
            }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

fn unauthorized(message: String) -> Response {
    let mut resp = StripeError::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Stripe\""),
    );
    resp
}

/// `sk_test_****...wxyz`: the mode prefix and the last four characters.
fn redact(key: &str) -> String {
    let prefix = ["sk_test_", "sk_live_", "rk_test_", "rk_live_"]
        .iter()
        .find(|p| key.starts_with(**p))
        .copied()
        .unwrap_or("");
    let rest: Vec<char> = key[prefix.len()..].chars().collect();
    let keep = rest.len().min(4);
    let stars = "*".repeat(rest.len() - keep);
    let tail: String = rest[rest.len() - keep..].iter().collect();
    format!("{prefix}{stars}{tail}")
}

/// The mode of the key in `Authorization` (Bearer, or Basic with the key as user name).
/// `Err` is the 401's message.
fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Mode, String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.to_string()
    } else if scheme.eq_ignore_ascii_case("basic") {
        base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(|s| s.split_once(':').map_or(s.clone(), |(u, _)| u.to_string()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    if key.is_empty() {
        return Err(
            "You did not provide an API key. You need to provide your API key in the \
             Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
             YOUR_SECRET_KEY')."
                .into(),
        );
    }
    if key == inner.test_key {
        Ok(Mode::Test)
    } else if inner.live_key.as_deref() == Some(key.as_str()) {
        Ok(Mode::Live)
    } else {
        Err(format!("Invalid API Key provided: {}", redact(&key)))
    }
}

fn rate_limited() -> Response {
    StripeError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "invalid_request_error",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of \
         your requests."
            .into(),
    )
    .code("rate_limit")
    .into_response()
}

fn lock_timeout() -> Response {
    StripeError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "invalid_request_error",
        "This object cannot be accessed right now because another API request or Stripe \
         process is currently accessing it. If you see this error intermittently, retry the \
         request."
            .into(),
    )
    .code("lock_timeout")
    .into_response()
}

fn api_error(status: StatusCode) -> Response {
    let mut resp = StripeError::new(
        status,
        "api_error",
        "An unknown error occurred while processing your request.".into(),
    )
    .into_response();
    resp.headers_mut()
        .insert("stripe-should-retry", HeaderValue::from_static("true"));
    resp
}

pub(crate) async fn gate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let label = route_label(req.method(), req.uri().path());
    let request_id = random_id("req_", 14);
    let mut resp = admit(&inner, req, next, &request_id).await;
    inner.faults.delay().await;
    inner.stats.record(&label, resp.status());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&inner.api_version) {
        resp.headers_mut().entry("stripe-version").or_insert(v);
    }
    resp
}

async fn admit(inner: &Arc<Inner>, req: Request, next: Next, request_id: &str) -> Response {
    let mode = match authenticate(inner, req.headers()) {
        Ok(m) => m,
        Err(message) => return unauthorized(message),
    };
    if inner
        .budgets
        .take_all(&[mode.budget()], inner.clock.now())
        .is_err()
    {
        return rate_limited();
    }
    let is_write = matches!(*req.method(), Method::POST | Method::DELETE);
    let fault = inner.faults.draw(is_write);
    inner.stats.record_fault(fault);
    match fault {
        Fault::ServerError(status) => return api_error(status),
        Fault::Throttle => return rate_limited(),
        Fault::None | Fault::LoseResponse => {}
    }
    if is_write && inner.knobs.lock_timeout.roll() {
        Counters::add(&inner.counters.lock_timeouts);
        return lock_timeout();
    }
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StripeError::invalid("body", "The request body is too large.".into())
            .into_response();
    };
    let is_post = parts.method == Method::POST;
    let raw = if is_post && !bytes.is_empty() {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        parts.uri.query().unwrap_or("").to_string()
    };
    let params = match form::parse(&raw) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let idempotency_key = parts
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|_| is_post)
        .map(str::to_string);
    let mut running = None;
    if let Some(key) = &idempotency_key {
        if key.len() > 255 {
            return StripeError::invalid(
                "Idempotency-Key",
                format!(
                    "Invalid Idempotency-Key: must be at most 255 characters, got {}.",
                    key.len()
                ),
            )
            .into_response();
        }
        let now = inner.clock.now().timestamp();
        let fp = fingerprint(parts.method.as_str(), parts.uri.path(), &raw);
        match inner.idempotency.claim(mode, key, fp, now) {
            Claim::Run(r) => {
                let ms = inner
                    .knobs
                    .keyed_write_ms
                    .load(std::sync::atomic::Ordering::Relaxed);
                if ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                running = Some(r);
            }
            Claim::Replay(stored) => return replay(inner, stored),
            Claim::InUse => return in_use(),
            Claim::Mismatch => return mismatch(key),
        }
    }
    parts.extensions.insert(ReqCtx {
        mode,
        request_id: request_id.to_string(),
        idempotency_key,
        params,
    });
    let mut resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if let Some(run) = running {
        let executed = resp.extensions().get::<NotExecuted>().is_none();
        let (parts, body) = resp.into_parts();
        let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let stored = executed.then(|| Stored {
            status: parts.status,
            body: body.clone(),
            request_id: request_id.to_string(),
        });
        run.finish(stored, inner.clock.now().timestamp());
        resp = Response::from_parts(parts, Body::from(body));
    }
    if fault == Fault::LoseResponse {
        // the write happened (events and webhooks included); only its answer is lost
        return gateway_timeout();
    }
    resp
}

fn replay(inner: &Inner, stored: Stored) -> Response {
    Counters::add(&inner.counters.replays);
    let mut resp = (stored.status, stored.body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Ok(v) = HeaderValue::from_str(&stored.request_id) {
        h.insert("original-request", v);
    }
    resp
}

fn in_use() -> Response {
    let mut resp = StripeError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "There is currently another in-progress request using this Idempotent Key (probably \
         because of a timeout). Please try again later."
            .into(),
    )
    .code("idempotency_key_in_use")
    .into_response();
    resp.headers_mut()
        .insert("stripe-should-retry", HeaderValue::from_static("true"));
    resp
}

fn mismatch(key: &str) -> Response {
    StripeError::new(
        StatusCode::BAD_REQUEST,
        "idempotency_error",
        format!(
            "Keys for idempotent requests can only be used with the same parameters they were \
             first used with. Try using a key other than '{key}' if you meant to execute a \
             different request."
        ),
    )
    .into_response()
}

/// Unknown routes and methods, as Stripe answers them.
pub(crate) async fn unrecognized(method: Method, uri: axum::http::Uri) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": {
            "type": "invalid_request_error",
            "message": format!("Unrecognized request URL ({method}: {}).", uri.path()),
        }}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_redaction() {
        assert_eq!(
            route_label(&Method::POST, "/v1/invoices/in_123/mark_uncollectible"),
            "POST /v1/invoices/{id}/mark_uncollectible"
        );
        assert_eq!(
            route_label(&Method::GET, "/v1/customers/cus_ABC"),
            "GET /v1/customers/{id}"
        );
        assert_eq!(redact("sk_test_abcdefgh1234"), "sk_test_********1234");
        assert_eq!(redact("abc"), "abc");
        assert_eq!(redact("sk_live_x"), "sk_live_x");
    }
}
