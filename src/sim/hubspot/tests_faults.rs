//! HubSpot simulator: fault-injection tests (injected 5xx, 429 and lost write responses, rates
//! changed at run time) and the email `IN` search that dedup lookups rely on.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, Client};
use super::SimConfig;

const C: &str = "/crm/v3/objects/contacts";

fn batch_create(emails: &[&str]) -> Value {
    json!({"inputs": emails.iter().map(|e| json!({"properties": {"email": e}})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn error_rate_one_fails_everything_and_writes_nothing() {
    let sim = start(SimConfig {
        seed_contacts: 2,
        error_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut statuses = Vec::new();
    for round in 0..10 {
        let calls: [(Method, String, Option<Value>); 6] = [
            (Method::GET, C.to_string(), None),
            (Method::GET, format!("{C}/1"), None),
            (
                Method::POST,
                C.to_string(),
                Some(json!({"properties": {"email": format!("new{round}@x.com")}})),
            ),
            (
                Method::PATCH,
                format!("{C}/1"),
                Some(json!({"properties": {"city": "Oslo"}})),
            ),
            (
                Method::POST,
                format!("{C}/batch/create"),
                Some(batch_create(&["b1@x.com", "b2@x.com"])),
            ),
            (Method::DELETE, format!("{C}/2"), None),
        ];
        for (method, path, body) in calls {
            let resp = c.raw(method, &path, body).await;
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            assert!(matches!(status, 500 | 502 | 503), "{status} {text}");
            if status != 502 {
                let body: Value = serde_json::from_str(&text).expect("json error body");
                assert_eq!(
                    (body["status"].as_str(), body["category"].as_str()),
                    (Some("error"), Some("INTERNAL_ERROR"))
                );
                assert_eq!(body["message"], "internal error");
                assert!(body["correlationId"]
                    .as_str()
                    .is_some_and(|s| s.len() == 36));
            }
            statuses.push(status);
        }
    }
    assert!(
        statuses.contains(&500) && statuses.contains(&502) && statuses.contains(&503),
        "{statuses:?}"
    );
    let live = sim.records("contacts");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|r| !r.properties.contains_key("city")));
    let s = sim.stats();
    assert_eq!((s.requests, s.errors_injected), (60, 60));
    assert_eq!(
        (
            s.write_requests,
            s.read_requests,
            s.records_written,
            s.throttled
        ),
        (0, 0, 0, 0)
    );

    sim.set_faults(0.0, 0.0, 0.0);
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "ok@x.com"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = c.call(Method::GET, format!("{C}/1").as_str(), None).await;
    assert_eq!(status, 200);
    assert_eq!(sim.records("contacts").len(), 3);
    sim.shutdown();
}

/// Counts webhook events POSTed to it, without checking signatures (tests_webhooks does).
async fn counting_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            let events: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
            count.fetch_add(events.len(), Ordering::Relaxed);
            axum::http::StatusCode::OK
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, n)
}

#[tokio::test]
async fn lost_responses_still_write() {
    let (url, events) = counting_receiver().await;
    let sim = start(SimConfig {
        lost_response_rate: 1.0,
        webhook_url: Some(url),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);

    let resp = c
        .raw(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "single@x.com"}})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 504);
    assert!(resp.headers()["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/plain")));
    let resp = c
        .raw(
            Method::POST,
            &format!("{C}/batch/create"),
            Some(batch_create(&["b1@x.com", "b2@x.com"])),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 504);
    let mut emails: Vec<String> = sim
        .records("contacts")
        .iter()
        .filter_map(|r| r.properties.get("email").cloned())
        .collect();
    emails.sort();
    assert_eq!(emails, ["b1@x.com", "b2@x.com", "single@x.com"]);

    let id = sim.records("contacts")[0].id.clone();
    let resp = c
        .raw(
            Method::PATCH,
            &format!("{C}/{id}"),
            Some(json!({"properties": {"city": "Lima"}})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 504);
    assert_eq!(
        sim.get("contacts", &id)
            .and_then(|r| r.properties.get("city").cloned())
            .as_deref(),
        Some("Lima")
    );
    let resp = c.raw(Method::DELETE, &format!("{C}/{id}"), None).await;
    assert_eq!(resp.status().as_u16(), 504);
    assert!(sim.get("contacts", &id).is_some_and(|r| r.archived));

    // Reads and search are never "lost".
    let (status, body) = c.call(Method::GET, C, None).await;
    assert_eq!(
        (status, body["results"].as_array().map(Vec::len)),
        (200, Some(2))
    );
    let (status, _) = c
        .call(
            Method::POST,
            &format!("{C}/search"),
            Some(json!({"limit": 10})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            Method::POST,
            &format!("{C}/batch/read"),
            Some(json!({"inputs": [{"id": "2"}]})),
        )
        .await;
    assert_eq!(status, 200);

    let s = sim.stats();
    assert_eq!(
        (s.lost_responses, s.write_requests, s.records_written),
        (4, 4, 5)
    );
    // 3 creations, 1 property change, 1 deletion.
    let deadline = Instant::now() + Duration::from_secs(5);
    while events.load(std::sync::atomic::Ordering::Relaxed) < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(events.load(std::sync::atomic::Ordering::Relaxed), 5);

    sim.set_faults(0.0, 0.0, 0.0);
    // A blind retry of a lost create conflicts: the client must find out its write happened.
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "b1@x.com"}})),
        )
        .await;
    assert_eq!(
        (status, body["category"].as_str()),
        (409, Some("CONFLICT")),
        "{body}"
    );
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "after@x.com"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    sim.shutdown();
}

