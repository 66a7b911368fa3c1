//! Zendesk simulator: incremental export tests — the user cursor export (paging, soft-deleted
//! users, the one-minute lag on the simulator clock, no skipped late changes), the time-based
//! organization export, and the 10-per-minute export budget.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, Client};
use super::SimConfig;

const X: &str = "/api/v2/incremental/users/cursor.json";

fn ids(page: &Value, key: &str) -> Vec<u64> {
    page[key]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|u| u["id"].as_u64())
        .collect()
}

fn unlimited() -> SimConfig {
    SimConfig {
        incremental_limit: None,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn user_cursor_export_pages_and_includes_deleted_users() {
    let sim = start(SimConfig {
        seed_users: 5,
        ..unlimited()
    })
    .await;
    let c = Client::new(&sim);
    let all: Vec<u64> = sim.records("users").iter().map(|r| r.id).collect();
    let (status, first) = c
        .call(Method::GET, &format!("{X}?start_time=0&per_page=4"), None)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first, "users"), all[..4]);
    assert_eq!(first["end_of_stream"], false);
    assert_eq!(
        (first["before_url"].clone(), first["before_cursor"].clone()),
        (Value::Null, Value::Null)
    );
    let after_url = first["after_url"].as_str().expect("after_url").to_string();
    assert!(after_url.contains("cursor="));
    let (_, second) = c.follow(&after_url).await;
    assert_eq!(ids(&second, "users"), all[4..]);
    assert_eq!(second["end_of_stream"], true);
    let stored = second["after_cursor"].as_str().expect("cursor").to_string();

    // a delete now is hidden for a minute, then shows up after the stored cursor
    sim.app_delete("users", all[2]).expect("delete");
    let poll = format!("{X}?cursor={}", crate::sim::core::query::encode(&stored));
    let (_, early) = c.call(Method::GET, &poll, None).await;
    assert!(
        ids(&early, "users").is_empty(),
        "changed in the last minute: {early}"
    );
    assert_eq!(early["end_of_stream"], true);
    assert_eq!(
        early["after_cursor"],
        stored.as_str(),
        "the cursor does not move past it"
    );
    sim.clock().advance(Duration::from_secs(61));
    let (_, late) = c.call(Method::GET, &poll, None).await;
    assert_eq!(ids(&late, "users"), [all[2]]);
    assert_eq!(
        late["users"][0]["active"], false,
        "soft-deleted users are exported"
    );
    sim.shutdown();
}

#[tokio::test]
async fn export_lag_follows_the_clock_and_never_skips_late_changes() {
    let sim = start(unlimited()).await;
    let c = Client::new(&sim);
    let start_time = sim.clock().now().timestamp() - 120;
    let (_, page) = c
        .call(Method::GET, &format!("{X}?start_time={start_time}"), None)
        .await;
    let mut cursor = page["after_cursor"].as_str().expect("cursor").to_string();
    let mut seen: Vec<(u64, String)> = Vec::new();
    let (_, a) = c
        .call(
            Method::POST,
            "/api/v2/users",
            Some(json!({"user": {"name": "A"}})),
        )
        .await;
    let a = a["user"]["id"].as_u64().expect("a");
    for step in 0..4 {
        // B appears 30 s after A; A changes again 30 s later; each poll 30 s apart
        match step {
            0 => {}
            1 => {
                sim.app_create("users", super::tests_api::map(json!({"name": "B"})))
                    .expect("b");
            }
            2 => sim
                .app_update("users", a, super::tests_api::map(json!({"name": "A2"})))
                .expect("a2"),
            _ => {}
        }
        sim.clock().advance(Duration::from_secs(30));
        let (_, page) = c
            .call(
                Method::GET,
                &format!("{X}?cursor={}", crate::sim::core::query::encode(&cursor)),
                None,
            )
            .await;
        for u in page["users"].as_array().expect("users") {
            seen.push((
                u["id"].as_u64().expect("id"),
                u["name"].as_str().unwrap_or("").to_string(),
            ));
        }
        cursor = page["after_cursor"].as_str().expect("cursor").to_string();
    }
    sim.clock().advance(Duration::from_secs(61));
    let (_, page) = c
        .call(
            Method::GET,
            &format!("{X}?cursor={}", crate::sim::core::query::encode(&cursor)),
            None,
        )
        .await;
    for u in page["users"].as_array().expect("users") {
        seen.push((
            u["id"].as_u64().expect("id"),
            u["name"].as_str().unwrap_or("").to_string(),
        ));
    }
    let names: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
    assert!(names.contains(&"B"), "{seen:?}");
    assert_eq!(
        names.last(),
        Some(&"A2"),
        "the late change arrives last: {seen:?}"
    );
    assert!(
        !names.contains(&"Sim Admin"),
        "the owner predates start_time"
    );
    sim.shutdown();
}

