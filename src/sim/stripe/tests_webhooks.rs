//! Stripe simulator: webhook tests — a local endpoint verifies every delivery with Stripe's
//! documented recipe (hex HMAC-SHA256 of `"{t}.{body}"` keyed by the whole secret, any `v1`
//! matching, `t` within 300 s), including two `v1` during a secret rotation; drops, retries
//! and duplicates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use super::tests_api::{id, start, until, Client};
use super::{backoff, SimConfig, StripeSim};
use crate::sim::core::lock;

/// `t`, the `v1` signatures and the raw body of one delivery.
type Delivery = (i64, Vec<String>, Vec<u8>);

struct Endpoint {
    url: String,
    events: Mutex<Vec<Value>>,
    /// `t`, the `v1` signatures and the raw body of each accepted delivery.
    deliveries: Mutex<Vec<Delivery>>,
    bad: AtomicU64,
    requests: AtomicU64,
    /// Requests still to refuse with 500.
    refuse: AtomicU64,
    secret: String,
}

/// Stripe's verification, written independently of the simulator: split the header on `,`,
/// take `t` and every `v1`, recompute the HMAC with the endpoint secret, compare.
fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> Option<(i64, Vec<String>)> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1.push(x.to_string()),
            _ => {}
        }
    }
    let t = t?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    ((now - t).abs() <= 300 && v1.contains(&expected)).then_some((t, v1))
}

