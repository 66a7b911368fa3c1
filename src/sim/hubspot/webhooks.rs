//! HubSpot simulator: webhook events — the queue fed by every write, and the background sender
//! that POSTs signed (v3) batches of up to 100 events with retries.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::schema::EventClass;
use super::state::{Change, ChangeKind};
use super::{lock, Inner};
use crate::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};

pub(crate) const PORTAL_ID: u64 = 62515;
pub(crate) const APP_ID: u64 = 1_160_452;
const MAX_BATCH: usize = 100;
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

pub(crate) struct Hooks {
    queue: Mutex<VecDeque<Event>>,
    notify: Notify,
    url: Mutex<Option<String>>,
    drop: AtomicBool,
    next_event_id: AtomicU64,
    secret: String,
    client: reqwest::Client,
}

impl Hooks {
    pub(crate) fn new(url: Option<String>, secret: String) -> std::io::Result<Hooks> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        // Event ids keep growing across simulator restarts, so receivers can dedupe on them.
        let base = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(1) * 1000;
        Ok(Hooks {
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            url: Mutex::new(url),
            drop: AtomicBool::new(false),
            next_event_id: AtomicU64::new(base),
            secret,
            client,
        })
    }

    pub(crate) fn set_url(&self, url: Option<String>) {
        *lock(&self.url) = url;
        self.notify.notify_one();
    }

    pub(crate) fn set_drop(&self, drop: bool) {
        self.drop.store(drop, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Turns changes into events and wakes the sender. Called while the store is still locked, so
    /// the queue order is the order of the writes.
    pub(crate) fn enqueue(&self, changes: &[Change], source: Source) {
        if changes.is_empty() {
            return;
        }
        let first = self
            .next_event_id
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        if self.drop.load(Ordering::Relaxed) || lock(&self.url).is_none() {
            return;
        }
        let (change_source, source_id) = match source {
            Source::Api => ("API", None),
            Source::CrmUi => ("CRM_UI", Some("userId:45678")),
        };
        let mut q = lock(&self.queue);
        for (i, c) in changes.iter().enumerate() {
            let (class, flag, name, value) = match &c.what {
                ChangeKind::Created => (EventClass::Creation, Some("CREATED"), None, None),
                ChangeKind::Property(n, v) => {
                    (EventClass::PropertyChange, None, Some(*n), Some(v.clone()))
                }
                ChangeKind::Deleted => (EventClass::Deletion, Some("DELETED"), None, None),
            };
            let (subscription_type, subscription_id) = c.kind.subscription(class);
            q.push_back(Event {
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
            });
        }
        drop(q);
        self.notify.notify_one();
    }

    /// Next batch to send with its target URL; discards everything when delivery is off.
    fn take_batch(&self) -> Option<(String, Vec<Event>)> {
        let mut q = lock(&self.queue);
        if q.is_empty() {
            return None;
        }
        let url = lock(&self.url).clone();
        let Some(url) = url.filter(|_| !self.drop.load(Ordering::Relaxed)) else {
            q.clear();
            return None;
        };
        let n = q.len().min(MAX_BATCH);
        Some((url, q.drain(..n).collect()))
    }
}

/// The sender task: sends as soon as events exist; events queued while a POST is in flight go
/// into the next batch.
pub(crate) async fn run_sender(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        match inner.hooks.take_batch() {
            Some((url, events)) => {
                if !deliver(&inner, &url, events, &mut stop).await {
                    return;
                }
            }
            None => {
                tokio::select! {
                    _ = inner.hooks.notify.notified() => {}
                    r = stop.changed() => if r.is_err() { return },
                }
            }
        }
    }
}

/// Delivers one batch with retries. Returns false when the simulator is shutting down.
async fn deliver(
    inner: &Inner,
    url: &str,
    mut events: Vec<Event>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let hooks = &inner.hooks;
    for attempt in 0..=BACKOFF_MS.len() {
        for e in events.iter_mut() {
            e.attempt_number = attempt as u32;
        }
        let Ok(body) = serde_json::to_vec(&events) else {
            return true;
        };
        let ts = chrono::Utc::now().timestamp_millis().to_string();
        let sig = sign_v3(hooks.secret.as_bytes(), "POST", url, &body, &ts);
        let sent = hooks
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sig)
            .header(TIMESTAMP_HEADER, &ts)
            .header("x-hubspot-signature-version", "v3")
            .body(body)
            .send()
            .await;
        let retry = match sent {
            Ok(resp) if resp.status().is_success() => {
                let _ = resp.bytes().await;
                inner.stats.webhooks_sent.fetch_add(1, Ordering::Relaxed);
                inner
                    .stats
                    .webhook_events
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                return true;
            }
            Ok(resp) => {
                let code = resp.status().as_u16();
                tracing::debug!(code, url, "hubspot sim: webhook delivery refused");
                !matches!(code, 400 | 401 | 403 | 404 | 405)
            }
            Err(e) => {
                tracing::debug!(error = %e, url, "hubspot sim: webhook delivery failed");
                true
            }
        };
        let Some(&wait) = BACKOFF_MS.get(attempt).filter(|_| retry) else {
            break;
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            _ = stop.changed() => return false,
        }
    }
    tracing::warn!(
        events = events.len(),
        url,
        "hubspot sim: dropped a webhook batch after failed deliveries"
    );
    true
}
