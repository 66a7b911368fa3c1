//! HubSpot simulator: webhook tests — a local receiver verifies v3 signatures and records events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::tests_api::{start, Client};
use super::{lock, HubSpotSim, SimConfig};
use crate::connectors::hubspot::signature::{verify_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};

struct Receiver {
    url: String,
    secret: String,
    events: Mutex<Vec<Value>>,
    bad_signatures: AtomicU64,
    /// Requests still to answer with 503 before accepting.
    fail_next: AtomicU64,
    /// Events of each accepted delivery.
    deliveries: Mutex<Vec<usize>>,
    /// Deliveries being answered now, and the most at once (each is held `hold`).
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    hold: Duration,
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp_millis();
    if verify_v3(
        rx.secret.as_bytes(),
        "POST",
        &rx.url,
        &body,
        h(TIMESTAMP_HEADER),
        h(SIGNATURE_HEADER),
        now,
    )
    .is_err()
    {
        rx.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    if rx.fail_next.load(Ordering::Relaxed) > 0 {
        rx.fail_next.fetch_sub(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    match serde_json::from_slice::<Vec<Value>>(&body) {
        Ok(events) => {
            let now = rx.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
            rx.most_in_flight.fetch_max(now, Ordering::AcqRel);
            // a receiver slow to answer: the sender's later deliveries go out meanwhile
            tokio::time::sleep(rx.hold).await;
            rx.in_flight.fetch_sub(1, Ordering::AcqRel);
            lock(&rx.deliveries).push(events.len());
            lock(&rx.events).extend(events);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn receiver(secret: &str, fail_first: u64) -> Arc<Receiver> {
    slow_receiver(secret, fail_first, Duration::ZERO).await
}

async fn slow_receiver(secret: &str, fail_first: u64, hold: Duration) -> Arc<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let rx = Arc::new(Receiver {
        url: format!("http://{addr}/webhooks/hubspot?portal=1"),
        secret: secret.to_string(),
        events: Mutex::new(Vec::new()),
        bad_signatures: AtomicU64::new(0),
        fail_next: AtomicU64::new(fail_first),
        deliveries: Mutex::new(Vec::new()),
        in_flight: AtomicU64::new(0),
        most_in_flight: AtomicU64::new(0),
        hold,
    });
    let app = axum::Router::new()
        .route("/webhooks/hubspot", axum::routing::post(hook))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    rx
}

/// Polls every 10ms (up to 5s) until `n` events arrived; returns them.
async fn wait_for(rx: &Receiver, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = lock(&rx.events).clone();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn props(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn sim_with(rx: &Receiver) -> HubSpotSim {
    start(SimConfig {
        webhook_url: Some(rx.url.clone()),
        webhook_secret: rx.secret.clone(),
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn deliveries_take_the_batch_and_concurrency_knobs() {
    let rx = slow_receiver("shh", 0, Duration::from_millis(30)).await;
    let sim = start(SimConfig {
        webhook_url: Some(rx.url.clone()),
        webhook_secret: rx.secret.clone(),
        seed_contacts: 12,
        webhook_batch: 1,
        webhook_concurrency: 4,
        ..SimConfig::default()
    })
    .await;
    let ids: Vec<String> = sim.records("contacts").into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 12);
    for id in &ids {
        sim.app_update("contacts", id, props(json!({"city": "Bern"})))
            .expect("updated");
    }
    let events = wait_for(&rx, 12).await;
    assert_eq!(events.len(), 12, "{events:?}");
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    let deliveries = lock(&rx.deliveries).clone();
    assert_eq!(deliveries, vec![1; 12], "one event a delivery");
    let most = rx.most_in_flight.load(Ordering::Acquire);
    assert!(
        (2..=4).contains(&most),
        "up to four deliveries at once, {most} seen"
    );
    sim.shutdown();

    // HubSpot's own shape: one delivery at a time, up to 100 events each
    let rx = slow_receiver("shh", 0, Duration::from_millis(30)).await;
    let sim = sim_with(&rx).await;
    for n in 0..150 {
        sim.app_create("deals", props(json!({"dealname": format!("d{n}")})))
            .expect("deal");
    }
    let events = wait_for(&rx, 150).await;
    assert_eq!(events.len(), 150);
    let deliveries = lock(&rx.deliveries).clone();
    assert!(deliveries.iter().all(|n| *n <= 100), "{deliveries:?}");
    assert!(deliveries.len() < 150, "batched: {deliveries:?}");
    assert_eq!(rx.most_in_flight.load(Ordering::Acquire), 1);
    sim.shutdown();
}

#[tokio::test]
async fn changes_are_delivered_signed() {
    let rx = receiver("shh", 0).await;
    let sim = sim_with(&rx).await;
    let c = Client::new(&sim);
    let (status, created) = c
        .call(
            Method::POST,
            "/crm/v3/objects/contacts",
            Some(json!({"properties": {"email": "w@example.com"}})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    sim.app_update(
        "contacts",
        &id,
        props(json!({"firstname": "Wes", "city": "Bern", "email": "w@example.com"})),
    )
    .expect("updated");
    let deal = sim
        .app_create("deals", props(json!({"dealname": "Big", "amount": 10})))
        .expect("deal");
    sim.app_archive("contacts", &id).expect("archived");

    let events = wait_for(&rx, 5).await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["subscriptionType"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "contact.creation",
            "contact.propertyChange",
            "contact.propertyChange",
            "deal.creation",
            "contact.deletion"
        ]
    );
    assert_eq!(events[0]["changeSource"], "API");
    assert_eq!(events[0]["changeFlag"], "CREATED");
    assert_eq!(
        events[0]["objectId"],
        id.parse::<u64>().expect("numeric id")
    );
    assert_eq!(events[0]["portalId"], 62515);
    assert_eq!(events[0]["attemptNumber"], 0);
    let changed: Vec<(&str, &str)> = events[1..3]
        .iter()
        .filter_map(|e| Some((e["propertyName"].as_str()?, e["propertyValue"].as_str()?)))
        .collect();
    assert_eq!(changed, [("city", "Bern"), ("firstname", "Wes")]);
    assert!(events[1..].iter().all(|e| e["changeSource"] == "CRM_UI"));
    assert_eq!(
        events[3]["objectId"],
        deal.parse::<u64>().expect("numeric id")
    );
    assert_eq!(events[4]["changeFlag"], "DELETED");
    let ids: std::collections::HashSet<u64> = events
        .iter()
        .filter_map(|e| e["eventId"].as_u64())
        .collect();
    assert_eq!(ids.len(), 5);
    let s = sim.stats();
    assert_eq!(s.webhook_events, 5);
    assert!(s.webhooks_sent >= 1 && s.webhooks_sent <= 5);
    sim.shutdown();
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_drop_knob_discards() {
    let rx = receiver("sec", 1).await;
    let sim = sim_with(&rx).await;
    let id = sim
        .app_create("companies", props(json!({"name": "Acme"})))
        .expect("company");
    let events = wait_for(&rx, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subscriptionType"], "company.creation");
    assert_eq!(events[0]["attemptNumber"], 1);

    sim.set_drop_webhooks(true);
    sim.app_update("companies", &id, props(json!({"city": "Dropped"})))
        .expect("updated");
    sim.set_drop_webhooks(false);
    sim.app_update("companies", &id, props(json!({"city": "Kept"})))
        .expect("updated");
    let events = wait_for(&rx, 2).await;
    let values: Vec<&str> = events
        .iter()
        .filter_map(|e| e["propertyValue"].as_str())
        .collect();
    assert_eq!(values, ["Kept"]);

    let many: Vec<Value> = (0..150)
        .map(|i| json!({"properties": {"name": format!("Co {i}")}}))
        .collect();
    let c = Client::new(&sim);
    for chunk in many.chunks(100) {
        let (status, _) = c
            .call(
                Method::POST,
                "/crm/v3/objects/companies/batch/create",
                Some(json!({ "inputs": chunk })),
            )
            .await;
        assert_eq!(status, 201);
    }
    let events = wait_for(&rx, 152).await;
    assert_eq!(events.len(), 152);
    assert!(
        sim.stats().webhooks_sent >= 3,
        "batches hold at most 100 events"
    );
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    sim.shutdown();
}
