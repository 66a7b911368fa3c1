//! Salesforce connector, both directions: failures classified — Salesforce's error array
//! (`[{"errorCode", "message"}]`) read into its own words, and each non-2xx answer turned into
//! the [`ConnectorError`] that says what to do next (retry, pause, or never).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::connectors::ConnectorError;

/// The pause after a 403 for the org's concurrent long-running requests (seconds matter).
const CONCURRENT_PAUSE: Duration = Duration::from_secs(10);

/// The first error's `errorCode` of Salesforce's error array.
pub fn error_code(body: &Value) -> String {
    first_error(body)
        .and_then(|e| e.get("errorCode"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn first_error(body: &Value) -> Option<&Value> {
    match body {
        Value::Array(items) => items.first(),
        Value::Object(_) => Some(body),
        _ => None,
    }
}

/// Salesforce's words for a failure: `errorCode: message` of each error, joined with `; `,
/// else the start of a plain-text body.
pub fn message_of(body: &Value, raw: &[u8]) -> String {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![body],
        _ => vec![],
    };
    let parts: Vec<String> = items
        .iter()
        .filter_map(|e| {
            let code = e
                .get("errorCode")
                .or_else(|| e.get("statusCode"))
                .and_then(Value::as_str);
            let message = e.get("message").and_then(Value::as_str);
            match (code, message) {
                (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                (Some(c), None) => Some(c.to_string()),
                (None, Some(m)) => Some(m.to_string()),
                (None, None) => None,
            }
        })
        .collect();
    if parts.is_empty() {
        String::from_utf8_lossy(raw)
            .trim()
            .chars()
            .take(500)
            .collect()
    } else {
        parts.join("; ")
    }
}

/// What to do about a non-2xx answer. 403 `REQUEST_LIMIT_EXCEEDED` is Salesforce's throttle
/// (it has no 429): the daily allocation (`TotalRequests`) pauses for `limit_pause`, the
/// concurrent long-running requests for seconds. Any other 401/403 is the connection's
/// credentials or permissions (`Auth`: writes wait for the operator rather than every row
/// becoming a dead letter). 409 and 5xx are transient; other 4xx are refusals.
pub fn classify(
    status: StatusCode,
    code: &str,
    message: String,
    limit_pause: Duration,
) -> ConnectorError {
    match (status.as_u16(), code) {
        (403, "REQUEST_LIMIT_EXCEEDED") if message.contains("TotalRequests") => {
            ConnectorError::RateLimited {
                retry_after: limit_pause,
                policy: "daily".into(),
            }
        }
        (403, "REQUEST_LIMIT_EXCEEDED") => ConnectorError::RateLimited {
            retry_after: CONCURRENT_PAUSE,
            policy: "concurrent".into(),
        },
        (401 | 403, _) => ConnectorError::Auth(format!("HTTP {}: {message}", status.as_u16())),
        (404, _) => ConnectorError::NotFound,
        (409, _) => ConnectorError::Transient(format!("HTTP 409: {message}")),
        (s, _) if s >= 500 => ConnectorError::Transient(format!("HTTP {s}: {message}")),
        (s, _) => ConnectorError::Rejected { status: s, message },
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::encode;
    use super::*;
    use serde_json::json;

    #[test]
    fn failures_are_classified_with_salesforces_words() {
        let pause = Duration::from_secs(900);
        let c = |s: u16, body: Value| {
            classify(
                StatusCode::from_u16(s).unwrap(),
                &error_code(&body),
                message_of(&body, b""),
                pause,
            )
        };
        let daily = json!([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]);
        assert!(matches!(c(403, daily),
            ConnectorError::RateLimited { retry_after, policy } if retry_after == pause && policy == "daily"));
        let burst = json!([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn Limit exceeded."}]);
        assert!(matches!(c(403, burst),
            ConnectorError::RateLimited { retry_after, policy } if retry_after == CONCURRENT_PAUSE && policy == "concurrent"));
        assert!(
            matches!(c(401, json!([{"errorCode": "INVALID_SESSION_ID"}])), ConnectorError::Auth(m) if m == "HTTP 401: INVALID_SESSION_ID")
        );
        assert!(matches!(c(404, Value::Null), ConnectorError::NotFound));
        assert!(matches!(c(503, Value::Null), ConnectorError::Transient(_)));
        let bad = json!([{"errorCode": "MALFORMED_QUERY", "message": "unexpected token: FROM"}]);
        assert!(matches!(c(400, bad),
            ConnectorError::Rejected { status: 400, message } if message == "MALFORMED_QUERY: unexpected token: FROM"));
        assert_eq!(
            message_of(&Value::Null, b" 502 Bad Gateway\n"),
            "502 Bad Gateway"
        );
        assert_eq!(encode("a b'c"), "a%20b%27c");
    }
}
