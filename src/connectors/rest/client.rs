//! REST connector, both directions: one API call — the URL under `base_url` (or an absolute
//! next-page URL on the same origin), the credential, a JSON body, the connection's request
//! budget (a 429 pauses every caller for the server's hint), one renewal of an expired
//! session on 401, metrics, and failures classified into [`ConnectorError`]s with the app's
//! own message.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

use super::auth::{Credential, Signer};
use crate::connectors::ratelimit::{Budget, RateLimiter};
use crate::connectors::ConnectorError;

/// The wait after a 429 that names none.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);
/// Statuses retried besides 429 and 5xx: a request timeout, "too early", a lock conflict.
const RETRIED: &[u16] = &[408, 409, 423, 425];

/// A successful answer.
pub struct Answer {
    pub body: Value,
    pub headers: HeaderMap,
}

/// A refused answer before it is classified: the caller decides what a 404 or 403 means.
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub retry_after: Option<Duration>,
}

pub struct Client {
    name: String,
    http: reqwest::Client,
    base: String,
    signer: Signer,
    limiter: Option<RateLimiter>,
}

impl Client {
    /// `headers`: sent with every request (the app's API version, a client name).
    pub fn new(
        name: &str,
        base_url: &str,
        signer: Signer,
        budget: Option<Budget>,
        headers: &BTreeMap<String, String>,
    ) -> Result<Client, String> {
        let mut fixed = HeaderMap::new();
        fixed.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        for (k, v) in headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header name `{k}` is not a valid HTTP header name"))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|_| format!("the value of header `{k}` is not valid in HTTP"))?;
            fixed.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .default_headers(fixed)
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("the HTTP client cannot be built: {e}"))?;
        Ok(Client {
            name: name.to_string(),
            http,
            base: base_url.trim_end_matches('/').to_string(),
            signer,
            limiter: budget.map(RateLimiter::new),
        })
    }

    /// The absolute URL of `target`: a path under the base, or a URL on the base's origin
    /// (another origin is refused: the credential never leaves the app).
    pub fn url(&self, target: &str) -> Result<String, ConnectorError> {
        if target.starts_with("http://") || target.starts_with("https://") {
            if origin(target) != origin(&self.base) {
                return Err(ConnectorError::Rejected {
                    status: 0,
                    message: "a next-page URL points at another host; ferry does not send the connection's credential there".into(),
                });
            }
            Ok(target.to_string())
        } else {
            Ok(format!("{}{target}", self.base))
        }
    }

    /// Sends one request; a 401 from an expired session signs in again and repeats once.
    pub async fn call(
        &self,
        method: Method,
        target: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Refusal> {
        let first = self.send(method.clone(), target, query, body).await;
        match first {
            Err(r) if r.status == 401 && self.signer.renewable() => {
                self.signer.expire().await;
                self.send(method, target, query, body).await
            }
            other => other,
        }
    }

    /// [`Client::call`] with every refusal classified the ordinary way.
    pub async fn call_classified(
        &self,
        method: Method,
        target: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, ConnectorError> {
        self.call(method, target, query, body)
            .await
            .map_err(|r| r.classify())
    }

    async fn send(
        &self,
        method: Method,
        target: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Answer, Refusal> {
        let transient = |m: String| Refusal {
            status: 0,
            message: m,
            retry_after: None,
        };
        let mut url = self.url(target).map_err(|e| Refusal {
            status: 400,
            message: e.to_string(),
            retry_after: None,
        })?;
        let credential = self
            .signer
            .credential(&self.http, &self.base)
            .await
            .map_err(|e| match e {
                ConnectorError::Auth(m) => Refusal {
                    status: 401,
                    message: m,
                    retry_after: None,
                },
                other => transient(other.to_string()),
            })?;
        let mut pairs: Vec<(String, String)> = query.to_vec();
        let mut header = None;
        match credential {
            Credential::Header(n, v) => header = Some((n, v)),
            Credential::Query(n, v) => pairs.push((n, v)),
        }
        if !pairs.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query_text(&pairs));
        }
        let mut req = self.http.request(method, url);
        if let Some((n, v)) = header {
            req = req.header(n, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let permit = match &self.limiter {
            Some(l) => Some(l.acquire().await),
            None => None,
        };
        let started = std::time::Instant::now();
        let metrics = crate::metrics::metrics();
        // the URL stays out of errors and logs: a query holds record values and may hold a key
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                metrics.api_call(&self.name, None, started.elapsed());
                return Err(transient(crate::hub::chain(&e.without_url())));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.bytes().await;
        drop(permit);
        metrics.api_call(&self.name, Some(status.as_u16()), started.elapsed());
        let raw = raw.map_err(|e| transient(crate::hub::chain(&e.without_url())))?;
        if status.is_success() {
            let body = if raw.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&raw).map_err(|e| {
                    transient(format!(
                        "HTTP {}: the answer is not JSON: {e}",
                        status.as_u16()
                    ))
                })?
            };
            return Ok(Answer { body, headers });
        }
        let retry_after = headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        if status.as_u16() == 429 {
            if let Some(l) = &self.limiter {
                l.pause(retry_after.unwrap_or(THROTTLE_PAUSE));
            }
            tracing::warn!(connection = %self.name, "the app answered 429; the connection pauses");
        }
        Err(Refusal {
            status: status.as_u16(),
            message: message(&raw),
            retry_after,
        })
    }
}

