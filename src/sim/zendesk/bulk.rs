//! Zendesk simulator: the bulk endpoints (`create_many`, `create_or_update_many`,
//! `update_many`, `destroy_many` for users and organizations) — each answers a queued
//! job_status at once; the job later applies its items one by one, each failing alone.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::fields::{org_patch, user_patch, FieldError, OrgPatch, UserPatch};
use super::paging::MAX_PAGE;
use super::store::{Change, Store};
use super::users_api::too_many;
use super::wire::{bad_request, id_list, ok, parse_body, wrapped};
use super::{Inner, SimError};
use crate::sim::core::query::Query;

/// Which record a bulk item addresses.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Id(u64),
    ExternalId(String),
}

type Parsed<P> = Result<P, Vec<FieldError>>;
/// An update item: the record it addresses (None: no id given) and its change set.
type Addressed<P> = (Option<Target>, Parsed<P>);

/// The work of one job: items in input order, parse failures kept to fail alone.
pub(crate) enum JobOp {
    CreateUsers(Vec<Parsed<UserPatch>>),
    UpsertUsers(Vec<Parsed<UserPatch>>),
    UpdateUsers(Vec<Addressed<UserPatch>>),
    DestroyUsers(Vec<Target>),
    CreateOrgs(Vec<Parsed<OrgPatch>>),
    UpdateOrgs(Vec<Addressed<OrgPatch>>),
    DestroyOrgs(Vec<Target>),
}

impl JobOp {
    pub(crate) fn len(&self) -> usize {
        match self {
            JobOp::CreateUsers(v) | JobOp::UpsertUsers(v) => v.len(),
            JobOp::UpdateUsers(v) => v.len(),
            JobOp::DestroyUsers(v) | JobOp::DestroyOrgs(v) => v.len(),
            JobOp::CreateOrgs(v) => v.len(),
            JobOp::UpdateOrgs(v) => v.len(),
        }
    }
}

fn not_object() -> Vec<FieldError> {
    vec![FieldError::new(
        "base",
        "InvalidValue",
        "Item must be an object".into(),
    )]
}

/// The array under `key` (≤100 items), each parsed with `parse`; `Err` is a 400.
fn items<P>(
    body: &Value,
    key: &str,
    parse: impl Fn(&Map<String, Value>) -> Parsed<P>,
) -> Result<Vec<Parsed<P>>, Response> {
    let Some(list) = body.get(key).and_then(Value::as_array) else {
        return Err(bad_request(
            "InvalidParameter",
            &format!("param is missing or the value is empty: {key}"),
        ));
    };
    if list.len() > MAX_PAGE {
        return Err(too_many(key));
    }
    Ok(list
        .iter()
        .map(|v| v.as_object().map_or_else(|| Err(not_object()), &parse))
        .collect())
}

/// `ids=` / `external_ids=` targets (≤100); None when neither is given.
fn query_targets(q: &Query) -> Result<Option<Vec<Target>>, Response> {
    if let Some(list) = q.list("ids") {
        if list.len() > MAX_PAGE {
            return Err(too_many("ids"));
        }
        return Ok(Some(
            id_list(&list, "ids")?.into_iter().map(Target::Id).collect(),
        ));
    }
    if let Some(list) = q.list("external_ids") {
        if list.len() > MAX_PAGE {
            return Err(too_many("external_ids"));
        }
        return Ok(Some(
            list.iter()
                .map(|x| Target::ExternalId(x.to_string()))
                .collect(),
        ));
    }
    Ok(None)
}

/// `update_many` input: `?ids=` + one change set under `singular`, or an array under `plural`
/// of objects carrying their `id`.
fn update_items<P: Clone>(
    q: &Query,
    body: &Value,
    singular: &str,
    plural: &str,
    parse: impl Fn(&Map<String, Value>) -> Parsed<P>,
) -> Result<Vec<Addressed<P>>, Response> {
    if let Some(targets) = query_targets(q)? {
        let patch = parse(wrapped(body, singular)?);
        return Ok(targets
            .into_iter()
            .map(|t| (Some(t), patch.clone()))
            .collect());
    }
    let parsed = items(body, plural, &parse)?;
    let list = body.get(plural).and_then(Value::as_array);
    Ok(parsed
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let id = list.and_then(|l| l.get(i)).and_then(|v| match &v["id"] {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            });
            (id.map(Target::Id), p)
        })
        .collect())
}

