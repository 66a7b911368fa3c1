//! Outbound/inbound edge: Zendesk Support HTTP calls — authentication (`{email}/token` Basic
//! or OAuth Bearer), the account budget and the incremental exports' own budget, metrics, and
//! failure classification.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::connectors::ratelimit::{Budget, RateLimiter};
use crate::connectors::ConnectorError;

/// Zendesk's incremental exports: 10 requests a minute on top of the account budget.
pub const EXPORT_BUDGET: Budget = Budget {
    requests: 10,
    window: Duration::from_secs(60),
};

/// The `Retry-After` assumed when a 429 carries none (Zendesk documents that it always does).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Every endpoint but the exports: the account budget only.
    Account,
    /// `/api/v2/incremental/...`: the export budget, then the account budget.
    Export,
    /// The account budget, ahead of the calls queued for it.
    First,
}

pub struct Client {
    /// The connection's name (metrics and log label).
    name: String,
    http: reqwest::Client,
    /// `https://{subdomain}.zendesk.com`, without `/api/v2`.
    base: String,
    /// The whole `Authorization` header value; never logged.
    authorization: String,
    account: Option<Arc<RateLimiter>>,
    export: Arc<RateLimiter>,
}

/// A successful response: its status and body, parsed by the caller into the shape it needs.
pub struct Response {
    pub status: StatusCode,
    raw: bytes::Bytes,
    /// The response's `Date`: Zendesk's clock when it answered.
    date: Option<chrono::DateTime<chrono::Utc>>,
}

impl Response {
    /// Zendesk's clock when it answered (whole seconds).
    pub fn date(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.date
    }

    /// The body as `T`; an empty body is `T::default()`. A body that is not the JSON Zendesk
    /// documents is a transient failure (a proxy's error page, a truncated answer), never an
    /// empty result.
    pub fn parse<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, ConnectorError> {
        if self.raw.is_empty() {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.raw).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {}: unreadable response body: {e}",
                self.status.as_u16()
            ))
        })
    }
}

/// `Authorization` for an API token with its agent's email (Basic `{email}/token:{token}`), or
/// for an OAuth access token alone (Bearer).
pub fn authorization(email: Option<&str>, token: &str) -> String {
    match email {
        Some(email) => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}/token:{token}"))
        ),
        None => format!("Bearer {token}"),
    }
}

pub use crate::connectors::wire::encode;

impl Client {
    pub fn new(
        name: &str,
        base: &str,
        authorization: String,
        account: Option<Budget>,
        export: Budget,
    ) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("static reqwest configuration is valid");
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/api/v2").unwrap_or(base);
        Client {
            name: name.to_string(),
            http,
            base: base.to_string(),
            authorization,
            account: account.map(|b| Arc::new(RateLimiter::new(b))),
            export: Arc::new(RateLimiter::new(export)),
        }
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The account budget (`rate_limit`), if the connection sets one.
    pub fn account_budget(&self) -> Option<Budget> {
        self.account.as_ref().map(|l| l.budget())
    }

    /// Whether the account budget is nearly spent right now (calls may soon wait for it).
    pub fn budget_binding(&self) -> bool {
        self.account.as_ref().is_some_and(|l| l.binding())
    }

