//! Salesforce connector, both directions: one REST call — the session's bearer token (a 401
//! `INVALID_SESSION_ID` signs in again once and re-sends only that request), the daily
//! budget (`Sforce-Limit-Info` read from every answer), metrics, and failures classified into
//! [`ConnectorError`]s with Salesforce's own `errorCode` and message.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::auth::Auth;
use super::budget::{parse_usage, DailyBudget};
use super::errors::{classify, error_code, message_of};
use crate::connectors::ratelimit::RateLimiter;
use crate::connectors::ConnectorError;

pub use crate::connectors::wire::encode;

/// A successful answer.
pub struct Response {
    pub status: StatusCode,
    raw: bytes::Bytes,
    /// The answer's `Date`: Salesforce's clock when it answered (whole seconds).
    pub date: Option<DateTime<Utc>>,
}

impl Response {
    /// The body as `T`. A body that is not the JSON Salesforce documents (a proxy's page, a
    /// truncated answer) is a transient failure, never an empty result.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.raw).map_err(|e| {
            ConnectorError::Transient(format!(
                "HTTP {}: unreadable Salesforce answer: {e}",
                self.status.as_u16()
            ))
        })
    }
}

pub struct Client {
    /// The connection's name (metrics and log label).
    name: String,
    http: reqwest::Client,
    /// `62.0`.
    version: String,
    auth: Auth,
    pub budget: DailyBudget,
    /// The connection's own `rate_limit`, if it sets one.
    limiter: Option<RateLimiter>,
    /// How long a 403 for the daily allocation pauses the connection.
    limit_pause: Duration,
    /// Query page size asked for (`Sforce-Query-Options: batchSize`).
    batch_size: usize,
    /// The allocation's refusal was logged (once, until a call succeeds again).
    limit_logged: AtomicBool,
}

impl Client {
    /// A client of `auth`'s org with the version, pauses and page size of `options`.
    pub fn new(
        name: &str,
        http: reqwest::Client,
        auth: Auth,
        budget: DailyBudget,
        options: &super::Options,
    ) -> Client {
        Client {
            name: name.to_string(),
            http,
            version: options.api_version.clone(),
            auth,
            budget,
            limiter: options.rate_limit.map(RateLimiter::new),
            limit_pause: options.limit_pause,
            batch_size: options.page_size.clamp(200, 2000),
            limit_logged: AtomicBool::new(false),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/services/data/v62.0{rest}`; a path already under `/services/` (a `nextRecordsUrl`)
    /// stays as it is.
    fn full_path(&self, path: &str) -> String {
        if path.starts_with("/services/") {
            path.to_string()
        } else {
            format!("/services/data/v{}{path}", self.version)
        }
    }

    /// Sends one request (`path` under the API version, e.g. `/query?q=..`, or a
    /// `nextRecordsUrl`); non-2xx answers come back classified.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ConnectorError> {
        let full = self.full_path(path);
        let mut session = self.auth.session().await?;
        let mut signed_in_again = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{full}", session.instance_url))
                .bearer_auth(&session.access_token)
                .header(reqwest::header::ACCEPT, "application/json");
            if full.contains("/query") {
                req = req.header(
                    "Sforce-Query-Options",
                    format!("batchSize={}", self.batch_size),
                );
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let permit = match &self.limiter {
                Some(l) => Some(l.acquire().await),
                None => None,
            };
            let ticket = self
                .budget
                .admit()
                .await
                .map_err(|d| ConnectorError::RateLimited {
                    retry_after: d.retry_after,
                    policy: d.why.to_string(),
                })?;
            let started = std::time::Instant::now();
            let metrics = crate::metrics::metrics();
            // the URL is left out of errors and logs: a query holds record values
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    metrics.api_call(&self.name, None, started.elapsed());
                    ticket.answered(None);
                    return Err(ConnectorError::Transient(crate::hub::chain(
                        &e.without_url(),
                    )));
                }
            };
            let status = resp.status();
            let headers = resp.headers();
            let usage = headers
                .get("sforce-limit-info")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_usage);
            let date = headers
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
                .map(|d| d.with_timezone(&Utc));
            let raw = resp.bytes().await;
            drop(permit);
            metrics.api_call(&self.name, Some(status.as_u16()), started.elapsed());
            if let Some((used, limit)) = usage {
                metrics.api_daily(&self.name, used, limit);
            }
            ticket.answered(usage);
            let raw =
                raw.map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
            if status.is_success() {
                self.limit_logged.store(false, Ordering::Relaxed);
                return Ok(Response { status, raw, date });
            }
            let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            let code = error_code(&body);
            // a refused session was not acted on: signing in again and re-sending this one
            // request neither loses nor repeats it
            if status == StatusCode::UNAUTHORIZED && !signed_in_again {
                tracing::info!(connection = %self.name, error_code = %code, "salesforce refused the session; signing in again");
                session = self.auth.refresh(session.generation).await?;
                signed_in_again = true;
                continue;
            }
            return Err(self.classify(status, &code, &body, &raw));
        }
    }

    /// What to do about a non-2xx answer (see [`classify`]); a refusal for the allocation
    /// also pauses the connection.
    fn classify(&self, status: StatusCode, code: &str, body: &Value, raw: &[u8]) -> ConnectorError {
        let err = classify(status, code, message_of(body, raw), self.limit_pause);
        if let ConnectorError::RateLimited {
            retry_after,
            policy,
        } = &err
        {
            self.budget.pause(*retry_after);
            let first = !self.limit_logged.swap(true, Ordering::Relaxed);
            if first || policy != "daily" {
                tracing::warn!(connection = %self.name, policy = %policy, retry_after_s = retry_after.as_secs(), api_usage = ?self.budget.usage(), "salesforce refused a call with REQUEST_LIMIT_EXCEEDED; the connection is paused");
            }
        }
        err
    }
}
