//! REST connector, inbound edge: webhook signature schemes — how a delivery to a `kind =
//! "rest"` connection proves it comes from the app (`[connections.<name>.webhook] scheme`):
//! `none` (nothing to check), `secret` (the shared secret itself in a header), `hmac` (an
//! HMAC-SHA256/512 of the body or a `{timestamp}.{body}`-like template, hex or base64, several
//! signatures allowed while the app rotates its key), `standard` (Standard Webhooks:
//! `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`) and `jwt` (an HS256
//! token signed with the secret, optionally binding the body by its SHA-256). Every
//! comparison with a secret or a signature runs in constant time, and a timestamp must lie
//! within the webhook's tolerance of now (either way) so a captured delivery cannot be replayed
//! later. Refusals name the header or the check that failed, never a secret.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use super::config::{HmacAlgorithm, SignatureEncoding, Webhook, WebhookScheme};
use crate::connectors::{WebhookError, WebhookRequest};

/// The default headers of the `secret`, `hmac` and `jwt` (after `Bearer `) schemes.
pub const SECRET_HEADER: &str = "X-Webhook-Secret";
pub const HMAC_HEADER: &str = "X-Signature";
pub const JWT_HEADER: &str = "Authorization";
/// Standard Webhooks' headers.
pub const STANDARD_ID: &str = "webhook-id";
pub const STANDARD_TIMESTAMP: &str = "webhook-timestamp";
pub const STANDARD_SIGNATURE: &str = "webhook-signature";

/// Verifies one delivery under the webhook's scheme with the connection's webhook secret.
pub fn verify(
    config: &Webhook,
    request: &WebhookRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    match config.scheme {
        WebhookScheme::None => Ok(()),
        WebhookScheme::Secret => shared_secret(config, request, secret),
        WebhookScheme::Hmac => hmac(config, request, secret, now),
        WebhookScheme::Standard => standard(config, request, secret, now),
        WebhookScheme::Jwt => jwt(config, request, secret, now),
    }
}

fn refused(message: impl Into<String>) -> WebhookError {
    WebhookError::Signature(message.into())
}

/// Every non-empty value of a header (it may be repeated); an error when there is none.
fn values<'a>(request: &WebhookRequest<'a>, name: &str) -> Result<Vec<&'a str>, WebhookError> {
    let found: Vec<&'a str> = request
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if found.is_empty() {
        return Err(refused(format!("missing {name} header")));
    }
    Ok(found)
}

/// The first value of a header.
fn value<'a>(request: &WebhookRequest<'a>, name: &str) -> Result<&'a str, WebhookError> {
    Ok(values(request, name)?[0])
}

/// `Bearer <token>` → `<token>` (any case); other values as they are.
fn strip_bearer(v: &str) -> &str {
    match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
        _ => v,
    }
}

/// Checks a Unix-seconds timestamp header against the tolerance, either way.
fn fresh(
    header: &str,
    at: &str,
    tolerance: Duration,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let at: i64 = at
        .trim()
        .parse()
        .map_err(|_| refused(format!("{header} header is not Unix seconds")))?;
    if now.timestamp().abs_diff(at) > tolerance.as_secs() {
        return Err(refused(format!(
            "{header} timestamp outside the tolerance of {} seconds",
            tolerance.as_secs()
        )));
    }
    Ok(())
}

/// Equality in constant time: both sides are MACed under a fixed key and the tags compared
/// by `verify_slice`, so neither where they differ nor the secret's length shows in timing.
fn same(given: &[u8], secret: &[u8]) -> bool {
    let tag = |x: &[u8]| {
        let mut m = Hmac::<Sha256>::new_from_slice(b"ferry webhook secret")
            .expect("HMAC accepts any key length");
        m.update(x);
        m
    };
    tag(given)
        .verify_slice(&tag(secret).finalize().into_bytes())
        .is_ok()
}

fn shared_secret(
    config: &Webhook,
    request: &WebhookRequest<'_>,
    secret: &str,
) -> Result<(), WebhookError> {
    let name = config.header.as_deref().unwrap_or(SECRET_HEADER);
    let mut given = value(request, name)?;
    if name.eq_ignore_ascii_case("authorization") {
        given = strip_bearer(given);
    }
    let mismatch = || refused(format!("{name} header does not match the webhook secret"));
    same(given.as_bytes(), secret.as_bytes())
        .then_some(())
        .ok_or_else(mismatch)
}

/// A signature as bytes; None when it is not valid in the encoding (it cannot match).
fn decode(encoding: SignatureEncoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        SignatureEncoding::Hex => hex::decode(text).ok(),
        SignatureEncoding::Base64 => [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(text).ok()),
    }
}

