//! Salesforce simulator: limit, replication and fault tests over real HTTP — `Sforce-Limit-Info`
//! counting, `REQUEST_LIMIT_EXCEEDED` and its reset a simulated day later, `/limits`,
//! getDeleted with the 15-day recycle bin and `INVALID_REPLICATION_DATE`, getUpdated, and
//! injected 5xx, 403s and lost responses.

use std::time::Duration;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::json;

use super::tests_api::{map, start, Client};
use super::wire::{floor_minute, sf_datetime};
use super::SimConfig;

fn usage(a: &super::tests_api::Answer) -> String {
    a.headers
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn daily_allocation_counts_refuses_and_resets() {
    let sim = start(SimConfig {
        daily_api_limit: 5,
        ..SimConfig::default()
    })
    .await;
    let api = Client::login(&sim).await;
    for n in 1..=4 {
        let a = api
            .call(Method::GET, "/sobjects/Contact/describe", None)
            .await;
        assert_eq!((a.status, usage(&a)), (200, format!("api-usage={n}/5")));
    }
    let a = api.call(Method::GET, "/limits", None).await;
    assert_eq!(usage(&a), "api-usage=5/5");
    assert_eq!(
        a.body,
        json!({"DailyApiRequests": {"Max": 5, "Remaining": 0}})
    );
    let a = api
        .call(Method::GET, "/sobjects/Contact/describe", None)
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(usage(&a), "api-usage=5/5");
    // logging in again is no API request and does not help
    let again = Client::login(&sim).await;
    let a = again
        .call(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"LastName": "X"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (403, "REQUEST_LIMIT_EXCEEDED"));
    assert!(sim.records("Contact").is_empty());
    let s = sim.stats();
    assert_eq!((s.api_usage, s.api_limit, s.limit_exceeded), (5, 5, 2));
    // a rolling 24 hours later the allocation is back (sessions idle out meanwhile)
    sim.clock().advance(Duration::from_secs(24 * 3600));
    let a = api.call(Method::GET, "/limits", None).await;
    assert_eq!(a.status, 401);
    let fresh = Client::login(&sim).await;
    let a = fresh.call(Method::GET, "/limits", None).await;
    assert_eq!((a.status, usage(&a)), (200, "api-usage=1/5".to_string()));
    assert_eq!(a.body["DailyApiRequests"]["Remaining"], json!(4));
    sim.shutdown();
}

#[tokio::test]
async fn get_deleted_and_the_recycle_bin() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    // one second into a minute, so the writes below all fall in it
    let now = sim.clock().now_millis();
    sim.clock()
        .shift(floor_minute(now) + TimeDelta::seconds(61) - now);
    let start_t = floor_minute(sim.clock().now_millis());
    let keep = api.create("Contact", json!({"LastName": "Keep"})).await;
    let gone = api.create("Contact", json!({"LastName": "Gone"})).await;
    api.call(Method::DELETE, &format!("/sobjects/Contact/{gone}"), None)
        .await;
    let deleted_at = sim
        .get("Contact", &gone)
        .map(|r| r.fields["SystemModstamp"].clone());
    let window = |from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>| {
        let enc = |t| crate::sim::core::query::encode(&sf_datetime(t));
        format!(
            "/sobjects/Contact/deleted/?start={}&end={}",
            enc(from),
            enc(to)
        )
    };
    let end = start_t + TimeDelta::minutes(5);
    // the current minute is not covered yet
    let a = api.call(Method::GET, &window(start_t, end), None).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["deletedRecords"], json!([]));
    sim.clock().advance(Duration::from_secs(60));
    let a = api.call(Method::GET, &window(start_t, end), None).await;
    assert_eq!(
        a.body["deletedRecords"],
        json!([{"id": gone, "deletedDate": deleted_at}])
    );
    let covered = floor_minute(sim.clock().now_millis());
    assert_eq!(a.body["latestDateCovered"], json!(sf_datetime(covered)));
    let earliest = a.body["earliestDateAvailable"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let earliest_t = super::wire::parse_datetime(&earliest).expect("earliest");
    assert!(earliest_t <= start_t && start_t - earliest_t <= TimeDelta::days(15));
    let a = api
        .call(
            Method::GET,
            &window(earliest_t - TimeDelta::minutes(1), end),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_REPLICATION_DATE"));
    let a = api.call(Method::GET, &window(end, start_t), None).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_REPLICATION_DATE"));
    let up = format!(
        "/sobjects/Contact/updated/?start={}&end={}",
        crate::sim::core::query::encode(&sf_datetime(start_t)),
        crate::sim::core::query::encode(&sf_datetime(end))
    );
    assert_eq!(
        api.call(Method::GET, &up, None).await.body["ids"],
        json!([keep])
    );

    // 15 days on, the bin is emptied: gone from getDeleted and from queryAll
    sim.clock().advance(Duration::from_secs(15 * 24 * 3600));
    let api = Client::login(&sim).await;
    let now = floor_minute(sim.clock().now_millis());
    let a = api
        .call(Method::GET, &window(now - TimeDelta::days(1), now), None)
        .await;
    assert_eq!(a.body["deletedRecords"], json!([]));
    let a = api.call(Method::GET, &window(start_t, now), None).await;
    assert_eq!((a.status, a.code()), (400, "INVALID_REPLICATION_DATE"));
    let all = api
        .call(Method::GET, "/queryAll?q=SELECT+Id+FROM+Contact", None)
        .await;
    assert_eq!(all.body["records"].as_array().map(Vec::len), Some(1));
    assert!(sim.get("Contact", &gone).is_none());
    sim.shutdown();
}

#[tokio::test]
async fn injected_faults() {
    let sim = start(SimConfig {
        error_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let api = Client::login(&sim).await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let a = api
            .call(
                Method::POST,
                "/sobjects/Account",
                Some(json!({"Name": "A"})),
            )
            .await;
        if a.status == 500 {
            assert_eq!(a.code(), "UNKNOWN_EXCEPTION");
        }
        seen.insert(a.status);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [500, 502, 503]);
    assert!(sim.records("Account").is_empty());
    assert_eq!(sim.stats().errors_injected, 30);
    sim.set_faults(0.0, 1.0, 0.0);
    let a = api.call(Method::GET, "/limits", None).await;
    assert_eq!((a.status, a.code()), (403, "REQUEST_LIMIT_EXCEEDED"));
    sim.set_faults(0.0, 0.0, 1.0);
    let a = api
        .call(
            Method::POST,
            "/sobjects/Account",
            Some(json!({"Name": "Lost"})),
        )
        .await;
    assert_eq!(a.status, 504);
    assert_eq!(sim.records("Account").len(), 1, "the write happened");
    assert_eq!(
        api.call(Method::GET, "/limits", None).await.status,
        200,
        "reads are not lost"
    );
    sim.set_faults(0.0, 0.0, 0.0);
    sim.set_empty_listings(true);
    let a = api
        .call(Method::GET, "/query?q=SELECT+Id+FROM+Account", None)
        .await;
    assert_eq!(a.body["totalSize"], json!(0));
    let id = sim
        .app_create("Account", map(json!({"Name": "App"})))
        .expect("created");
    let rec = sim.get("Account", &id).expect("record");
    assert_eq!(rec.fields["CreatedById"], json!(super::APP_USER));
    let err = sim
        .app_create("Account", map(json!({"Phone": "1"})))
        .expect_err("no name");
    assert_eq!(
        err.to_string(),
        "REQUIRED_FIELD_MISSING: Required fields are missing: [Name]"
    );
    sim.shutdown();
}
