//! Zendesk simulator: webhook events (event subscriptions) — each record change becomes one or
//! more `zen:event-type:*` payloads, POSTed one per delivery with Zendesk's signature headers.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::fields::Object;
use super::store::{Change, ChangeKind};
use super::users::FieldChange;
use super::wire::iso;
use crate::sim::core::WebhookFormat;

pub const SIGNATURE_HEADER: &str = "X-Zendesk-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Zendesk-Webhook-Signature-Timestamp";
pub(crate) const EVENT_VERSION: &str = "2022-06-20";

/// `base64(HMAC-SHA256(secret, timestamp + body))`, Zendesk's documented signature.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A random version-4 UUID, as event ids are.
fn uuid() -> String {
    let r: u128 = rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn current_previous(f: &FieldChange) -> Value {
    json!({"current": f.current, "previous": f.previous})
}

/// A user identity as identity events carry it (shape unconfirmed: Zendesk documents the
/// event types, not this payload). Identity ids are derived from the user id.
fn identity(user_id: u64, kind: &str, value: &Value) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    let offset = if kind == "email" { 1 } else { 2 };
    json!({
        "id": (user_id * 10 + offset).to_string(),
        "type": kind,
        "value": value,
        "primary": true,
    })
}

/// Event types and `event` objects for one user field change; fields without a Zendesk event
/// type (verified, locale) produce none.
fn user_field_events(id: u64, f: &FieldChange) -> Vec<(&'static str, Value)> {
    match f.field {
        "name" => vec![("user.name_changed", current_previous(f))],
        "role" => vec![("user.role_changed", current_previous(f))],
        "external_id" => vec![("user.external_id_changed", current_previous(f))],
        "suspended" => vec![("user.suspended_changed", current_previous(f))],
        "time_zone" => vec![("user.time_zone_changed", current_previous(f))],
        "details" => vec![("user.details_changed", current_previous(f))],
        "notes" => vec![("user.notes_changed", current_previous(f))],
        "tags" => vec![("user.tags_changed", current_previous(f))],
        "user_fields" => vec![(
            "user.custom_field_changed",
            json!({
                "current": f.current, "previous": f.previous,
                "custom_field": {"key": f.key, "title": f.key, "field_type": "text"},
            }),
        )],
        "email" | "phone" => {
            let kind = if f.field == "email" {
                "email"
            } else {
                "phone_number"
            };
            let event = json!({
                "current": identity(id, kind, &f.current),
                "previous": identity(id, kind, &f.previous),
            });
            let t = match (f.previous.is_null(), f.current.is_null()) {
                (true, _) => "user.identity_created",
                (_, true) => "user.identity_deleted",
                _ => "user.identity_changed",
            };
            vec![(t, event)]
        }
        "organization_id" => {
            let as_string = |v: &Value| v.as_u64().map(|o| o.to_string());
            let mut out = Vec::new();
            if let Some(prev) = as_string(&f.previous) {
                out.push((
                    "user.organization_membership_deleted",
                    json!({"organization_id": prev}),
                ));
            }
            if let Some(cur) = as_string(&f.current) {
                out.push((
                    "user.organization_membership_created",
                    json!({"organization_id": cur}),
                ));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn org_field_events(f: &FieldChange) -> Vec<(&'static str, Value)> {
    match f.field {
        "name" => vec![("organization.name_changed", current_previous(f))],
        "external_id" => vec![("organization.external_id_changed", current_previous(f))],
        "tags" => vec![("organization.tags_changed", current_previous(f))],
        "organization_fields" => vec![(
            "organization.custom_field_changed",
            json!({
                "current": f.current, "previous": f.previous,
                "custom_field": {"key": f.key, "title": f.key, "field_type": "text"},
            }),
        )],
        _ => Vec::new(),
    }
}

fn kinds(c: &Change) -> Vec<(&'static str, Value)> {
    let empty = || json!({});
    match (c.object, &c.kind) {
        (Object::Users, ChangeKind::Created) => vec![("user.created", empty())],
        (Object::Users, ChangeKind::Deleted) => vec![
            (
                "user.active_changed",
                json!({"current": false, "previous": true}),
            ),
            ("user.deleted", empty()),
        ],
        (Object::Users, ChangeKind::Updated(fields)) => fields
            .iter()
            .flat_map(|f| user_field_events(c.id, f))
            .collect(),
        (Object::Organizations, ChangeKind::Created) => vec![("organization.created", empty())],
        (Object::Organizations, ChangeKind::Deleted) => vec![("organization.deleted", empty())],
        (Object::Organizations, ChangeKind::Updated(fields)) => {
            fields.iter().flat_map(org_field_events).collect()
        }
    }
}

/// The webhook payloads for `changes`, in order.
pub(crate) fn events(changes: &[Change], account_id: u64) -> Vec<Value> {
    let mut out = Vec::new();
    for c in changes {
        let subject = format!("zen:{}:{}", c.object.singular(), c.id);
        for (kind, event) in kinds(c) {
            out.push(json!({
                "type": format!("zen:event-type:{kind}"),
                "account_id": account_id,
                "id": uuid(),
                "time": iso(c.at),
                "zendesk_event_version": EVENT_VERSION,
                "subject": subject,
                "detail": c.detail,
                "event": event,
            }));
        }
    }
    out
}

/// One event per POST, signed with the webhook's signing secret.
pub(crate) struct ZendeskWebhooks {
    pub secret: String,
    /// The webhook's id (`X-Zendesk-Webhook-Id`).
    pub webhook_id: String,
    invocations: AtomicU64,
}

impl ZendeskWebhooks {
    pub(crate) fn new(secret: String, webhook_id: String) -> ZendeskWebhooks {
        ZendeskWebhooks {
            secret,
            webhook_id,
            invocations: AtomicU64::new(1),
        }
    }
}

impl WebhookFormat for ZendeskWebhooks {
    type Event = Value;

    fn body(&self, events: &[Value], _attempt: u32) -> Vec<u8> {
        events
            .first()
            .and_then(|e| serde_json::to_vec(e).ok())
            .unwrap_or_default()
    }

    fn headers(&self, _url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
        let ts = iso(now);
        let invocation = self.invocations.fetch_add(1, Ordering::Relaxed);
        vec![
            ("Content-Type".into(), "application/json".into()),
            ("User-Agent".into(), "Zendesk Webhook".into()),
            ("X-Zendesk-Webhook-Id".into(), self.webhook_id.clone()),
            (
                "X-Zendesk-Webhook-Invocation-Id".into(),
                invocation.to_string(),
            ),
            (
                SIGNATURE_HEADER.into(),
                signature(self.secret.as_bytes(), &ts, body),
            ),
            (TIMESTAMP_HEADER.into(), ts),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_of_timestamp_and_body() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a known vector
        let sig = signature(b"key", "The quick brown fox ", b"jumps over the lazy dog");
        assert_eq!(sig, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
    }

    #[test]
    fn uuids_look_like_v4() {
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
    }

    #[test]
    fn changes_become_typed_events() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).expect("t");
        let changes = vec![
            Change {
                object: Object::Users,
                id: 7,
                at,
                kind: ChangeKind::Updated(vec![
                    FieldChange::new("name", json!("A"), json!("B")),
                    FieldChange::new("email", json!("a@x.com"), json!("b@x.com")),
                    FieldChange::new("organization_id", json!(3), Value::Null),
                    FieldChange::new("verified", json!(false), json!(true)),
                ]),
                detail: json!({"id": "7"}),
            },
            Change {
                object: Object::Organizations,
                id: 3,
                at,
                kind: ChangeKind::Deleted,
                detail: json!({"id": "3"}),
            },
        ];
        let ev = events(&changes, 42);
        let types: Vec<&str> = ev.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(
            types,
            [
                "zen:event-type:user.name_changed",
                "zen:event-type:user.identity_changed",
                "zen:event-type:user.organization_membership_deleted",
                "zen:event-type:organization.deleted",
            ]
        );
        assert_eq!(ev[0]["event"], json!({"current": "B", "previous": "A"}));
        assert_eq!(ev[0]["subject"], "zen:user:7");
        assert_eq!(ev[0]["time"], "2023-11-14T22:13:20Z");
        assert_eq!(ev[1]["event"]["current"]["value"], "b@x.com");
        assert_eq!(ev[3]["subject"], "zen:organization:3");
        assert_eq!(ev[3]["event"], json!({}));
    }
}