#[tokio::test]
async fn export_parameters_are_checked() {
    let sim = start(unlimited()).await;
    let c = Client::new(&sim);
    let now = sim.clock().now().timestamp();
    let (status, body) = c
        .call(Method::GET, &format!("{X}?start_time={}", now - 10), None)
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "InvalidValue");
    assert!(body["description"]
        .as_str()
        .is_some_and(|d| d.starts_with("Too recent start_time")));
    for bad in [
        X.to_string(),
        format!("{X}?start_time=yesterday"),
        format!("{X}?cursor=bogus"),
        "/api/v2/incremental/organizations".to_string(),
    ] {
        let (status, _) = c.call(Method::GET, &bad, None).await;
        assert_eq!(status, 400, "{bad}");
    }
    sim.shutdown();
}

#[tokio::test]
async fn organization_time_export() {
    let sim = start(SimConfig {
        seed_orgs: 5,
        ..unlimited()
    })
    .await;
    let c = Client::new(&sim);
    let all: Vec<u64> = sim.records("organizations").iter().map(|r| r.id).collect();
    let (status, first) = c
        .call(
            Method::GET,
            "/api/v2/incremental/organizations.json?start_time=0&per_page=3",
            None,
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first, "organizations"), all[..3]);
    assert_eq!(
        (first["count"].clone(), first["end_of_stream"].clone()),
        (json!(3), json!(false))
    );
    let end_time = first["end_time"].as_i64().expect("end_time");
    let next = first["next_page"].as_str().expect("next").to_string();
    assert!(next.contains(&format!("start_time={end_time}")));
    let (_, second) = c.follow(&next).await;
    // the last item of a page has the page's end_time and comes again (documented duplicates)
    assert_eq!(ids(&second, "organizations"), all[2..]);
    assert_eq!(second["end_of_stream"], true);

    sim.app_delete("organizations", all[0]).expect("delete");
    sim.clock().advance(Duration::from_secs(61));
    let since = second["end_time"].as_i64().expect("end") + 1;
    let (_, third) = c
        .call(
            Method::GET,
            &format!("/api/v2/incremental/organizations?start_time={since}"),
            None,
        )
        .await;
    assert_eq!(ids(&third, "organizations"), [all[0]]);
    assert!(third["organizations"][0]["deleted_at"].is_string());
    sim.shutdown();
}

#[tokio::test]
async fn incremental_budget_is_ten_a_minute() {
    let sim = start(SimConfig {
        rate_limit: Some((700, Duration::from_secs(60))),
        incremental_limit: Some((10, Duration::from_secs(60))),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    for n in 0..10 {
        let resp = c.raw(Method::GET, &format!("{X}?start_time=0"), None).await;
        assert_eq!(resp.status().as_u16(), 200, "request {n}");
        assert_eq!(resp.headers()["x-rate-limit"], "700");
    }
    let resp = c.raw(Method::GET, &format!("{X}?start_time=0"), None).await;
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "APIRateLimitExceeded");
    assert!(body["description"]
        .as_str()
        .is_some_and(|d| d.contains("incremental")));
    // other endpoints still answer, and the refused call took nothing from the account
    let resp = c.raw(Method::GET, "/api/v2/users", None).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "689");
    sim.clock().advance(Duration::from_secs(60));
    let resp = c
        .raw(
            Method::GET,
            "/api/v2/incremental/organizations?start_time=0",
            None,
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(sim.stats().throttled, 1);
    sim.shutdown();
}
