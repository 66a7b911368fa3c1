//! Stripe connector, both directions: failures classified — Stripe's error envelope
//! (`{"error": {"type", "code", "message", "param"}}`) read into its own words, and each
//! non-2xx answer turned into the [`ConnectorError`] that says what to do next.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::connectors::ConnectorError;

/// The wait after a 429 `rate_limit` that names none (Stripe's budgets are per second).
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// The wait after a 429 `lock_timeout` (another request holds the same object).
const LOCK_PAUSE: Duration = Duration::from_millis(250);

/// Stripe's error object.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

impl ErrorBody {
    /// The envelope of a failed answer; a body that is not one (a proxy's page) keeps its
    /// first 300 characters as the message.
    pub fn read(raw: &[u8]) -> ErrorBody {
        match serde_json::from_slice::<Envelope>(raw) {
            Ok(e) => e.error,
            Err(_) => ErrorBody {
                message: Some(
                    String::from_utf8_lossy(raw)
                        .trim()
                        .chars()
                        .take(300)
                        .collect(),
                ),
                ..ErrorBody::default()
            },
        }
    }

    /// `code: message (param: p)`, the parts Stripe gave.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.code.as_deref().filter(|c| !c.is_empty()) {
            out.push_str(c);
            out.push_str(": ");
        }
        out.push_str(
            self.message
                .as_deref()
                .filter(|m| !m.is_empty())
                .or(self.kind.as_deref())
                .unwrap_or("no message"),
        );
        if let Some(p) = self.param.as_deref().filter(|p| !p.is_empty()) {
            out.push_str(&format!(" (param: {p})"));
        }
        out
    }
}

/// What to do about a non-2xx answer. 429 `rate_limit` (or a 429 without a code) is the
/// budget: every caller waits for the hint. 429 `lock_timeout` is another request holding the
/// same object: retried after a short wait, the connection keeps going. 401/403 are the key;
/// 404 the record; 409 (`idempotency_key_in_use`) and 5xx are transient; other 4xx are
/// refusals with Stripe's words and param. `Stripe-Should-Retry` overrides the status when
/// present: `true` makes any failure retryable, `false` a refusal.
pub fn classify(
    status: StatusCode,
    e: &ErrorBody,
    should_retry: Option<bool>,
    retry_after: Option<Duration>,
) -> ConnectorError {
    let s = status.as_u16();
    let message = format!("HTTP {s}: {}", e.text());
    let code = e.code.as_deref().unwrap_or("");
    match (s, code) {
        (429, "lock_timeout") => ConnectorError::RateLimited {
            retry_after: retry_after.unwrap_or(LOCK_PAUSE),
            policy: "lock_timeout".into(),
        },
        (429, _) => ConnectorError::RateLimited {
            retry_after: retry_after.unwrap_or(THROTTLE_PAUSE),
            policy: "rate_limit".into(),
        },
        (401 | 403, _) => ConnectorError::Auth(message),
        _ if should_retry == Some(true) => ConnectorError::Transient(message),
        _ if should_retry == Some(false) => ConnectorError::Rejected { status: s, message },
        (404, _) => ConnectorError::NotFound,
        (409, _) => ConnectorError::Transient(message),
        (s, _) if s >= 500 => ConnectorError::Transient(message),
        (s, _) => ConnectorError::Rejected { status: s, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: u16, body: &str, retry: Option<bool>) -> ConnectorError {
        classify(
            StatusCode::from_u16(s).unwrap(),
            &ErrorBody::read(body.as_bytes()),
            retry,
            None,
        )
    }

    #[test]
    fn failures_are_classified_with_stripes_words() {
        let bad = r#"{"error":{"type":"invalid_request_error","code":"email_invalid","message":"Invalid email address: x","param":"email"}}"#;
        assert!(matches!(c(400, bad, None),
            ConnectorError::Rejected { status: 400, message }
                if message == "HTTP 400: email_invalid: Invalid email address: x (param: email)"));
        let throttle = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many"}}"#;
        assert!(matches!(c(429, throttle, None),
            ConnectorError::RateLimited { retry_after, policy } if retry_after == THROTTLE_PAUSE && policy == "rate_limit"));
        let lock =
            r#"{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"busy"}}"#;
        assert!(matches!(c(429, lock, None),
            ConnectorError::RateLimited { retry_after, policy } if retry_after == LOCK_PAUSE && policy == "lock_timeout"));
        assert!(
            matches!(c(401, r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****abcd"}}"#, None),
            ConnectorError::Auth(m) if m == "HTTP 401: Invalid API Key provided: sk_test_****abcd")
        );
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: 'cus_x'","param":"id"}}"#;
        assert!(matches!(c(404, missing, None), ConnectorError::NotFound));
        assert!(matches!(
            c(
                409,
                r#"{"error":{"code":"idempotency_key_in_use"}}"#,
                Some(true)
            ),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            c(500, r#"{"error":{"type":"api_error"}}"#, None),
            ConnectorError::Transient(m) if m == "HTTP 500: api_error"
        ));
        // the header decides over the status
        assert!(matches!(
            c(500, r#"{"error":{"type":"api_error"}}"#, Some(false)),
            ConnectorError::Rejected { status: 500, .. }
        ));
        assert!(matches!(
            c(400, bad, Some(true)),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            c(502, "<html>Bad Gateway</html>", None),
            ConnectorError::Transient(m) if m == "HTTP 502: <html>Bad Gateway</html>"
        ));
    }
}
