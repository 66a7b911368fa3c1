//! REST simulator: webhooks — the event body (`evt_<n>`, the change's type, the resource, the
//! time and the payload the profile asks for, each where `[webhooks.event]` puts it), its
//! headers (the profile's own, `{kind}` and `{resource}` filled from the body; a delivery id)
//! and the signing schemes (a static secret, an HMAC of a template, Standard Webhooks, an
//! HS256 JWT), one event per POST through the core sender.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use super::checks::standard_key;
use super::profile::{Algorithm, Encoding, Payload, Scheme, WebhookProfile};
use super::store::{Id, Table};
use super::wire::{put, random_alnum, text};
use crate::sim::core::WebhookFormat;

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

/// One change, for its event: the rendered record before and after (None: not there).
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub kind: ChangeKind,
    pub id: Id,
    pub at: DateTime<Utc>,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// The id (under `id_field`) plus every field whose value differs (removed ones as null).
fn changed(id_field: &str, id: Value, before: Option<&Value>, after: &Value) -> Value {
    let empty = Map::new();
    let old = before.and_then(Value::as_object).unwrap_or(&empty);
    let new = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        out.insert(k.clone(), Value::Null);
    }
    out.insert(id_field.into(), id);
    Value::Object(out)
}

/// The event body of change number `n`, shaped as `[webhooks]` says.
pub(crate) fn event(table: &Table, change: &Change, n: u64, hooks: &WebhookProfile) -> Value {
    let kind = match change.kind {
        ChangeKind::Created => &hooks.kinds.created,
        ChangeKind::Updated => &hooks.kinds.updated,
        ChangeKind::Deleted => &hooks.kinds.deleted,
    };
    let named = |template: &str| json!(template.replace("{resource}", &table.name));
    let id_field = table.spec.id_field.as_str();
    let id = change.id.json();
    let data = match (hooks.payload, &change.after) {
        (Payload::Ids, _) | (_, None) => json!({ id_field: id.clone() }),
        (Payload::Record, Some(after)) => after.clone(),
        (Payload::Changed, Some(after)) => {
            changed(id_field, id.clone(), change.before.as_ref(), after)
        }
    };
    let shape = &hooks.event;
    // a created event names its record by `key` when there is one, the others by `keys`
    let (key, keys) = match (change.kind, shape.key.is_empty()) {
        (ChangeKind::Created, false) => (shape.key.as_str(), ""),
        _ => ("", shape.keys.as_str()),
    };
    let parts = [
        (shape.id.as_str(), json!(format!("evt_{n}"))),
        (shape.kind.as_str(), named(kind)),
        (shape.resource.as_str(), named(&hooks.resource_value)),
        (shape.time.as_str(), table.time(change.at)),
        (key, id.clone()),
        (keys, json!([id])),
        (shape.record.as_str(), data),
    ];
    let mut body = json!({});
    for (pointer, value) in parts {
        if !pointer.is_empty() {
            put(&mut body, pointer, value);
        }
    }
    body
}

/// `HMAC(secret, text)` in the encoding asked for.
pub fn hmac_signature(alg: Algorithm, enc: Encoding, secret: &[u8], text: &[u8]) -> String {
    let raw = match alg {
        Algorithm::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(text);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("HMAC takes any key");
            mac.update(text);
            mac.finalize().into_bytes().to_vec()
        }
    };
    match enc {
        Encoding::Hex => hex::encode(raw),
        Encoding::Base64 => STANDARD.encode(raw),
    }
}

/// Standard Webhooks: `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut text = format!("{id}.{timestamp}.").into_bytes();
    text.extend_from_slice(body);
    let sig = hmac_signature(Algorithm::Sha256, Encoding::Base64, key, &text);
    format!("v1,{sig}")
}

