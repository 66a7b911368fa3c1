//! REST simulator: auth — checking each API call's credential as the profile's `[auth]` says
//! (none, bearer, a header, a query parameter, HTTP basic, or a token issued by the sim), and
//! the sim's own sign-in endpoints: OAuth 2.0 client credentials and a JSON login (its body's
//! keys as the profile says, its answer with the token's lifetime when asked), whose tokens
//! expire after `ttl` on the sim clock.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::profile::{AuthKind, TimeUnit};
use super::wire::{first, json_response, pairs, put, random_alnum, shaped, ApiError};
use super::Inner;
use crate::sim::core::lock;

/// Tokens the sim issued, with their expiry.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    tokens: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Sessions {
    /// A new token valid until `expires` (expired ones are forgotten on the way).
    fn issue(&self, prefix: &str, now: DateTime<Utc>, expires: DateTime<Utc>) -> String {
        let token = format!("{prefix}{}", random_alnum(32));
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, until| *until > now);
        tokens.insert(token.clone(), expires);
        token
    }

    fn check(&self, token: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
        match lock(&self.tokens).get(token) {
            Some(until) if *until > now => Ok(()),
            Some(_) => Err(unauthorized("the token has expired; sign in again")),
            None => Err(unauthorized("the token is not valid")),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The credentials of `Authorization: <scheme> <credentials>` when the scheme matches.
fn scheme<'a>(headers: &'a HeaderMap, name: &str, want: &str) -> Option<&'a str> {
    let value = header_value(headers, name)?;
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(want).then(|| rest.trim())
}

/// `(user, password)` of HTTP basic credentials.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let raw = STANDARD
        .decode(scheme(headers, "authorization", "basic")?)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn ttl(inner: &Inner) -> TimeDelta {
    TimeDelta::from_std(inner.profile.auth.ttl()).unwrap_or(TimeDelta::MAX)
}

/// Checks an API call's credential.
pub(crate) fn check(
    inner: &Inner,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<(), ApiError> {
    let a = &inner.profile.auth;
    let secret = a.secret();
    let missing = |what: String| unauthorized(&format!("missing credentials: {what}"));
    let wrong = || unauthorized("invalid credentials");
    let expect = |got: Option<&str>, what: String| match got {
        None | Some("") => Err(missing(what)),
        Some(v) if v == secret => Ok(()),
        Some(_) => Err(wrong()),
    };
    let now = inner.clock.now();
    let challenge =
        |e: ApiError, s: &str| e.header(header::WWW_AUTHENTICATE, format!("{s} realm=\"sim\""));
    match a.kind {
        AuthKind::None => Ok(()),
        AuthKind::Bearer => expect(
            scheme(headers, "authorization", "bearer"),
            "send Authorization: Bearer <token>".into(),
        )
        .map_err(|e| challenge(e, "Bearer")),
        AuthKind::Header => expect(
            header_value(headers, a.name()),
            format!("send the {} header", a.name()),
        ),
        AuthKind::Query => expect(
            first(query, a.name()),
            format!("send the {} parameter", a.name()),
        ),
        AuthKind::Basic => match basic(headers) {
            None => Err(challenge(
                missing("send HTTP basic credentials".into()),
                "Basic",
            )),
            Some((u, p)) if u == a.username() && p == secret => Ok(()),
            Some(_) => Err(challenge(wrong(), "Basic")),
        },
        AuthKind::ClientCredentials => match scheme(headers, "authorization", "bearer") {
            Some(t) if !t.is_empty() => inner.sessions.check(t, now),
            _ => Err(missing("send Authorization: Bearer <access token>".into())),
        }
        .map_err(|e| challenge(e, "Bearer")),
        AuthKind::Login => {
            let value = header_value(headers, a.name()).unwrap_or("");
            let token = match value.split_once(' ') {
                Some((s, t)) if s.eq_ignore_ascii_case("bearer") => t.trim(),
                _ => value,
            };
            if token.is_empty() {
                return Err(missing(format!("send the session token in {}", a.name())));
            }
            inner.sessions.check(token, now)
        }
    }
}

/// The sign-in endpoint (`POST auth.url`) of `client_credentials` or `login`.
pub(crate) fn sign_in(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Response {
    let result = match inner.profile.auth.kind {
        AuthKind::ClientCredentials => client_credentials(inner, headers, body),
        AuthKind::Login => login(inner, body),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such route",
        )),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// An OAuth error (`error` as RFC 6749 names it, `message` and `error_description` alike).
fn oauth_error(status: StatusCode, code: &'static str, message: &str) -> Response {
    let body = json!({"error": code, "message": message, "error_description": message});
    json_response(status, &body)
}

fn client_credentials(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let a = &inner.profile.auth;
    let form = pairs(std::str::from_utf8(body).ok());
    match first(&form, "grant_type") {
        Some("client_credentials") => {}
        None => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required (application/x-www-form-urlencoded)",
            ))
        }
        Some(_) => {
            return Ok(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ))
        }
    }
    let creds = basic(headers).or_else(|| {
        let id = first(&form, "client_id")?;
        Some((
            id.to_string(),
            first(&form, "client_secret").unwrap_or("").to_string(),
        ))
    });
    let Some((id, secret)) = creds else {
        return Ok(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials are missing",
        ));
    };
    if id != a.username() || secret != a.secret() {
        return Ok(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        ));
    }
    let now = inner.clock.now();
    let token = inner.sessions.issue("at_", now, now + ttl(inner));
    let mut answer = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": a.ttl().as_secs(),
    });
    if let Some(scope) = first(&form, "scope") {
        answer["scope"] = json!(scope);
    }
    Ok(json_response(StatusCode::OK, &answer))
}

