//! REST simulator: wire helpers — the JSON error every refusal carries
//! (`{"error": "<code>", "message": "<text>"}`), JSON answers, JSON pointers that build the
//! nested objects a profile's shapes ask for, query pairs and random tokens.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::sim::core::query::decode;

/// A refusal.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", message)
    }

    /// The answer for a record that is not there, with the resource's `missing_status`.
    pub(crate) fn missing(status: u16, resource: &str, id: &str) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
        let code = match status.as_u16() {
            403 => "forbidden",
            410 => "gone",
            _ => "not_found",
        };
        ApiError::new(status, code, format!("no {resource} record with id {id}"))
    }

    /// 405 with the methods the route takes.
    pub(crate) fn method(allowed: &str) -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route takes {allowed}"),
        )
        .header(header::ALLOW, allowed)
    }

    /// 429 asking to come back in `secs` seconds.
    pub(crate) fn throttled(secs: u64) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry after the Retry-After seconds",
        )
        .header(header::RETRY_AFTER, secs.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message});
        let mut resp = json_response(self.status, &body);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
        resp
    }
}

/// A JSON answer.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Puts `value` at the JSON pointer `pointer` in `root`, making the objects on the way (""
/// replaces the root).
pub(crate) fn put(root: &mut Value, pointer: &str, value: Value) {
    let mut keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some(last) = keys.pop() else {
        *root = value;
        return;
    };
    let mut at = root;
    for key in keys {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        at = at
            .as_object_mut()
            .map(|m| m.entry(key).or_insert(Value::Null))
            .expect("made an object above");
    }
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    if let Some(m) = at.as_object_mut() {
        m.insert(last, value);
    }
}

/// `value` placed at `pointer` in a new body.
pub(crate) fn shaped(pointer: &str, value: Value) -> Value {
    let mut body = Value::Object(Map::new());
    put(&mut body, pointer, value);
    body
}

/// The decoded pairs of a query string (or form body), in order.
pub(crate) fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `key` in `pairs`.
pub(crate) fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random letters and digits.
pub(crate) fn random_alnum(n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[rand::random_range(0..ALNUM.len())] as char)
        .collect()
}

/// A JSON value as text, for equality filters (strings bare, everything else as JSON).
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_build_nested_objects() {
        let mut b = shaped("/data", json!([1]));
        put(&mut b, "/meta/page/next", json!("c"));
        put(&mut b, "/a~1b", json!(true));
        assert_eq!(
            b,
            json!({"data": [1], "meta": {"page": {"next": "c"}}, "a/b": true})
        );
        assert_eq!(shaped("", json!([2])), json!([2]));
    }

    #[test]
    fn pairs_decode_in_order() {
        let p = pairs(Some("a=1&b=x%2By&a=2&flag"));
        assert_eq!(first(&p, "a"), Some("1"));
        assert_eq!(first(&p, "b"), Some("x+y"));
        assert_eq!(first(&p, "flag"), Some(""));
        assert_eq!(p.len(), 4);
        assert_eq!(random_alnum(20).len(), 20);
        assert_eq!(text(&json!("a")), "a");
        assert_eq!(text(&json!(5)), "5");
    }
}
