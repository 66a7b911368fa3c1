//! REST connector, both directions: signing requests in — a static secret (bearer, header,
//! query parameter, basic) or a token ferry gets itself (OAuth 2.0 client credentials, a login
//! call), kept until it expires or the app answers 401, then renewed once.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::{Auth, AuthKind, ExpiresUnit};
use crate::connectors::ConnectorError;

/// A session renewed this long before the app's stated expiry.
const EARLY: Duration = Duration::from_secs(30);
/// A login session's life when neither the answer nor `ttl` says.
const DEFAULT_TTL: Duration = Duration::from_secs(30 * 60);

/// Where the credential goes in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Header(String, String),
    Query(String, String),
}

pub struct Signer {
    auth: Auth,
    secret: String,
    /// A fetched token and when to renew it.
    session: Mutex<Option<(String, Instant)>>,
}

impl Signer {
    pub fn new(auth: Option<Auth>, secret: &str) -> Signer {
        Signer {
            auth: auth.unwrap_or_default(),
            secret: secret.to_string(),
            session: Mutex::new(None),
        }
    }

    /// Whether a 401 may mean an expired session (worth one renewal and a repeat).
    pub fn renewable(&self) -> bool {
        matches!(
            self.auth.kind,
            AuthKind::ClientCredentials | AuthKind::Login
        )
    }

    /// Forgets the session so the next request signs in again.
    pub async fn expire(&self) {
        *self.session.lock().await = None;
    }

    /// The credential of the next request; signs in first when needed (`http` and `base`
    /// reach the token or login endpoint).
    pub async fn credential(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<Credential, ConnectorError> {
        let a = &self.auth;
        let name = |default: &str| a.name.clone().unwrap_or_else(|| default.to_string());
        Ok(match a.kind {
            AuthKind::Bearer => {
                Credential::Header("Authorization".into(), format!("Bearer {}", self.secret))
            }
            AuthKind::Header => Credential::Header(
                name("X-API-Key"),
                format!("{}{}", a.prefix.as_deref().unwrap_or(""), self.secret),
            ),
            AuthKind::Query => Credential::Query(name("api_key"), self.secret.clone()),
            AuthKind::Basic => {
                let pair = format!("{}:{}", a.username.as_deref().unwrap_or(""), self.secret);
                Credential::Header(
                    "Authorization".into(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                )
            }
            AuthKind::ClientCredentials | AuthKind::Login => {
                let token = self.session_token(http, base).await?;
                let prefix = a.prefix.as_deref().unwrap_or("Bearer ");
                Credential::Header(name("Authorization"), format!("{prefix}{token}"))
            }
        })
    }

    async fn session_token(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<String, ConnectorError> {
        let mut session = self.session.lock().await;
        if let Some((token, renew_at)) = session.as_ref() {
            if Instant::now() < *renew_at {
                return Ok(token.clone());
            }
        }
        let (token, life) = match self.auth.kind {
            AuthKind::ClientCredentials => self.client_credentials(http, base).await?,
            _ => self.login(http, base).await?,
        };
        let life = life.unwrap_or_else(|| self.ttl());
        let renew_at = Instant::now() + life.saturating_sub(EARLY).max(life / 2);
        *session = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// How long the session of a sign-in answer lives, when the answer says.
    fn lifetime(&self, answer: &Value) -> Option<Duration> {
        let pointer = self.auth.expires.as_deref().unwrap_or("/expires_in");
        expires(answer, pointer, self.auth.expires_unit)
    }

    fn ttl(&self) -> Duration {
        self.auth
            .ttl
            .as_deref()
            .and_then(|t| crate::config::parse_duration(t).ok())
            .unwrap_or(DEFAULT_TTL)
    }

    /// The sign-in call's URL: `auth.url` (`default` when unset) under `base`, or as given
    /// when absolute.
    fn endpoint(&self, base: &str, default: &str) -> String {
        let url = self.auth.url.as_deref().unwrap_or(default);
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{base}{url}")
        }
    }

    async fn client_credentials(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<(String, Option<Duration>), ConnectorError> {
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.auth.username.clone().unwrap_or_default()),
            ("client_secret", self.secret.clone()),
        ];
        if let Some(s) = &self.auth.scope {
            form.push(("scope", s.clone()));
        }
        let form: Vec<(String, String)> = form.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let body = super::client::query_text(&form);
        let req = http
            .post(self.endpoint(base, "/oauth/token"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body);
        let answer = sign_in(req, "the token endpoint").await?;
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ConnectorError::Auth("the token endpoint's answer has no access_token".into())
            })?;
        Ok((token.to_string(), self.lifetime(&answer)))
    }

    async fn login(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<(String, Option<Duration>), ConnectorError> {
        let user = self.auth.username.clone().unwrap_or_default();
        let body = match &self.auth.body {
            Some(t) => fill(
                &serde_json::to_value(t).unwrap_or(Value::Null),
                &user,
                &self.secret,
            ),
            None => serde_json::json!({"username": user, "password": self.secret}),
        };
        let url = self.endpoint(base, "/login");
        let req = http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body);
        let answer = sign_in(req, "the login call").await?;
        let pointer = self.auth.token.as_deref().unwrap_or("/token");
        let token = answer
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ConnectorError::Auth(format!(
                    "the login call's answer has no token at `{pointer}`"
                ))
            })?;
        Ok((token.to_string(), self.lifetime(&answer)))
    }
}

