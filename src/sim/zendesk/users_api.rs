//! Zendesk simulator: the users endpoints — list (cursor and offset paging), show, `me`,
//! `show_many`, search, create, `create_or_update`, update and soft delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::fields::user_patch;
use super::paging::{list_body, paging, sep, Paging, MAX_PAGE};
use super::store::Store;
use super::users::User;
use super::wire::{
    bad_request, id_list, invalid, json_response, not_found, ok, parse_body, path_id, sim_error,
    wrapped,
};
use super::{Counters, Inner};
use crate::sim::core::lock;
use crate::sim::core::query::{encode, Query};

/// 201 with `Location` and the wrapped resource.
pub(crate) fn created(location: String, key: &str, resource: Value) -> Response {
    let mut resp = json_response(StatusCode::CREATED, &json!({ key: resource }));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn user_url(inner: &Inner, id: u64) -> String {
    format!("{}/api/v2/users/{id}.json", inner.base_url)
}

/// `GET /api/v2/users` (active users in id order; `role` / `role[]` filter).
pub(crate) async fn list(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let paging = match paging(&q) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let roles: Vec<String> = q
        .list("role")
        .into_iter()
        .chain(q.list("role[]"))
        .flatten()
        .map(str::to_string)
        .collect();
    let mut link = format!("{}/api/v2/users.json", inner.base_url);
    for r in &roles {
        link.push_str(&format!("{}role%5B%5D={}", sep(&link), encode(r)));
    }
    let store = lock(&inner.store);
    let keep = |u: &User| u.active && (roles.is_empty() || roles.iter().any(|r| r == u.role));
    ok(list_body(
        &store.users,
        keep,
        |u| u.id,
        &paging,
        &link,
        "users",
        |u| u.render(&inner.base_url),
    ))
}

/// `GET /api/v2/users/{id}`: soft-deleted users are still shown (`active: false`).
pub(crate) async fn get_one(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found();
    };
    let store = lock(&inner.store);
    match store.users.get(&id) {
        Some(u) => ok(json!({"user": u.render(&inner.base_url)})),
        None => not_found(),
    }
}

/// `GET /api/v2/users/me`: the authenticated agent (the account owner).
pub(crate) async fn me(State(inner): State<Arc<Inner>>) -> Response {
    let store = lock(&inner.store);
    match store
        .user_by_email(&inner.email)
        .and_then(|id| store.users.get(&id))
    {
        Some(u) => ok(json!({"user": u.render(&inner.base_url)})),
        None => not_found(),
    }
}

/// Ids of `ids=` or `external_ids=` (≤100); `Err` is a 400. External ids resolve to active
/// users; unknown ones are skipped, as Zendesk does.
pub(crate) fn many_ids(
    q: &Query,
    by_external: impl Fn(&str) -> Option<u64>,
) -> Result<Vec<u64>, Response> {
    let ids = if let Some(list) = q.list("ids") {
        if list.len() > MAX_PAGE {
            return Err(too_many("ids"));
        }
        id_list(&list, "ids")?
    } else if let Some(list) = q.list("external_ids") {
        if list.len() > MAX_PAGE {
            return Err(too_many("external_ids"));
        }
        list.iter().filter_map(|x| by_external(x)).collect()
    } else {
        return Err(bad_request(
            "InvalidValue",
            "ids or external_ids is required",
        ));
    };
    let mut seen = std::collections::HashSet::new();
    Ok(ids.into_iter().filter(|id| seen.insert(*id)).collect())
}

pub(crate) fn too_many(param: &str) -> Response {
    bad_request(
        "TooManyValues",
        &format!("{param} accepts at most {MAX_PAGE} values"),
    )
}

/// `GET /api/v2/users/show_many?ids=|external_ids=` in the order asked.
pub(crate) async fn show_many(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let store = lock(&inner.store);
    let ids = match many_ids(&q, |x| store.user_by_external_id(x)) {
        Ok(ids) => ids,
        Err(resp) => return resp,
    };
    let users: Vec<Value> = ids
        .iter()
        .filter_map(|id| store.users.get(id))
        .map(|u| u.render(&inner.base_url))
        .collect();
    ok(json!({"users": users, "next_page": null, "previous_page": null, "count": users.len()}))
}

