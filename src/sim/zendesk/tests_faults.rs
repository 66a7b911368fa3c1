//! Zendesk simulator: fault and limit tests — injected 5xx and 429, lost write responses
//! (the write happens, the client sees 504), latency, and the account rate budget with
//! `X-Rate-Limit` headers and `Retry-After` on the simulator clock.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, until, Client};
use super::SimConfig;

const U: &str = "/api/v2/users";

#[tokio::test]
async fn error_rate_one_fails_everything_and_writes_nothing() {
    let sim = start(SimConfig {
        seed_users: 2,
        error_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut seen = std::collections::BTreeSet::new();
    for n in 0..30 {
        let (method, path, body) = match n % 3 {
            0 => (Method::GET, U.to_string(), None),
            1 => (
                Method::POST,
                U.to_string(),
                Some(json!({"user": {"name": format!("N{n}")}})),
            ),
            _ => (
                Method::POST,
                format!("{U}/create_many"),
                Some(json!({"users": [{"name": "B"}]})),
            ),
        };
        let resp = c.raw(method, &path, body).await;
        let status = resp.status().as_u16();
        assert!(matches!(status, 500 | 502 | 503), "{status}");
        if status == 500 {
            let body: Value = resp.json().await.expect("json 500");
            assert!(body["error"].is_string());
        }
        seen.insert(status);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(sim.records("users").len(), 3);
    let s = sim.stats();
    assert_eq!(
        (s.errors_injected, s.server_errors, s.records_written),
        (30, 30, 0)
    );
    sim.set_faults(0.0, 0.0, 0.0);
    let (status, _) = c.call(Method::GET, U, None).await;
    assert_eq!(status, 200);
    sim.shutdown();
}

#[tokio::test]
async fn lost_responses_still_write() {
    let sim = start(SimConfig {
        lost_response_rate: 1.0,
        job_delay: Duration::ZERO,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let resp = c
        .raw(
            Method::POST,
            U,
            Some(json!({"user": {"name": "Lost", "email": "lost@x.com"}})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 504);
    assert!(resp.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/plain")));
    let lost = sim
        .records("users")
        .into_iter()
        .find(|r| r.fields["email"] == "lost@x.com");
    let lost = lost.expect("the write happened").id;
    let resp = c
        .raw(
            Method::POST,
            &format!("{U}/create_many"),
            Some(json!({"users": [{"name": "Job"}]})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 504);
    until("the lost job ran", || sim.stats().jobs_completed == 1).await;
    assert_eq!(sim.records("users").len(), 3);
    // reads are never lost
    let (status, _) = c.call(Method::GET, &format!("{U}/{lost}"), None).await;
    assert_eq!(status, 200);

    sim.set_faults(0.0, 0.0, 0.0);
    // a blind retry of the create is refused; create_or_update finds the first write
    let (status, body) = c
        .call(
            Method::POST,
            U,
            Some(json!({"user": {"name": "Lost", "email": "lost@x.com"}})),
        )
        .await;
    assert_eq!(
        (status, body["details"]["email"][0]["error"].clone()),
        (422, json!("DuplicateValue"))
    );
    let (status, body) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update"),
            Some(json!({"user": {"name": "Lost", "email": "lost@x.com"}})),
        )
        .await;
    assert_eq!((status, body["user"]["id"].as_u64()), (200, Some(lost)));
    let s = sim.stats();
    assert_eq!((s.lost_responses, s.server_errors), (2, 2));
    sim.shutdown();
}

#[tokio::test]
async fn injected_throttles_and_latency() {
    let sim = start(SimConfig {
        throttle_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let resp = c
        .raw(Method::POST, U, Some(json!({"user": {"name": "T"}})))
        .await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "APIRateLimitExceeded");
    assert_eq!(
        sim.records("users").len(),
        1,
        "a throttled write does nothing"
    );
    sim.set_faults(0.0, 0.0, 0.0);
    sim.set_latency(Duration::from_millis(150));
    assert_eq!(sim.faults().latency, Duration::from_millis(150));
    let t = Instant::now();
    let (status, _) = c.call(Method::GET, U, None).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    let s = sim.stats();
    assert_eq!((s.throttles_injected, s.throttled), (1, 1));
    sim.reset_stats();
    assert_eq!(sim.stats(), super::SimStats::default());
    sim.shutdown();
}

#[tokio::test]
async fn account_budget_answers_429_with_retry_after() {
    let sim = start(SimConfig {
        rate_limit: Some((3, Duration::from_secs(60))),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    for left in ["2", "1", "0"] {
        let resp = c.raw(Method::GET, U, None).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["x-rate-limit"], "3");
        assert_eq!(resp.headers()["x-rate-limit-remaining"], left);
    }
    sim.clock().advance(Duration::from_secs(20));
    let resp = c.raw(Method::GET, U, None).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((39..=40).contains(&retry), "{retry}");
    sim.clock().advance(Duration::from_secs(retry));
    let resp = c.raw(Method::GET, U, None).await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "the window rolled on the sim clock"
    );
    sim.set_rate_limit_enabled(false);
    for _ in 0..5 {
        let (status, _) = c.call(Method::GET, U, None).await;
        assert_eq!(status, 200);
    }
    assert_eq!(sim.stats().throttled, 1);
    sim.shutdown();
}