async fn hook(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    ep.requests.fetch_add(1, Ordering::Relaxed);
    if ep.refuse.load(Ordering::Relaxed) > 0 {
        ep.refuse.fetch_sub(1, Ordering::Relaxed);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    let Some((t, v1)) = verify(&ep.secret, header, &body, now) else {
        ep.bad.fetch_add(1, Ordering::Relaxed);
        return StatusCode::BAD_REQUEST;
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            lock(&ep.events).push(event);
            lock(&ep.deliveries).push((t, v1, body.to_vec()));
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn endpoint(secret: &str, refuse: u64) -> Arc<Endpoint> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let ep = Arc::new(Endpoint {
        url: format!(
            "http://{}/stripe/webhook",
            listener.local_addr().expect("addr")
        ),
        events: Mutex::new(Vec::new()),
        deliveries: Mutex::new(Vec::new()),
        bad: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        refuse: AtomicU64::new(refuse),
        secret: secret.to_string(),
    });
    let app = axum::Router::new()
        .route("/stripe/webhook", axum::routing::post(hook))
        .with_state(ep.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    ep
}

async fn sim_for(ep: &Endpoint, retries: Vec<Duration>) -> StripeSim {
    start(SimConfig {
        webhook_url: Some(ep.url.clone()),
        webhook_secret: ep.secret.clone(),
        webhook_retries: retries,
        ..SimConfig::default()
    })
    .await
}

#[tokio::test]
async fn deliveries_are_signed_and_rotation_signs_twice() {
    let ep = endpoint("whsec_old", 0).await;
    let sim = sim_for(&ep, Vec::new()).await;
    let c = Client::new(&sim);
    let resp = c
        .send(
            Method::POST,
            "/v1/customers",
            "name=Hook&metadata[a]=1",
            &[("Idempotency-Key", "hk")],
        )
        .await;
    let rid = resp.headers()["request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let cus: Value = resp.json().await.expect("json");
    let cid = id(&cus);
    c.post(&format!("/v1/customers/{cid}"), "metadata[a]=2")
        .await;
    until("2 events", || lock(&ep.events).len() >= 2).await;
    let events = lock(&ep.events).clone();
    assert_eq!(events[0]["type"], "customer.created");
    assert_eq!(events[0]["data"]["object"], cus);
    assert_eq!(
        events[0]["request"],
        json!({"id": rid, "idempotency_key": "hk"})
    );
    assert_eq!(events[0]["pending_webhooks"], 1);
    assert_eq!(events[1]["type"], "customer.updated");
    assert_eq!(
        events[1]["data"]["previous_attributes"],
        json!({"metadata": {"a": "1"}})
    );
    assert_eq!(events[1]["data"]["object"]["metadata"], json!({"a": "2"}));
    // what the endpoint got is what the events API lists
    let (_, listed) = c.get(&format!("/v1/events/{}", id(&events[1]))).await;
    assert_eq!(listed, events[1]);
    assert_eq!(lock(&ep.deliveries)[0].1.len(), 1);

    // rotation: both secrets sign, an endpoint knowing either one verifies
    sim.rotate_webhook_secret("whsec_new");
    assert_eq!(sim.webhook_secrets(), ["whsec_old", "whsec_new"]);
    sim.app_delete_customer(&cid).expect("delete");
    until("3 events", || lock(&ep.events).len() >= 3).await;
    let (t, sigs, body) = lock(&ep.deliveries)[2].clone();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0], super::signature("whsec_old", t, &body));
    assert_eq!(sigs[1], super::signature("whsec_new", t, &body));
    assert_eq!(
        verify(
            "whsec_new",
            &format!("t={t},v1={},v1={}", sigs[0], sigs[1]),
            &body,
            t
        ),
        Some((t, sigs.clone()))
    );
    assert_eq!(
        verify("whsec_new", &format!("t={t},v1={}", sigs[0]), &body, t),
        None
    );
    assert_eq!(
        verify(
            "whsec_old",
            &format!("t={t},v1={}", sigs[0]),
            b"tampered",
            t
        ),
        None
    );
    assert_eq!(
        verify(
            "whsec_old",
            &format!("t={t},v1={}", sigs[0]),
            &body,
            t + 301
        ),
        None
    );
    // the old secret expires: only the new one signs, the old endpoint config rejects it
    sim.set_webhook_secrets(vec!["whsec_new".into()]);
    sim.app_create_customer(json!({"name": "After"}))
        .expect("create");
    until("a refused delivery", || ep.bad.load(Ordering::Relaxed) == 1).await;
    assert_eq!(lock(&ep.events).len(), 3);
    sim.shutdown();
}

#[tokio::test]
async fn drops_retries_and_duplicates() {
    let ep = endpoint("whsec_r", 2).await;
    let sim = sim_for(&ep, backoff(Duration::from_millis(20), 3)).await;
    sim.app_create_customer(json!({"name": "Retried"}))
        .expect("create");
    until("a delivery after 2 refusals", || {
        sim.stats().webhooks_delivered == 1
    })
    .await;
    assert_eq!(ep.requests.load(Ordering::Relaxed), 3);
    assert_eq!(lock(&ep.events)[0]["data"]["object"]["name"], "Retried");

    sim.set_drop_webhooks(1.0);
    sim.app_create_customer(json!({"name": "Dropped"}))
        .expect("create");
    until("a drop", || sim.stats().webhooks_dropped == 1).await;
    sim.set_drop_webhooks(0.0);
    sim.set_duplicate_webhooks(1.0);
    sim.app_create_customer(json!({"name": "Twice"}))
        .expect("create");
    until("3 deliveries", || sim.stats().webhooks_delivered == 3).await;
    sim.set_duplicate_webhooks(0.0);
    let events = lock(&ep.events).clone();
    assert_eq!(events[1], events[2], "the same event, twice");
    assert_eq!(events[1]["data"]["object"]["name"], "Twice");

    sim.set_reorder_webhooks(1.0);
    sim.app_create_customer(json!({"name": "Held"}))
        .expect("create");
    sim.set_reorder_webhooks(0.0);
    sim.app_create_customer(json!({"name": "Overtook"}))
        .expect("create");
    until("5 deliveries", || sim.stats().webhooks_delivered == 5).await;
    let names: Vec<Value> = lock(&ep.events)
        .iter()
        .map(|e| e["data"]["object"]["name"].clone())
        .collect();
    assert_eq!(
        names[3..],
        [json!("Held"), json!("Overtook")],
        "released when the knob went to 0"
    );
    assert_eq!(
        sim.records("events").len(),
        5,
        "duplicates are deliveries, not events"
    );
    assert_eq!(ep.bad.load(Ordering::Relaxed), 0);
    sim.shutdown();
}

#[tokio::test]
async fn reorder_delivers_an_event_after_the_next() {
    let ep = endpoint("whsec_o", 0).await;
    let sim = sim_for(&ep, Vec::new()).await;
    sim.set_reorder_webhooks(1.0);
    sim.app_create_customer(json!({"name": "First"}))
        .expect("create");
    // turn holding off for the next one only: the held event follows it
    sim.inner.knobs.reorder.set(0.0);
    sim.app_create_customer(json!({"name": "Second"}))
        .expect("create");
    until("2 deliveries", || sim.stats().webhooks_delivered == 2).await;
    let names: Vec<Value> = lock(&ep.events)
        .iter()
        .map(|e| e["data"]["object"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("Second"), json!("First")]);
    sim.shutdown();
}