/// An HS256 JWT of `claims` signed with `secret`.
pub fn jwt_hs256(secret: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// The signed text: the template with `{timestamp}` and `{body}` filled in.
fn signed_text(template: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    let filled = template.replace("{timestamp}", timestamp);
    let mut out = Vec::with_capacity(filled.len() + body.len());
    for (i, part) in filled.split("{body}").enumerate() {
        if i > 0 {
            out.extend_from_slice(body);
        }
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The profile's webhook shape: one event per POST, signed as `[webhooks]` says.
pub(crate) struct RestWebhooks {
    profile: WebhookProfile,
    /// The Standard Webhooks key (decoded from `whsec_…`).
    key: Vec<u8>,
    /// This run's part of `webhook-id`s, so ids stay unique across runs.
    run: String,
}

impl RestWebhooks {
    pub(crate) fn new(profile: &WebhookProfile) -> Result<RestWebhooks, String> {
        let key = if profile.scheme == Scheme::Standard {
            standard_key(profile.secret())?
        } else {
            Vec::new()
        };
        Ok(RestWebhooks {
            profile: profile.clone(),
            key,
            run: random_alnum(12),
        })
    }

    /// `msg_<run>_<n>` for event `evt_<n>`; for a body without its event id, `msg_<run>_`
    /// and the start of the body's SHA-256 (stable for one event, on every retry).
    fn message_id(&self, event: &Value, body: &[u8]) -> String {
        let id = event
            .pointer(&self.profile.event.id)
            .and_then(Value::as_str);
        let n = match id.filter(|_| !self.profile.event.id.is_empty()) {
            Some(id) => id.trim_start_matches("evt_").to_string(),
            None => hex::encode(&Sha256::digest(body)[..10]),
        };
        format!("msg_{}_{n}", self.run)
    }

    /// The profile's headers, `{kind}` and `{resource}` filled from the event.
    fn own_headers(&self, event: &Value) -> Vec<(String, String)> {
        let shape = &self.profile.event;
        let part = |pointer: &str| match pointer {
            "" => String::new(),
            p => event.pointer(p).map(text).unwrap_or_default(),
        };
        let (kind, resource) = (part(&shape.kind), part(&shape.resource));
        self.profile
            .headers
            .iter()
            .map(|(name, value)| {
                let value = value
                    .replace("{kind}", &kind)
                    .replace("{resource}", &resource);
                (name.clone(), value)
            })
            .collect()
    }
}

impl WebhookFormat for RestWebhooks {
    type Event = Value;

    fn max_batch(&self) -> usize {
        self.profile.batch.max(1)
    }

    fn body(&self, events: &[Value], _attempt: u32) -> Vec<u8> {
        let body = if self.profile.batch > 1 {
            serde_json::to_vec(events)
        } else {
            match events.first() {
                Some(e) => serde_json::to_vec(e),
                None => Ok(vec![]),
            }
        };
        body.unwrap_or_default()
    }

    fn headers(&self, _url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
        let p = &self.profile;
        let ts = now.timestamp();
        // a batch's headers name its first event (a delivery id of a batch hashes the body)
        let event: Value = match serde_json::from_slice(body).unwrap_or(Value::Null) {
            Value::Array(events) if events.len() > 1 => Value::Null,
            Value::Array(mut events) => events.pop().unwrap_or(Value::Null),
            event => event,
        };
        let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
        h.extend(self.own_headers(&event));
        if let Some(name) = &p.id_header {
            h.push((name.clone(), self.message_id(&event, body)));
        }
        if let Some(name) = &p.timestamp_header {
            h.push((name.clone(), ts.to_string()));
        }
        let secret = p.secret().as_bytes();
        let header = p.header().unwrap_or_default().to_string();
        match p.scheme {
            Scheme::None => {}
            Scheme::Secret => h.push((header, format!("{}{}", p.prefix, p.secret()))),
            Scheme::Hmac => {
                let text = signed_text(&p.signed, body, &ts.to_string());
                let sig = hmac_signature(p.algorithm, p.encoding, secret, &text);
                h.push((header, format!("{}{sig}", p.prefix)));
            }
            Scheme::Standard => {
                let id = self.message_id(&event, body);
                let sig = standard_signature(&self.key, &id, ts, body);
                h.push(("webhook-id".into(), id));
                h.push(("webhook-timestamp".into(), ts.to_string()));
                h.push(("webhook-signature".into(), sig));
            }
            Scheme::Jwt => {
                let claims = json!({
                    "iat": ts,
                    "exp": ts + 300,
                    "sha256": hex::encode(Sha256::digest(body)),
                });
                let token = jwt_hs256(secret, &claims);
                let value = if header.eq_ignore_ascii_case("authorization") {
                    format!("Bearer {token}")
                } else {
                    token
                };
                h.push((header, value));
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_signature_matches_the_spec_example() {
        // the example of the Standard Webhooks specification and its reference libraries
        let key = standard_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let sig = standard_signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn templates_fill_body_and_timestamp() {
        assert_eq!(signed_text("{timestamp}.{body}", b"{}", "17"), b"17.{}");
        assert_eq!(signed_text("{body}", b"x", "1"), b"x");
    }

    #[test]
    fn changed_payload_has_only_differences() {
        let before = json!({"id": 1, "a": 1, "b": 2, "gone": true});
        let after = json!({"id": 1, "a": 1, "b": 3});
        assert_eq!(
            changed("id", json!(1), Some(&before), &after),
            json!({"id": 1, "b": 3, "gone": null})
        );
    }
}
