//! Salesforce simulator: the sObject resources — describe, single-record create / read /
//! update / delete, reads, upserts and deletes by external id, and the replication resources
//! `deleted` (recycle bin, 15 days) and `updated` (30 days).

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::errors::ApiError;
use super::gate::Ctx;
use super::rules::{id_in_insert, parse_record, Parsed};
use super::schema::{self, FieldDef, ObjectDef};
use super::store::{Actor, Key};
use super::wire::{
    floor_minute, json_response, no_content, ok, parse_datetime, parse_object, sf_datetime,
};
use super::{ids, Inner};
use crate::sim::core::lock;

pub fn describe_global(ctx: &Ctx) -> Response {
    let objects: Vec<Value> = schema::OBJECTS
        .iter()
        .map(|o| o.summary(&ctx.version))
        .collect();
    ok(json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects}))
}

pub fn object_info(def: &ObjectDef, ctx: &Ctx) -> Response {
    ok(json!({"objectDescribe": def.summary(&ctx.version), "recentItems": []}))
}

pub fn describe(def: &ObjectDef, ctx: &Ctx) -> Response {
    ok(def.describe(&ctx.version))
}

fn read_body(def: &ObjectDef, ctx: &Ctx) -> Result<Parsed, ApiError> {
    let body = parse_object(&ctx.body)?;
    parse_record(def, &body).map_err(|e| ApiError::records(vec![e]))
}

/// `POST /sobjects/{Object}` → 201 `{"id","success":true,"errors":[]}`.
pub fn create(inner: &Inner, def: &'static ObjectDef, ctx: &Ctx) -> Result<Response, ApiError> {
    let parsed = read_body(def, ctx)?;
    if parsed.id.is_some() {
        return Err(ApiError::records(vec![id_in_insert()]));
    }
    let now = inner.now();
    let id = lock(&inner.store)
        .insert(def, &parsed.patch, now, Actor::Api)
        .map_err(ApiError::records)?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"id": id, "success": true, "errors": []}),
    ))
}

/// The fields named by `?fields=` (None: all); unknown names are 400 `INVALID_FIELD`.
pub fn wanted_fields(
    def: &ObjectDef,
    ctx: &Ctx,
) -> Result<Option<Vec<&'static FieldDef>>, ApiError> {
    let Some(names) = ctx.query.list("fields") else {
        return Ok(None);
    };
    let mut out: Vec<&'static FieldDef> = Vec::new();
    for n in names {
        let f = def.field(n).ok_or_else(|| {
            ApiError::bad_request("INVALID_FIELD", format!("No such column '{n}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", def.name))
        })?;
        if !out.iter().any(|x| x.name == f.name) {
            out.push(f);
        }
    }
    Ok(Some(out))
}

fn render_one(def: &ObjectDef, rec: &super::store::Rec, ctx: &Ctx) -> Result<Response, ApiError> {
    let fields = wanted_fields(def, ctx)?.map(|mut f| {
        if !f.iter().any(|x| x.name == "Id") {
            f.push(&def.fields[0]);
        }
        f
    });
    Ok(ok(rec.render(def, fields.as_deref(), &ctx.version)))
}

fn no_such_external_field(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Provided external ID field does not exist or is not accessible: {name}"),
    )
}

/// `/sobjects/{Object}/{id}`: GET (`?fields=`), PATCH → 204, DELETE → 204.
pub fn record(
    inner: &Inner,
    def: &'static ObjectDef,
    ctx: &Ctx,
    raw_id: &str,
) -> Result<Response, ApiError> {
    if !ids::looks_like_id(raw_id) {
        return Err(no_such_external_field(raw_id));
    }
    let now = inner.now();
    match ctx.method.as_str() {
        "GET" => {
            let store = lock(&inner.store);
            let rec = store.live(def, raw_id)?;
            render_one(def, rec, ctx)
        }
        "PATCH" => {
            let parsed = read_body(def, ctx)?;
            if parsed.id.is_some() {
                return Err(ApiError::records(vec![id_in_insert()]));
            }
            lock(&inner.store).update(def, raw_id, &parsed.patch, now, Actor::Api)?;
            Ok(no_content())
        }
        _ => {
            lock(&inner.store).delete(Some(def), raw_id, now, Actor::Api)?;
            Ok(no_content())
        }
    }
}

/// The external-id field named in a path: `Id` or a field flagged `externalId`.
pub fn external_field(def: &ObjectDef, name: &str) -> Result<&'static FieldDef, ApiError> {
    let f = def
        .field(name)
        .ok_or_else(|| no_such_external_field(name))?;
    if f.name == "Id" || f.external_id {
        return Ok(f);
    }
    Err(ApiError::bad_request(
        "INVALID_FIELD",
        format!(
            "Field name provided, {} is not an External ID or indexed field for {}",
            f.name, def.name
        ),
    ))
}