/// The signed bytes: the template with `{body}` and `{timestamp}` replaced.
fn render(template: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + body.len() + timestamp.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{body}") {
            out.extend_from_slice(body);
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{timestamp}") {
            out.extend_from_slice(timestamp.as_bytes());
            rest = after;
        } else {
            out.push(b'{');
            rest = &tail[1..];
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// Whether one of `given` is the MAC of `message` under `key` (each compared in constant time).
fn any_matches<M>(key: &[u8], message: &[u8], given: &[Vec<u8>]) -> bool
where
    M: Mac + hmac::digest::KeyInit + Clone,
{
    let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    given.iter().any(|g| mac.clone().verify_slice(g).is_ok())
}

fn hmac(
    config: &Webhook,
    request: &WebhookRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let name = config.header.as_deref().unwrap_or(HMAC_HEADER);
    let headers = values(request, name)?;
    let timestamp = match config.timestamp_header.as_deref() {
        Some(t) => {
            let at = value(request, t)?;
            fresh(t, at, config.tolerance(), now)?;
            at
        }
        None if config.signed.contains("{timestamp}") => {
            return Err(refused(
                "the signed template names {timestamp} but no timestamp_header is configured",
            ))
        }
        None => "",
    };
    let prefix = config.prefix.trim();
    // several signatures (a key rotation) are separated by commas or spaces; with a prefix,
    // only the parts carrying it are signatures (`t=…,v1=…` with prefix `v1=`)
    let given: Vec<Vec<u8>> = headers
        .iter()
        .flat_map(|v| v.split(|c: char| c == ',' || c.is_whitespace()))
        .filter_map(|part| {
            let head = part.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| &part[prefix.len()..])
        })
        .filter(|s| !s.is_empty())
        .filter_map(|s| decode(config.encoding, s))
        .collect();
    if given.is_empty() {
        let encoding = format!("{:?}", config.encoding).to_lowercase();
        let after = format!(" after `{prefix}`");
        let after = if prefix.is_empty() { "" } else { &after };
        return Err(refused(format!(
            "{name} header carries no {encoding} signature{after}"
        )));
    }
    let message = render(&config.signed, request.body, timestamp);
    let key = secret.as_bytes();
    let matched = match config.algorithm {
        HmacAlgorithm::Sha256 => any_matches::<Hmac<Sha256>>(key, &message, &given),
        HmacAlgorithm::Sha512 => any_matches::<Hmac<Sha512>>(key, &message, &given),
    };
    let mismatch = || {
        refused(format!(
            "no signature in {name} matches the delivery's HMAC"
        ))
    };
    matched.then_some(()).ok_or_else(mismatch)
}

/// Standard Webhooks' key: the base64 after `whsec_`; a secret without the prefix is taken
/// as base64 when it decodes, else as its raw bytes.
fn standard_key(secret: &str) -> Result<Vec<u8>, WebhookError> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .map_err(|_| refused("the webhook secret after whsec_ is not base64")),
        None => Ok(STANDARD
            .decode(secret)
            .unwrap_or_else(|_| secret.as_bytes().to_vec())),
    }
}

fn standard(
    config: &Webhook,
    request: &WebhookRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let id = value(request, STANDARD_ID)?;
    let at = value(request, STANDARD_TIMESTAMP)?;
    let signatures = values(request, STANDARD_SIGNATURE)?;
    fresh(STANDARD_TIMESTAMP, at, config.tolerance(), now)?;
    let key = standard_key(secret)?;
    // `v1,<base64>` entries separated by spaces; other versions (`v1a`: ed25519) ignored
    let given: Vec<Vec<u8>> = signatures
        .iter()
        .flat_map(|v| v.split_whitespace())
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| decode(SignatureEncoding::Base64, s))
        .collect();
    if given.is_empty() {
        return Err(refused(format!(
            "{STANDARD_SIGNATURE} header carries no v1 signature"
        )));
    }
    let message = [id.as_bytes(), b".", at.as_bytes(), b".", request.body].concat();
    let mismatch = || refused(format!("no v1 signature in {STANDARD_SIGNATURE} matches"));
    let matched = any_matches::<Hmac<Sha256>>(&key, &message, &given);
    matched.then_some(()).ok_or_else(mismatch)
}

fn jwt(
    config: &Webhook,
    request: &WebhookRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), WebhookError> {
    let name = config.header.as_deref().unwrap_or(JWT_HEADER);
    let token = strip_bearer(value(request, name)?);
    // the library checks the signature and that the algorithm is HS256 (no `none`); times are
    // checked below against `now`, not the library's clock
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let key = DecodingKey::from_secret(secret.as_bytes());
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => {
                refused(format!("the JWT in {name} has a bad signature"))
            }
            _ => refused(format!("{name} header holds no valid HS256 JWT ({e})")),
        })?
        .claims;
    let time = |claim: &str| match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|t| Some(t as i64))
            .ok_or_else(|| refused(format!("the JWT's {claim} claim is not a number"))),
    };
    let leeway = i64::try_from(config.tolerance().as_secs()).unwrap_or(i64::MAX);
    let now = now.timestamp();
    if time("exp")?.is_some_and(|exp| exp.saturating_add(leeway) < now) {
        return Err(refused(format!("the JWT in {name} has expired")));
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(refused(format!("the JWT in {name} is not valid yet (nbf)")));
    }
    if time("iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(refused(format!(
            "the JWT in {name} is issued in the future"
        )));
    }
    if let Some(hash) = claims.get("sha256") {
        let hash = hash
            .as_str()
            .ok_or_else(|| refused("the JWT's sha256 claim is not text"))?;
        if !hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(request.body))) {
            return Err(refused("the JWT's sha256 claim does not match the body"));
        }
    }
    Ok(())
}
