//! HubSpot simulator: webhook events — each change becomes one event (`contact.creation`,
//! `…propertyChange`, `…deletion`) with a fresh event id, POSTed in batches of up to 100 with
//! HubSpot's v3 signature, retried with back-off (not after a 4xx that says "don't") through
//! the core's webhook sender.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::schema::EventClass;
use super::state::{Change, ChangeKind};
use crate::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::sim::core::{DeliveryPolicy, WebhookFormat};

pub(crate) const PORTAL_ID: u64 = 62515;
pub(crate) const APP_ID: u64 = 1_160_452;
pub(crate) const MAX_BATCH: usize = 100;
const BACKOFF_MS: [u64; 3] = [50, 200, 1000];

/// Who made a change: the API (a connector) or a user in the HubSpot UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Api,
    CrmUi,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    event_id: u64,
    subscription_id: u64,
    portal_id: u64,
    app_id: u64,
    occurred_at: i64,
    subscription_type: &'static str,
    attempt_number: u32,
    object_id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    property_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    property_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_flag: Option<&'static str>,
    change_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_id: Option<&'static str>,
}

/// How HubSpot delivers: retried after 50 ms, 200 ms and 1 s unless the receiver answered a
/// 4xx that will not change; events made while the drop knob is on are lost; `concurrency`
/// deliveries in flight at once.
pub(crate) fn delivery_policy(concurrency: usize) -> DeliveryPolicy {
    DeliveryPolicy {
        retries: BACKOFF_MS
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        timeout: Duration::from_secs(5),
        no_retry_statuses: vec![400, 401, 403, 404, 405],
        drop_when_queued: true,
        concurrency: concurrency.max(1),
    }
}

/// Batches of up to 100 events as a JSON array, signed with the app's client secret (v3).
pub(crate) struct HubSpotWebhooks {
    secret: String,
    next_event_id: AtomicU64,
    /// Events a delivery holds at most (1..=100).
    batch: usize,
}

impl HubSpotWebhooks {
    pub(crate) fn new(secret: String) -> HubSpotWebhooks {
        // Event ids keep growing across simulator restarts (wall clock, not the simulator's),
        // so receivers can dedupe on them.
        let base = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(1) * 1000;
        HubSpotWebhooks {
            secret,
            next_event_id: AtomicU64::new(base),
            batch: MAX_BATCH,
        }
    }

    /// At most `batch` events a delivery (1..=100).
    pub(crate) fn batches_of(mut self, batch: usize) -> HubSpotWebhooks {
        self.batch = batch.clamp(1, MAX_BATCH);
        self
    }

    /// The events of `changes`, in order. Ids are consumed even when the events are then
    /// discarded (no URL, dropped).
    pub(crate) fn events(&self, changes: &[Change], source: Source) -> Vec<Event> {
        if changes.is_empty() {
            return Vec::new();
        }
        let first = self
            .next_event_id
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        let (change_source, source_id) = match source {
            Source::Api => ("API", None),
            Source::CrmUi => ("CRM_UI", Some("userId:45678")),
        };
        changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (class, flag, name, value) = match &c.what {
                    ChangeKind::Created => (EventClass::Creation, Some("CREATED"), None, None),
                    ChangeKind::Property(n, v) => {
                        (EventClass::PropertyChange, None, Some(*n), Some(v.clone()))
                    }
                    ChangeKind::Deleted => (EventClass::Deletion, Some("DELETED"), None, None),
                };
                let (subscription_type, subscription_id) = c.kind.subscription(class);
                Event {
                    event_id: first + i as u64,
                    subscription_id,
                    portal_id: PORTAL_ID,
                    app_id: APP_ID,
                    occurred_at: c.at_ms,
                    subscription_type,
                    attempt_number: 0,
                    object_id: c.id,
                    property_name: name,
                    property_value: value,
                    change_flag: flag,
                    change_source,
                    source_id,
                }
            })
            .collect()
    }
}

impl WebhookFormat for HubSpotWebhooks {
    type Event = Event;

    fn max_batch(&self) -> usize {
        self.batch
    }

    /// The batch with every event's `attemptNumber` set to this attempt.
    fn body(&self, events: &[Event], attempt: u32) -> Vec<u8> {
        let mut events = events.to_vec();
        for e in events.iter_mut() {
            e.attempt_number = attempt;
        }
        serde_json::to_vec(&events).unwrap_or_default()
    }

    fn headers(&self, url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
        let ts = now.timestamp_millis().to_string();
        let sig = sign_v3(self.secret.as_bytes(), "POST", url, body, &ts);
        vec![
            ("content-type".into(), "application/json".into()),
            (SIGNATURE_HEADER.into(), sig),
            (TIMESTAMP_HEADER.into(), ts),
            ("x-hubspot-signature-version".into(), "v3".into()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::hubspot::signature::verify_v3;
    use crate::sim::hubspot::schema::ObjectKind;
    use serde_json::Value;

    #[test]
    fn events_are_numbered_and_bodies_carry_the_attempt() {
        let hooks = HubSpotWebhooks::new("s".into());
        let changes = [
            Change {
                kind: ObjectKind::Contacts,
                id: 7,
                at_ms: 1_700_000_000_123,
                what: ChangeKind::Created,
            },
            Change {
                kind: ObjectKind::Contacts,
                id: 7,
                at_ms: 1_700_000_000_124,
                what: ChangeKind::Property("city", "Bern".into()),
            },
        ];
        let events = hooks.events(&changes, Source::CrmUi);
        let next = hooks.events(&changes[..1], Source::Api);
        assert_eq!(next[0].event_id, events[0].event_id + 2);
        assert!(hooks.events(&[], Source::Api).is_empty());
        let body: Vec<Value> = serde_json::from_slice(&hooks.body(&events, 2)).expect("json array");
        assert_eq!(body.len(), 2);
        assert!(body.iter().all(|e| e["attemptNumber"] == 2));
        assert_eq!(body[0]["subscriptionType"], "contact.creation");
        assert_eq!(body[0]["changeFlag"], "CREATED");
        assert!(body[0].get("propertyName").is_none());
        assert_eq!(body[1]["propertyValue"], "Bern");
        assert_eq!(body[1]["sourceId"], "userId:45678");
        assert_eq!(body[1]["occurredAt"], 1_700_000_000_124_i64);
    }

    #[test]
    fn headers_carry_a_v3_signature() {
        let hooks = HubSpotWebhooks::new("secret".into());
        let now = Utc::now();
        let url = "http://127.0.0.1:9/webhooks/hubspot?portal=1";
        let h = hooks.headers(url, b"[]", now);
        let get = |name: &str| {
            h.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-hubspot-signature-version"), Some("v3"));
        assert!(verify_v3(
            b"secret",
            "POST",
            url,
            b"[]",
            get(TIMESTAMP_HEADER),
            get(SIGNATURE_HEADER),
            now.timestamp_millis(),
        )
        .is_ok());
    }
}
