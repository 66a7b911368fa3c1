//! Stripe simulator: events and webhooks — the 30-day retention window, `type` wildcards,
//! `GET /v1/events/{id}`, and the webhook format: one event per POST, signed
//! `Stripe-Signature: t=…,v1=…` with every active endpoint secret (two during rotation).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::store::Store;
use super::wire::StripeError;
use crate::sim::core::{lock, WebhookFormat};

pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Events stay retrievable for 30 days.
pub(crate) const RETENTION_SECS: i64 = 30 * 86_400;

/// Whether an event created at `created` is still kept at `now`.
pub(crate) fn retained(created: i64, now: i64) -> bool {
    now - created < RETENTION_SECS
}

/// `type=customer.*` (prefix wildcard) or exact, or one of `types[]`.
pub(crate) fn type_matcher(
    ty: Option<String>,
    types: Option<Vec<String>>,
) -> impl Fn(&str) -> bool {
    move |kind: &str| {
        let one = |pattern: &str| match pattern.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => kind == pattern,
        };
        match (&ty, &types) {
            (Some(t), _) => one(t),
            (_, Some(list)) => list.iter().any(|t| t == kind),
            _ => true,
        }
    }
}

pub(crate) fn retrieve(store: &Store, id: &str, now: i64) -> Result<Value, StripeError> {
    store
        .event(id)
        .filter(|e| retained(e.created, now))
        .map(|e| e.body.clone())
        .ok_or_else(|| StripeError::no_such("event", id))
}

/// Lowercase hex HMAC-SHA256 of `"{t}.{body}"` keyed by the whole `whsec_...` secret.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `t=<t>,v1=<sig>[,v1=<sig>...]`, one `v1` per secret.
pub fn signature_header(secrets: &[String], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for s in secrets {
        out.push_str(",v1=");
        out.push_str(&signature(s, t, body));
    }
    out
}

/// One event per POST, pretty-printed as Stripe sends them, signed anew for each attempt.
pub(crate) struct StripeWebhooks {
    secrets: Mutex<Vec<String>>,
}

impl StripeWebhooks {
    pub(crate) fn new(secret: String) -> StripeWebhooks {
        StripeWebhooks {
            secrets: Mutex::new(vec![secret]),
        }
    }

    pub(crate) fn secrets(&self) -> Vec<String> {
        lock(&self.secrets).clone()
    }

    pub(crate) fn set_secrets(&self, secrets: Vec<String>) {
        *lock(&self.secrets) = secrets;
    }
}

impl WebhookFormat for StripeWebhooks {
    type Event = Value;

    fn body(&self, events: &[Value], _attempt: u32) -> Vec<u8> {
        events
            .first()
            .and_then(|e| serde_json::to_vec_pretty(e).ok())
            .unwrap_or_default()
    }

    fn headers(&self, _url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
        vec![
            (
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            ),
            (
                "User-Agent".into(),
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)".into(),
            ),
            (
                SIGNATURE_HEADER.into(),
                signature_header(&self.secrets(), now.timestamp(), body),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hex_hmac_of_t_dot_body() {
        // the documented recipe, recomputed independently
        let sig = signature("whsec_test", 1_492_774_577, b"{\"id\":1}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").expect("key");
        mac.update(b"1492774577.{\"id\":1}");
        assert_eq!(sig, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sig.len(), 64);
        let h = signature_header(&["a".into(), "b".into()], 7, b"x");
        assert_eq!(
            h,
            format!(
                "t=7,v1={},v1={}",
                signature("a", 7, b"x"),
                signature("b", 7, b"x")
            )
        );
    }

    #[test]
    fn wildcards_and_retention() {
        let m = type_matcher(Some("customer.*".into()), None);
        assert!(m("customer.created") && m("customer.updated") && !m("invoice.paid"));
        let m = type_matcher(
            None,
            Some(vec!["invoice.paid".into(), "customer.deleted".into()]),
        );
        assert!(m("invoice.paid") && m("customer.deleted") && !m("customer.created"));
        assert!(type_matcher(None, None)("anything"));
        assert!(retained(0, RETENTION_SECS - 1) && !retained(0, RETENTION_SECS));
    }
}
