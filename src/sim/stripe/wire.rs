//! Stripe simulator: the wire format shared by the handlers — Stripe's error envelope
//! (`StripeError`), JSON responses, prefixed random ids and the key modes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// Which key a request used; test and live data are separate worlds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }

    /// The rate budget's name.
    pub(crate) fn budget(self) -> &'static str {
        match self {
            Mode::Test => "sandbox",
            Mode::Live => "live",
        }
    }
}

/// Marks a response whose request failed before the endpoint began executing (validation,
/// parsing): Stripe stores no idempotent result for it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NotExecuted;

/// An error as Stripe answers it: `{"error": {"type", "code", "message", "param"}}`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct StripeError {
    pub status: StatusCode,
    /// `invalid_request_error`, `api_error`, `idempotency_error`...
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub message: String,
    /// Raised before the endpoint began executing (nothing is stored for idempotency).
    pub before_execution: bool,
}

impl StripeError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: String) -> StripeError {
        StripeError {
            status,
            kind,
            code: None,
            param: None,
            message,
            before_execution: false,
        }
    }

    /// A 400 `invalid_request_error` about `param`, raised while validating.
    pub(crate) fn invalid(param: &str, message: String) -> StripeError {
        StripeError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            .param(param)
            .validation()
    }

    pub(crate) fn unknown_param(param: &str) -> StripeError {
        StripeError::invalid(param, format!("Received unknown parameter: {param}"))
            .code("parameter_unknown")
    }

    pub(crate) fn missing_param(param: &str) -> StripeError {
        StripeError::invalid(param, format!("Missing required param: {param}."))
            .code("parameter_missing")
    }

    pub(crate) fn bad_integer(param: &str, raw: &str) -> StripeError {
        StripeError::invalid(param, format!("Invalid integer: {raw}"))
            .code("parameter_invalid_integer")
    }

    /// 404 `resource_missing` for an object named in the path.
    pub(crate) fn no_such(what: &str, id: &str) -> StripeError {
        StripeError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("No such {what}: '{id}'"),
        )
        .code("resource_missing")
        .param("id")
    }

    /// 400 `resource_missing` for an object named by a parameter (`customer`,
    /// `starting_after`...).
    pub(crate) fn no_such_param(what: &str, id: &str, param: &str) -> StripeError {
        let mut e = StripeError::no_such(what, id).param(param);
        e.status = StatusCode::BAD_REQUEST;
        e
    }

    /// 400 about the object's state (the endpoint ran and refused).
    pub(crate) fn state(message: String) -> StripeError {
        StripeError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub(crate) fn code(mut self, code: &'static str) -> StripeError {
        self.code = Some(code);
        self
    }

    pub(crate) fn param(mut self, param: &str) -> StripeError {
        self.param = Some(param.to_string());
        self
    }

    pub(crate) fn validation(mut self) -> StripeError {
        self.before_execution = true;
        self
    }

    pub fn body(&self) -> Value {
        let mut e = Map::new();
        e.insert("type".into(), json!(self.kind));
        e.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            e.insert("code".into(), json!(code));
            e.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        if let Some(p) = &self.param {
            e.insert("param".into(), json!(p));
        }
        json!({ "error": e })
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        let mut resp = json_response(self.status, &self.body());
        if self.before_execution {
            resp.extensions_mut().insert(NotExecuted);
        }
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.headers_mut()
                .insert("stripe-should-retry", HeaderValue::from_static("true"));
        }
        resp
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `prefix` + `n` random alphanumerics (`cus_` + 14, `in_` + 24...).
pub(crate) fn random_id(prefix: &str, n: usize) -> String {
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    for _ in 0..n {
        s.push(ALNUM[rand::random_range(0..ALNUM.len())] as char);
    }
    s
}

/// `n` random uppercase hex digits (invoice prefixes).
pub(crate) fn random_upper(n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[rand::random_range(0..16)] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_and_ids() {
        let e = StripeError::unknown_param("foo");
        assert_eq!(
            e.body(),
            json!({"error": {
                "type": "invalid_request_error",
                "code": "parameter_unknown",
                "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
                "message": "Received unknown parameter: foo",
                "param": "foo",
            }})
        );
        assert!(e.before_execution);
        let e = StripeError::no_such_param("customer", "cus_x", "customer");
        assert_eq!((e.status.as_u16(), e.before_execution), (400, false));
        let id = random_id("cus_", 14);
        assert_eq!(id.len(), 18);
        assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let p = random_upper(8);
        assert!(p
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase()));
    }
}