/// `/sobjects/{Object}/{ExtField}/{value}`: GET, upsert (PATCH → 201 created / 200 updated,
/// `?updateOnly=true` refuses to create), DELETE.
pub fn by_external(
    inner: &Inner,
    def: &'static ObjectDef,
    ctx: &Ctx,
    field: &str,
    value: &str,
) -> Result<Response, ApiError> {
    let f = external_field(def, field)?;
    let now = inner.now();
    let lookup = |store: &super::store::Store| -> Option<String> {
        if f.name == "Id" {
            store.live(def, value).ok().map(|r| r.id().to_string())
        } else {
            store.by_unique(def, f, value).map(|r| r.id().to_string())
        }
    };
    match ctx.method.as_str() {
        "GET" => {
            let store = lock(&inner.store);
            let id = lookup(&store).ok_or_else(ApiError::not_found)?;
            let rec = store.live(def, &id)?;
            render_one(def, rec, ctx)
        }
        "PATCH" => {
            let parsed = read_body(def, ctx)?;
            if parsed.id.is_some() {
                return Err(ApiError::records(vec![id_in_insert()]));
            }
            let update_only = ctx
                .query
                .get("updateOnly")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let key = Key {
                field: f,
                value,
                update_only,
            };
            let (id, created) =
                lock(&inner.store).upsert(def, key, &parsed.patch, now, Actor::Api)?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(
                status,
                &json!({"id": id, "success": true, "errors": [], "created": created}),
            ))
        }
        _ => {
            let mut store = lock(&inner.store);
            let id = lookup(&store).ok_or_else(ApiError::not_found)?;
            store.delete(Some(def), &id, now, Actor::Api)?;
            Ok(no_content())
        }
    }
}

fn replication_error(message: String) -> ApiError {
    ApiError::bad_request("INVALID_REPLICATION_DATE", message)
}

/// `start` and `end` of a replication call, truncated to the minute.
fn window(ctx: &Ctx) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let get = |k: &str| -> Result<DateTime<Utc>, ApiError> {
        let raw = ctx.query.get(k).ok_or_else(|| {
            ApiError::bad_request("MISSING_ARGUMENT", format!("{k} parameter is required"))
        })?;
        parse_datetime(raw)
            .map(floor_minute)
            .ok_or_else(|| replication_error(format!("unable to parse {k}: {raw}")))
    };
    let (start, end) = (get("start")?, get("end")?);
    if end <= start {
        return Err(replication_error(
            "startDate must chronologically precede endDate by more than one minute".into(),
        ));
    }
    Ok((start, end))
}

fn ceil_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let f = floor_minute(t);
    if f == t {
        f
    } else {
        f + TimeDelta::minutes(1)
    }
}

/// `GET /sobjects/{Object}/deleted/?start=&end=` (getDeleted).
pub fn deleted(inner: &Inner, def: &ObjectDef, ctx: &Ctx) -> Result<Response, ApiError> {
    let (start, end) = window(ctx)?;
    let now = inner.now();
    let store = lock(&inner.store);
    let mut earliest = ceil_minute(now - inner.retention());
    if let Some(p) = store.purged_through {
        earliest = earliest.max(ceil_minute(p));
    }
    if start < earliest {
        return Err(replication_error(format!(
            "startDate is before the earliest date available: {}",
            sf_datetime(earliest)
        )));
    }
    let latest = end.min(floor_minute(now));
    let mut gone: Vec<(DateTime<Utc>, &str)> = store
        .rows(def)
        .filter_map(|r| r.deleted_at.map(|t| (t, r.id())))
        .filter(|(t, _)| *t >= start && *t < latest)
        .collect();
    gone.sort();
    let records: Vec<Value> = gone
        .iter()
        .map(|(t, id)| json!({"id": id, "deletedDate": sf_datetime(*t)}))
        .collect();
    Ok(ok(json!({
        "deletedRecords": records,
        "earliestDateAvailable": sf_datetime(earliest),
        "latestDateCovered": sf_datetime(latest),
    })))
}

/// `GET /sobjects/{Object}/updated/?start=&end=` (getUpdated, by `SystemModstamp`).
pub fn updated(inner: &Inner, def: &ObjectDef, ctx: &Ctx) -> Result<Response, ApiError> {
    let (start, end) = window(ctx)?;
    let now = inner.now();
    if start < floor_minute(now - TimeDelta::days(30)) {
        return Err(replication_error(
            "startDate cannot be more than 30 days ago".into(),
        ));
    }
    let latest = end.min(floor_minute(now));
    let store = lock(&inner.store);
    let ids: Vec<&str> = store
        .rows(def)
        .filter(|r| r.deleted_at.is_none())
        .filter(|r| matches!(r.get("SystemModstamp"), super::values::Val::DateTime(t) if *t >= start && *t < latest))
        .map(|r| r.id())
        .collect();
    Ok(ok(
        json!({"ids": ids, "latestDateCovered": sf_datetime(latest)}),
    ))
}

/// `GET /limits` (this call already counted).
pub fn limits(inner: &Inner) -> Response {
    let (used, max) = inner.api_usage();
    ok(json!({
        "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
    }))
}