    /// Sends one request (`path` starts with `/api/v2/`); non-2xx statuses come back
    /// classified as errors.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ConnectorError> {
        self.send(Lane::Account, method, path, body).await
    }

    /// A call that others wait for (a bulk job's status check): it takes the next free slot of
    /// the account budget ahead of the ordinary calls queued for it.
    pub async fn call_first(&self, method: Method, path: &str) -> Result<Response, ConnectorError> {
        self.send(Lane::First, method, path, None).await
    }

    /// A GET of an incremental export, within the export budget.
    pub async fn export(&self, path: &str) -> Result<Response, ConnectorError> {
        self.send(Lane::Export, Method::GET, path, None).await
    }

    async fn send(
        &self,
        lane: Lane,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ConnectorError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            req = req.json(body);
        }
        // the scarce export slot first, so an account slot is never held while waiting for it
        let export = match lane {
            Lane::Export => Some(self.export.acquire().await),
            Lane::Account | Lane::First => None,
        };
        let account = match (&self.account, lane) {
            (Some(l), Lane::First) => Some(l.acquire_first().await),
            (Some(l), _) => Some(l.acquire().await),
            (None, _) => None,
        };
        let started = std::time::Instant::now();
        let sent = req.send().await;
        drop((export, account));
        let metrics = crate::metrics::metrics();
        // the URL is left out of the error: a query may hold an email or an external id
        let resp = sent.map_err(|e| {
            metrics.api_call(&self.name, None, started.elapsed());
            ConnectorError::Transient(crate::hub::chain(&e.without_url()))
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        let bytes = resp.bytes().await;
        metrics.api_call(&self.name, Some(status.as_u16()), started.elapsed());
        let bytes =
            bytes.map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
        if status.is_success() {
            return Ok(Response {
                status,
                raw: bytes,
                date,
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let err = classify(status, &body, retry_after, &bytes);
        if let ConnectorError::RateLimited {
            retry_after,
            policy,
        } = &err
        {
            tracing::warn!(connection = %self.name, policy = %policy, retry_after_ms = retry_after.as_millis() as u64, "zendesk throttled");
            if policy == "incremental" {
                self.export.pause(*retry_after);
            } else if let Some(l) = &self.account {
                l.pause(*retry_after);
            }
        }
        Err(err)
    }
}

/// Zendesk's own words for a failure, for dead letters: a `RecordInvalid`'s field details
/// (`email: Email: x is already being used by another user (DuplicateValue)`), else
/// `error: description`, else the start of a plain-text body.
pub fn message_of(body: &Value, raw: &[u8]) -> String {
    if let Some(details) = body.get("details").and_then(details_text) {
        return details;
    }
    let description = body.get("description").and_then(Value::as_str);
    match (body.get("error"), description) {
        (Some(Value::String(e)), Some(d)) => format!("{e}: {d}"),
        (Some(Value::String(e)), None) => e.clone(),
        // `{"error": {"title": .., "message": ..}}` (permission refusals)
        (Some(Value::Object(e)), _) => {
            let title = e.get("title").and_then(Value::as_str).unwrap_or("Error");
            match e.get("message").and_then(Value::as_str) {
                Some(m) => format!("{title}: {m}"),
                None => title.to_string(),
            }
        }
        (_, Some(d)) => d.to_string(),
        _ => String::from_utf8_lossy(raw)
            .trim()
            .chars()
            .take(500)
            .collect(),
    }
}

/// `{"email": [{"description": .., "error": ..}], ..}` → `email: <description> (<error>)`,
/// joined with `; `; None when there is nothing readable.
pub fn details_text(details: &Value) -> Option<String> {
    let fields = details.as_object()?;
    let mut parts = vec![];
    for (field, list) in fields {
        let items: Vec<&Value> = match list {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let description = item
                .get("description")
                .and_then(Value::as_str)
                .or_else(|| item.as_str());
            let code = item.get("error").and_then(Value::as_str);
            match (description, code) {
                (Some(d), Some(c)) => parts.push(format!("{field}: {d} ({c})")),
                (Some(d), None) => parts.push(format!("{field}: {d}")),
                (None, Some(c)) => parts.push(format!("{field}: {c}")),
                (None, None) => {}
            }
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What to do about a non-2xx answer.
///
/// 401 is bad credentials; 403 is Zendesk refusing the agent (its role, the plan, or a feature
/// such as bulk user import not enabled on the account). Both are `Auth`: the connection, not
/// the record, is at fault, so writes wait for the operator instead of every row becoming a
/// dead letter. 409 (a concurrent update collided) is transient.
fn classify(
    status: StatusCode,
    body: &Value,
    retry_after: Option<Duration>,
    raw: &[u8],
) -> ConnectorError {
    let message = message_of(body, raw);
    match status.as_u16() {
        429 => ConnectorError::RateLimited {
            retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            policy: if message.to_lowercase().contains("incremental") {
                "incremental".into()
            } else {
                "account".into()
            },
        },
        401 | 403 => ConnectorError::Auth(format!("HTTP {}: {message}", status.as_u16())),
        404 => ConnectorError::NotFound,
        409 => ConnectorError::Transient(format!("HTTP 409: {message}")),
        s if s >= 500 => ConnectorError::Transient(format!("HTTP {s}: {message}")),
        s => ConnectorError::Rejected { status: s, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_read_like_zendesk_wrote_them() {
        let invalid = json!({"error": "RecordInvalid", "description": "Record validation errors",
            "details": {"email": [{"description": "Email: x is already being used by another user",
                                   "error": "DuplicateValue"}]}});
        assert_eq!(
            message_of(&invalid, b""),
            "email: Email: x is already being used by another user (DuplicateValue)"
        );
        let forbidden =
            json!({"error": {"title": "Forbidden", "message": "You do not have access"}});
        assert_eq!(
            message_of(&forbidden, b""),
            "Forbidden: You do not have access"
        );
        assert_eq!(
            message_of(&Value::Null, b" 502 Bad Gateway\n"),
            "502 Bad Gateway"
        );
        let too_recent = json!({"error": "InvalidValue", "description": "Too recent start_time"});
        assert_eq!(
            message_of(&too_recent, b""),
            "InvalidValue: Too recent start_time"
        );
    }

    #[test]
    fn failures_are_classified() {
        let c = |s: u16, body: Value, ra: Option<u64>| {
            classify(
                StatusCode::from_u16(s).unwrap(),
                &body,
                ra.map(Duration::from_secs),
                b"",
            )
        };
        assert!(matches!(
            c(429, json!({"description": "Number of allowed incremental export API requests per minute exceeded"}), Some(7)),
            ConnectorError::RateLimited { retry_after, policy } if retry_after == Duration::from_secs(7) && policy == "incremental"
        ));
        assert!(matches!(
            c(429, Value::Null, None),
            ConnectorError::RateLimited { retry_after, .. } if retry_after == DEFAULT_RETRY_AFTER
        ));
        assert!(matches!(c(401, Value::Null, None), ConnectorError::Auth(_)));
        assert!(matches!(c(403, Value::Null, None), ConnectorError::Auth(_)));
        assert!(matches!(
            c(404, Value::Null, None),
            ConnectorError::NotFound
        ));
        assert!(matches!(
            c(409, Value::Null, None),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            c(503, Value::Null, None),
            ConnectorError::Transient(_)
        ));
        assert!(matches!(
            c(422, json!({"error": "RecordInvalid"}), None),
            ConnectorError::Rejected { status: 422, .. }
        ));
    }

    #[test]
    fn auth_headers() {
        assert_eq!(
            authorization(Some("a@b.co"), "t"),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("a@b.co/token:t")
            )
        );
        assert_eq!(authorization(None, "t"), "Bearer t");
        assert_eq!(encode("email:a+b@x.com"), "email%3Aa%2Bb%40x.com");
    }
}
