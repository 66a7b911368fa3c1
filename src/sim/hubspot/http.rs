//! HubSpot simulator: HTTP helpers shared by the handlers — HubSpot-shaped error bodies, the
//! `archived` query flag, JSON bodies, and rendering records as `SimplePublicObject`s.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::schema::{ObjectKind, PropError};
use super::state::{Rec, WriteError};
use crate::sim::core::Query;

/// ISO-8601 with milliseconds and `Z`, as HubSpot prints timestamps.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn correlation_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

/// `{"status":"error","message":..,"category":..,"correlationId":..}` plus `extra` fields.
pub(crate) fn error_with(
    status: StatusCode,
    category: &str,
    message: &str,
    extra: Value,
) -> Response {
    let mut body = json!({"status": "error", "message": message, "correlationId": correlation_id(), "category": category});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    json_response(status, &body)
}

pub(crate) fn error(status: StatusCode, category: &str, message: &str) -> Response {
    error_with(status, category, message, Value::Null)
}

pub(crate) fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
}

pub(crate) fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        "resource not found",
    )
}

pub(crate) fn unknown_object(name: &str) -> Response {
    bad_request(&format!("Unable to infer object type from: {name}"))
}

/// Message and `errors` list of a property validation failure.
pub(crate) fn validation_parts(errs: &[PropError]) -> (String, Value) {
    let legacy: Vec<Value> = errs
        .iter()
        .map(|e| json!({"isValid": false, "message": e.message, "error": e.code, "name": e.name}))
        .collect();
    let message = format!("Property values were not valid: {}", Value::Array(legacy));
    let errors: Vec<Value> = errs
        .iter()
        .map(|e| json!({"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}}))
        .collect();
    (message, Value::Array(errors))
}

pub(crate) fn duplicate_message(existing: u64) -> String {
    format!("Contact already exists. Existing ID: {existing}")
}

/// Status, category, message and extra fields describing a refused write.
pub(crate) fn write_error_parts(err: &WriteError) -> (StatusCode, &'static str, String, Value) {
    match err {
        WriteError::NotFound => (
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "resource not found".into(),
            Value::Null,
        ),
        WriteError::Invalid(errs) => {
            let (message, errors) = validation_parts(errs);
            (
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                message,
                json!({ "errors": errors }),
            )
        }
        WriteError::Duplicate(id) => (
            StatusCode::CONFLICT,
            "CONFLICT",
            duplicate_message(*id),
            Value::Null,
        ),
    }
}

pub(crate) fn write_error(err: &WriteError) -> Response {
    let (status, category, message, extra) = write_error_parts(err);
    error_with(status, category, &message, extra)
}

/// Parses a JSON request body; `Err` is a ready 400 response.
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Value, Response> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(bad_request("Invalid input JSON: request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        bad_request(&format!(
            "Invalid input JSON on line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// The `properties` object of a create/update input; `Err` is the message for a 400.
pub(crate) fn properties_of(v: &Value) -> Result<&Map<String, Value>, String> {
    match v.get("properties") {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err("properties must be an object of property name to value".into()),
        None => Err("Missing required field: properties".into()),
    }
}

/// `archived=true|false` (default false); `Err` is a 400.
pub(crate) fn archived(q: &Query) -> Result<bool, Response> {
    match q.get("archived") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(bad_request(&format!(
            "Invalid value for archived: {v} (expected true or false)"
        ))),
    }
}

/// The properties a response shows: the requested known ones (unknown names ignored) or the
/// defaults, always with the read-only ones.
pub(crate) fn selection<'a>(
    kind: ObjectKind,
    requested: Option<impl IntoIterator<Item = &'a str>>,
) -> Vec<&'static str> {
    let mut sel: Vec<&'static str> = match requested {
        None => kind.defaults().to_vec(),
        Some(names) => names
            .into_iter()
            .filter_map(|n| kind.canonical(n))
            .collect(),
    };
    sel.extend(kind.read_only());
    sel.sort_unstable();
    sel.dedup();
    sel
}

/// Selection for create/update responses: defaults plus the properties written.
pub(crate) fn written_selection(kind: ObjectKind, written: &[&'static str]) -> Vec<&'static str> {
    let mut sel = selection(kind, None::<Vec<&str>>);
    sel.extend_from_slice(written);
    sel.sort_unstable();
    sel.dedup();
    sel
}

/// A record as a `SimplePublicObject`.
pub(crate) fn render(
    kind: ObjectKind,
    rec: &Rec,
    sel: &[&'static str],
    trace: Option<&str>,
) -> Value {
    let mut obj = serde_json::to_value(Rendered { kind, rec, sel }).unwrap_or(Value::Null);
    if let Some(t) = trace {
        obj["objectWriteTraceId"] = Value::String(t.to_string());
    }
    obj
}

/// [`render`] serialised as it is written, without a JSON tree first: the list endpoint pages
/// through every record in a backfill (building the tree was most of the simulator's CPU).
pub(crate) struct Rendered<'a> {
    pub kind: ObjectKind,
    pub rec: &'a Rec,
    pub sel: &'a [&'static str],
}

impl Serialize for Rendered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Properties<'r>(&'r Rendered<'r>);
        impl Serialize for Properties<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Rendered { kind, rec, sel } = self.0;
                let mut map = serializer.serialize_map(Some(sel.len()))?;
                for name in sel.iter() {
                    map.serialize_entry(name, &rec.value(*kind, name))?;
                }
                map.end()
            }
        }
        let rec = self.rec;
        let mut obj = serializer.serialize_map(None)?;
        obj.serialize_entry("id", &rec.id.to_string())?;
        obj.serialize_entry("properties", &Properties(self))?;
        obj.serialize_entry("createdAt", &iso(rec.created))?;
        obj.serialize_entry("updatedAt", &iso(rec.updated))?;
        obj.serialize_entry("archived", &!rec.live())?;
        if let Some(at) = rec.archived_at {
            obj.serialize_entry("archivedAt", &iso(at))?;
        }
        obj.end()
    }
}