/// How a login body compares with the expected one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Login {
    Matches,
    /// A value differs (401).
    Wrong,
    /// A key is missing or not of the expected type (400).
    Missing,
}

/// Every value of `want` (objects key by key) against `got`; keys `want` lacks are ignored.
fn compare(want: &Value, got: Option<&Value>) -> Login {
    match (want, got) {
        (_, None | Some(Value::Null)) => Login::Missing,
        (Value::Object(w), Some(Value::Object(g))) => w
            .iter()
            .map(|(k, v)| compare(v, g.get(k)))
            .max()
            .unwrap_or(Login::Matches),
        (Value::Object(_), Some(_)) => Login::Missing,
        (Value::String(_), Some(g)) if !g.is_string() => Login::Missing,
        (w, Some(g)) if w == g => Login::Matches,
        _ => Login::Wrong,
    }
}

fn login(inner: &Inner, body: &[u8]) -> Result<Response, ApiError> {
    let a = &inner.profile.auth;
    let want = a.login_body();
    let keys: Vec<String> = want
        .as_object()
        .map(|m| m.keys().map(|k| format!("\"{k}\": …")).collect())
        .unwrap_or_default();
    let shape = format!("the login body must be {{{}}}", keys.join(", "));
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::bad_request(&shape))?;
    match compare(&want, Some(&v)) {
        Login::Matches => {}
        Login::Wrong => return Err(unauthorized("wrong username or password")),
        Login::Missing => return Err(ApiError::bad_request(shape)),
    }
    let now = inner.clock.now();
    let token = inner.sessions.issue("sess_", now, now + ttl(inner));
    let mut answer = shaped(a.token_pointer(), json!(token));
    if let Some(pointer) = &a.expires {
        let life = match a.expires_unit {
            TimeUnit::Seconds => json!(a.ttl().as_secs()),
            TimeUnit::Millis => json!(u64::try_from(a.ttl().as_millis()).unwrap_or(u64::MAX)),
        };
        put(&mut answer, pointer, life);
    }
    Ok(json_response(StatusCode::OK, &answer))
}
