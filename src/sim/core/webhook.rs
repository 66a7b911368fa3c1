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
        fn body(&self, events: &[u32], attempt: u32) -> Vec<u8> {
            let parts: Vec<String> = events.iter().map(u32::to_string).collect();
            let joined = parts.join(",");
            if attempt == 0 {
                joined.into_bytes()
            } else {
                format!("{joined}#{attempt}").into_bytes()
            }
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
        /// Requests still to refuse with `status`.
        refuse: AtomicU64,
        status: StatusCode,
    }

    async fn receiver(refuse: u64) -> Arc<Receiver> {
        refusing(refuse, StatusCode::SERVICE_UNAVAILABLE).await
    }

    async fn refusing(refuse: u64, status: StatusCode) -> Arc<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let rx = Arc::new(Receiver {
            url: format!("http://{}/hook", listener.local_addr().expect("addr")),
            bodies: Mutex::new(Vec::new()),
            refuse: AtomicU64::new(refuse),
            status,
        });
        let state = rx.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let rx = state.clone();
                async move {
                    if rx.refuse.load(Ordering::Relaxed) > 0 {
                        rx.refuse.fetch_sub(1, Ordering::Relaxed);
                        return rx.status;
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
        with_policy(
            batch,
            url,
            DeliveryPolicy {
                retries,
                ..DeliveryPolicy::default()
            },
            faults,
        )
    }

    fn with_policy(
        batch: usize,
        url: Option<String>,
        policy: DeliveryPolicy,
        faults: Arc<Faults>,
    ) -> Arc<WebhookSender<Numbers>> {
        WebhookSender::new(
            Numbers { batch },
            url,
            policy,
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
            (0, vec!["9#2".to_string()]),
            "the body is built anew for each attempt"
        );
        stop.trigger();
    }

    #[tokio::test]
    async fn final_statuses_are_not_retried() {
        let rx = refusing(1, StatusCode::NOT_FOUND).await;
        let stop = Shutdown::new();
        let s = with_policy(
            1,
            Some(rx.url.clone()),
            DeliveryPolicy {
                retries: vec![Duration::from_millis(10)],
                no_retry_statuses: vec![404],
                ..DeliveryPolicy::default()
            },
            Arc::new(Faults::default()),
        );
        s.spawn(stop.clone());
        s.enqueue([1, 2]);
        until("1 failure + 1 delivery", || {
            let c = s.counts();
            c.failed == 1 && c.delivered == 1
        })
        .await;
        assert_eq!(lock(&rx.bodies).clone(), ["2"], "the 404 is not retried");
        stop.trigger();
    }

    #[tokio::test]
    async fn drop_when_queued_loses_events_made_while_on() {
        let rx = receiver(0).await;
        let stop = Shutdown::new();
        let faults = Arc::new(Faults::default());
        let s = with_policy(
            10,
            Some(rx.url.clone()),
            DeliveryPolicy {
                drop_when_queued: true,
                ..DeliveryPolicy::default()
            },
            faults.clone(),
        );
        // not spawned yet: the events wait in the queue
        faults.set_webhook_drop_rate(1.0);
        s.enqueue([1, 2]);
        faults.set_webhook_drop_rate(0.0);
        s.enqueue([3]);
        assert_eq!((s.counts().dropped, s.counts().pending), (2, 1));
        s.spawn(stop.clone());
        until("1 delivery", || s.counts().delivered == 1).await;
        assert_eq!(lock(&rx.bodies).clone(), ["3"]);
        stop.trigger();
        // a knob at 1 also discards what was queued before it was turned on
        let stop = Shutdown::new();
        let s = with_policy(
            10,
            Some(rx.url.clone()),
            DeliveryPolicy {
                drop_when_queued: true,
                ..DeliveryPolicy::default()
            },
            faults.clone(),
        );
        s.enqueue([4, 5]);
        faults.set_webhook_drop_rate(1.0);
        s.spawn(stop.clone());
        until("the queued delivery dropped", || s.counts().dropped == 1).await;
        assert_eq!((s.counts().delivered, s.counts().pending), (0, 0));
        stop.trigger();
    }

    /// A receiver that takes 150 ms to answer; the most requests it held at once.
    async fn slow_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>, Arc<AtomicU64>) {
        use std::sync::atomic::AtomicUsize;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (now, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let (n, m, d) = (now.clone(), most.clone(), done.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (n, m, d) = (n.clone(), m.clone(), d.clone());
                async move {
                    let held = n.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(held, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                    d.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, most, done)
    }

    #[tokio::test]
    async fn several_deliveries_in_flight_when_the_policy_allows() {
        for (concurrency, expected) in [(1, 1), (4, 4)] {
            let (url, most, done) = slow_receiver().await;
            let stop = Shutdown::new();
            let s = with_policy(
                1,
                Some(url),
                DeliveryPolicy {
                    concurrency,
                    ..DeliveryPolicy::default()
                },
                Arc::new(Faults::default()),
            );
            s.enqueue(1..=8);
            s.spawn(stop.clone());
            // the receiver answers before the sender counts the delivery
            until("eight deliveries", || {
                done.load(Ordering::SeqCst) == 8 && s.counts().delivered == 8
            })
            .await;
            assert_eq!(
                most.load(Ordering::SeqCst),
                expected,
                "concurrency {concurrency}"
            );
            stop.trigger();
        }
    }
}
