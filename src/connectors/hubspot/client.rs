//! Outbound/inbound edge: HubSpot CRM v3 HTTP calls and failure classification.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::connectors::ratelimit::RateLimiter;
use crate::connectors::ConnectorError;

pub struct Client {
    /// The connection's name (metrics label).
    name: String,
    http: reqwest::Client,
    base: String,
    token: String,
    limiter: Option<Arc<RateLimiter>>,
}

/// A successful response: its status and body, parsed by the caller into the shape it needs.
pub struct Response {
    pub status: StatusCode,
    raw: bytes::Bytes,
}

impl Response {
    /// The body as `T`; an empty body is `T::default()`. A body that is not the JSON HubSpot
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

    /// A listing, search or batch-read body: its records and the next page's cursor.
    pub fn records(
        &self,
    ) -> Result<(Vec<crate::connectors::RemoteRecord>, Option<String>), ConnectorError> {
        Ok(self
            .parse::<super::mapping::RecordsResponse>()?
            .into_parts())
    }
}

impl Client {
    pub fn new(name: &str, base: &str, token: &str, limiter: Option<Arc<RateLimiter>>) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("static reqwest configuration is valid");
        Client {
            name: name.to_string(),
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            limiter,
        }
    }

    /// Sends one request; non-2xx statuses come back classified as errors.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ConnectorError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let permit = match &self.limiter {
            Some(l) => Some(l.acquire().await),
            None => None,
        };
        let started = std::time::Instant::now();
        let sent = req.send().await;
        drop(permit);
        let metrics = crate::metrics::metrics();
        let resp = sent.map_err(|e| {
            metrics.api_call(&self.name, None, started.elapsed());
            ConnectorError::Transient(crate::hub::chain(&e))
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        let bytes = resp.bytes().await;
        metrics.api_call(&self.name, Some(status.as_u16()), started.elapsed());
        let bytes = bytes.map_err(|e| ConnectorError::Transient(crate::hub::chain(&e)))?;
        if status.is_success() {
            return Ok(Response { status, raw: bytes });
        }
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let err = classify(status, &body, retry_after, &bytes);
        if let (ConnectorError::RateLimited { retry_after, .. }, Some(l)) = (&err, &self.limiter) {
            l.pause(*retry_after);
        }
        Err(err)
    }
}

/// The API's own message, for dead letters.
pub fn message_of(body: &Value, raw: &[u8]) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(raw).chars().take(500).collect())
}

fn classify(
    status: StatusCode,
    body: &Value,
    retry_after: Option<Duration>,
    raw: &[u8],
) -> ConnectorError {
    let message = message_of(body, raw);
    match status.as_u16() {
        429 => {
            let policy = body
                .get("policyName")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            let hint = match policy.as_str() {
                "TEN_SECONDLY_ROLLING" => Duration::from_secs(1),
                "DAILY" => Duration::from_secs(3600),
                _ => Duration::from_secs(1),
            };
            ConnectorError::RateLimited {
                retry_after: retry_after.unwrap_or(hint),
                policy,
            }
        }
        401 | 403 => ConnectorError::Auth(message),
        404 => ConnectorError::NotFound,
        s if s >= 500 => ConnectorError::Transient(format!("HTTP {s}: {message}")),
        s => ConnectorError::Rejected { status: s, message },
    }
}
