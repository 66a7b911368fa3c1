//! REST simulator: single records — get, create, update (PATCH merges, PUT replaces or PUT
//! merges, as the profile says) and delete (hard or tombstone), with body wrapping, required and unique
//! fields, the profile's missing-record status, and the webhook event of every change. API
//! requests and in-app edits run the same operations here.

use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::profile::UpdateKind;
use super::store::{Data, Id, Table};
use super::webhooks::{event, Change, ChangeKind};
use super::wire::{json_response, shaped, ApiError};
use super::Inner;
use crate::sim::core::lock;

fn table<'a>(data: &'a Data, resource: &str) -> Result<&'a Table, ApiError> {
    data.tables
        .get(resource)
        .ok_or_else(|| ApiError::bad_request(format!("no resource `{resource}`")))
}

fn table_mut<'a>(data: &'a mut Data, resource: &str) -> Result<&'a mut Table, ApiError> {
    data.tables
        .get_mut(resource)
        .ok_or_else(|| ApiError::bad_request(format!("no resource `{resource}`")))
}

/// Queues the event of `change` (call with the data locked, so events keep the write order).
fn publish(inner: &Inner, data: &mut Data, resource: &str, change: Change) {
    data.events += 1;
    let n = data.events;
    if let Some(t) = data.tables.get(resource) {
        let body = event(t, &change, n, &inner.profile.webhooks);
        inner.hooks.enqueue([body]);
    }
}

/// Creates a record from client fields (maintained ones dropped); `check` applies required
/// and unique fields. Returns the rendered record.
pub(crate) fn insert(
    inner: &Inner,
    resource: &str,
    fields: Map<String, Value>,
    check: bool,
) -> Result<Value, ApiError> {
    let mut data = lock(&inner.data);
    let now = inner.clock.now();
    let t = table_mut(&mut data, resource)?;
    let fields = t.clean(fields);
    if check {
        t.validate(&fields, None).map_err(ApiError::unprocessable)?;
    }
    let id = t.create(fields, now);
    let after = t.get(&id).map(|r| t.render(r));
    let at = t.get(&id).map(|r| r.created).unwrap_or(now);
    let change = Change {
        kind: ChangeKind::Created,
        id,
        at,
        before: None,
        after: after.clone(),
    };
    publish(inner, &mut data, resource, change);
    Ok(after.unwrap_or(Value::Null))
}

/// Merges (or with `replace`, replaces) a live record's fields. Returns the rendered record.
pub(crate) fn write(
    inner: &Inner,
    resource: &str,
    id: &Id,
    fields: Map<String, Value>,
    replace: bool,
    check: bool,
) -> Result<Value, ApiError> {
    let mut data = lock(&inner.data);
    let now = inner.clock.now();
    let t = table_mut(&mut data, resource)?;
    let missing = || ApiError::missing(t.spec.missing_status, resource, &id.text());
    let fields = t.clean(fields);
    let result = t.preview(id, &fields, replace).ok_or_else(missing)?;
    if check {
        t.validate(&result, Some(id))
            .map_err(ApiError::unprocessable)?;
    }
    let before = t.live(id).map(|r| t.render(r));
    t.write(id, fields, replace, now);
    let after = t.get(id).map(|r| t.render(r));
    let at = t.get(id).and_then(|r| r.updated).unwrap_or(now);
    let change = Change {
        kind: ChangeKind::Updated,
        id: id.clone(),
        at,
        before,
        after: after.clone(),
    };
    publish(inner, &mut data, resource, change);
    Ok(after.unwrap_or(Value::Null))
}

/// Deletes a live record (hard or tombstone, as the profile says).
pub(crate) fn remove(inner: &Inner, resource: &str, id: &Id) -> Result<(), ApiError> {
    let mut data = lock(&inner.data);
    let now = inner.clock.now();
    let t = table_mut(&mut data, resource)?;
    let Some(old) = t.delete(id, now) else {
        return Err(ApiError::missing(
            t.spec.missing_status,
            resource,
            &id.text(),
        ));
    };
    let before = Some(t.render(&old));
    // a tombstone is still there (rendered with its time); a hard delete leaves nothing
    let after = t.get(id).map(|r| t.render(r));
    let at = t
        .get(id)
        .and_then(|r| r.deleted)
        .unwrap_or_else(|| t.stamp(now));
    let logged = (after.is_none())
        .then(|| t.spec.deleted_log.clone())
        .flatten()
        .map(|log| {
            (
                log,
                serde_json::json!({"record_id": id.json(), "deleted_at": t.time(at)}),
            )
        });
    let change = Change {
        kind: ChangeKind::Deleted,
        id: id.clone(),
        at,
        before,
        after,
    };
    publish(inner, &mut data, resource, change);
    // the deleted-records feed's entry (no event of its own)
    if let Some((log, Value::Object(entry))) = logged {
        if let Some(l) = data.tables.get_mut(&log) {
            l.create(entry, now);
        }
    }
    Ok(())
}

