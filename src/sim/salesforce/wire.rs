//! Salesforce simulator: the wire format shared by the handlers — Salesforce's datetime form
//! (`2024-01-01T00:00:00.000+0000`), the datetime literals clients send, JSON responses and
//! request bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::errors::ApiError;

/// `2024-01-01T00:00:00.000+0000`, as Salesforce prints datetimes.
pub(crate) fn sf_datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A datetime as clients send it: `2024-01-01T00:00:00Z`, with fractions, with `+00:00`,
/// `+0000` or `-0500` offsets. Stored in UTC, truncated to milliseconds.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let parsed = DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            // no offset at all: UTC
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })?;
    DateTime::from_timestamp_millis(parsed.timestamp_millis())
}

pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

/// `t` truncated to the whole minute (getUpdated/getDeleted windows work in minutes).
pub(crate) fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp();
    DateTime::from_timestamp(secs - secs.rem_euclid(60), 0).unwrap_or(t)
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    resp
}

pub(crate) fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The JSON body of a request; unparsable JSON is Salesforce's 400 `JSON_PARSER_ERROR`.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "JSON_PARSER_ERROR",
            "The HTTP entity body is required, but this request has no entity body.".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "JSON_PARSER_ERROR",
            format!(
                "Unexpected character in the request body at [line:{}, column:{}]",
                e.line(),
                e.column()
            ),
        )
    })
}

/// A body that must be a JSON object (one record's fields).
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_json(bytes)? {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of SObject from {} value",
                token_name(&other)
            ),
        )),
    }
}

/// Jackson's name for a JSON token, as Salesforce's parser errors quote it.
pub(crate) fn token_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        let t = parse_datetime("2024-01-01T00:00:00Z").expect("z");
        assert_eq!(sf_datetime(t), "2024-01-01T00:00:00.000+0000");
        let ms = parse_datetime("2024-01-01T01:02:03.456+0100").expect("+0100");
        assert_eq!(sf_datetime(ms), "2024-01-01T00:02:03.456+0000");
        let colon = parse_datetime("2024-01-01T00:02:03.456789+00:00").expect("+00:00");
        assert_eq!(sf_datetime(colon), "2024-01-01T00:02:03.456+0000");
        let bare = parse_datetime("2024-01-01T00:00:00").expect("bare");
        assert_eq!(bare, t);
        assert_eq!(parse_datetime("2024-01-01"), None);
        assert_eq!(parse_datetime("soon"), None);
        assert_eq!(
            sf_datetime(floor_minute(ms)),
            "2024-01-01T00:02:00.000+0000"
        );
        assert!(parse_date("2024-02-29").is_some() && parse_date("2023-02-29").is_none());
    }
}
