//! Stripe connector, both directions: one API call — the secret key as a bearer token, the
//! parameters form-encoded (a POST's body, a GET's or DELETE's query), an `Idempotency-Key`
//! on creates, the connection's request budget (a 429 `rate_limit` pauses every caller for
//! the server's hint), metrics, and failures classified into [`ConnectorError`]s.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use super::errors::{classify, ErrorBody};
use crate::connectors::ratelimit::{Budget, RateLimiter};
pub use crate::connectors::wire::encode;
use crate::connectors::ConnectorError;

/// `name=value&...` of form pairs; brackets in names stay readable (`metadata[plan]`).
pub fn form_text(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let name = encode(k).replace("%5B", "[").replace("%5D", "]");
            format!("{name}={}", encode(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A successful answer.
pub struct Response {
    pub body: Value,
    /// `Idempotent-Replayed: true`: the answer of an earlier request with the same key.
    pub replayed: bool,
}

pub struct Client {
    name: String,
    http: reqwest::Client,
    base: String,
    key: String,
    limiter: Option<RateLimiter>,
}

impl Client {
    pub fn new(name: &str, base_url: &str, key: &str, budget: Option<Budget>) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("static reqwest configuration is valid");
        Client {
            name: name.to_string(),
            http,
            base: base_url.trim_end_matches('/').to_string(),
            key: key.to_string(),
            limiter: budget.map(RateLimiter::new),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one request to `path` (under `/v1`, e.g. `/customers/cus_1`) with `params`;
    /// non-2xx answers come back classified.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Response, ConnectorError> {
        let form = form_text(params);
        let mut url = format!("{}/v1{path}", self.base);
        let post = method == Method::POST;
        if !post && !form.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&form);
        }
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(&self.key)
            .header(reqwest::header::ACCEPT, "application/json");
        if post {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let permit = match &self.limiter {
            Some(l) => Some(l.acquire().await),
            None => None,
        };
        let started = std::time::Instant::now();
        let metrics = crate::metrics::metrics();
        // the URL stays out of errors and logs: a query holds record values
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                metrics.api_call(&self.name, None, started.elapsed());
                return Err(ConnectorError::Transient(crate::hub::chain(
                    &e.without_url(),
                )));
            }
        };
        let status = resp.status();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let replayed = header("idempotent-replayed").as_deref() == Some("true");
        let should_retry = header("stripe-should-retry").map(|v| v == "true");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let raw = resp.bytes().await;
        drop(permit);
        metrics.api_call(&self.name, Some(status.as_u16()), started.elapsed());
        let raw =
            raw.map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
        if status.is_success() {
            let body = serde_json::from_slice(&raw).map_err(|e| {
                ConnectorError::Transient(format!(
                    "HTTP {}: unreadable Stripe answer: {e}",
                    status.as_u16()
                ))
            })?;
            return Ok(Response { body, replayed });
        }
        let error = ErrorBody::read(&raw);
        let err = classify(status, &error, should_retry, retry_after);
        if let ConnectorError::RateLimited {
            retry_after,
            policy,
        } = &err
        {
            if policy == "rate_limit" {
                if let Some(l) = &self.limiter {
                    l.pause(*retry_after);
                }
                tracing::warn!(connection = %self.name, retry_after_ms = retry_after.as_millis() as u64, "stripe answered 429 rate_limit; the connection pauses");
            } else {
                tracing::debug!(connection = %self.name, policy = %policy, "stripe answered 429");
            }
        }
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_brackets_and_encode_values() {
        let pairs = vec![
            ("address[line1]".to_string(), "1 Main St & Co".to_string()),
            ("metadata[plan]".to_string(), String::new()),
            ("email".to_string(), "a+b@example.com".to_string()),
        ];
        assert_eq!(
            form_text(&pairs),
            "address[line1]=1%20Main%20St%20%26%20Co&metadata[plan]=&email=a%2Bb%40example.com"
        );
        assert_eq!(encode("cus_1/../x"), "cus_1%2F..%2Fx");
    }
}
