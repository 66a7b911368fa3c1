//! Simulator core: the webhook sender — a delivery queue drained in order, by one delivery at
//! a time or (as apps that promise no order do) several at once, POSTing each with the app's
//! body and signed headers, honouring the drop knob,
//! retrying as the app's delivery policy says, and counting what was delivered, dropped and
//! failed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::clock::SimClock;
use super::faults::Faults;
use super::lock;
use super::server::Shutdown;

/// How an app shapes its webhook POSTs (body and headers; the signing scheme lives here).
pub trait WebhookFormat: Send + Sync + 'static {
    type Event: Send + Sync + 'static;

    /// Events per POST; 1 sends every event on its own.
    fn max_batch(&self) -> usize {
        1
    }

    /// The request body for one delivery (1..=max_batch events, in queue order); `attempt`
    /// is 0 for the first try and counts the retries (built anew for each).
    fn body(&self, events: &[Self::Event], attempt: u32) -> Vec<u8>;

    /// Headers for one delivery, signature included; `now` is the simulator clock at sending.
    fn headers(&self, url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)>;
}

/// How an app's webhooks are retried, timed out and dropped.
#[derive(Clone, Debug)]
pub struct DeliveryPolicy {
    /// Waits before each retry; empty = a failed delivery is not retried.
    pub retries: Vec<Duration>,
    /// How long one POST may take before it counts as failed.
    pub timeout: Duration,
    /// Refusals with these statuses are given up at once, without the retries.
    pub no_retry_statuses: Vec<u16>,
    /// Also roll the drop knob for each event as it is queued (a dropped one never enters the
    /// queue): events made while the knob is on stay lost even if it is turned off before the
    /// sender gets to them. Deliveries still roll it when sent, so a knob at 1 also discards
    /// what was already queued.
    pub drop_when_queued: bool,
    /// Deliveries in flight at once: 1 keeps them strictly in queue order; more lets a slow
    /// receiver answer one while the next ones are sent (taken from the queue in order all the
    /// same).
    pub concurrency: usize,
}

impl Default for DeliveryPolicy {
    /// One try, a 10 s timeout, dropped only when sent.
    fn default() -> Self {
        DeliveryPolicy {
            retries: Vec::new(),
            timeout: Duration::from_secs(10),
            no_retry_statuses: Vec::new(),
            drop_when_queued: false,
            concurrency: 1,
        }
    }
}

/// Delivery counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Deliveries answered 2xx.
    pub delivered: u64,
    /// Events in those deliveries.
    pub events_delivered: u64,
    /// Deliveries discarded by the drop knob (never sent); with
    /// [`DeliveryPolicy::drop_when_queued`], each event discarded as it was queued counts too.
    pub dropped: u64,
    /// Deliveries given up after a refusal or a transport error (retries included).
    pub failed: u64,
    /// Events waiting in the queue.
    pub pending: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    events_delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// The queue and its sender task for one simulator.
pub struct WebhookSender<F: WebhookFormat> {
    format: F,
    queue: Mutex<VecDeque<F::Event>>,
    notify: Notify,
    url: Mutex<Option<String>>,
    policy: DeliveryPolicy,
    counters: Counters,
    clock: Arc<SimClock>,
    faults: Arc<Faults>,
    client: reqwest::Client,
}

