//! REST simulator: the profile's `[webhooks]` table — how events are signed (the scheme and
//! its header, algorithm, encoding and signed text), what they carry (the payload), and how
//! their body and headers are shaped: where the event type, the resource, the record, the
//! event's id, its time and the record's keys go (`[webhooks.event]`), the words of each
//! change (`[webhooks.kinds]`), the resource's name as the app writes it, and extra headers.
//! The defaults give the sim's own event, `{"id": "evt_1", "type": "contacts.updated",
//! "resource": "contacts", "occurred_at": …, "data": {...}}`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::profile::{DEFAULT_STANDARD_SECRET, DEFAULT_WEBHOOK_SECRET};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Unsigned.
    None,
    /// The secret itself in a header.
    Secret,
    /// An HMAC of a template (`{body}`, `{timestamp}`) in a header.
    #[default]
    Hmac,
    /// Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    Standard,
    /// An HS256 JWT carrying the body's SHA-256.
    Jwt,
}

impl Scheme {
    /// The profile's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::None => "none",
            Scheme::Secret => "secret",
            Scheme::Hmac => "hmac",
            Scheme::Standard => "standard",
            Scheme::Jwt => "jwt",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    #[default]
    Sha256,
    Sha512,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Hex,
    Base64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// The whole record after the change (only its id after a hard delete).
    #[default]
    Record,
    /// The id and only the fields that changed.
    Changed,
    /// Only the id.
    Ids,
}

/// `[webhooks]`: how events are signed and what they carry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookProfile {
    pub scheme: Scheme,
    /// `secret`: default `X-Webhook-Secret`; `hmac`: default `X-Signature`; `jwt`: default
    /// `Authorization` (as `Bearer <jwt>`; other headers carry the bare token).
    pub header: Option<String>,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    /// Text before the signature (`sha256=`), or before the secret under `secret` (`Bearer `).
    pub prefix: String,
    /// The signed text: `{body}` is the raw body, `{timestamp}` the timestamp header's value.
    pub signed: String,
    /// Sent (Unix seconds on the sim clock) when set.
    pub timestamp_header: Option<String>,
    pub payload: Payload,
    /// Default: `--webhook-secret`, else `whsec-sim` (`standard`: the spec's example key).
    pub secret: Option<String>,
    /// Deliveries in flight at once (1: strictly one after another, in order; apps that
    /// promise no order send several side by side).
    pub concurrency: usize,
    /// Events per delivery: 1 sends each event as the body on its own (GitHub, Strapi,
    /// Svix-based senders); more sends a JSON array of up to that many queued events (apps
    /// that batch, as HubSpot does up to 100).
    pub batch: usize,
    /// Where each part of an event goes in its body.
    pub event: EventShape,
    /// The event type of each change.
    pub kinds: EventKinds,
    /// The resource's name as events carry it; `{resource}` is the profile's name for it
    /// (default `{resource}`; `api::{resource}.{resource}` for a Strapi-like `uid`).
    pub resource_value: String,
    /// Headers sent with every delivery (`X-GitHub-Event = "issues"`); in values, `{kind}`
    /// and `{resource}` are the event type and resource name the body carries (so they need
    /// `event.kind` and `event.resource`): `X-Strapi-Event = "{kind}"`.
    pub headers: BTreeMap<String, String>,
    /// A header carrying the delivery's id (`X-GitHub-Delivery`), the same on every retry of
    /// one event.
    pub id_header: Option<String>,
}

impl Default for WebhookProfile {
    fn default() -> Self {
        WebhookProfile {
            scheme: Scheme::default(),
            header: None,
            algorithm: Algorithm::default(),
            encoding: Encoding::default(),
            prefix: String::new(),
            signed: "{body}".into(),
            timestamp_header: None,
            payload: Payload::default(),
            secret: None,
            concurrency: 1,
            batch: 1,
            event: EventShape::default(),
            kinds: EventKinds::default(),
            resource_value: "{resource}".into(),
            headers: BTreeMap::new(),
            id_header: None,
        }
    }
}

impl WebhookProfile {
    /// The header carrying the secret, signature or token (none for `none` and `standard`).
    pub fn header(&self) -> Option<&str> {
        let default = match self.scheme {
            Scheme::None | Scheme::Standard => return None,
            Scheme::Secret => "X-Webhook-Secret",
            Scheme::Hmac => "X-Signature",
            Scheme::Jwt => "Authorization",
        };
        Some(self.header.as_deref().unwrap_or(default))
    }

    pub fn secret(&self) -> &str {
        self.secret.as_deref().unwrap_or(match self.scheme {
            Scheme::Standard => DEFAULT_STANDARD_SECRET,
            _ => DEFAULT_WEBHOOK_SECRET,
        })
    }
}

/// `[webhooks.event]`: where each part of an event goes in its body, as JSON pointers; `""`
/// leaves the part out. GitHub: `{ kind = "/action", record = "/issue", resource = "",
/// id = "", time = "" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventShape {
    /// The event type, as `[webhooks.kinds]` words it (default `/type`).
    pub kind: String,
    /// The resource's name, as `resource_value` words it (default `/resource`).
    pub resource: String,
    /// The payload: the record, its changed fields or its id, as `payload` says (default
    /// `/data`).
    pub record: String,
    /// The event's own id, `evt_<n>` (default `/id`).
    pub id: String,
    /// The time of the change, in the resource's time format (default `/occurred_at`).
    pub time: String,
    /// The record's id in a one-element array, `[7]` (default: left out).
    pub keys: String,
    /// The bare record id in created events, which then carry no `keys` (Directus's
    /// `items.create` names its item in `key`, `items.update` and `items.delete` in `keys`;
    /// default: left out).
    pub key: String,
}

impl Default for EventShape {
    fn default() -> Self {
        EventShape {
            kind: "/type".into(),
            resource: "/resource".into(),
            record: "/data".into(),
            id: "/id".into(),
            time: "/occurred_at".into(),
            keys: String::new(),
            key: String::new(),
        }
    }
}

impl EventShape {
    /// The parts' pointers by name, the ones left out skipped.
    pub fn pointers(&self) -> Vec<(&'static str, &str)> {
        [
            ("kind", &self.kind),
            ("resource", &self.resource),
            ("record", &self.record),
            ("id", &self.id),
            ("time", &self.time),
            ("keys", &self.keys),
            ("key", &self.key),
        ]
        .into_iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(k, p)| (k, p.as_str()))
        .collect()
    }
}

/// `[webhooks.kinds]`: the event type of each change; `{resource}` is the resource's name
/// (GitHub's `action`: `opened`, `edited`, `deleted`; Strapi: `entry.create`…; Directus:
/// `{resource}.items.create`…).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventKinds {
    /// Default `{resource}.created`.
    pub created: String,
    /// Default `{resource}.updated`.
    pub updated: String,
    /// Default `{resource}.deleted`.
    pub deleted: String,
}

impl Default for EventKinds {
    fn default() -> Self {
        EventKinds {
            created: "{resource}.created".into(),
            updated: "{resource}.updated".into(),
            deleted: "{resource}.deleted".into(),
        }
    }
}
