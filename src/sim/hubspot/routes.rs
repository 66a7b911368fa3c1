//! HubSpot simulator: the axum router (behind the gate) and the single-record handlers (list,
//! get, create, update, archive).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::gate::gate;
use super::http::{self, bad_request, not_found, render, selection, written_selection};
use super::schema::{parse_props, ObjectKind};
use super::state::{Store, WriteError};
use super::webhooks::Source;
use super::{lock, Counters, Inner};
use crate::sim::core::Query;

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/crm/v3/objects/{object}", get(list).post(create))
        .route(
            "/crm/v3/objects/{object}/search",
            post(super::search::search),
        )
        .route(
            "/crm/v3/objects/{object}/batch/{op}",
            post(super::batch::batch),
        )
        .route(
            "/crm/v3/objects/{object}/{id}",
            get(get_one).patch(update).delete(archive),
        )
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    http::error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("No endpoint for {method} {}", uri.path()),
    )
}

/// Resolves a path id, honouring `idProperty` (`hs_object_id`, or `email` for contacts).
pub(crate) fn resolve_id(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    id_property: Option<&str>,
) -> Result<Option<u64>, Response> {
    match id_property {
        None | Some("hs_object_id") => Ok(id.parse().ok()),
        Some("email") if kind == ObjectKind::Contacts => Ok(store.contact_by_email(id)),
        Some(p) => Err(bad_request(&format!(
            "Property {p} is not a unique identifier property for {}",
            kind.name()
        ))),
    }
}

macro_rules! kind_or_400 {
    ($object:expr) => {
        match $crate::sim::hubspot::schema::ObjectKind::parse(&$object) {
            Some(k) => k,
            None => return $crate::sim::hubspot::http::unknown_object(&$object),
        }
    };
}
pub(crate) use kind_or_400;

async fn list(
    State(inner): State<Arc<Inner>>,
    Path(object): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.read_requests, 1);
    if inner.faults.empty_listings() {
        return axum::Json(serde_json::json!({"results": []})).into_response();
    }
    let q = Query::parse(q.as_deref());
    let limit = match q.get("limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return bad_request("limit must be an integer between 1 and 100"),
    };
    let after = match q
        .get("after")
        .filter(|s| !s.is_empty())
        .map(str::parse::<u64>)
    {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_request("Invalid paging cursor in 'after'"),
    };
    let archived = match http::archived(&q) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let sel = selection(kind, q.list("properties"));
    // rendered straight into the body while the store is locked (no JSON tree per record)
    #[derive(serde::Serialize)]
    struct ListBody<'a> {
        results: Vec<http::Rendered<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        paging: Option<Value>,
    }
    let store = lock(&inner.store);
    let mut results = Vec::with_capacity(limit);
    let mut more = false;
    let mut last = 0;
    let matching = store
        .table(kind)
        .recs
        .range(after.saturating_add(1)..)
        .map(|(_, r)| r)
        .filter(|r| r.live() != archived);
    for rec in matching {
        if results.len() == limit {
            more = true;
            break;
        }
        results.push(http::Rendered {
            kind,
            rec,
            sel: &sel,
        });
        last = rec.id;
    }
    let paging = more.then(|| {
        let mut link = format!(
            "{}/crm/v3/objects/{}?limit={limit}&after={last}",
            inner.base_url,
            kind.name()
        );
        if archived {
            link.push_str("&archived=true");
        }
        json!({"next": {"after": last.to_string(), "link": link}})
    });
    http::json_response(StatusCode::OK, &ListBody { results, paging })
}

async fn get_one(
    State(inner): State<Arc<Inner>>,
    Path((object, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.read_requests, 1);
    let q = Query::parse(q.as_deref());
    let archived = match http::archived(&q) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let sel = selection(kind, q.list("properties"));
    let store = lock(&inner.store);
    let id = match resolve_id(&store, kind, &id, q.get("idProperty")) {
        Ok(Some(id)) => id,
        Ok(None) => return not_found(),
        Err(resp) => return resp,
    };
    match store.get(kind, id) {
        Some(rec) if rec.live() || archived => {
            http::json_response(StatusCode::OK, &render(kind, rec, &sel, None))
        }
        _ => not_found(),
    }
}

async fn create(
    State(inner): State<Arc<Inner>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.write_requests, 1);
    let body = match http::parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let props = match http::properties_of(&body) {
        Ok(m) => m,
        Err(msg) => return bad_request(&msg),
    };
    let props = match parse_props(kind, props) {
        Ok(p) => p,
        Err(errs) => return http::write_error(&WriteError::Invalid(errs)),
    };
    let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
    let mut changes = Vec::new();
    let mut store = lock(&inner.store);
    match store.create(kind, props, inner.now(), &mut changes) {
        Ok(id) => {
            inner.emit(&changes, Source::Api);
            Counters::add(&inner.counters.records_written, 1);
            let out = store
                .get(kind, id)
                .map(|r| render(kind, r, &written_selection(kind, &written), None));
            drop(store);
            http::json_response(StatusCode::CREATED, &out.unwrap_or(Value::Null))
        }
        Err(e) => http::write_error(&e),
    }
}

async fn update(
    State(inner): State<Arc<Inner>>,
    Path((object, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.write_requests, 1);
    let q = Query::parse(q.as_deref());
    let body = match http::parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let props = match http::properties_of(&body) {
        Ok(m) => m,
        Err(msg) => return bad_request(&msg),
    };
    let props = match parse_props(kind, props) {
        Ok(p) => p,
        Err(errs) => return http::write_error(&WriteError::Invalid(errs)),
    };
    let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
    let mut changes = Vec::new();
    let mut store = lock(&inner.store);
    let id = match resolve_id(&store, kind, &id, q.get("idProperty")) {
        Ok(Some(id)) => id,
        Ok(None) => return not_found(),
        Err(resp) => return resp,
    };
    match store.update(kind, id, props, inner.now(), &mut changes) {
        Ok(_) => {
            inner.emit(&changes, Source::Api);
            Counters::add(&inner.counters.records_written, 1);
            let out = store
                .get(kind, id)
                .map(|r| render(kind, r, &written_selection(kind, &written), None));
            drop(store);
            http::json_response(StatusCode::OK, &out.unwrap_or(Value::Null))
        }
        Err(e) => http::write_error(&e),
    }
}

async fn archive(
    State(inner): State<Arc<Inner>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.write_requests, 1);
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let mut changes = Vec::new();
    let mut store = lock(&inner.store);
    match store.archive(kind, id, inner.now(), &mut changes) {
        Ok(done) => {
            inner.emit(&changes, Source::Api);
            if done {
                Counters::add(&inner.counters.records_written, 1);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => http::write_error(&e),
    }
}
