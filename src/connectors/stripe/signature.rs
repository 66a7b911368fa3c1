//! Inbound edge: Stripe webhook signatures — `Stripe-Signature: t=<unix>,v1=<hex>[,v1=..]`,
//! where each `v1` is the lowercase hex HMAC-SHA256 of `"{t}.{raw body}"` keyed by a whole
//! `whsec_…` endpoint secret (several `v1` while Stripe rolls a secret; `v0` and other schemes
//! ignored). A delivery is genuine when one `v1` matches one of the secrets ferry holds
//! (compared in constant time) and `t` is within the tolerance of now (300 s, either way).

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "stripe-signature";
/// Stripe's SDKs' default tolerance: 5 minutes.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &str, t: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1` signature of one delivery.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, &t.to_string(), body).finalize().into_bytes())
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("Stripe-Signature has no t= timestamp")]
    NoTimestamp,
    #[error("Stripe-Signature has no v1 signature")]
    NoSignature,
    #[error("timestamp is outside the tolerance")]
    Stale,
    #[error("no v1 signature matches a webhook secret")]
    Mismatch,
}

/// Verifies a delivery against `secrets` (the current one, and a previous one during a
/// rotation on ferry's side).
pub fn verify(
    secrets: &[&str],
    body: &[u8],
    header: Option<&str>,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<&str> = None;
    let mut given: Vec<Vec<u8>> = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.trim()),
            // an odd-length or non-hex v1 cannot match; it is skipped, not an error
            Some(("v1", v)) => given.extend(hex::decode(v.trim()).ok()),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::NoTimestamp)?;
    let at: i64 = t.parse().map_err(|_| SignatureError::NoTimestamp)?;
    if given.is_empty() && !header.contains("v1=") {
        return Err(SignatureError::NoSignature);
    }
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.timestamp().abs_diff(at) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let matched = secrets.iter().any(|s| {
        let m = mac(s, t, body);
        given.iter().any(|g| m.clone().verify_slice(g).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}