fn destroy_targets(q: &Query) -> Result<Vec<Target>, Response> {
    query_targets(q)?.ok_or_else(|| bad_request("InvalidValue", "ids or external_ids is required"))
}

fn submit(inner: &Inner, op: JobOp) -> Response {
    match inner.jobs.submit(op, &inner.base_url) {
        Some(job) => ok(json!({ "job_status": job })),
        None => super::jobs::too_many_jobs(),
    }
}

macro_rules! body_or_400 {
    ($bytes:expr) => {
        match parse_body(&$bytes) {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

macro_rules! or_400 {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

pub(crate) async fn users_create_many(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let body = body_or_400!(body);
    let list = or_400!(items(&body, "users", user_patch));
    submit(&inner, JobOp::CreateUsers(list))
}

pub(crate) async fn users_create_or_update_many(
    State(inner): State<Arc<Inner>>,
    body: Bytes,
) -> Response {
    let body = body_or_400!(body);
    let list = or_400!(items(&body, "users", user_patch));
    submit(&inner, JobOp::UpsertUsers(list))
}

pub(crate) async fn users_update_many(
    State(inner): State<Arc<Inner>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let body = body_or_400!(body);
    let q = Query::parse(q.as_deref());
    let list = or_400!(update_items(&q, &body, "user", "users", user_patch));
    submit(&inner, JobOp::UpdateUsers(list))
}

pub(crate) async fn users_destroy_many(
    State(inner): State<Arc<Inner>>,
    RawQuery(q): RawQuery,
) -> Response {
    let targets = or_400!(destroy_targets(&Query::parse(q.as_deref())));
    submit(&inner, JobOp::DestroyUsers(targets))
}

pub(crate) async fn orgs_create_many(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let body = body_or_400!(body);
    let list = or_400!(items(&body, "organizations", org_patch));
    submit(&inner, JobOp::CreateOrgs(list))
}

pub(crate) async fn orgs_update_many(
    State(inner): State<Arc<Inner>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let body = body_or_400!(body);
    let q = Query::parse(q.as_deref());
    let list = or_400!(update_items(
        &q,
        &body,
        "organization",
        "organizations",
        org_patch
    ));
    submit(&inner, JobOp::UpdateOrgs(list))
}

pub(crate) async fn orgs_destroy_many(
    State(inner): State<Arc<Inner>>,
    RawQuery(q): RawQuery,
) -> Response {
    let targets = or_400!(destroy_targets(&Query::parse(q.as_deref())));
    submit(&inner, JobOp::DestroyOrgs(targets))
}

fn success(index: usize, id: u64, action: &str, status: &str) -> Value {
    json!({"index": index, "id": id, "action": action, "status": status, "success": true})
}

/// A failed item: `error` is the first validation code (or `RecordNotFound`), `details` the
/// validation descriptions (the exact codes Zendesk puts here are unconfirmed).
fn failure(index: usize, id: Option<u64>, action: &str, err: &SimError) -> Value {
    let (code, details) = match err {
        SimError::Invalid(errs) => (
            errs.first().map_or("RecordInvalid", |e| e.error),
            errs.iter()
                .map(|e| e.description.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        SimError::NotFound => ("RecordNotFound", "Not found".to_string()),
        SimError::UnknownObject(o) => ("InvalidEndpoint", o.clone()),
    };
    let mut v = json!({
        "index": index, "action": action, "status": "Failed", "success": false,
        "error": code, "details": details,
    });
    if let (Some(id), Some(m)) = (id, v.as_object_mut()) {
        m.insert("id".into(), json!(id));
    }
    v
}

/// Applies a job's items in order; returns per-item results, the changes for webhooks and
/// the number of records written.
pub(crate) fn run(
    store: &mut Store,
    op: JobOp,
    now: DateTime<Utc>,
) -> (Vec<Value>, Vec<Change>, u64) {
    let mut results = Vec::with_capacity(op.len());
    let mut changes = Vec::new();
    let mut written = 0;
    let mut record = |i: usize,
                      id: Option<u64>,
                      action: &str,
                      status: &str,
                      out: Result<(u64, Vec<Change>), SimError>| match out {
        Ok((id, c)) => {
            written += 1;
            changes.extend(c);
            results.push(success(i, id, action, status));
        }
        Err(e) => results.push(failure(i, id, action, &e)),
    };
    let user_id = |store: &Store, t: &Target| match t {
        Target::Id(id) => Ok(*id),
        Target::ExternalId(x) => store.user_by_external_id(x).ok_or(SimError::NotFound),
    };
    let org_id = |store: &Store, t: &Target| match t {
        Target::Id(id) => Ok(*id),
        Target::ExternalId(x) => store.org_by_external_id(x).ok_or(SimError::NotFound),
    };
    match op {
        JobOp::CreateUsers(list) => {
            for (i, p) in list.into_iter().enumerate() {
                let out = p
                    .map_err(SimError::Invalid)
                    .and_then(|p| store.create_user(&p, now));
                record(i, None, "create", "Created", out);
            }
        }
        JobOp::UpsertUsers(list) => {
            for (i, p) in list.into_iter().enumerate() {
                match p
                    .map_err(SimError::Invalid)
                    .and_then(|p| store.upsert_user(&p, now))
                {
                    Ok((id, true, c)) => record(i, None, "create", "Created", Ok((id, c))),
                    Ok((id, false, c)) => record(i, None, "update", "Updated", Ok((id, c))),
                    Err(e) => record(i, None, "create_or_update", "Failed", Err(e)),
                }
            }
        }
        JobOp::UpdateUsers(list) => {
            for (i, (t, p)) in list.into_iter().enumerate() {
                let id = t.as_ref().map(|t| user_id(store, t));
                let out = match (id.clone(), p) {
                    (Some(Ok(id)), Ok(p)) => store.update_user(id, &p, now).map(|c| (id, c)),
                    (Some(Ok(_)), Err(errs)) => Err(SimError::Invalid(errs)),
                    _ => Err(SimError::NotFound),
                };
                record(i, id.and_then(Result::ok), "update", "Updated", out);
            }
        }
        JobOp::DestroyUsers(list) => {
            for (i, t) in list.iter().enumerate() {
                let id = user_id(store, t);
                let out = id
                    .clone()
                    .and_then(|id| store.delete_user(id, now).map(|c| (id, c)));
                record(i, id.ok(), "delete", "Deleted", out);
            }
        }
        JobOp::CreateOrgs(list) => {
            for (i, p) in list.into_iter().enumerate() {
                let out = p
                    .map_err(SimError::Invalid)
                    .and_then(|p| store.create_org(&p, now));
                record(i, None, "create", "Created", out);
            }
        }
        JobOp::UpdateOrgs(list) => {
            for (i, (t, p)) in list.into_iter().enumerate() {
                let id = t.as_ref().map(|t| org_id(store, t));
                let out = match (id.clone(), p) {
                    (Some(Ok(id)), Ok(p)) => store.update_org(id, &p, now).map(|c| (id, c)),
                    (Some(Ok(_)), Err(errs)) => Err(SimError::Invalid(errs)),
                    _ => Err(SimError::NotFound),
                };
                record(i, id.and_then(Result::ok), "update", "Updated", out);
            }
        }
        JobOp::DestroyOrgs(list) => {
            for (i, t) in list.iter().enumerate() {
                let id = org_id(store, t);
                let out = id
                    .clone()
                    .and_then(|id| store.delete_org(id, now).map(|c| (id, c)));
                record(i, id.ok(), "delete", "Deleted", out);
            }
        }
    }
    (results, changes, written)
}
