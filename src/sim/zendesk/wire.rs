//! Zendesk simulator: the wire format shared by the handlers — timestamps, JSON responses,
//! Zendesk's error envelopes, request bodies and path ids.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::fields::FieldError;
use super::SimError;

/// ISO-8601 UTC with seconds and `Z` (`2012-04-04T09:14:57Z`), as Zendesk prints times.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

/// `{"error": .., "description": ..}` with `status`.
pub(crate) fn error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({"error": error, "description": description}))
}

pub(crate) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found")
}

pub(crate) fn bad_request(error_code: &str, description: &str) -> Response {
    error(StatusCode::BAD_REQUEST, error_code, description)
}

/// `details` of a `RecordInvalid` error: field -> list of `{description, error}`.
pub(crate) fn details(errs: &[FieldError]) -> Value {
    let mut out = Map::new();
    for e in errs {
        let list = out
            .entry(e.field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.push(json!({"description": e.description, "error": e.error}));
        }
    }
    Value::Object(out)
}

/// 422 `RecordInvalid` with the field details.
pub(crate) fn invalid(errs: &[FieldError]) -> Response {
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": details(errs),
        }),
    )
}

pub(crate) fn sim_error(e: &SimError) -> Response {
    match e {
        SimError::NotFound => not_found(),
        SimError::Invalid(errs) => invalid(errs),
        SimError::UnknownObject(_) => not_found(),
    }
}

/// The JSON body of a write; `Err` is a ready 400. (The exact wording of Zendesk's answer to
/// unparsable JSON is unconfirmed.)
pub(crate) fn parse_body(bytes: &[u8]) -> Result<Value, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        bad_request(
            "InvalidJSON",
            &format!(
                "Problems parsing JSON: line {}, column {}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// The wrapped resource (`{"user": {...}}`); a missing or non-object wrapper is a 400 like
/// Rails' missing-parameter answer (wording unconfirmed).
pub(crate) fn wrapped<'a>(body: &'a Value, key: &str) -> Result<&'a Map<String, Value>, Response> {
    match body.get(key) {
        Some(Value::Object(m)) => Ok(m),
        _ => Err(bad_request(
            "InvalidParameter",
            &format!("param is missing or the value is empty: {key}"),
        )),
    }
}

/// A path id, with or without the `.json` suffix.
pub(crate) fn path_id(raw: &str) -> Option<u64> {
    raw.strip_suffix(".json").unwrap_or(raw).parse().ok()
}

/// Comma-separated ids of a query parameter; `Err` is a 400 naming the parameter.
pub(crate) fn id_list(values: &[&str], param: &str) -> Result<Vec<u64>, Response> {
    values
        .iter()
        .map(|v| v.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad_request(
                "InvalidValue",
                &format!("{param} must be a comma-separated list of ids"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let t = DateTime::from_timestamp(1_333_530_897, 0).expect("t");
        assert_eq!(iso(t), "2012-04-04T09:14:57Z");
        assert_eq!(path_id("12.json"), Some(12));
        assert_eq!(path_id("12"), Some(12));
        assert_eq!(path_id("x"), None);
        let d = details(&[
            FieldError::new(
                "email",
                "InvalidFormat",
                "Email: x is not properly formatted".into(),
            ),
            FieldError::blank_name(),
        ]);
        assert_eq!(
            d,
            json!({
                "email": [{"description": "Email: x is not properly formatted", "error": "InvalidFormat"}],
                "name": [{"description": "Name: cannot be blank", "error": "BlankValue"}],
            })
        );
        assert!(parse_body(b"{").is_err());
        assert_eq!(parse_body(b" ").ok(), Some(json!({})));
        assert!(id_list(&["1", "2"], "ids").is_ok_and(|v| v == [1, 2]));
        assert!(id_list(&["1", "b"], "ids").is_err());
    }
}
