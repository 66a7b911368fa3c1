//! REST simulator: the gate and route table — every request is matched against the profile's
//! paths (sign-in endpoint, collections, items, search endpoints), then passes auth, the rate
//! limit and the injected faults (5xx, 429 with `Retry-After: 1`, writes performed but
//! answered 504), gets its latency, and is counted in the stats.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::wire::{pairs, ApiError};
use super::{auth, lists, records, Inner};
use crate::sim::core::faults::{gateway_timeout, plain};
use crate::sim::core::{route_label, Fault, Verdict};

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// The sign-in endpoint (client credentials or login).
    SignIn,
    Collection(String),
    Item(String, String),
    Search(String),
    Unknown,
}

fn resolve(inner: &Inner, path: &str) -> Target {
    let p = &inner.profile;
    if p.auth.endpoint().map(|e| e.trim_end_matches('/')) == Some(path) {
        return Target::SignIn;
    }
    for (name, r) in &p.resources {
        if r.search_path.as_deref().map(|s| s.trim_end_matches('/')) == Some(path) {
            return Target::Search(name.clone());
        }
    }
    for (name, r) in &p.resources {
        let base = r.path.trim_end_matches('/');
        if path == base {
            return Target::Collection(name.clone());
        }
        if let Some(id) = path.strip_prefix(base).and_then(|s| s.strip_prefix('/')) {
            if !id.is_empty() && !id.contains('/') {
                return Target::Item(name.clone(), id.to_string());
            }
        }
    }
    Target::Unknown
}

/// `METHOD /path` with record ids as `{id}`.
fn label(inner: &Inner, method: &Method, path: &str, target: &Target) -> String {
    match target {
        Target::Item(name, _) => {
            let base = inner
                .profile
                .resource(name)
                .map(|r| r.path.trim_end_matches('/'))
                .unwrap_or("");
            format!("{method} {base}/{{id}}")
        }
        Target::Unknown => route_label(method, path),
        _ => format!("{method} {path}"),
    }
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trimmed = uri.path().trim_end_matches('/');
    let path = if trimmed.is_empty() { "/" } else { trimmed };
    let target = resolve(&inner, path);
    let label = label(&inner, &method, path, &target);
    let resp = admit(&inner, &method, path, uri.query(), &headers, &body, &target);
    inner.faults.delay().await;
    inner.stats.record(&label, resp.status());
    resp
}

fn server_error(status: StatusCode) -> Response {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        ApiError::new(status, "server_error", "an unexpected error occurred").into_response()
    } else {
        // what a gateway in front of the app answers
        let text = if status == StatusCode::BAD_GATEWAY {
            "502 Bad Gateway\n"
        } else {
            "503 Service Unavailable\n"
        };
        plain(status, text)
    }
}

fn admit(
    inner: &Inner,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    target: &Target,
) -> Response {
    if *target == Target::SignIn {
        if method != Method::POST {
            return ApiError::method("POST").into_response();
        }
        return auth::sign_in(inner, headers, body);
    }
    let query = pairs(query);
    if let Err(e) = auth::check(inner, headers, &query) {
        return e.into_response();
    }
    if *target == Target::Unknown {
        let msg = format!("no route for {method} {path}");
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", msg).into_response();
    }
    if let Some(budget) = &inner.budget {
        if let Verdict::Exhausted { retry_after_secs } = budget.take(inner.clock.now()) {
            return ApiError::throttled(retry_after_secs).into_response();
        }
    }
    let is_write = match target {
        Target::Collection(_) => method == Method::POST,
        Target::Item(..) => matches!(*method, Method::PUT | Method::PATCH | Method::DELETE),
        _ => false,
    };
    let fault = inner.faults.draw(is_write);
    inner.stats.record_fault(fault);
    match fault {
        Fault::ServerError(status) => return server_error(status),
        Fault::Throttle => return ApiError::throttled(1).into_response(),
        Fault::None | Fault::LoseResponse => {}
    }
    let resp = match (target, method.clone()) {
        (Target::Collection(r), Method::GET) => lists::list(inner, r, path, query),
        (Target::Collection(r), Method::POST) => records::create(inner, r, body),
        (Target::Collection(_), _) => ApiError::method("GET, POST").into_response(),
        (Target::Item(r, id), Method::GET) => records::get(inner, r, id),
        (Target::Item(r, id), Method::DELETE) => records::delete(inner, r, id),
        (Target::Item(r, id), m) => records::update(inner, r, id, &m, body),
        (Target::Search(r), Method::POST) => lists::search(inner, r, body),
        (Target::Search(_), _) => ApiError::method("POST").into_response(),
        (Target::SignIn | Target::Unknown, _) => StatusCode::NOT_FOUND.into_response(),
    };
    if fault == Fault::LoseResponse {
        return gateway_timeout();
    }
    resp
}
