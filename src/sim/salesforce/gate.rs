//! Salesforce simulator: routing and the gate every API request passes — the token endpoint
//! (not counted), `Authorization: Bearer` sessions (401 `INVALID_SESSION_ID`), the API
//! version range (404), the rolling daily allocation (403 `REQUEST_LIMIT_EXCEEDED`,
//! `Sforce-Limit-Info` on every answer), injected faults, latency and per-route stats.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use super::errors::ApiError;
use super::schema::{self, ObjectDef};
use super::wire::ok;
use super::{auth, collections, query, sobjects, Inner};
use crate::sim::core::faults::{gateway_timeout, plain};
use crate::sim::core::{Fault, Query, Verdict};

/// What a handler gets of its request.
pub struct Ctx {
    /// `62.0` of `/services/data/v62.0/...`.
    pub version: String,
    pub method: Method,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The API resources under `/services/data/vNN.0/`.
enum Route {
    Resources,
    Limits,
    Query(bool),
    QueryMore(String),
    DescribeGlobal,
    Object(String),
    Describe(String),
    Deleted(String),
    Updated(String),
    Record(String, String),
    External(String, String, String),
    Collection,
    CollectionObject(String),
    CollectionUpsert(String, String),
    Unknown,
}

/// Percent-decodes a path segment (`+` stays a plus).
fn segment(s: &str) -> String {
    crate::sim::core::query::decode(&s.replace('+', "%2B"))
}

fn route(tail: &str) -> Route {
    let segs: Vec<String> = tail
        .split('/')
        .filter(|s| !s.is_empty())
        .map(segment)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let o = |x: &str| x.to_string();
    match s.as_slice() {
        [] => Route::Resources,
        ["limits"] => Route::Limits,
        ["query"] => Route::Query(false),
        ["queryAll"] => Route::Query(true),
        ["query" | "queryAll", loc] => Route::QueryMore(o(loc)),
        ["sobjects"] => Route::DescribeGlobal,
        ["sobjects", obj] => Route::Object(o(obj)),
        ["sobjects", obj, "describe"] => Route::Describe(o(obj)),
        ["sobjects", obj, "deleted"] => Route::Deleted(o(obj)),
        ["sobjects", obj, "updated"] => Route::Updated(o(obj)),
        ["sobjects", obj, id] => Route::Record(o(obj), o(id)),
        ["sobjects", obj, f, v] => Route::External(o(obj), o(f), o(v)),
        ["composite", "sobjects"] => Route::Collection,
        ["composite", "sobjects", obj] => Route::CollectionObject(o(obj)),
        ["composite", "sobjects", obj, f] => Route::CollectionUpsert(o(obj), o(f)),
        _ => Route::Unknown,
    }
}

fn obj_label(name: &str) -> &str {
    schema::object(name).map_or("{object}", |d| d.name)
}

/// The stats label of a route, ids and values collapsed.
fn label(method: &Method, r: &Route) -> String {
    let path = match r {
        Route::Resources => "/".to_string(),
        Route::Limits => "/limits".into(),
        Route::Query(false) => "/query".into(),
        Route::Query(true) => "/queryAll".into(),
        Route::QueryMore(_) => "/query/{locator}".into(),
        Route::DescribeGlobal => "/sobjects".into(),
        Route::Object(o) => format!("/sobjects/{}", obj_label(o)),
        Route::Describe(o) => format!("/sobjects/{}/describe", obj_label(o)),
        Route::Deleted(o) => format!("/sobjects/{}/deleted", obj_label(o)),
        Route::Updated(o) => format!("/sobjects/{}/updated", obj_label(o)),
        Route::Record(o, _) => format!("/sobjects/{}/{{id}}", obj_label(o)),
        Route::External(o, f, _) => format!("/sobjects/{}/{f}/{{value}}", obj_label(o)),
        Route::Collection => "/composite/sobjects".into(),
        Route::CollectionObject(o) => format!("/composite/sobjects/{}", obj_label(o)),
        Route::CollectionUpsert(o, f) => format!("/composite/sobjects/{}/{f}", obj_label(o)),
        Route::Unknown => "/{unknown}".into(),
    };
    format!("{method} {path}")
}

fn not_allowed(method: &Method, allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
}

fn object(name: &str) -> Result<&'static ObjectDef, ApiError> {
    schema::object(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "The requested resource does not exist: sObject type '{name}' is not supported"
            ),
        )
    })
}

