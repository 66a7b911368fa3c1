//! Stripe simulator: idempotency, limit and fault tests — replay with `Idempotent-Replayed`,
//! parameter mismatch, 409 while the first request runs, 24-hour expiry, lost responses
//! recovered by a keyed retry, the per-mode rate budget, `lock_timeout` and injected 5xx.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{id, start, Client};
use super::SimConfig;

async fn keyed(
    c: &Client,
    path: &str,
    form: &str,
    key: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = c
        .send(Method::POST, path, form, &[("Idempotency-Key", key)])
        .await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = serde_json::from_slice(&resp.bytes().await.expect("body")).unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn idempotency_replay_mismatch_and_expiry() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, h1, first) =
        keyed(&c, "/v1/customers", "name=Idem&email=i%40x.com", "key-1").await;
    assert_eq!(status, 200);
    assert!(!h1.contains_key("idempotent-replayed"));
    // same parameters in another order: replayed, nothing new is written
    let (status, h2, again) =
        keyed(&c, "/v1/customers", "email=i%40x.com&name=Idem", "key-1").await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(h2["original-request"], h1["request-id"]);
    assert_ne!(h2["request-id"], h1["request-id"]);
    assert_eq!(sim.records("customers").len(), 1);
    let (status, _, body) = keyed(&c, "/v1/customers", "name=Other", "key-1").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("'key-1'")));
    // the event names the key
    let created = &sim.records("events")[0];
    assert_eq!(
        created["request"],
        json!({"id": h1["request-id"].to_str().expect("ascii"), "idempotency_key": "key-1"})
    );
    // an executed error is stored and replayed too
    let (status, _, err) = keyed(&c, "/v1/invoices", "customer=cus_none", "key-2").await;
    assert_eq!(status, 400);
    let (status, h, again) = keyed(&c, "/v1/invoices", "customer=cus_none", "key-2").await;
    assert_eq!(
        (status, again, h.contains_key("idempotent-replayed")),
        (400, err, true)
    );
    // a validation failure is not: the same key may then carry a valid request
    let (status, _, _) = keyed(&c, "/v1/customers", "bogus=1", "key-3").await;
    assert_eq!(status, 400);
    let (status, h, _) = keyed(&c, "/v1/customers", "name=Three", "key-3").await;
    assert_eq!(
        (status, h.contains_key("idempotent-replayed")),
        (200, false)
    );
    // after 24 hours a key is new again
    sim.clock().advance(Duration::from_secs(24 * 3600));
    let (status, h, again) = keyed(&c, "/v1/customers", "name=Idem&email=i%40x.com", "key-1").await;
    assert_eq!(
        (status, h.contains_key("idempotent-replayed")),
        (200, false)
    );
    assert_ne!(id(&again), id(&first));
    assert_eq!(sim.stats().idempotent_replays, 2);
    sim.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reuse_is_409() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    sim.set_keyed_write_time(Duration::from_secs(2));
    let first = {
        let c = Client::new(&sim);
        tokio::spawn(async move { keyed(&c, "/v1/customers", "name=Slow", "dup").await.0 })
    };
    for _ in 0..500 {
        if sim.inner.idempotency.running() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.inner.idempotency.running(), 1, "the first request runs");
    let mut conflict = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (status, h, body) = keyed(&c, "/v1/customers", "name=Slow", "dup").await;
        if status == 409 {
            conflict = Some((h, body));
            break;
        }
    }
    let (h, body) = conflict.expect("a 409 while the first request runs");
    assert_eq!(body["error"]["code"], "idempotency_key_in_use");
    assert_eq!(h["stripe-should-retry"], "true");
    assert_eq!(first.await.expect("joined"), 200);
    let (status, h, _) = keyed(&c, "/v1/customers", "name=Slow", "dup").await;
    assert_eq!(
        (status, h["idempotent-replayed"].to_str().ok()),
        (200, Some("true"))
    );
    assert_eq!(sim.records("customers").len(), 1);
    sim.shutdown();
}

#[tokio::test]
async fn lost_response_then_keyed_retry_replays() {
    let sim = start(SimConfig {
        lost_response_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let (status, _, _) = keyed(&c, "/v1/customers", "name=Lost", "retry-me").await;
    assert_eq!(status, 504);
    assert_eq!(sim.records("customers").len(), 1, "the write happened");
    sim.set_faults(0.0, 0.0, 0.0);
    let (status, h, body) = keyed(&c, "/v1/customers", "name=Lost", "retry-me").await;
    assert_eq!(
        (status, h["idempotent-replayed"].to_str().ok()),
        (200, Some("true"))
    );
    assert_eq!(id(&body), id(&sim.records("customers")[0]));
    assert_eq!(sim.records("customers").len(), 1);
    assert_eq!(sim.stats().lost_responses, 1);
    sim.shutdown();
}

#[tokio::test]
async fn rate_budget_per_mode_with_should_retry() {
    let sim = start(SimConfig {
        live_key: Some("sk_live_x".into()),
        sandbox_rate_limit: Some((3, Duration::from_secs(1))),
        live_rate_limit: Some((5, Duration::from_secs(1))),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    for _ in 0..3 {
        assert_eq!(c.get("/v1/customers").await.0, 200);
    }
    let resp = c.send(Method::GET, "/v1/customers", "", &[]).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["stripe-should-retry"], "true");
    assert!(resp.headers().contains_key("request-id"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        (body["error"]["type"].clone(), body["error"]["code"].clone()),
        (json!("invalid_request_error"), json!("rate_limit"))
    );
    let live = Client::with_auth(&sim, "Bearer sk_live_x".into());
    assert_eq!(
        live.get("/v1/customers").await.0,
        200,
        "live has its own budget"
    );
    sim.clock().advance(Duration::from_secs(1));
    assert_eq!(c.get("/v1/customers").await.0, 200);
    sim.set_rate_limit_enabled(false);
    for _ in 0..10 {
        assert_eq!(c.get("/v1/customers").await.0, 200);
    }
    assert_eq!(sim.stats().throttled, 1);
    sim.shutdown();
}

#[tokio::test]
async fn lock_timeouts_and_injected_errors_do_nothing() {
    let sim = start(SimConfig {
        lock_timeout_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let resp = c.send(Method::POST, "/v1/customers", "name=L", &[]).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["stripe-should-retry"], "true");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "lock_timeout");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(c.get("/v1/customers").await.0, 200, "reads take no lock");
    assert!(sim.records("customers").is_empty());
    sim.set_lock_timeouts(0.0);
    sim.set_faults(1.0, 0.0, 0.0);
    let (status, body) = c.post("/v1/customers", "name=E").await;
    assert!(matches!(status, 500 | 502 | 503), "{status}");
    assert_eq!(body["error"]["type"], "api_error");
    assert!(sim.records("customers").is_empty());
    sim.set_faults(0.0, 1.0, 0.0);
    let (status, body) = c.get("/v1/customers").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (429, json!("rate_limit"))
    );
    sim.set_faults(0.0, 0.0, 0.0);
    sim.set_latency(Duration::from_millis(120));
    let t = std::time::Instant::now();
    assert_eq!(c.get("/v1/customers").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(120));
    let s = sim.stats();
    assert_eq!(
        (
            s.lock_timeouts,
            s.errors_injected,
            s.throttles_injected,
            s.throttled
        ),
        (1, 1, 1, 2)
    );
    sim.reset_stats();
    assert_eq!(sim.stats(), super::SimStats::default());
    sim.shutdown();
}
