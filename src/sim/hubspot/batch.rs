//! HubSpot simulator: the batch endpoints (`batch/read|create|update|upsert|archive`) with
//! HubSpot's BatchResponse envelope and 207 multi-status partial failures.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::http::{self, bad_request, iso, render, selection, written_selection};
use super::routes::{kind_or_400, resolve_id};
use super::schema::{parse_props, ObjectKind, Props};
use super::state::{Change, WriteError};
use super::webhooks::Source;
use super::{lock, Counters, Inner};
use crate::sim::core::Query;

const MAX_INPUTS: usize = 100;

pub(crate) async fn batch(
    State(inner): State<Arc<Inner>>,
    Path((object, op)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let kind = kind_or_400!(object);
    let requested_at = inner.clock.now();
    match op.as_str() {
        "read" => Counters::add(&inner.counters.read_requests, 1),
        "create" | "update" | "upsert" | "archive" => {
            Counters::add(&inner.counters.write_requests, 1)
        }
        _ => {
            return http::error(
                StatusCode::NOT_FOUND,
                "OBJECT_NOT_FOUND",
                &format!("Unknown batch operation: {op}"),
            )
        }
    }
    let body = match http::parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let inputs = match inputs_of(&body) {
        Ok(i) => i,
        Err(resp) => return resp,
    };
    let mut out = Outcome {
        results: Vec::with_capacity(inputs.len()),
        errors: Vec::new(),
        changes: Vec::new(),
        written: 0,
    };
    let ok_status = match op.as_str() {
        "read" => {
            let archived = match http::archived(&Query::parse(q.as_deref())) {
                Ok(a) => {
                    a || body
                        .get("archived")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                }
                Err(resp) => return resp,
            };
            return read(&inner, kind, &body, inputs, archived, requested_at);
        }
        "archive" => return archive(&inner, kind, inputs),
        "create" => match create(&inner, kind, inputs, &mut out) {
            Ok(()) => StatusCode::CREATED,
            Err(resp) => return resp,
        },
        "update" => match update(&inner, kind, &body, inputs, &mut out) {
            Ok(()) => StatusCode::OK,
            Err(resp) => return resp,
        },
        _ => match upsert(&inner, kind, inputs, &mut out) {
            Ok(()) => StatusCode::OK,
            Err(resp) => return resp,
        },
    };
    Counters::add(&inner.counters.records_written, out.written);
    envelope(&inner, ok_status, out.results, out.errors, requested_at)
}

struct Outcome {
    results: Vec<Value>,
    errors: Vec<Value>,
    changes: Vec<Change>,
    written: u64,
}

fn inputs_of(body: &Value) -> Result<&Vec<Value>, Response> {
    let Some(inputs) = body.get("inputs").and_then(Value::as_array) else {
        return Err(bad_request("Missing required field: inputs (an array)"));
    };
    if inputs.is_empty() {
        return Err(bad_request("inputs must contain at least one item"));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(bad_request(&format!(
            "Batch input limit exceeded: {} inputs given, the maximum is {MAX_INPUTS}",
            inputs.len()
        )));
    }
    if let Some(i) = inputs.iter().position(|v| !v.is_object()) {
        return Err(bad_request(&format!("inputs[{i}] must be an object")));
    }
    Ok(inputs)
}

/// A string field that may also be sent as a number.
fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn envelope(
    inner: &Inner,
    ok: StatusCode,
    results: Vec<Value>,
    errors: Vec<Value>,
    requested_at: DateTime<Utc>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso(requested_at),
        "startedAt": iso(requested_at),
        "completedAt": iso(inner.clock.now()),
    });
    let status = if errors.is_empty() {
        ok
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        StatusCode::MULTI_STATUS
    };
    http::json_response(status, &body)
}

/// One entry of a 207 `errors` list.
fn input_error(err: &WriteError, ctx_key: &str, ctx_val: &str) -> Value {
    let (_, category, message, extra) = http::write_error_parts(err);
    let mut e = json!({"status": "error", "category": category, "message": message, "context": {ctx_key: [ctx_val]}});
    if let (Some(obj), Value::Object(extra)) = (e.as_object_mut(), extra) {
        obj.extend(extra);
    }
    e
}

fn message_error(message: &str, ctx_key: &str, ctx_val: &str) -> Value {
    json!({"status": "error", "category": "VALIDATION_ERROR", "message": message, "context": {ctx_key: [ctx_val]}})
}

fn input_props(kind: ObjectKind, input: &Value) -> Result<Props, Result<WriteError, String>> {
    let map: &Map<String, Value> = http::properties_of(input).map_err(Err)?;
    parse_props(kind, map).map_err(|e| Ok(WriteError::Invalid(e)))
}

