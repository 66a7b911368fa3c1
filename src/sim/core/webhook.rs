//! Simulator core: the webhook sender — an ordered delivery queue drained by one task that
//! POSTs each delivery with the app's body and signed headers, honouring the drop knob,
//! optionally retrying, and counting what was delivered, dropped and failed.

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

    /// The request body for one delivery (1..=max_batch events, in queue order).
    fn body(&self, events: &[Self::Event]) -> Vec<u8>;

    /// Headers for one delivery, signature included; `now` is the simulator clock at sending.
    fn headers(&self, url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)>;
}

/// Delivery counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookCounts {
    /// Deliveries answered 2xx.
    pub delivered: u64,
    /// Events in those deliveries.
    pub events_delivered: u64,
    /// Deliveries discarded by the drop knob (never sent).
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
    /// Waits before each retry; empty = a failed delivery is not retried.
    retries: Vec<Duration>,
    counters: Counters,
    clock: Arc<SimClock>,
    faults: Arc<Faults>,
    client: reqwest::Client,
}

impl<F: WebhookFormat> WebhookSender<F> {
    /// `retries` are the waits before each new attempt (empty: no retries).
    pub fn new(
        format: F,
        url: Option<String>,
        retries: Vec<Duration>,
        clock: Arc<SimClock>,
        faults: Arc<Faults>,
    ) -> std::io::Result<Arc<WebhookSender<F>>> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Arc::new(WebhookSender {
            format,
            queue: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            url: Mutex::new(url),
            retries,
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

    /// Queues events in order; without a URL they are discarded at once.
    pub fn enqueue(&self, events: impl IntoIterator<Item = F::Event>) {
        if lock(&self.url).is_none() {
            return;
        }
        let mut q = lock(&self.queue);
        let before = q.len();
        q.extend(events);
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
                _ = me.run() => {}
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

    async fn run(&self) {
        loop {
            // registered before looking at the queue, so an enqueue in between still wakes us
            let notified = self.notify.notified();
            match self.take() {
                Some((url, events)) => self.deliver(&url, &events).await,
                None => notified.await,
            }
        }
    }

    async fn deliver(&self, url: &str, events: &[F::Event]) {
        if self.faults.drop_webhook() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(url, events = events.len(), "sim webhook: delivery dropped");
            return;
        }
        let body = self.format.body(events);
        for attempt in 0..=self.retries.len() {
            let headers = self.format.headers(url, &body, self.clock.now());
            let mut req = self.client.post(url).body(body.clone());
            for (name, value) in &headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let failure = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    let _ = resp.bytes().await;
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .events_delivered
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    return;
                }
                Ok(resp) => format!("status {}", resp.status().as_u16()),
                Err(e) => e.to_string(),
            };
            tracing::debug!(url, attempt, failure, "sim webhook: delivery failed");
            match self.retries.get(attempt) {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => break,
            }
        }
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::core::faults::FaultSettings;
    use axum::http::{HeaderMap, StatusCode};
    use std::time::Instant;

    /// Events are numbers; a delivery is their comma-joined list, "signed" with its length.
    struct Numbers {
        batch: usize,
    }

    impl WebhookFormat for Numbers {
        type Event = u32;
        fn max_batch(&self) -> usize {
            self.batch
        }
        fn body(&self, events: &[u32]) -> Vec<u8> {
            let parts: Vec<String> = events.iter().map(u32::to_string).collect();
            parts.join(",").into_bytes()
        }
        fn headers(&self, _url: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
            vec![
                ("x-sig".into(), body.len().to_string()),
                ("x-time".into(), now.timestamp().to_string()),
            ]
        }
    }

    struct Receiver {
        url: String,
        bodies: Mutex<Vec<String>>,
        /// Requests still to refuse with 503.
        refuse: AtomicU64,
    }

    async fn receiver(refuse: u64) -> Arc<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rx = Arc::new(Receiver {
            url: format!("http://{}/hook", listener.local_addr().expect("addr")),
            bodies: Mutex::new(Vec::new()),
            refuse: AtomicU64::new(refuse),
        });
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let rx = state.clone();
                async move {
                    if rx.refuse.load(Ordering::Relaxed) > 0 {
                        rx.refuse.fetch_sub(1, Ordering::Relaxed);
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let sig = headers.get("x-sig").and_then(|v| v.to_str().ok());
                    assert_eq!(sig, Some(body.len().to_string().as_str()));
                    lock(&rx.bodies).push(body);
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        rx
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn sender(
        batch: usize,
        url: Option<String>,
        retries: Vec<Duration>,
        faults: Arc<Faults>,
    ) -> Arc<WebhookSender<Numbers>> {
        WebhookSender::new(
            Numbers { batch },
            url,
            retries,
            Arc::new(SimClock::new()),
            faults,
        )
        .expect("sender")
    }

    #[tokio::test]
    async fn delivers_in_order_with_batches() {
        let rx = receiver(0).await;
        let stop = Shutdown::new();
        let s = sender(3, Some(rx.url.clone()), vec![], Arc::new(Faults::default()));
        s.spawn(stop.clone());
        s.enqueue(1..=7);
        until("7 events", || s.counts().events_delivered == 7).await;
        let bodies = lock(&rx.bodies).clone();
        let joined: Vec<u32> = bodies
            .iter()
            .flat_map(|b| b.split(',').map(|n| n.parse::<u32>().expect("n")))
            .collect();
        assert_eq!(joined, (1..=7).collect::<Vec<_>>());
        assert!(bodies.iter().all(|b| b.split(',').count() <= 3));
        let c = s.counts();
        assert_eq!((c.dropped, c.failed, c.pending), (0, 0, 0));
        assert_eq!(c.delivered, bodies.len() as u64);
        s.reset_counts();
        assert_eq!(s.counts(), WebhookCounts::default());
        stop.trigger();
    }

    #[tokio::test]
    async fn drop_knob_and_missing_url() {
        let rx = receiver(0).await;
        let stop = Shutdown::new();
        let faults = Arc::new(Faults::new(&FaultSettings {
            webhook_drop_rate: 1.0,
            ..FaultSettings::default()
        }));
        let s = sender(1, Some(rx.url.clone()), vec![], faults.clone());
        s.spawn(stop.clone());
        s.enqueue([1, 2, 3]);
        until("3 drops", || s.counts().dropped == 3).await;
        faults.set_webhook_drop_rate(0.0);
        s.enqueue([4]);
        until("1 delivery", || s.counts().delivered == 1).await;
        assert_eq!(lock(&rx.bodies).clone(), ["4"]);
        s.set_url(None);
        s.enqueue([5]);
        assert_eq!(s.counts().pending, 0, "no URL: nothing is queued");
        s.set_url(Some(rx.url.clone()));
        s.enqueue([6]);
        until("2 deliveries", || s.counts().delivered == 2).await;
        assert_eq!(lock(&rx.bodies).clone(), ["4", "6"]);
        assert_eq!(s.url(), Some(rx.url.clone()));
        stop.trigger();
    }

    #[tokio::test]
    async fn failures_are_not_retried_unless_asked() {
        let rx = receiver(1).await;
        let stop = Shutdown::new();
        let s = sender(1, Some(rx.url.clone()), vec![], Arc::new(Faults::default()));
        s.spawn(stop.clone());
        s.enqueue([1, 2]);
        until("1 failure + 1 delivery", || {
            let c = s.counts();
            c.failed == 1 && c.delivered == 1
        })
        .await;
        assert_eq!(lock(&rx.bodies).clone(), ["2"], "the refused one is lost");
        stop.trigger();

        let rx = receiver(2).await;
        let stop = Shutdown::new();
        let s = sender(
            1,
            Some(rx.url.clone()),
            vec![Duration::from_millis(10), Duration::from_millis(10)],
            Arc::new(Faults::default()),
        );
        s.spawn(stop.clone());
        s.enqueue([9]);
        until("retried delivery", || s.counts().delivered == 1).await;
        assert_eq!(
            (s.counts().failed, lock(&rx.bodies).clone()),
            (0, vec!["9".to_string()])
        );
        stop.trigger();
    }
}
