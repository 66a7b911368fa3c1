//! Stripe connector against the simulator, the events feed: pages oldest first with the
//! cursor on the newest event applied, a deletion as archived, a page read twice giving the
//! same states and versions, invoices apart from customers, and a cursor older than Stripe's
//! 30 days falling back to the listing once, then following the events again.

use std::time::Duration;

use serde_json::{json, Value};

use super::tests_reads::{connector, connector_with, id, paths, sim};
use super::Options;
use crate::connectors::{Connector, FeedPage, FeedStart};
use crate::sim::stripe::{SimConfig, StripeSim};

fn start(sim: &StripeSim) -> FeedStart {
    FeedStart {
        at: sim.clock().now() - chrono::TimeDelta::seconds(5),
        overlap: Duration::from_secs(5),
    }
}

fn names(page: &FeedPage) -> Vec<(String, Value, bool)> {
    page.records
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.properties.get("name").cloned().unwrap_or(Value::Null),
                r.archived,
            )
        })
        .collect()
}

#[tokio::test]
async fn events_arrive_oldest_first_with_deletions_and_harmless_repeats() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let props = paths(&["name", "address.city"]);
    let at = start(&sim);
    let ann = id(&sim.app_create_customer(json!({"name": "Ann"})).unwrap());
    let bob = id(&sim.app_create_customer(json!({"name": "Bob"})).unwrap());
    sim.app_update_customer(&ann, json!({"name": "Ann B", "address": {"city": "Oslo"}}))
        .unwrap();
    sim.app_delete_customer(&bob).unwrap();
    // an invoice's events are not the customers feed's
    let inv = sim.app_create_invoice(&ann, json!({})).unwrap();

    let page = s.changes("customers", &props, None, at).await.unwrap();
    assert_eq!(
        names(&page),
        [
            (ann.clone(), json!("Ann B"), false),
            (bob.clone(), Value::Null, true)
        ],
        "one state per record, its latest"
    );
    assert_eq!(page.records[0].properties["address.city"], "Oslo");
    assert!(!page.more);
    let events = sim.records("events");
    let update = events
        .iter()
        .find(|e| e["type"] == "customer.updated")
        .unwrap();
    assert_eq!(
        page.records[0].updated_at.unwrap().timestamp(),
        update["created"].as_i64().unwrap(),
        "the version is the event's created"
    );
    let deleted = events
        .iter()
        .find(|e| e["type"] == "customer.deleted")
        .unwrap();
    assert_eq!(page.cursor, json!({"event": deleted["id"]}).to_string());

    // caught up: nothing; then only what happened after the cursor
    let idle = s
        .changes("customers", &props, Some(&page.cursor), at)
        .await
        .unwrap();
    assert!(idle.records.is_empty() && !idle.more);
    assert_eq!(idle.cursor, page.cursor);
    sim.app_update_customer(&ann, json!({"name": "Ann C"}))
        .unwrap();
    let next = s
        .changes("customers", &props, Some(&page.cursor), at)
        .await
        .unwrap();
    assert_eq!(names(&next), [(ann.clone(), json!("Ann C"), false)]);
    // the same page read again (a crash before its cursor was stored): the same state and version
    let again = s
        .changes("customers", &props, Some(&page.cursor), at)
        .await
        .unwrap();
    assert_eq!(again.records, next.records);
    assert_eq!(again.cursor, next.cursor);

    // the invoices feed sees the invoice, not the customers
    let inv_page = s
        .changes("invoices", &paths(&["status", "customer"]), None, at)
        .await
        .unwrap();
    assert_eq!(inv_page.records.len(), 1);
    assert_eq!(inv_page.records[0].id, id(&inv));
    assert_eq!(inv_page.records[0].properties["status"], "draft");
    assert_eq!(inv_page.records[0].properties["customer"], json!(ann));
}

#[tokio::test]
async fn pages_go_from_the_oldest_events_to_the_newest() {
    let sim = sim(SimConfig::default()).await;
    let s = connector_with(
        &sim,
        Options {
            page_limit: 2,
            ..Options::default()
        },
    );
    let props = paths(&["name"]);
    let at = start(&sim);
    for n in 1..=5 {
        sim.app_create_customer(json!({ "name": format!("C{n}") }))
            .unwrap();
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut mores = vec![];
    loop {
        let page = s
            .changes("customers", &props, cursor.as_deref(), at)
            .await
            .unwrap();
        seen.extend(page.records.iter().map(|r| r.properties["name"].clone()));
        mores.push(page.more);
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            json!("C1"),
            json!("C2"),
            json!("C3"),
            json!("C4"),
            json!("C5")
        ]
    );
    assert_eq!(mores, [true, true, false]);
}

#[tokio::test]
async fn a_cursor_older_than_thirty_days_falls_back_to_the_listing() {
    let sim = sim(SimConfig::default()).await;
    let s = connector_with(
        &sim,
        Options {
            page_limit: 2,
            ..Options::default()
        },
    );
    let props = paths(&["name"]);
    let at = start(&sim);
    let ann = id(&sim.app_create_customer(json!({"name": "Ann"})).unwrap());
    let bob = id(&sim.app_create_customer(json!({"name": "Bob"})).unwrap());
    let cy = id(&sim.app_create_customer(json!({"name": "Cy"})).unwrap());
    let mut cursor = None;
    loop {
        let page = s
            .changes("customers", &props, cursor.as_deref(), at)
            .await
            .unwrap();
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    let old = cursor.unwrap();

    sim.clock().advance(Duration::from_secs(31 * 86_400));
    sim.app_update_customer(&bob, json!({"name": "Bob B"}))
        .unwrap();
    let first = s
        .changes("customers", &props, Some(&old), at)
        .await
        .unwrap();
    assert!(first.more);
    assert!(first.cursor.starts_with(r#"{"relist""#), "{}", first.cursor);
    let mut listed = names(&first);
    let mut cursor = first.cursor;
    loop {
        let page = s
            .changes("customers", &props, Some(&cursor), at)
            .await
            .unwrap();
        listed.extend(names(&page));
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (ann.clone(), json!("Ann"), false),
        (bob.clone(), json!("Bob B"), false),
        (cy.clone(), json!("Cy"), false),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected, "every live customer once, as it is now");
    let newest = sim.records("events").last().unwrap()["id"].clone();
    assert_eq!(
        cursor,
        json!({"event": newest}).to_string(),
        "the events resume at the newest"
    );

    sim.app_update_customer(&cy, json!({"name": "Cy C"}))
        .unwrap();
    let page = s
        .changes("customers", &props, Some(&cursor), at)
        .await
        .unwrap();
    assert_eq!(names(&page), [(cy, json!("Cy C"), false)]);
}
