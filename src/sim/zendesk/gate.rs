//! Zendesk simulator: the route table and the gate every request passes — authentication
//! (Basic `{email}/token` or OAuth bearer), the account and incremental rate budgets with
//! `X-Rate-Limit` headers and 429 + `Retry-After`, injected faults, latency and stats.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use base64::Engine as _;
use serde_json::json;

use super::wire::{error, json_response};
use super::{bulk, export, jobs, orgs_api, users_api, Inner};
use crate::sim::core::faults::{gateway_timeout, plain};
use crate::sim::core::{route_label, Fault};

pub(crate) const ACCOUNT: &str = "account";
pub(crate) const INCREMENTAL: &str = "incremental";

/// Registers `path` and `path.json` (Zendesk accepts both).
fn both(r: Router<Arc<Inner>>, path: &str, mr: MethodRouter<Arc<Inner>>) -> Router<Arc<Inner>> {
    r.route(path, mr.clone()).route(&format!("{path}.json"), mr)
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    let u = "/api/v2/users";
    let o = "/api/v2/organizations";
    let mut r = Router::new();
    r = both(r, u, get(users_api::list).post(users_api::create));
    r = both(r, &format!("{u}/me"), get(users_api::me));
    r = both(r, &format!("{u}/show_many"), get(users_api::show_many));
    r = both(r, &format!("{u}/search"), get(users_api::search));
    r = both(
        r,
        &format!("{u}/create_or_update"),
        post(users_api::create_or_update),
    );
    r = both(
        r,
        &format!("{u}/create_many"),
        post(bulk::users_create_many),
    );
    r = both(
        r,
        &format!("{u}/create_or_update_many"),
        post(bulk::users_create_or_update_many),
    );
    r = both(r, &format!("{u}/update_many"), put(bulk::users_update_many));
    r = both(
        r,
        &format!("{u}/destroy_many"),
        axum::routing::delete(bulk::users_destroy_many),
    );
    r = r.route(
        &format!("{u}/{{id}}"),
        get(users_api::get_one)
            .put(users_api::update)
            .delete(users_api::destroy),
    );
    r = both(r, o, get(orgs_api::list).post(orgs_api::create));
    r = both(r, &format!("{o}/show_many"), get(orgs_api::show_many));
    r = both(r, &format!("{o}/create_many"), post(bulk::orgs_create_many));
    r = both(r, &format!("{o}/update_many"), put(bulk::orgs_update_many));
    r = both(
        r,
        &format!("{o}/destroy_many"),
        axum::routing::delete(bulk::orgs_destroy_many),
    );
    r = r.route(
        &format!("{o}/{{id}}"),
        get(orgs_api::get_one)
            .put(orgs_api::update)
            .delete(orgs_api::destroy),
    );
    r = both(r, "/api/v2/job_statuses/show_many", get(jobs::show_many));
    r = r.route("/api/v2/job_statuses/{id}", get(jobs::show));
    r = both(r, "/api/v2/incremental/users/cursor", get(export::users));
    r = both(
        r,
        "/api/v2/incremental/organizations",
        get(export::organizations),
    );
    r.fallback(fallback)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

async fn fallback() -> Response {
    error(StatusCode::NOT_FOUND, "InvalidEndpoint", "Not found")
}

/// Basic `{email}/token:{api_token}` (email case-insensitive) or `Bearer <oauth token>`.
fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return inner.oauth_token.as_deref() == Some(credentials);
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return false;
    };
    let Some(email) = user.strip_suffix("/token") else {
        return false;
    };
    email.eq_ignore_ascii_case(&inner.email) && password == inner.token
}

fn unauthorized() -> Response {
    let mut resp = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "Couldn't authenticate you"}),
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Web Password\""),
    );
    resp
}

/// `X-Rate-Limit` / `X-Rate-Limit-Remaining` of the account budget.
fn rate_headers(inner: &Inner, h: &mut HeaderMap, remaining: u32) {
    if let Some(b) = inner.budgets.get(ACCOUNT) {
        h.insert("x-rate-limit", HeaderValue::from(b.limit()));
        h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
    }
}

/// The 429 of an exhausted budget (`budget` names it). Zendesk documents the status and
/// `Retry-After`; the JSON body's wording is unconfirmed (plain text is also seen).
fn throttled(inner: &Inner, budget: &str, retry_after: u64) -> Response {
    let description = if budget == INCREMENTAL {
        "Number of allowed incremental export API requests per minute exceeded"
    } else {
        "Number of allowed API requests per minute exceeded"
    };
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        "APIRateLimitExceeded",
        description,
    );
    let now = inner.clock.now();
    let remaining = inner.budgets.get(ACCOUNT).map_or(0, |b| {
        if budget == ACCOUNT {
            0
        } else {
            b.remaining(now)
        }
    });
    rate_headers(inner, resp.headers_mut(), remaining);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    resp
}

/// An injected 5xx: Zendesk's JSON for 500, a proxy's plain text for 502 and 503 (bodies
/// unconfirmed; clients should only rely on the status).
fn server_error(status: StatusCode) -> Response {
    match status {
        StatusCode::BAD_GATEWAY => plain(status, "502 Bad Gateway\n"),
        StatusCode::SERVICE_UNAVAILABLE => plain(status, "503 Service Unavailable\n"),
        _ => error(status, "InternalServerError", "Something went wrong"),
    }
}

async fn gate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let label = route_label(req.method(), req.uri().path());
    let mut resp = admit(&inner, req, next).await;
    // the server's own clock (the simulated one), as every record's times are
    let date = inner.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert(header::DATE, v);
    }
    inner.faults.delay().await;
    inner.stats.record(&label, resp.status());
    resp
}

async fn admit(inner: &Inner, req: Request, next: Next) -> Response {
    if !authorized(inner, req.headers()) {
        return unauthorized();
    }
    let incremental = req.uri().path().starts_with("/api/v2/incremental/");
    let names: &[&str] = if incremental {
        &[ACCOUNT, INCREMENTAL]
    } else {
        &[ACCOUNT]
    };
    let remaining = match inner.budgets.take_all(names, inner.clock.now()) {
        Ok(taken) => taken.iter().find(|(n, _)| n == ACCOUNT).map(|(_, r)| *r),
        Err((budget, secs)) => return throttled(inner, &budget, secs),
    };
    let is_write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let fault = inner.faults.draw(is_write);
    inner.stats.record_fault(fault);
    match fault {
        Fault::ServerError(status) => return server_error(status),
        Fault::Throttle => return throttled(inner, ACCOUNT, 1),
        Fault::None | Fault::LoseResponse => {}
    }
    let mut resp = next.run(req).await;
    if fault == Fault::LoseResponse {
        // the write happened (webhooks and jobs included); only its answer is lost
        return gateway_timeout();
    }
    if let Some(r) = remaining {
        rate_headers(inner, resp.headers_mut(), r);
    }
    resp
}
