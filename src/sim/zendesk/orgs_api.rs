//! Zendesk simulator: the organizations endpoints — list (cursor and offset paging), show,
//! `show_many`, create, update and delete (204).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::fields::org_patch;
use super::organizations::Org;
use super::paging::{list_body, paging};
use super::users_api::{created, many_ids};
use super::wire::{invalid, not_found, ok, parse_body, path_id, sim_error, wrapped};
use super::{Counters, Inner};
use crate::sim::core::lock;
use crate::sim::core::query::Query;

/// `GET /api/v2/organizations` (live organizations in id order).
pub(crate) async fn list(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let paging = match paging(&q) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let link = format!("{}/api/v2/organizations.json", inner.base_url);
    let store = lock(&inner.store);
    ok(list_body(
        &store.orgs,
        Org::live,
        |o| o.id,
        &paging,
        &link,
        "organizations",
        |o| o.render(&inner.base_url),
    ))
}

/// `GET /api/v2/organizations/{id}`; deleted ones are gone (404).
pub(crate) async fn get_one(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let store = lock(&inner.store);
    match path_id(&id).and_then(|id| store.live_org(id)) {
        Some(o) => ok(json!({"organization": o.render(&inner.base_url)})),
        None => not_found(),
    }
}

/// `GET /api/v2/organizations/show_many?ids=|external_ids=` in the order asked.
pub(crate) async fn show_many(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let store = lock(&inner.store);
    let ids = match many_ids(&q, |x| store.org_by_external_id(x)) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    let orgs: Vec<Value> = ids
        .iter()
        .filter_map(|id| store.live_org(*id))
        .map(|o| o.render(&inner.base_url))
        .collect();
    ok(
        json!({"organizations": orgs, "next_page": null, "previous_page": null, "count": orgs.len()}),
    )
}

fn render_org(inner: &Inner, store: &super::store::Store, id: u64) -> Value {
    store
        .orgs
        .get(&id)
        .map(|o| o.render(&inner.base_url))
        .unwrap_or(Value::Null)
}

/// `POST /api/v2/organizations` → 201.
pub(crate) async fn create(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let patch = match wrapped(&body, "organization").map(org_patch) {
        Ok(Ok(p)) => p,
        Ok(Err(errs)) => return invalid(&errs),
        Err(resp) => return resp,
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.create_org(&patch, now) {
        Ok((id, changes)) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            let location = format!("{}/api/v2/organizations/{id}.json", inner.base_url);
            created(location, "organization", render_org(&inner, &store, id))
        }
        Err(e) => sim_error(&e),
    }
}

/// `PUT /api/v2/organizations/{id}` → 200.
pub(crate) async fn update(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found();
    };
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let patch = match wrapped(&body, "organization").map(org_patch) {
        Ok(Ok(p)) => p,
        Ok(Err(errs)) => return invalid(&errs),
        Err(resp) => return resp,
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.update_org(id, &patch, now) {
        Ok(changes) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            ok(json!({"organization": render_org(&inner, &store, id)}))
        }
        Err(e) => sim_error(&e),
    }
}

/// `DELETE /api/v2/organizations/{id}` → 204; members lose their `organization_id`.
pub(crate) async fn destroy(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found();
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.delete_org(id, now) {
        Ok(changes) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => sim_error(&e),
    }
}
