//! Zendesk simulator: webhook tests — a local receiver checks every delivery with Zendesk's
//! documented recipe (base64 HMAC-SHA256 of timestamp + body) and records the events; the
//! drop knob and unretried failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use super::tests_api::{map, start, until, Client};
use super::{SimConfig, ZendeskSim};
use crate::sim::core::lock;

struct Receiver {
    url: String,
    secret: String,
    events: Mutex<Vec<Value>>,
    headers: Mutex<Vec<HeaderMap>>,
    bad_signatures: AtomicU64,
    requests: AtomicU64,
    /// Answer 500 to everything.
    refuse: bool,
}

/// The verification recipe from Zendesk's docs, written independently of the simulator.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(sig), Some(ts)) = (
        h("x-zendesk-webhook-signature"),
        h("x-zendesk-webhook-signature-timestamp"),
    ) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(ts.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) == sig
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    rx.requests.fetch_add(1, Ordering::Relaxed);
    if rx.refuse {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if !verify(&rx.secret, &headers, &body) {
        rx.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            lock(&rx.events).push(event);
            lock(&rx.headers).push(headers);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

async fn receiver(secret: &str, refuse: bool) -> Arc<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let rx = Arc::new(Receiver {
        url: format!(
            "http://{}/webhooks/zendesk",
            listener.local_addr().expect("addr")
        ),
        secret: secret.to_string(),
        events: Mutex::new(Vec::new()),
        headers: Mutex::new(Vec::new()),
        bad_signatures: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        refuse,
    });
    let app = axum::Router::new()
        .route("/webhooks/zendesk", axum::routing::post(hook))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    rx
}

async fn sim_for(rx: &Receiver) -> ZendeskSim {
    start(SimConfig {
        webhook_url: Some(rx.url.clone()),
        webhook_secret: rx.secret.clone(),
        ..SimConfig::default()
    })
    .await
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e["type"]
                .as_str()
                .unwrap_or("?")
                .trim_start_matches("zen:event-type:")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn every_change_is_signed_and_delivered_in_order() {
    let rx = receiver("whsec-test", false).await;
    let sim = sim_for(&rx).await;
    let c = Client::new(&sim);
    let (_, org) = c
        .call(
            Method::POST,
            "/api/v2/organizations",
            Some(json!({"organization": {"name": "Acme"}})),
        )
        .await;
    let org = org["organization"]["id"].as_u64().expect("org");
    let (_, user) = c
        .call(
            Method::POST,
            "/api/v2/users",
            Some(json!({"user": {"name": "Ann", "email": "ann@x.com", "organization_id": org}})),
        )
        .await;
    let id = user["user"]["id"].as_u64().expect("user");
    let (status, _) = c
        .call(
            Method::PUT,
            &format!("/api/v2/users/{id}"),
            Some(json!({"user": {"name": "Ann B", "email": "ann.b@x.com", "locale": "fr"}})),
        )
        .await;
    assert_eq!(status, 200);
    // an edit "inside Zendesk" is announced the same way
    sim.app_update("users", id, map(json!({"role": "agent"})))
        .expect("app edit");
    let (status, _) = c
        .call(Method::DELETE, &format!("/api/v2/users/{id}"), None)
        .await;
    assert_eq!(status, 200);

    until("7 events", || lock(&rx.events).len() >= 7).await;
    let events = lock(&rx.events).clone();
    assert_eq!(
        types(&events),
        [
            "organization.created",
            "user.created",
            "user.name_changed",
            "user.identity_changed",
            "user.role_changed",
            "user.active_changed",
            "user.deleted",
        ],
        "locale has no event type"
    );
    assert_eq!(rx.bad_signatures.load(Ordering::Relaxed), 0);
    let created = &events[1];
    assert_eq!(created["subject"], format!("zen:user:{id}"));
    assert_eq!(created["zendesk_event_version"], "2022-06-20");
    assert_eq!(created["account_id"], 12_514_403);
    assert_eq!(created["detail"]["id"], id.to_string());
    assert_eq!(created["detail"]["organization_id"], org.to_string());
    assert_eq!(created["detail"]["email"], "ann@x.com");
    assert_eq!(created["event"], json!({}));
    assert!(super::tests_api::is_iso_seconds(&created["time"]));
    assert_eq!(created["id"].as_str().map(str::len), Some(36));
    assert_eq!(
        events[2]["event"],
        json!({"current": "Ann B", "previous": "Ann"})
    );
    assert_eq!(events[3]["event"]["current"]["value"], "ann.b@x.com");
    assert_eq!(events[3]["event"]["previous"]["value"], "ann@x.com");
    assert_eq!(
        events[5]["event"],
        json!({"current": false, "previous": true})
    );
    assert_eq!(events[0]["detail"]["name"], "Acme");
    assert_eq!(events[0]["subject"], format!("zen:organization:{org}"));
    let ids: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 7, "event ids are unique");
    let headers = lock(&rx.headers).clone();
    let h = |n: &str| {
        headers[0]
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(h("user-agent").as_deref(), Some("Zendesk Webhook"));
    assert_eq!(h("content-type").as_deref(), Some("application/json"));
    assert!(h("x-zendesk-webhook-id").is_some());
    assert!(h("x-zendesk-webhook-signature-timestamp")
        .is_some_and(|t| super::tests_api::is_iso_seconds(&json!(t))));
    assert_eq!(sim.stats().webhooks_delivered, 7);
    sim.shutdown();
}

#[tokio::test]
async fn drop_knob_and_unretried_failures() {
    let rx = receiver("s", false).await;
    let sim = sim_for(&rx).await;
    sim.set_drop_webhooks(1.0);
    sim.app_create("users", map(json!({"name": "Dropped"})))
        .expect("user");
    until("a dropped delivery", || sim.stats().webhooks_dropped == 1).await;
    sim.set_drop_webhooks(0.0);
    sim.app_create("users", map(json!({"name": "Kept"})))
        .expect("user");
    until("a delivery", || sim.stats().webhooks_delivered == 1).await;
    let events = lock(&rx.events).clone();
    assert_eq!(events.len(), 1);
    assert_eq!(types(&events), ["user.created"]);
    assert_eq!(
        rx.requests.load(Ordering::Relaxed),
        1,
        "dropped deliveries are never sent"
    );

    // a receiver that fails gets each delivery once
    let failing = receiver("s", true).await;
    sim.set_webhook_url(Some(failing.url.clone()));
    sim.app_create("users", map(json!({"name": "Failed"})))
        .expect("user");
    until("a failed delivery", || sim.stats().webhooks_failed == 1).await;
    assert_eq!(failing.requests.load(Ordering::Relaxed), 1, "no retry");
    // no URL: nothing is sent at all
    sim.set_webhook_url(None);
    sim.app_create("users", map(json!({"name": "Nowhere"})))
        .expect("user");
    tokio::task::yield_now().await;
    let s = sim.stats();
    assert_eq!(
        (s.webhooks_delivered, s.webhooks_dropped, s.webhooks_failed),
        (1, 1, 1)
    );
    sim.shutdown();
}

#[tokio::test]
async fn bulk_jobs_and_org_deletes_emit_events() {
    let rx = receiver("s", false).await;
    let sim = start(SimConfig {
        webhook_url: Some(rx.url.clone()),
        webhook_secret: "s".into(),
        job_delay: std::time::Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let org = sim
        .app_create("organizations", map(json!({"name": "Org"})))
        .expect("org");
    let c = Client::new(&sim);
    let (status, _) = c
        .call(
            Method::POST,
            "/api/v2/users/create_many",
            Some(json!({"users": [{"name": "A", "organization_id": org}, {"name": ""}, {"name": "B"}]})),
        )
        .await;
    assert_eq!(status, 200);
    until("3 events", || lock(&rx.events).len() >= 3).await;
    sim.app_delete("organizations", org).expect("delete");
    until("5 events", || lock(&rx.events).len() >= 5).await;
    assert_eq!(
        types(&lock(&rx.events)),
        [
            "organization.created",
            "user.created",
            "user.created",
            "organization.deleted",
            "user.organization_membership_deleted",
        ]
    );
    sim.shutdown();
}