/// An input's properties; when they are invalid, its error goes into `errors` (its context:
/// `ctx_key: [ctx_val]`) and the input is skipped.
fn props_or_report(
    kind: ObjectKind,
    input: &Value,
    errors: &mut Vec<Value>,
    ctx_key: &str,
    ctx_val: &str,
) -> Option<Props> {
    match input_props(kind, input) {
        Ok(p) => Some(p),
        Err(Ok(e)) => {
            errors.push(input_error(&e, ctx_key, ctx_val));
            None
        }
        Err(Err(msg)) => {
            errors.push(message_error(&msg, ctx_key, ctx_val));
            None
        }
    }
}

/// `archived` (query `?archived=true`) reads archived records instead of live ones.
fn read(
    inner: &Inner,
    kind: ObjectKind,
    body: &Value,
    inputs: &[Value],
    archived: bool,
    requested_at: DateTime<Utc>,
) -> Response {
    let requested: Option<Vec<&str>> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let sel = selection(kind, requested);
    let id_property = body.get("idProperty").and_then(Value::as_str);
    let mut seen = HashSet::new();
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let store = lock(&inner.store);
    for (i, input) in inputs.iter().enumerate() {
        let Some(id) = str_field(input, "id") else {
            return bad_request(&format!("inputs[{i}].id is required"));
        };
        if !seen.insert(id.clone()) {
            continue;
        }
        let rec = match resolve_id(&store, kind, &id, id_property) {
            Ok(found) => found
                .and_then(|n| store.get(kind, n))
                .filter(|r| r.live() != archived),
            Err(resp) => return resp,
        };
        match rec {
            Some(r) => results.push(render(kind, r, &sel, None)),
            None => missing.push(id),
        }
    }
    drop(store);
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        let message = format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", kind.label());
        vec![
            json!({"status": "error", "category": "OBJECT_NOT_FOUND", "message": message, "context": {"id": missing}}),
        ]
    };
    envelope(inner, StatusCode::OK, results, errors, requested_at)
}

fn archive(inner: &Inner, kind: ObjectKind, inputs: &[Value]) -> Response {
    let mut changes = Vec::new();
    let mut written = 0;
    let mut store = lock(&inner.store);
    for input in inputs {
        let id = str_field(input, "id").and_then(|s| s.parse::<u64>().ok());
        if let Some(Ok(true)) = id.map(|id| store.archive(kind, id, inner.now(), &mut changes)) {
            written += 1;
        }
    }
    inner.emit(&changes, Source::Api);
    drop(store);
    Counters::add(&inner.counters.records_written, written);
    StatusCode::NO_CONTENT.into_response()
}

/// Without an `objectWriteTraceId` on every input, one bad input fails the whole batch and
/// nothing is created; with them, each input fails on its own (207).
fn create(
    inner: &Inner,
    kind: ObjectKind,
    inputs: &[Value],
    out: &mut Outcome,
) -> Result<(), Response> {
    let traces: Vec<Option<String>> = inputs
        .iter()
        .map(|i| str_field(i, "objectWriteTraceId"))
        .collect();
    let per_input = traces.iter().all(Option::is_some);
    let mut store = lock(&inner.store);
    if per_input {
        for (input, trace) in inputs.iter().zip(&traces) {
            let trace = trace.as_deref().unwrap_or_default();
            let Some(props) =
                props_or_report(kind, input, &mut out.errors, "objectWriteTraceId", trace)
            else {
                continue;
            };
            let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
            match store.create(kind, props, inner.now(), &mut out.changes) {
                Ok(id) => {
                    out.written += 1;
                    if let Some(r) = store.get(kind, id) {
                        out.results.push(render(
                            kind,
                            r,
                            &written_selection(kind, &written),
                            Some(trace),
                        ));
                    }
                }
                Err(e) => out
                    .errors
                    .push(input_error(&e, "objectWriteTraceId", trace)),
            }
        }
    } else {
        let mut all = Vec::with_capacity(inputs.len());
        let mut prop_errors = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            match input_props(kind, input) {
                Ok(p) => all.push(p),
                Err(Ok(WriteError::Invalid(mut e))) => prop_errors.append(&mut e),
                Err(Ok(e)) => return Err(http::write_error(&e)),
                Err(Err(msg)) => return Err(bad_request(&format!("inputs[{i}]: {msg}"))),
            }
        }
        if !prop_errors.is_empty() {
            return Err(http::write_error(&WriteError::Invalid(prop_errors)));
        }
        let mut emails = HashSet::new();
        for props in &all {
            store
                .check_unique(kind, None, props)
                .map_err(|e| http::write_error(&e))?;
            let email = props
                .iter()
                .rev()
                .find(|(n, _)| *n == "email")
                .and_then(|(_, v)| v.as_ref())
                .filter(|v| !v.is_empty());
            if let Some(email) = email {
                if !emails.insert(email.to_lowercase()) {
                    return Err(bad_request(&format!(
                        "Duplicate IDs found in batch input: [{email}]"
                    )));
                }
            }
        }
        for (props, trace) in all.into_iter().zip(&traces) {
            let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
            match store.create(kind, props, inner.now(), &mut out.changes) {
                Ok(id) => {
                    out.written += 1;
                    if let Some(r) = store.get(kind, id) {
                        out.results.push(render(
                            kind,
                            r,
                            &written_selection(kind, &written),
                            trace.as_deref(),
                        ));
                    }
                }
                Err(e) => out.errors.push(input_error(
                    &e,
                    "objectWriteTraceId",
                    trace.as_deref().unwrap_or_default(),
                )),
            }
        }
    }
    inner.emit(&out.changes, Source::Api);
    Ok(())
}

