//! Salesforce simulator: sObject Collections — create, update, upsert by external id, delete
//! and retrieve up to 200 records in one call (one API request). Results come in input order
//! with `statusCode` errors; with `allOrNone` one failure rolls the whole call back.

use axum::response::Response;
use serde_json::{json, Map, Value};

use super::errors::{ApiError, SfError, SimError};
use super::gate::Ctx;
use super::rules::parse_record;
use super::schema::{self, FieldDef, ObjectDef};
use super::sobjects::{external_field, wanted_fields};
use super::store::{Actor, Key, Patch, Store};
use super::wire::{ok, parse_json};
use super::{ids, Inner};
use crate::sim::core::lock;

/// Records (or ids) one call may carry.
pub const MAX_RECORDS: usize = 200;

/// One record's planned operation, or its error found before touching the store.
enum Plan {
    Insert(&'static ObjectDef, Patch),
    Update(&'static ObjectDef, String, Patch),
    Upsert(&'static ObjectDef, &'static FieldDef, String, Patch),
    Delete(String),
    Fail(Option<String>, SfError),
}

struct Outcome {
    id: Option<String>,
    created: Option<bool>,
    errors: Vec<SfError>,
    /// The record was created (a rollback takes its id back).
    inserted: bool,
}

impl Outcome {
    fn done(id: String, created: Option<bool>, inserted: bool) -> Outcome {
        Outcome {
            id: Some(id),
            created,
            errors: vec![],
            inserted,
        }
    }
}

fn too_many() -> ApiError {
    ApiError::bad_request(
        "EXCEEDED_ID_LIMIT",
        format!(
            "record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
        ),
    )
}

/// `{"allOrNone": bool, "records": [...]}`.
fn read_records(ctx: &Ctx) -> Result<(bool, Vec<Map<String, Value>>), ApiError> {
    let body = parse_json(&ctx.body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(items) = body.get("records").and_then(Value::as_array) else {
        return Err(ApiError::bad_request(
            "JSON_PARSER_ERROR",
            "records: a JSON array of sObjects is required".into(),
        ));
    };
    if items.len() > MAX_RECORDS {
        return Err(too_many());
    }
    let records = items
        .iter()
        .map(|v| {
            v.as_object().cloned().ok_or_else(|| {
                ApiError::bad_request(
                    "JSON_PARSER_ERROR",
                    "Cannot deserialize instance of SObject".into(),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok((all_or_none, records))
}

/// The object named by `attributes.type` (`fallback` when absent, for upserts).
fn record_type(
    rec: &Map<String, Value>,
    fallback: Option<&'static ObjectDef>,
) -> Result<&'static ObjectDef, SfError> {
    match rec
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
    {
        Some(t) => schema::object(t).ok_or_else(|| {
            SfError::on(
                "INVALID_TYPE",
                format!("sObject type '{t}' is not supported."),
                &[],
            )
        }),
        None => fallback
            .ok_or_else(|| SfError::on("INVALID_TYPE", "Must send a concrete entity type.", &[])),
    }
}

/// Runs the plans (on a copy of the store when `all_or_none`, committed only if all pass).
fn execute(inner: &Inner, plans: Vec<Plan>, all_or_none: bool) -> Response {
    let now = inner.now();
    let mut guard = lock(&inner.store);
    let mut copy: Option<Store> = all_or_none.then(|| guard.clone());
    let store: &mut Store = match copy.as_mut() {
        Some(c) => c,
        None => &mut guard,
    };
    let fail = |id: Option<String>, errors: Vec<SfError>| Outcome {
        id,
        created: None,
        errors,
        inserted: false,
    };
    let sim = |id: &str, e: SimError| match e {
        SimError::NotFound | SimError::UnknownObject(_) => fail(
            Some(id.to_string()),
            vec![SfError::on(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[],
            )],
        ),
        other => fail(Some(id.to_string()), other.errors()),
    };
    let outcomes: Vec<Outcome> = plans
        .into_iter()
        .map(|p| match p {
            Plan::Fail(id, e) => fail(id, vec![e]),
            Plan::Insert(def, patch) => match store.insert(def, &patch, now, Actor::Api) {
                Ok(id) => Outcome::done(id, None, true),
                Err(errs) => fail(None, errs),
            },
            Plan::Update(def, id, patch) => match store.update(def, &id, &patch, now, Actor::Api) {
                Ok(id) => Outcome::done(id, None, false),
                Err(e) => sim(&id, e),
            },
            Plan::Upsert(def, f, value, patch) => {
                let key = Key {
                    field: f,
                    value: &value,
                    update_only: false,
                };
                match store.upsert(def, key, &patch, now, Actor::Api) {
                    Ok((id, created)) => Outcome::done(id, Some(created), created),
                    Err(e) => fail(None, e.errors()),
                }
            }
            Plan::Delete(id) => match store.delete(None, &id, now, Actor::Api) {
                Ok(_) => Outcome::done(ids::normalize(&id).unwrap_or(id), None, false),
                Err(e) => sim(&id, e),
            },
        })
        .collect();
    let failed = outcomes.iter().any(|o| !o.errors.is_empty());
    let rolled_back = all_or_none && failed;
    if let (Some(c), false) = (copy, rolled_back) {
        *guard = c;
    }
    drop(guard);
    if !rolled_back {
        let written = outcomes.iter().filter(|o| o.errors.is_empty()).count();
        inner
            .records_written
            .fetch_add(written as u64, std::sync::atomic::Ordering::Relaxed);
    }
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|o| {
            let (success, errors) = if !o.errors.is_empty() {
                (false, o.errors.clone())
            } else if rolled_back {
                let msg = "Record rolled back because not all records were valid and the request was using AllOrNone header";
                (false, vec![SfError::on("ALL_OR_NONE_OPERATION_ROLLED_BACK", msg, &[])])
            } else {
                (true, vec![])
            };
            let mut out = Map::new();
            // a create that did not happen has no id
            let show_id = success || !o.errors.is_empty() || !o.inserted;
            if let Some(id) = o.id.filter(|_| show_id) {
                out.insert("id".into(), Value::String(id));
            }
            out.insert("success".into(), Value::Bool(success));
            out.insert("errors".into(), Value::Array(errors.iter().map(SfError::collection).collect()));
            if let Some(c) = o.created {
                out.insert("created".into(), Value::Bool(c && success));
            }
            Value::Object(out)
        })
        .collect();
    ok(Value::Array(results))
}

/// `POST /composite/sobjects`: create.
pub fn create(inner: &Inner, ctx: &Ctx) -> Result<Response, ApiError> {
    let (all_or_none, records) = read_records(ctx)?;
    let mut plans = Vec::with_capacity(records.len());
    for rec in &records {
        let def = match record_type(rec, None) {
            Ok(d) => d,
            Err(e) => {
                plans.push(Plan::Fail(None, e));
                continue;
            }
        };
        let parsed = parse_record(def, rec).map_err(|e| ApiError::records(vec![e]))?;
        plans.push(match parsed.id {
            Some(_) => Plan::Fail(
                None,
                SfError::on(
                    "INVALID_FIELD",
                    "cannot specify Id in an insert call",
                    &["Id"],
                ),
            ),
            None => Plan::Insert(def, parsed.patch),
        });
    }
    Ok(execute(inner, plans, all_or_none))
}

/// `PATCH /composite/sobjects`: update by `id`.
pub fn update(inner: &Inner, ctx: &Ctx) -> Result<Response, ApiError> {
    let (all_or_none, records) = read_records(ctx)?;
    let mut plans = Vec::with_capacity(records.len());
    for rec in &records {
        let def = match record_type(rec, None) {
            Ok(d) => d,
            Err(e) => {
                plans.push(Plan::Fail(None, e));
                continue;
            }
        };
        let parsed = parse_record(def, rec).map_err(|e| ApiError::records(vec![e]))?;
        plans.push(match parsed.id {
            None => Plan::Fail(
                None,
                SfError::on(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    &[],
                ),
            ),
            Some(id) if ids::normalize(&id).is_none_or(|n| !n.starts_with(def.prefix)) => {
                Plan::Fail(
                    Some(id.clone()),
                    SfError::on(
                        "MALFORMED_ID",
                        format!("{} ID: id value of incorrect type: {id}", def.label),
                        &["Id"],
                    ),
                )
            }
            Some(id) => Plan::Update(def, id, parsed.patch),
        });
    }
    Ok(execute(inner, plans, all_or_none))
}

/// `PATCH /composite/sobjects/{Object}/{ExtField}`: upsert by external id.
pub fn upsert(
    inner: &Inner,
    def: &'static ObjectDef,
    field: &str,
    ctx: &Ctx,
) -> Result<Response, ApiError> {
    let f = external_field(def, field)?;
    let (all_or_none, records) = read_records(ctx)?;
    let mut plans = Vec::with_capacity(records.len());
    for rec in &records {
        match record_type(rec, Some(def)) {
            Ok(d) if d.name == def.name => {}
            Ok(d) => {
                let msg = format!(
                    "sObject type {} does not match the upsert type {}",
                    d.name, def.name
                );
                plans.push(Plan::Fail(None, SfError::on("INVALID_TYPE", msg, &[])));
                continue;
            }
            Err(e) => {
                plans.push(Plan::Fail(None, e));
                continue;
            }
        }
        let parsed = parse_record(def, rec).map_err(|e| ApiError::records(vec![e]))?;
        let key = if f.name == "Id" {
            parsed.id.clone()
        } else {
            parsed
                .patch
                .iter()
                .find(|(p, _)| p.name == f.name)
                .and_then(|(_, v)| v.as_str().map(str::to_string))
        };
        plans.push(match key {
            Some(value) => Plan::Upsert(def, f, value, parsed.patch),
            None => Plan::Fail(
                None,
                SfError::on(
                    "MISSING_ARGUMENT",
                    format!("{} not specified", f.name),
                    &[f.name],
                ),
            ),
        });
    }
    Ok(execute(inner, plans, all_or_none))
}

/// `DELETE /composite/sobjects?ids=…&allOrNone=…`.
pub fn delete(inner: &Inner, ctx: &Ctx) -> Result<Response, ApiError> {
    let ids_given = ctx.query.list("ids").unwrap_or_default();
    if ids_given.is_empty() {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "ids parameter is required".into(),
        ));
    }
    if ids_given.len() > MAX_RECORDS {
        return Err(too_many());
    }
    let all_or_none = ctx
        .query
        .get("allOrNone")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let plans = ids_given
        .iter()
        .map(|raw| match ids::normalize(raw) {
            Some(_) => Plan::Delete(raw.to_string()),
            None => Plan::Fail(
                Some(raw.to_string()),
                SfError::on("MALFORMED_ID", format!("malformed id {raw}"), &[]),
            ),
        })
        .collect();
    Ok(execute(inner, plans, all_or_none))
}

/// `GET /composite/sobjects/{Object}?ids=…&fields=…` (or POST `{"ids","fields"}`): records in
/// the order asked, `null` for ids that are not live records of the object.
pub fn retrieve(inner: &Inner, def: &'static ObjectDef, ctx: &Ctx) -> Result<Response, ApiError> {
    let (ids_given, fields): (Vec<String>, Option<Vec<&'static FieldDef>>) = if ctx.method == "POST"
    {
        let body = parse_json(&ctx.body)?;
        let list = |k: &str| -> Vec<String> {
            body.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let names = list("fields");
        let mut fields = Vec::new();
        for n in &names {
            fields.push(def.field(n).ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_FIELD",
                    format!("No such column '{n}' on entity '{}'", def.name),
                )
            })?);
        }
        (list("ids"), (!names.is_empty()).then_some(fields))
    } else {
        let ids = ctx
            .query
            .list("ids")
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect();
        (ids, wanted_fields(def, ctx)?)
    };
    let Some(fields) = fields else {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "The fields parameter is required".into(),
        ));
    };
    if ids_given.len() > 2000 {
        return Err(too_many());
    }
    let store = lock(&inner.store);
    let out: Vec<Value> = ids_given
        .iter()
        .map(|id| match store.live(def, id) {
            Ok(r) => r.render(def, Some(&fields), &ctx.version),
            Err(_) => Value::Null,
        })
        .collect();
    Ok(ok(json!(out)))
}
