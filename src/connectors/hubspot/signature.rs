//! Inbound edge: HubSpot webhook signatures (v3), shared by the connector (verify) and the
//! simulator (sign).
//!
//! v3: `base64(HMAC-SHA256(client_secret, METHOD + URI + BODY + TIMESTAMP))`, where URI is the
//! full target URL and TIMESTAMP the `X-HubSpot-Request-Timestamp` header (epoch milliseconds).

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the v3 signature.
pub const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
/// Header carrying the request timestamp (epoch milliseconds).
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
/// Requests older than this are refused (HubSpot's documented tolerance).
pub const MAX_AGE_MS: i64 = 5 * 60 * 1000;

fn mac(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac
}

/// The v3 signature of one request.
pub fn sign_v3(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> String {
    let tag = mac(secret, method, uri, body, timestamp)
        .finalize()
        .into_bytes();
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("timestamp header is not epoch milliseconds")]
    BadTimestamp,
    #[error("timestamp is outside the {}-second tolerance", MAX_AGE_MS / 1000)]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

/// Verifies a v3 signature in constant time, including the timestamp tolerance.
pub fn verify_v3(
    secret: &[u8],
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now_ms - ts).abs() > MAX_AGE_MS {
        return Err(SignatureError::Stale);
    }
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Mismatch)?;
    mac(secret, method, uri, body, timestamp)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = sign_v3(
            b"secret",
            "POST",
            "http://h/webhooks/hubspot",
            b"[]",
            "1700000000000",
        );
        // the delivery signed above, with this body, checked at `now`
        let check = |body: &[u8], now| {
            verify_v3(
                b"secret",
                "POST",
                "http://h/webhooks/hubspot",
                body,
                Some("1700000000000"),
                Some(&s),
                now,
            )
        };
        assert!(check(b"[]", 1700000000500).is_ok());
        assert_eq!(check(b"[1]", 1700000000500), Err(SignatureError::Mismatch));
        assert_eq!(
            check(b"[]", 1700000000000 + MAX_AGE_MS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_v3(b"secret", "POST", "http://h/x", b"[]", Some("1"), None, 1),
            Err(SignatureError::MissingHeader(SIGNATURE_HEADER))
        );
    }
}