/// Each input succeeds or fails on its own; errors carry the trace id if given, else the id.
fn update(
    inner: &Inner,
    kind: ObjectKind,
    body: &Value,
    inputs: &[Value],
    out: &mut Outcome,
) -> Result<(), Response> {
    let mut seen = HashSet::new();
    for input in inputs {
        if let Some(id) = str_field(input, "id") {
            if !seen.insert(id.clone()) {
                return Err(bad_request(&format!(
                    "Duplicate IDs found in batch input: [{id}]"
                )));
            }
        }
    }
    let default_id_property = body.get("idProperty").and_then(Value::as_str);
    let mut store = lock(&inner.store);
    for (i, input) in inputs.iter().enumerate() {
        let trace = str_field(input, "objectWriteTraceId");
        let Some(id) = str_field(input, "id") else {
            return Err(bad_request(&format!("inputs[{i}].id is required")));
        };
        let (ctx_key, ctx_val) = match &trace {
            Some(t) => ("objectWriteTraceId", t.as_str()),
            None => ("id", id.as_str()),
        };
        let Some(props) = props_or_report(kind, input, &mut out.errors, ctx_key, ctx_val) else {
            continue;
        };
        let id_property = input
            .get("idProperty")
            .and_then(Value::as_str)
            .or(default_id_property);
        let n = match resolve_id(&store, kind, &id, id_property) {
            Ok(Some(n)) => n,
            Ok(None) => {
                out.errors
                    .push(input_error(&WriteError::NotFound, ctx_key, ctx_val));
                continue;
            }
            Err(resp) => return Err(resp),
        };
        let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
        match store.update(kind, n, props, inner.now(), &mut out.changes) {
            Ok(_) => {
                out.written += 1;
                if let Some(r) = store.get(kind, n) {
                    out.results.push(render(
                        kind,
                        r,
                        &written_selection(kind, &written),
                        trace.as_deref(),
                    ));
                }
            }
            Err(e) => out.errors.push(input_error(&e, ctx_key, ctx_val)),
        }
    }
    inner.emit(&out.changes, Source::Api);
    Ok(())
}

/// Upsert keyed by a unique property: only contacts by `email` are supported.
fn upsert(
    inner: &Inner,
    kind: ObjectKind,
    inputs: &[Value],
    out: &mut Outcome,
) -> Result<(), Response> {
    for (i, input) in inputs.iter().enumerate() {
        if kind != ObjectKind::Contacts
            || input.get("idProperty").and_then(Value::as_str) != Some("email")
        {
            return Err(bad_request(&format!("inputs[{i}].idProperty must be a unique property (only \"email\" on contacts is supported)")));
        }
    }
    let mut store = lock(&inner.store);
    for (i, input) in inputs.iter().enumerate() {
        let Some(email) = str_field(input, "id") else {
            return Err(bad_request(&format!("inputs[{i}].id is required")));
        };
        let trace = str_field(input, "objectWriteTraceId");
        let (ctx_key, ctx_val) = match &trace {
            Some(t) => ("objectWriteTraceId", t.as_str()),
            None => ("id", email.as_str()),
        };
        let Some(mut props) = props_or_report(kind, input, &mut out.errors, ctx_key, ctx_val)
        else {
            continue;
        };
        let existing = store.contact_by_email(&email);
        if existing.is_none() && !props.iter().any(|(n, _)| *n == "email") {
            props.push(("email", Some(email.clone())));
        }
        let written: Vec<&'static str> = props.iter().map(|(n, _)| *n).collect();
        let done = match existing {
            Some(n) => store
                .update(kind, n, props, inner.now(), &mut out.changes)
                .map(|_| (n, false)),
            None => store
                .create(kind, props, inner.now(), &mut out.changes)
                .map(|n| (n, true)),
        };
        match done {
            Ok((n, new)) => {
                out.written += 1;
                if let Some(r) = store.get(kind, n) {
                    let mut v = render(
                        kind,
                        r,
                        &written_selection(kind, &written),
                        trace.as_deref(),
                    );
                    v["new"] = Value::Bool(new);
                    out.results.push(v);
                }
            }
            Err(e) => out.errors.push(input_error(&e, ctx_key, ctx_val)),
        }
    }
    inner.emit(&out.changes, Source::Api);
    Ok(())
}