#[tokio::test]
async fn throttle_rate_half_throttles_about_half() {
    let sim = start(SimConfig {
        seed_contacts: 3,
        rate_limit: Some((10_000, Duration::from_secs(10))),
        ..SimConfig::default()
    })
    .await;
    sim.set_faults(0.0, 0.5, 0.0);
    let c = Client::new(&sim);
    let mut throttled = 0u64;
    for _ in 0..200 {
        let resp = c.raw(Method::GET, &format!("{C}/1"), None).await;
        match resp.status().as_u16() {
            200 => {}
            429 => {
                throttled += 1;
                assert!(
                    resp.headers().get("retry-after").is_none(),
                    "injected 429 has no Retry-After"
                );
                assert_eq!(resp.headers()["x-hubspot-ratelimit-remaining"], "0");
                let body: Value = resp.json().await.expect("json");
                assert_eq!(
                    (body["policyName"].as_str(), body["errorType"].as_str()),
                    (Some("TEN_SECONDLY_ROLLING"), Some("RATE_LIMIT"))
                );
                assert_eq!(body["status"], "error");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        (60..=140).contains(&throttled),
        "{throttled} of 200 throttled"
    );
    let s = sim.stats();
    assert_eq!(
        (s.throttled, s.throttles_injected, s.read_requests),
        (throttled, throttled, 200 - throttled)
    );

    sim.set_faults(0.0, 0.0, 0.0);
    for _ in 0..20 {
        let (status, _) = c.call(Method::GET, &format!("{C}/1"), None).await;
        assert_eq!(status, 200);
    }
    sim.shutdown();
}

#[tokio::test]
async fn search_email_in_is_case_insensitive() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    for email in ["A@X.com", "b@x.com", "c@x.com"] {
        let (status, body) = c
            .call(
                Method::POST,
                C,
                Some(json!({"properties": {"email": email, "firstname": "F"}})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let b_id = sim
        .records("contacts")
        .iter()
        .find(|r| r.properties.get("email").is_some_and(|e| e == "b@x.com"))
        .map(|r| r.id.clone());
    let q = json!({
        "filterGroups": [{"filters": [{"propertyName": "email", "operator": "IN", "values": ["a@x.com", "B@X.COM", "zz@x.com"]}]}],
        "properties": ["email"], "limit": 100,
    });
    let (status, body) = c
        .call(Method::POST, &format!("{C}/search"), Some(q.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 2);
    let mut got: Vec<String> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["properties"]["email"].as_str())
        .map(str::to_lowercase)
        .collect();
    got.sort();
    assert_eq!(got, ["a@x.com", "b@x.com"]);
    assert!(
        body["results"][0]["properties"].get("firstname").is_none(),
        "only the requested properties"
    );

    // Archived records drop out of search.
    let b_id = b_id.expect("b stored");
    assert_eq!(
        c.raw(Method::DELETE, &format!("{C}/{b_id}"), None)
            .await
            .status()
            .as_u16(),
        204
    );
    let (_, body) = c.call(Method::POST, &format!("{C}/search"), Some(q)).await;
    assert_eq!(body["total"], 1);
    sim.shutdown();
}