impl Refusal {
    /// 429 throttles, 5xx and the [`RETRIED`] statuses are transient, 401 is the credential,
    /// other 4xx refusals with the app's words.
    pub fn classify(self) -> ConnectorError {
        let text = |s: &Refusal| format!("HTTP {}: {}", s.status, s.message);
        match self.status {
            0 => ConnectorError::Transient(self.message),
            429 => ConnectorError::RateLimited {
                retry_after: self.retry_after.unwrap_or(THROTTLE_PAUSE),
                policy: "HTTP 429".into(),
            },
            401 => ConnectorError::Auth(text(&self)),
            s if s >= 500 || RETRIED.contains(&s) => ConnectorError::Transient(text(&self)),
            s => ConnectorError::Rejected {
                status: s,
                message: self.message,
            },
        }
    }
}

/// The app's message in an error body: the usual places (`message`, `error.message`,
/// `error`, `errors[0].message`, `detail`, `title`), else the body's first 300 characters.
fn message(raw: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(raw) {
        for p in [
            "/message",
            "/error/message",
            "/error_description",
            "/error",
            "/errors/0/message",
            "/errors/0/detail",
            "/errors/0",
            "/detail",
            "/title",
        ] {
            if let Some(s) = v.pointer(p).and_then(Value::as_str) {
                if !s.is_empty() {
                    return s.chars().take(500).collect();
                }
            }
        }
    }
    let text: String = String::from_utf8_lossy(raw)
        .trim()
        .chars()
        .take(300)
        .collect();
    if text.is_empty() {
        "no message".into()
    } else {
        text
    }
}

/// `scheme://host:port` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// `name=value&…`, each part percent-encoded.
pub fn query_text(pairs: &[(String, String)]) -> String {
    use crate::connectors::wire::encode;
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_the_usual_places() {
        assert_eq!(
            message(br#"{"error": {"message": "bad email"}}"#),
            "bad email"
        );
        assert_eq!(message(br#"{"errors": [{"message": "taken"}]}"#), "taken");
        assert_eq!(
            message(br#"{"message": "Validation Failed", "errors": []}"#),
            "Validation Failed"
        );
        assert_eq!(
            message(br#"{"error": "invalid_client", "error_description": "bad id"}"#),
            "bad id"
        );
        assert_eq!(message(br#"{"error": "not allowed"}"#), "not allowed");
        assert_eq!(
            message(br#"{"errors": [{"detail": "email taken"}]}"#),
            "email taken"
        );
        assert_eq!(
            message(br#"{"errors": ["name is required"]}"#),
            "name is required"
        );
        assert_eq!(
            message(br#"{"type": "about:blank", "title": "Bad Request", "detail": "no name"}"#),
            "no name"
        );
        assert_eq!(
            message(br#"{"type": "about:blank", "title": "Conflict"}"#),
            "Conflict"
        );
        assert_eq!(message(b""), "no message");
        assert_eq!(message(&[b'x'; 1000]).len(), 300, "a long body is cut");
        assert_eq!(message(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(
            origin("https://a.example:8443/v1/x?y"),
            "https://a.example:8443"
        );
        assert_eq!(origin("http://h"), "http://h");
    }

    #[test]
    fn refusals_say_what_to_retry() {
        let r = |status| Refusal {
            status,
            message: "m".into(),
            retry_after: None,
        };
        assert!(matches!(
            r(429).classify(),
            ConnectorError::RateLimited { .. }
        ));
        assert!(matches!(r(503).classify(), ConnectorError::Transient(_)));
        for retried in [408, 409, 423, 425, 500, 502, 504] {
            assert!(
                matches!(r(retried).classify(), ConnectorError::Transient(_)),
                "{retried}"
            );
        }
        assert!(matches!(r(401).classify(), ConnectorError::Auth(_)));
        assert!(matches!(
            r(422).classify(),
            ConnectorError::Rejected { status: 422, .. }
        ));
    }
}
