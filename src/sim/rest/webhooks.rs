//! REST simulator: webhooks — the event body (`evt_<n>`, `<resource>.<created|updated|
//! deleted>`, the payload the profile asks for) and the signing schemes (a static secret, an
//! HMAC of a template, Standard Webhooks, an HS256 JWT), one event per POST through the core
//! sender.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use super::checks::standard_key;
use super::profile::{Algorithm, Encoding, Payload, Scheme, WebhookProfile};
use super::store::{Id, Table};
use super::wire::random_alnum;
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

/// The id plus every field whose value differs (removed ones as null).
fn changed(id: Value, before: Option<&Value>, after: &Value) -> Value {
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
    out.insert("id".into(), id);
    Value::Object(out)
}

/// The event body of change number `n`.
pub(crate) fn event(table: &Table, change: &Change, n: u64, payload: Payload) -> Value {
    let kind = match change.kind {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Deleted => "deleted",
    };
    let id = change.id.json();
    let data = match (payload, &change.after) {
        (Payload::Ids, _) | (_, None) => json!({ "id": id }),
        (Payload::Record, Some(after)) => after.clone(),
        (Payload::Changed, Some(after)) => changed(id, change.before.as_ref(), after),
    };
    json!({
        "id": format!("evt_{n}"),
        "type": format!("{}.{kind}", table.name),
        "resource": table.name,
        "occurred_at": table.time(change.at),
        "data": data,
    })
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

    /// `msg_<run>_<n>` for event `evt_<n>` (stable for one event).
    fn message_id(&self, body: &[u8]) -> String {
        let n = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v["id"]
                    .as_str()
                    .map(|s| s.trim_start_matches("evt_").to_string())
            })
            .unwrap_or_else(|| random_alnum(8));
        format!("msg_{}_{n}", self.run)
    }
}

impl WebhookFormat for RestWebhooks {
    type Event = Value;

    fn body(&self, events: &[Value], _attempt: u32) -> Vec<u8> {
        events
            .first()
            .and_then(|e| serde_json::to_vec(e).ok())
            .unwrap_or_default()
    }

    fn headers(&self, _url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
        let p = &self.profile;
        let ts = now.timestamp();
        let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
        if let Some(name) = &p.timestamp_header {
            h.push((name.clone(), ts.to_string()));
        }
        let secret = p.secret().as_bytes();
        let header = p.header().unwrap_or_default().to_string();
        match p.scheme {
            Scheme::None => {}
            Scheme::Secret => h.push((header, p.secret().to_string())),
            Scheme::Hmac => {
                let text = signed_text(&p.signed, body, &ts.to_string());
                let sig = hmac_signature(p.algorithm, p.encoding, secret, &text);
                h.push((header, format!("{}{sig}", p.prefix)));
            }
            Scheme::Standard => {
                let id = self.message_id(body);
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
            changed(json!(1), Some(&before), &after),
            json!({"id": 1, "b": 3, "gone": null})
        );
    }
}