/// One search term: `email:`, `external_id:`, `name:`, `role:` or free text (name or email
/// contains it). `type:user` is accepted and ignored.
fn matches(u: &User, term: &str) -> bool {
    let (key, value) = term.split_once(':').unwrap_or(("", term));
    let value = value.trim_matches('"').to_lowercase();
    match key {
        "email" => u.email.as_deref() == Some(value.as_str()),
        "external_id" => u
            .external_id
            .as_deref()
            .is_some_and(|x| x.to_lowercase() == value),
        "name" => u.name.to_lowercase().contains(&value),
        "role" => u.role == value,
        "type" => value == "user",
        _ => {
            u.name.to_lowercase().contains(&value)
                || u.email.as_deref().is_some_and(|e| e.contains(&value))
        }
    }
}

/// `GET /api/v2/users/search?query=..|external_id=..` (active users, offset paging). Search
/// in Zendesk is index-based and lags writes; here it is immediate.
pub(crate) async fn search(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let paging = match paging(&q) {
        Ok(p @ Paging::Offset { .. }) => p,
        Ok(Paging::Cursor { .. }) => {
            return bad_request(
                "InvalidPaginationParameter",
                "search supports offset pagination only",
            )
        }
        Err(resp) => return resp,
    };
    let terms: Vec<String> = if let Some(x) = q.get("external_id") {
        vec![format!("external_id:{x}")]
    } else if let Some(query) = q.get("query") {
        query.split_whitespace().map(str::to_string).collect()
    } else {
        return bad_request("InvalidValue", "query or external_id is required");
    };
    let mut link = format!("{}/api/v2/users/search.json", inner.base_url);
    match q.get("external_id") {
        Some(x) => link.push_str(&format!("?external_id={}", encode(x))),
        None => link.push_str(&format!("?query={}", encode(&terms.join(" ")))),
    }
    let store = lock(&inner.store);
    let keep = |u: &User| u.active && terms.iter().all(|t| matches(u, t));
    ok(list_body(
        &store.users,
        keep,
        |u| u.id,
        &paging,
        &link,
        "users",
        |u| u.render(&inner.base_url),
    ))
}

fn render_user(store: &Store, inner: &Inner, id: u64) -> Value {
    store
        .users
        .get(&id)
        .map(|u| u.render(&inner.base_url))
        .unwrap_or(Value::Null)
}

/// `POST /api/v2/users` → 201.
pub(crate) async fn create(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let patch = match wrapped(&body, "user").map(user_patch) {
        Ok(Ok(p)) => p,
        Ok(Err(errs)) => return invalid(&errs),
        Err(resp) => return resp,
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.create_user(&patch, now) {
        Ok((id, changes)) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            created(
                user_url(&inner, id),
                "user",
                render_user(&store, &inner, id),
            )
        }
        Err(e) => sim_error(&e),
    }
}

/// `POST /api/v2/users/create_or_update` → 201 when created, 200 when an existing user
/// (matched by external id, then email) was updated.
pub(crate) async fn create_or_update(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let patch = match wrapped(&body, "user").map(user_patch) {
        Ok(Ok(p)) => p,
        Ok(Err(errs)) => return invalid(&errs),
        Err(resp) => return resp,
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.upsert_user(&patch, now) {
        Ok((id, was_created, changes)) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            let user = render_user(&store, &inner, id);
            if was_created {
                created(user_url(&inner, id), "user", user)
            } else {
                ok(json!({ "user": user }))
            }
        }
        Err(e) => sim_error(&e),
    }
}

/// `PUT /api/v2/users/{id}` → 200.
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
    let patch = match wrapped(&body, "user").map(user_patch) {
        Ok(Ok(p)) => p,
        Ok(Err(errs)) => return invalid(&errs),
        Err(resp) => return resp,
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.update_user(id, &patch, now) {
        Ok(changes) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            ok(json!({"user": render_user(&store, &inner, id)}))
        }
        Err(e) => sim_error(&e),
    }
}

/// `DELETE /api/v2/users/{id}` → 200 with the now inactive user.
pub(crate) async fn destroy(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found();
    };
    let now = inner.now();
    let mut store = lock(&inner.store);
    match store.delete_user(id, now) {
        Ok(changes) => {
            inner.emit(&changes);
            Counters::add(&inner.counters.records_written, 1);
            ok(json!({"user": render_user(&store, &inner, id)}))
        }
        Err(e) => sim_error(&e),
    }
}