impl<F: WebhookFormat> WebhookSender<F> {
    /// Delivers to `url` (None: nothing is sent until [`WebhookSender::set_url`]).
    pub fn new(
        format: F,
        url: Option<String>,
        policy: DeliveryPolicy,
        clock: Arc<SimClock>,
        faults: Arc<Faults>,
    ) -> std::io::Result<Arc<WebhookSender<F>>> {
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Arc::new(WebhookSender {
            format,
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            url: Mutex::new(url),
            policy,
            counters: Counters::default(),
            clock,
            faults,
            client,
        }))
    }

    pub fn format(&self) -> &F {
        &self.format
    }

    pub fn url(&self) -> Option<String> {
        lock(&self.url).clone()
    }

    /// Changes the target; None stops deliveries (queued events are discarded).
    pub fn set_url(&self, url: Option<String>) {
        *lock(&self.url) = url;
        self.notify.notify_one();
    }

    /// Queues events in order; without a URL they are discarded at once (and, with
    /// [`DeliveryPolicy::drop_when_queued`], each one the drop knob hits).
    pub fn enqueue(&self, events: impl IntoIterator<Item = F::Event>) {
        if lock(&self.url).is_none() {
            return;
        }
        let mut q = lock(&self.queue);
        let before = q.len();
        if self.policy.drop_when_queued {
            for event in events {
                if self.faults.drop_webhook() {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    q.push_back(event);
                }
            }
        } else {
            q.extend(events);
        }
        let added = q.len() > before;
        drop(q);
        if added {
            self.notify.notify_one();
        }
    }

    pub fn counts(&self) -> WebhookCounts {
        let c = &self.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WebhookCounts {
            delivered: g(&c.delivered),
            events_delivered: g(&c.events_delivered),
            dropped: g(&c.dropped),
            failed: g(&c.failed),
            pending: lock(&self.queue).len() as u64,
        }
    }

    pub fn reset_counts(&self) {
        let c = &self.counters;
        for a in [&c.delivered, &c.events_delivered, &c.dropped, &c.failed] {
            a.store(0, Ordering::Relaxed);
        }
    }

    /// Spawns the sender task on the current runtime; it ends with `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: Shutdown) {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = me.clone().run() => {}
                _ = shutdown.wait() => {}
            }
        });
    }

    /// Next delivery: its URL and up to `max_batch` events. Without a URL the queue is
    /// discarded.
    fn take(&self) -> Option<(String, Vec<F::Event>)> {
        let mut q = lock(&self.queue);
        if q.is_empty() {
            return None;
        }
        let Some(url) = lock(&self.url).clone() else {
            q.clear();
            return None;
        };
        let n = q.len().min(self.format.max_batch().max(1));
        Some((url, q.drain(..n).collect()))
    }

    async fn run(self: Arc<Self>) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.policy.concurrency.max(1)));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            // registered before looking at the queue, so an enqueue in between still wakes us
            let notified = self.notify.notified();
            match self.take() {
                Some((url, events)) if self.policy.concurrency <= 1 => {
                    self.deliver(&url, &events).await;
                    drop(slot);
                }
                Some((url, events)) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.deliver(&url, &events).await;
                        drop(slot);
                    });
                }
                None => {
                    drop(slot);
                    notified.await;
                }
            }
        }
    }

    async fn deliver(&self, url: &str, events: &[F::Event]) {
        if self.faults.drop_webhook() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url, events = events.len(), "sim webhook: delivery dropped");
            return;
        }
        let retries = &self.policy.retries;
        for attempt in 0..=retries.len() {
            let body = self
                .format
                .body(events, u32::try_from(attempt).unwrap_or(u32::MAX));
            let headers = self.format.headers(url, &body, self.clock.now());
            let mut req = self.client.post(url).body(body);
            for (name, value) in &headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let (failure, retry) = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let _ = resp.bytes().await;
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .events_delivered
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    return;
                }
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let retry = !self.policy.no_retry_statuses.contains(&code);
                    (format!("status {code}"), retry)
                }
                Err(e) => (e.to_string(), true),
            };
            tracing::debug!(url, attempt, failure, "sim webhook: delivery failed");
            match retries.get(attempt).filter(|_| retry) {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => break,
            }
        }
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if !retries.is_empty() {
            tracing::warn!(
                url,
                events = events.len(),
                "sim webhook: delivery given up after failed attempts"
            );
        }
    }
}

#[cfg(test)]
#[path = "tests_webhook.rs"]
mod tests;
