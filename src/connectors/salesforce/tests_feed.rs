//! Salesforce connector against the simulator, the change feed: changes read from the
//! watermark minus the overlap (a change stamped behind the watermark is still seen), query
//! pages followed by `nextRecordsUrl` (and asked again when the locator expired), deletions
//! from getDeleted as archived records, and a position older than the delete log.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use super::mapping::parse_time;
use super::tests_reads::{connector, connector_with, map, paths, sim};
use super::Options;
use crate::connectors::{Connector, FeedPage, FeedStart};
use crate::sim::salesforce::SimConfig;

fn cursor_json(page: &FeedPage) -> Value {
    serde_json::from_str(&page.cursor).expect("the cursor is JSON")
}

#[tokio::test]
async fn changes_reach_back_by_the_overlap_and_carry_deletions() {
    let sim = sim(SimConfig {
        seed_contacts: 3,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    let c = sim.records("Contact");
    let props = paths(&["LastName", "Phone"]);
    let start = FeedStart {
        at: Utc::now() - TimeDelta::seconds(5),
        overlap: Duration::from_secs(60),
    };
    // the seeds changed an hour ago: before the feed's start
    let first = sf.changes("Contact", &props, None, start).await.unwrap();
    assert!(first.records.is_empty() && !first.more, "{first:?}");

    sim.app_update("Contact", &c[0].id, map(json!({"Phone": "+1 555 1000"})))
        .unwrap();
    let second = sf
        .changes("Contact", &props, Some(&first.cursor), start)
        .await
        .unwrap();
    assert_eq!(second.records.len(), 1);
    assert_eq!(second.records[0].id, c[0].id);
    assert_eq!(second.records[0].properties["Phone"], "+1 555 1000");
    let stamp = sim.get("Contact", &c[0].id).unwrap().fields["SystemModstamp"].clone();
    assert_eq!(
        cursor_json(&second)["since"],
        json!(parse_time(stamp.as_str().unwrap()).unwrap())
    );

    // a change stamped 30 s behind the watermark (a late commit, a skewed clock)
    sim.clock().rewind(Duration::from_secs(30));
    sim.app_update("Contact", &c[1].id, map(json!({"LastName": "Late"})))
        .unwrap();
    sim.clock().advance(Duration::from_secs(30));
    let no_overlap = FeedStart {
        overlap: Duration::ZERO,
        ..start
    };
    let missed = sf
        .changes("Contact", &props, Some(&second.cursor), no_overlap)
        .await
        .unwrap();
    assert!(
        !missed.records.iter().any(|r| r.id == c[1].id),
        "without the overlap the late change is missed"
    );
    let third = sf
        .changes("Contact", &props, Some(&second.cursor), start)
        .await
        .unwrap();
    let late = third.records.iter().find(|r| r.id == c[1].id).unwrap();
    assert_eq!(late.properties["LastName"], "Late");

    // a deletion comes from getDeleted once its minute is over
    sim.app_delete("Contact", &c[2].id).unwrap();
    let deleted_at = sim.get("Contact", &c[2].id).unwrap().fields["SystemModstamp"].clone();
    sim.clock().advance(Duration::from_secs(61));
    let fourth = sf
        .changes("Contact", &props, Some(&third.cursor), start)
        .await
        .unwrap();
    let gone: Vec<_> = fourth.records.iter().filter(|r| r.archived).collect();
    assert_eq!(gone.len(), 1, "{fourth:?}");
    assert_eq!(gone[0].id, c[2].id);
    assert_eq!(gone[0].updated_at, parse_time(deleted_at.as_str().unwrap()));
    assert!(gone[0].properties.is_empty());
    assert!(!fourth.more);
    assert!(sim.stats().route("GET /sobjects/Contact/deleted") >= 4);
}

#[tokio::test]
async fn query_pages_follow_the_locator_and_survive_its_expiry() {
    let sim = sim(SimConfig {
        seed_contacts: 450,
        ..SimConfig::default()
    })
    .await;
    let sf = connector_with(
        &sim,
        Options {
            page_size: 200,
            ..Options::default()
        },
    );
    let start = FeedStart {
        at: Utc::now() - TimeDelta::hours(2),
        overlap: Duration::from_secs(60),
    };
    let props = paths(&["LastName"]);
    let p1 = sf.changes("Contact", &props, None, start).await.unwrap();
    assert_eq!((p1.records.len(), p1.more), (200, true));
    assert!(cursor_json(&p1)["next"]
        .as_str()
        .unwrap()
        .contains("/query/"));
    let p2 = sf
        .changes("Contact", &props, Some(&p1.cursor), start)
        .await
        .unwrap();
    assert_eq!((p2.records.len(), p2.more), (200, true));
    let p3 = sf
        .changes("Contact", &props, Some(&p2.cursor), start)
        .await
        .unwrap();
    assert_eq!((p3.records.len(), p3.more), (50, false));
    assert!(cursor_json(&p3).get("next").is_none());
    let all: Vec<_> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| p.records.iter())
        .collect();
    assert!(
        all.windows(2).all(|w| w[0].updated_at <= w[1].updated_at),
        "oldest change first"
    );
    assert_eq!(all[449].properties["LastName"], "Contact450");
    assert_eq!(sim.stats().route("GET /query/{locator}"), 2);

    // a locator idle for 16 minutes is gone: the feed asks again from its watermark
    sim.clock().advance(Duration::from_secs(16 * 60));
    let again = sf
        .changes("Contact", &props, Some(&p1.cursor), start)
        .await
        .unwrap();
    assert!(!again.records.is_empty());
    assert_eq!(
        sim.stats().route("GET /query"),
        2,
        "the first query and one again"
    );
}

#[tokio::test]
async fn a_position_older_than_the_delete_log_restarts_from_what_it_has() {
    let sim = sim(SimConfig {
        seed_contacts: 2,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    let c = sim.records("Contact");
    sim.app_delete("Contact", &c[0].id).unwrap();
    sim.clock().advance(Duration::from_secs(61));
    let start = FeedStart {
        at: Utc::now() - TimeDelta::days(20),
        overlap: Duration::from_secs(60),
    };
    let page = sf.changes("Contact", &[], None, start).await.unwrap();
    let gone: Vec<&str> = page
        .records
        .iter()
        .filter(|r| r.archived)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(gone, [c[0].id.as_str()]);
    assert_eq!(page.records.len(), 2, "the live seed and the deletion");
    assert_eq!(
        sim.stats().route("GET /sobjects/Contact/deleted"),
        2,
        "refused, then from the earliest date available"
    );
    let covered = parse_time(cursor_json(&page)["deleted"].as_str().unwrap()).unwrap();
    assert!(covered > Utc::now() - TimeDelta::minutes(3), "{covered}");
}
