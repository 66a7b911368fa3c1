//! Simulator core tests: the signed-webhook sender (batches, drops, retries, concurrency).
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