/// The rendered record `id` (tombstones included).
pub(crate) fn fetch(inner: &Inner, resource: &str, id: &Id) -> Result<Value, ApiError> {
    let data = lock(&inner.data);
    let t = table(&data, resource)?;
    t.get(id)
        .map(|r| t.render(r))
        .ok_or_else(|| ApiError::missing(t.spec.missing_status, resource, &id.text()))
}

/// The resource's spec values a handler needs without holding the lock.
fn spec(inner: &Inner, resource: &str) -> Result<super::profile::ResourceProfile, ApiError> {
    inner
        .profile
        .resource(resource)
        .cloned()
        .ok_or_else(|| ApiError::bad_request(format!("no resource `{resource}`")))
}

/// The id in the path, or the missing-record answer.
fn path_id(inner: &Inner, resource: &str, raw: &str) -> Result<Id, ApiError> {
    let s = spec(inner, resource)?;
    Id::parse(raw, s.ids).ok_or_else(|| ApiError::missing(s.missing_status, resource, raw))
}

/// The record fields of a write body, unwrapped from `{"<wrap>": {...}}` when the profile
/// wants that.
fn body_fields(inner: &Inner, resource: &str, body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let s = spec(inner, resource)?;
    let shape = match &s.wrap {
        Some(w) => format!("the body must be {{\"{w}\": {{...}}}}"),
        None => "the body must be a JSON object".to_string(),
    };
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{shape}; it is not JSON: {e}")))?;
    let v = match (&s.wrap, v) {
        (Some(w), Value::Object(mut m)) => m.remove(w).unwrap_or(Value::Null),
        (Some(_), _) => Value::Null,
        (None, v) => v,
    };
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request(shape)),
    }
}

/// A single-record answer, the record at the profile's `record` pointer.
fn record_answer(inner: &Inner, resource: &str, status: StatusCode, record: Value) -> Response {
    let pointer = inner
        .profile
        .resource(resource)
        .map(|s| s.record.as_str())
        .unwrap_or("");
    json_response(status, &shaped(pointer, record))
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `GET {path}/{id}`.
pub(crate) fn get(inner: &Inner, resource: &str, raw_id: &str) -> Response {
    answer((|| {
        let id = path_id(inner, resource, raw_id)?;
        let record = fetch(inner, resource, &id)?;
        Ok(record_answer(inner, resource, StatusCode::OK, record))
    })())
}

/// `POST {path}`: 201 with the record and its `Location`.
pub(crate) fn create(inner: &Inner, resource: &str, body: &[u8]) -> Response {
    answer((|| {
        let fields = body_fields(inner, resource, body)?;
        let record = insert(inner, resource, fields, true)?;
        let mut resp = record_answer(inner, resource, StatusCode::CREATED, record.clone());
        let s = spec(inner, resource)?;
        let id = super::wire::text(&record[s.id_field.as_str()]);
        let location = format!("{}{}/{id}", inner.base_url, s.path.trim_end_matches('/'));
        if let Ok(v) = location.parse() {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Ok(resp)
    })())
}

/// `PATCH` or `PUT {path}/{id}`, whichever the profile's `update` takes (the other is 405);
/// PATCH and `put_partial`'s PUT merge, `put`'s PUT replaces.
pub(crate) fn update(
    inner: &Inner,
    resource: &str,
    raw_id: &str,
    method: &Method,
    body: &[u8],
) -> Response {
    answer((|| {
        let kind = spec(inner, resource)?.update;
        let replace = match (kind, method) {
            (UpdateKind::Patch, &Method::PATCH) => false,
            (UpdateKind::Put, &Method::PUT) => true,
            (UpdateKind::PutPartial, &Method::PUT) => false,
            (UpdateKind::Patch, _) => return Err(ApiError::method("GET, PATCH, DELETE")),
            (UpdateKind::Put | UpdateKind::PutPartial, _) => {
                return Err(ApiError::method("GET, PUT, DELETE"))
            }
        };
        let id = path_id(inner, resource, raw_id)?;
        let fields = body_fields(inner, resource, body)?;
        let record = write(inner, resource, &id, fields, replace, true)?;
        Ok(record_answer(inner, resource, StatusCode::OK, record))
    })())
}

/// `DELETE {path}/{id}`: 204.
pub(crate) fn delete(inner: &Inner, resource: &str, raw_id: &str) -> Response {
    answer((|| {
        let id = path_id(inner, resource, raw_id)?;
        remove(inner, resource, &id)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}