/// Sends a sign-in request: 4xx is an auth failure, 5xx and transport errors transient.
async fn sign_in(req: reqwest::RequestBuilder, what: &str) -> Result<Value, ConnectorError> {
    let resp = req
        .send()
        .await
        .map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
    let status = resp.status();
    let raw = resp
        .bytes()
        .await
        .map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(ConnectorError::Transient(format!(
            "{what} answered HTTP {}",
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(ConnectorError::Auth(format!(
            "{what} answered HTTP {}",
            status.as_u16()
        )));
    }
    serde_json::from_slice(&raw)
        .map_err(|e| ConnectorError::Auth(format!("{what} answered no JSON: {e}")))
}

/// The session's lifetime at `pointer` in a sign-in answer, in `unit`, when it says.
fn expires(answer: &Value, pointer: &str, unit: ExpiresUnit) -> Option<Duration> {
    let n = answer
        .pointer(pointer)
        .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
        .filter(|n| n.is_finite() && *n > 0.0)?;
    Some(Duration::from_secs_f64(match unit {
        ExpiresUnit::Seconds => n,
        ExpiresUnit::Milliseconds => n / 1000.0,
    }))
}

/// The login body with `{username}` and `{secret}` replaced in its strings.
fn fill(template: &Value, user: &str, secret: &str) -> Value {
    match template {
        Value::String(s) => {
            Value::String(s.replace("{username}", user).replace("{secret}", secret))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, user, secret)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill(v, user, secret)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn login_bodies_take_the_user_and_secret() {
        let t = json!({"auth": {"identifier": "{username}", "password": "{secret}"}, "n": 1});
        assert_eq!(
            fill(&t, "ann", "pw"),
            json!({"auth": {"identifier": "ann", "password": "pw"}, "n": 1})
        );
        let s = ExpiresUnit::Seconds;
        assert_eq!(
            expires(&json!({"expires_in": "3600"}), "/expires_in", s),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(expires(&json!({"expires_in": -1}), "/expires_in", s), None);
        // Directus: {"data": {"access_token", "expires": 900000}} in milliseconds
        assert_eq!(
            expires(
                &json!({"data": {"expires": 900_000}}),
                "/data/expires",
                ExpiresUnit::Milliseconds
            ),
            Some(Duration::from_secs(900))
        );
    }
}
