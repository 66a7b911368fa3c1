//! Salesforce connector, both directions: OAuth 2.0 sign-in — the refresh-token or
//! client-credentials grant posted as a form to `{base_url}/services/oauth2/token`, and the
//! session it yields (access token and `instance_url`), kept in memory only. A session
//! Salesforce refuses is replaced once for everyone: concurrent callers wait on one refresh.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;

use super::client::encode;
use crate::connectors::ConnectorError;

/// How ferry proves who it is.
#[derive(Clone)]
pub enum Grant {
    /// `grant_type=refresh_token` with the connected app's key and secret.
    RefreshToken {
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
    /// `grant_type=client_credentials`: the connected app's own run-as user.
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grant::RefreshToken { .. } => f.write_str("Grant::RefreshToken(<redacted>)"),
            Grant::ClientCredentials { .. } => f.write_str("Grant::ClientCredentials(<redacted>)"),
        }
    }
}

impl Grant {
    fn name(&self) -> &'static str {
        match self {
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
        }
    }

    /// The token request's form body.
    fn form(&self) -> String {
        let pairs: Vec<(&str, &str)> = match self {
            Grant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => vec![
                ("grant_type", "refresh_token"),
                ("client_id", client_id),
                ("client_secret", client_secret),
                ("refresh_token", refresh_token),
            ],
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ],
        };
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A signed-in session. `generation` counts sign-ins, so a caller whose token was refused
/// can tell whether someone already replaced it.
#[derive(Clone)]
pub struct Session {
    pub access_token: String,
    /// Where the org's API lives (`https://{domain}.my.salesforce.com`), without a slash.
    pub instance_url: String,
    pub generation: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
}

pub struct Auth {
    http: reqwest::Client,
    /// `{base_url}/services/oauth2/token`.
    token_url: String,
    grant: Grant,
    session: Mutex<Option<Session>>,
}

impl Auth {
    pub fn new(http: reqwest::Client, base_url: &str, grant: Grant) -> Auth {
        Auth {
            http,
            token_url: format!("{}/services/oauth2/token", base_url.trim_end_matches('/')),
            grant,
            session: Mutex::new(None),
        }
    }

    /// The current session, signing in first if there is none.
    pub async fn session(&self) -> Result<Session, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let fresh = self.sign_in(1).await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// A session to replace `refused` (whose token Salesforce answered 401): signs in again
    /// unless another caller already did while this one waited for the lock.
    pub async fn refresh(&self, refused: u64) -> Result<Session, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| s.generation != refused) {
            return Ok(s.clone());
        }
        let fresh = self.sign_in(refused + 1).await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }

    /// One token request. Its answer is never logged: it holds the access token.
    async fn sign_in(&self, generation: u64) -> Result<Session, ConnectorError> {
        let sent = self
            .http
            .post(&self.token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(Duration::from_secs(30))
            .body(self.grant.form())
            .send()
            .await
            .map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
        let status = sent.status();
        let body = sent
            .bytes()
            .await
            .map_err(|e| ConnectorError::Transient(crate::hub::chain(&e.without_url())))?;
        if status.is_server_error() {
            return Err(ConnectorError::Transient(format!(
                "Salesforce's token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            // `{"error": "invalid_grant", "error_description": "expired access/refresh token"}`
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
            tracing::warn!(grant = self.grant.name(), status = status.as_u16(), error = %text("error"), "salesforce sign-in refused");
            return Err(ConnectorError::Auth(format!(
                "Salesforce refused the {} sign-in (HTTP {}): {} {}",
                self.grant.name(),
                status.as_u16(),
                text("error"),
                text("error_description")
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::Transient(format!("unreadable token answer from Salesforce: {e}"))
        })?;
        tracing::info!(
            grant = self.grant.name(),
            generation,
            "signed in to salesforce"
        );
        Ok(Session {
            access_token: answer.access_token,
            instance_url: answer.instance_url.trim_end_matches('/').to_string(),
            generation,
        })
    }
}