fn dispatch(inner: &Inner, r: Route, ctx: &Ctx) -> Result<Response, ApiError> {
    let m = ctx.method.as_str();
    let only = |allowed: &str| -> Result<(), ApiError> {
        if allowed.split(',').any(|a| a == m) {
            Ok(())
        } else {
            Err(not_allowed(&ctx.method, allowed))
        }
    };
    match r {
        Route::Resources => {
            only("GET")?;
            let base = format!("/services/data/v{}", ctx.version);
            let names = ["sobjects", "query", "queryAll", "limits", "composite"];
            let map: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .map(|n| (n.to_string(), json!(format!("{base}/{n}"))))
                .collect();
            Ok(ok(serde_json::Value::Object(map)))
        }
        Route::Limits => only("GET").map(|()| sobjects::limits(inner)),
        Route::Query(all) => only("GET").and_then(|()| query::query(inner, ctx, all)),
        Route::QueryMore(loc) => only("GET").and_then(|()| query::more(inner, ctx, &loc)),
        Route::DescribeGlobal => only("GET").map(|()| sobjects::describe_global(ctx)),
        Route::Object(o) => {
            let def = object(&o)?;
            match m {
                "GET" => Ok(sobjects::object_info(def, ctx)),
                "POST" => sobjects::create(inner, def, ctx),
                _ => Err(not_allowed(&ctx.method, "GET,HEAD,POST")),
            }
        }
        Route::Describe(o) => {
            only("GET").and_then(|()| object(&o).map(|d| sobjects::describe(d, ctx)))
        }
        Route::Deleted(o) => only("GET").and_then(|()| sobjects::deleted(inner, object(&o)?, ctx)),
        Route::Updated(o) => only("GET").and_then(|()| sobjects::updated(inner, object(&o)?, ctx)),
        Route::Record(o, id) => {
            only("GET,PATCH,DELETE")?;
            sobjects::record(inner, object(&o)?, ctx, &id)
        }
        Route::External(o, f, v) => {
            only("GET,PATCH,DELETE")?;
            sobjects::by_external(inner, object(&o)?, ctx, &f, &v)
        }
        Route::Collection => match m {
            "POST" => collections::create(inner, ctx),
            "PATCH" => collections::update(inner, ctx),
            "DELETE" => collections::delete(inner, ctx),
            _ => Err(not_allowed(&ctx.method, "DELETE,PATCH,POST")),
        },
        Route::CollectionObject(o) => {
            only("GET,POST")?;
            collections::retrieve(inner, object(&o)?, ctx)
        }
        Route::CollectionUpsert(o, f) => {
            only("PATCH")?;
            collections::upsert(inner, object(&o)?, &f, ctx)
        }
        Route::Unknown => Err(ApiError::not_found()),
    }
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(entry).with_state(inner)
}

async fn entry(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let (label, resp) = if path == "/services/oauth2/token" {
        let resp = if parts.method == Method::POST {
            auth::token(&inner, &parts.headers, parts.uri.query(), &body)
        } else {
            not_allowed(&parts.method, "POST").into_response()
        };
        (format!("{} /services/oauth2/token", parts.method), resp)
    } else if path == "/services/data" {
        (format!("{} /services/data", parts.method), versions(&inner))
    } else if let Some(rest) = path.strip_prefix("/services/data/") {
        let (ver, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let r = route(tail);
        let label = label(&parts.method, &r);
        let ctx = Ctx {
            version: String::new(),
            method: parts.method,
            query: Query::parse(parts.uri.query()),
            headers: parts.headers,
            body,
        };
        (label, admit(&inner, ver, r, ctx).await)
    } else {
        (
            format!("{} /{{unknown}}", parts.method),
            ApiError::not_found().into_response(),
        )
    };
    inner.faults.delay().await;
    inner.stats.record(&label, resp.status());
    resp
}

/// `GET /services/data`: the versions served.
fn versions(inner: &Inner) -> Response {
    let (lo, hi) = inner.cfg.api_versions;
    let list: Vec<serde_json::Value> = (lo..=hi).map(|v| json!({"label": format!("v{v}.0"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})).collect();
    ok(json!(list))
}

/// `v62.0` → `62.0` when inside the configured range.
fn version(inner: &Inner, seg: &str) -> Option<String> {
    let n: u32 = seg.strip_prefix('v')?.strip_suffix(".0")?.parse().ok()?;
    let (lo, hi) = inner.cfg.api_versions;
    (lo..=hi).contains(&n).then(|| format!("{n}.0"))
}

fn limit_info(resp: &mut Response, used: u32, max: u32) {
    if let Ok(v) = HeaderValue::from_str(&format!("api-usage={used}/{max}")) {
        resp.headers_mut().insert("sforce-limit-info", v);
    }
}

async fn admit(inner: &Inner, ver: &str, r: Route, mut ctx: Ctx) -> Response {
    let now = inner.now();
    if !auth::bearer(&ctx.headers).is_some_and(|t| inner.sessions.check(t, now)) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
        .into_response();
    }
    let Some(v) = version(inner, ver) else {
        return ApiError::not_found().into_response();
    };
    ctx.version = v;
    let max = inner.daily.limit();
    let used = match inner.daily.take(now) {
        Verdict::Allowed { remaining } => max.saturating_sub(remaining),
        Verdict::Exhausted { .. } => {
            let mut resp = ApiError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
            .into_response();
            limit_info(&mut resp, max, max);
            return resp;
        }
    };
    let fault = inner
        .faults
        .draw(!matches!(ctx.method, Method::GET | Method::HEAD));
    inner.stats.record_fault(fault);
    let mut resp = match fault {
        Fault::ServerError(StatusCode::BAD_GATEWAY) => plain(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n"),
        Fault::ServerError(StatusCode::SERVICE_UNAVAILABLE) => plain(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable\n"),
        Fault::ServerError(status) => ApiError::new(status, "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)").into_response(),
        // Salesforce has no 429: a refused burst is the concurrent-request limit's 403
        Fault::Throttle => ApiError::new(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.").into_response(),
        Fault::None | Fault::LoseResponse => {
            inner.purge(now);
            let resp = dispatch(inner, r, &ctx).unwrap_or_else(IntoResponse::into_response);
            if fault == Fault::LoseResponse {
                return gateway_timeout();
            }
            resp
        }
    };
    limit_info(&mut resp, used, max);
    resp
}
