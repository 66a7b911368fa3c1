//! Zendesk connector against the simulator, change detection: the incremental exports
//! (paging, the minute rule on the simulator's clock, deletions as archived records, the
//! exports' own budget) and signed webhook deliveries from the simulator, good and bad.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde_json::{json, Value};

use super::tests_reads::{connector_with, map, paths, sim};
use super::Options;
use crate::connectors::ratelimit::Budget;
use crate::connectors::{Connector, FeedStart, WebhookError, WebhookRequest};
use crate::sim::zendesk::SimConfig;

/// No budget on either side: these tests count records, not requests.
fn open_sim() -> SimConfig {
    SimConfig {
        rate_limit: None,
        incremental_limit: None,
        ..SimConfig::default()
    }
}

fn fast_exports() -> Options {
    Options {
        export_budget: Budget {
            requests: 1000,
            window: Duration::from_secs(1),
        },
        ..Options::default()
    }
}

fn since(ago_secs: i64) -> FeedStart {
    FeedStart {
        at: Utc::now() - chrono::Duration::seconds(ago_secs),
        overlap: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn user_export_pages_and_brings_changes_once_the_minute_has_passed() {
    let sim = sim(SimConfig {
        seed_users: 1200,
        ..open_sim()
    })
    .await;
    let z = connector_with(&sim, fast_exports());
    let props = paths(&["email", "phone"]);
    let first = z
        .changes("users", &props, None, since(7200))
        .await
        .expect("page");
    assert_eq!((first.records.len(), first.more), (1000, true));
    let second = z
        .changes("users", &props, Some(&first.cursor), since(7200))
        .await
        .expect("page");
    assert_eq!(
        (second.records.len(), second.more),
        (201, false),
        "the rest, the owner included"
    );
    assert!(
        second.cursor.starts_with(r#"{"state":"after""#),
        "{}",
        second.cursor
    );

    let users = sim.records("users");
    let (gone, edited) = (users[2].id, users[3].id);
    let new = sim
        .app_create(
            "users",
            map(json!({"name": "New", "email": "new@example.com"})),
        )
        .unwrap();
    sim.app_delete("users", gone).unwrap();
    sim.app_update("users", edited, map(json!({"phone": "+15550303"})))
        .unwrap();
    // changed within the last minute: not in the export yet, and the position stays
    let hidden = z
        .changes("users", &props, Some(&second.cursor), since(7200))
        .await
        .expect("page");
    assert!(hidden.records.is_empty() && !hidden.more);
    sim.clock().advance(Duration::from_secs(61));
    let seen = z
        .changes("users", &props, Some(&hidden.cursor), since(7200))
        .await
        .expect("page");
    let record = |id: u64| {
        seen.records
            .iter()
            .find(|r| r.id == id.to_string())
            .unwrap_or_else(|| panic!("{id} in {:?}", seen.records))
    };
    assert_eq!(seen.records.len(), 3);
    assert!(!record(new).archived);
    assert!(record(gone).archived, "a soft-deleted user is archived");
    assert_eq!(record(edited).properties["phone"], json!("+15550303"));
    let settled = z
        .changes("users", &props, Some(&seen.cursor), since(7200))
        .await
        .expect("page");
    assert!(settled.records.is_empty(), "each change once");

    // a feed that begins now starts a minute back, never inside Zendesk's refused minute
    let fresh = z
        .changes("users", &props, None, since(0))
        .await
        .expect("no 422");
    assert!(!fresh.more);
    // a Zendesk clock behind ferry's still finds that start too recent: an empty page that
    // keeps its place
    sim.clock().rewind(Duration::from_secs(300));
    let early = z
        .changes("users", &props, None, since(0))
        .await
        .expect("an empty page, not an error");
    assert!(early.records.is_empty() && !early.more);
    assert!(
        early.cursor.starts_with(r#"{"state":"since""#),
        "{}",
        early.cursor
    );
}

#[tokio::test]
async fn organization_export_resumes_from_its_end_time() {
    let sim = sim(SimConfig {
        seed_orgs: 3,
        ..open_sim()
    })
    .await;
    let z = connector_with(&sim, fast_exports());
    let props = paths(&["name", "external_id"]);
    let first = z
        .changes("organizations", &props, None, since(7200))
        .await
        .expect("page");
    assert_eq!(first.records.len(), 3);
    assert!(!first.more);
    let end: Value = serde_json::from_str(&first.cursor).unwrap();
    assert_eq!(end["state"], "since");
    let orgs = sim.records("organizations");
    sim.app_delete("organizations", orgs[0].id).unwrap();
    sim.clock().advance(Duration::from_secs(61));
    let next = z
        .changes("organizations", &props, Some(&first.cursor), since(7200))
        .await
        .expect("page");
    let deleted = next
        .records
        .iter()
        .find(|r| r.id == orgs[0].id.to_string())
        .expect("the deletion");
    assert!(deleted.archived);
    let later: Value = serde_json::from_str(&next.cursor).unwrap();
    assert!(later["start_time"].as_i64() > end["start_time"].as_i64());
}

#[tokio::test]
async fn exports_spend_their_own_budget() {
    let sim = sim(SimConfig {
        seed_users: 1,
        ..open_sim()
    })
    .await;
    let z = connector_with(
        &sim,
        Options {
            export_budget: Budget {
                requests: 2,
                window: Duration::from_secs(1),
            },
            ..Options::default()
        },
    );
    let started = std::time::Instant::now();
    for _ in 0..2 {
        z.changes("users", &[], None, since(7200))
            .await
            .expect("page");
    }
    // the export budget is spent; other calls are not held by it
    z.list("users", &[], None).await.expect("listed");
    assert!(started.elapsed() < Duration::from_millis(800));
    z.changes("users", &[], None, since(7200))
        .await
        .expect("page");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the third export waited for the window: {:?}",
        started.elapsed()
    );
}

type Deliveries = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn keep(State(d): State<Deliveries>, headers: HeaderMap, body: Bytes) {
    d.lock().unwrap().push((headers, body));
}

/// A local endpoint recording every delivery as it arrived.
async fn receiver() -> (String, Deliveries) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/zendesk", listener.local_addr().unwrap());
    let deliveries: Deliveries = Arc::default();
    let app = axum::Router::new()
        .route("/webhooks/zendesk", axum::routing::post(keep))
        .with_state(deliveries.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, deliveries)
}

async fn delivered(d: &Deliveries, n: usize) -> Vec<(HeaderMap, Bytes)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = d.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} deliveries",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn simulator_webhooks_verify_and_become_events() {
    let sim = sim(SimConfig {
        seed_users: 1,
        ..open_sim()
    })
    .await;
    let z = connector_with(&sim, Options::default());
    let (url, deliveries) = receiver().await;
    sim.set_webhook_url(Some(url.clone()));
    let user = sim.records("users")[1].id;
    sim.app_update("users", user, map(json!({"name": "Renamed"})))
        .unwrap();
    sim.app_delete("users", user).unwrap();
    let org = sim
        .app_create("organizations", map(json!({"name": "Acme"})))
        .unwrap();
    let got = delivered(&deliveries, 4).await;
    let secret = sim.webhook_secret();
    let parse = |headers: &HeaderMap, body: &[u8], secret: Option<&str>| {
        z.parse_webhook(
            &WebhookRequest {
                method: "POST",
                url: &url,
                headers,
                body,
            },
            secret,
        )
    };
    let events: Vec<_> = got
        .iter()
        .flat_map(|(h, b)| parse(h, b, Some(&secret)).expect("verified"))
        .collect();
    let seen: Vec<(&str, String, bool)> = events
        .iter()
        .map(|e| (e.object.as_str(), e.remote_id.clone(), e.deleted))
        .collect();
    assert_eq!(
        seen,
        [
            ("users", user.to_string(), false), // user.name_changed
            ("users", user.to_string(), false), // user.active_changed
            ("users", user.to_string(), true),  // user.deleted
            ("organizations", org.to_string(), false),
        ]
    );
    assert!(events.iter().all(|e| e.event_id.is_some()));

    let (headers, body) = &got[0];
    let mut tampered = body.to_vec();
    tampered.extend_from_slice(b" ");
    assert!(matches!(
        parse(headers, &tampered, Some(&secret)),
        Err(WebhookError::Signature(_))
    ));
    assert!(matches!(
        parse(headers, body, Some("another-secret")),
        Err(WebhookError::Signature(_))
    ));
    assert!(matches!(
        parse(headers, body, None),
        Err(WebhookError::NoSecret)
    ));
    // signed more than five minutes away from ferry's clock: refused
    sim.clock().advance(Duration::from_secs(6 * 60));
    sim.app_update("organizations", org, map(json!({"name": "Acme 2"})))
        .unwrap();
    let got = delivered(&deliveries, 5).await;
    let (headers, body) = &got[4];
    assert!(matches!(
        parse(headers, body, Some(&secret)),
        Err(WebhookError::Signature(m)) if m.contains("tolerance")
    ));
}
