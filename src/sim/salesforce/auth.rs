//! Salesforce simulator: OAuth 2.0 — the token endpoint (`refresh_token`, `client_credentials`
//! and `password` grants, form-encoded), the sessions it hands out with their idle timeout on
//! the simulator clock, and checking `Authorization: Bearer` on API calls.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::json;
use sha2::Sha256;

use super::store::API_USER;
use super::wire::json_response;
use super::Inner;
use crate::sim::core::{lock, Query};

#[derive(Debug)]
struct Session {
    last_used: DateTime<Utc>,
    /// The configured static session id: never idles out, revoked only by `expire_all`.
    permanent: bool,
}

/// Live access tokens. A token expires after `idle` without use (Salesforce's session
/// timeout counts from the last activity).
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: TimeDelta,
}

impl Sessions {
    pub fn new(idle: TimeDelta) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            idle,
        }
    }

    /// A new access token, shaped like Salesforce's (`{org id}!{opaque}`).
    pub fn issue(&self, org_id: &str, now: DateTime<Utc>) -> String {
        let mut rng = rand::rng();
        let opaque: String = (0..96)
            .map(|_| {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
                char::from(alphabet[rng.random_range(0..alphabet.len())])
            })
            .collect();
        let token = format!("{org_id}!{opaque}");
        let session = Session {
            last_used: now,
            permanent: false,
        };
        lock(&self.map).insert(token.clone(), session);
        token
    }

    pub fn add_permanent(&self, token: &str, now: DateTime<Utc>) {
        let session = Session {
            last_used: now,
            permanent: true,
        };
        lock(&self.map).insert(token.to_string(), session);
    }

    /// Whether `token` is a live session at `now` (using it keeps it alive).
    pub fn check(&self, token: &str, now: DateTime<Utc>) -> bool {
        let mut map = lock(&self.map);
        let Some(s) = map.get_mut(token) else {
            return false;
        };
        if s.permanent || now - s.last_used < self.idle {
            s.last_used = s.last_used.max(now);
            return true;
        }
        map.remove(token);
        false
    }

    /// Revokes every session (static one included).
    pub fn expire_all(&self) {
        lock(&self.map).clear();
    }
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": error, "error_description": description}),
    )
}

/// `client_id` / `client_secret` from the form or from HTTP Basic auth.
fn client(form: &Query, headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let mut id = form.get("client_id").map(str::to_string);
    let mut secret = form.get("client_secret").map(str::to_string);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok());
    if let Some((u, p)) = basic.as_deref().and_then(|s| s.split_once(':')) {
        id.get_or_insert_with(|| crate::sim::core::query::decode(u));
        secret.get_or_insert_with(|| crate::sim::core::query::decode(p));
    }
    (id, secret)
}

/// `POST /services/oauth2/token`.
pub fn token(inner: &Inner, headers: &HeaderMap, raw_query: Option<&str>, body: &[u8]) -> Response {
    let text = String::from_utf8_lossy(body);
    // form fields, with any given in the query string as a fallback
    let mut raw = text.trim().to_string();
    if let Some(q) = raw_query.filter(|q| !q.is_empty()) {
        raw = if raw.is_empty() {
            q.to_string()
        } else {
            format!("{raw}&{q}")
        };
    }
    let form = Query::parse(Some(&raw));
    let cfg = &inner.cfg;
    let (client_id, client_secret) = client(&form, headers);
    let grant = form.get("grant_type").unwrap_or("");
    let client_ok = |need_secret: bool| -> Result<(), Response> {
        if client_id.as_deref() != Some(cfg.client_id.as_str()) {
            return Err(oauth_error(
                "invalid_client_id",
                "client identifier invalid",
            ));
        }
        let secret_ok = match client_secret.as_deref() {
            Some(s) => s == cfg.client_secret,
            None => !need_secret,
        };
        if !secret_ok {
            return Err(oauth_error("invalid_client", "invalid client credentials"));
        }
        Ok(())
    };
    let checked = match grant {
        "refresh_token" => client_ok(true).and_then(|()| {
            if form.get("refresh_token") == Some(cfg.refresh_token.as_str()) {
                Ok(true)
            } else {
                Err(oauth_error("invalid_grant", "expired access/refresh token"))
            }
        }),
        "client_credentials" => client_ok(true).map(|()| false),
        "password" => client_ok(true).and_then(|()| {
            let user_ok = form.get("username") == Some(cfg.username.as_str());
            let password = form.get("password").unwrap_or("");
            if user_ok && password.starts_with(cfg.password.as_str()) && !cfg.password.is_empty() {
                Ok(false)
            } else {
                Err(oauth_error("invalid_grant", "authentication failure"))
            }
        }),
        _ => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    };
    match checked {
        Ok(_) => issue(inner),
        Err(resp) => resp,
    }
}

fn issue(inner: &Inner) -> Response {
    let now = inner.now();
    let access = inner.sessions.issue(&inner.cfg.org_id, now);
    let id = format!("{}/id/{}/{}", inner.base_url, inner.cfg.org_id, API_USER);
    let issued_at = now.timestamp_millis().to_string();
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "instance_url": inner.base_url,
            "id": id,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature(&inner.cfg.client_secret, &id, &issued_at),
            "scope": "api refresh_token",
        }),
    )
}

/// Base64 HMAC-SHA256 of `id` + `issued_at` keyed with the client secret, as Salesforce
/// signs token responses.
pub fn signature(secret: &str, id: &str, issued_at: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
