//! Inbound sync without webhooks and on first contact: polling alone brings every change,
//! reconcile brings remote deletions (soft or hard) and repairs drift, a replayed webhook event
//! is applied once, first-sync matching links existing hub rows instead of duplicating them, a
//! value the hub column cannot hold refuses only its record, and concurrent or stale applies of
//! one record are safe. The backfill's own tests are in backfill.rs.

mod harness;

use std::time::{Duration, Instant};

use harness::{eventually, props, Ctx};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_brings_every_change_within_one_interval() {
    let ctx = Ctx::start_with(
        3,
        "poll_interval = \"1s\"\npoll_overlap = \"2s\"\nreconcile_interval = \"0s\"",
        "",
        "",
    )
    .await;
    ctx.quiesce().await;
    ctx.sim.set_drop_webhooks(true);
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact2@example.com'")
        .await;
    ctx.sim
        .app_update("contacts", &id, props(&[("phone", "+4930123")]))
        .unwrap();
    let new_id = ctx
        .sim
        .app_create(
            "contacts",
            props(&[("email", "polled@example.com"), ("firstname", "Polly")]),
        )
        .unwrap();
    let t0 = Instant::now();
    eventually(
        "polled update and create",
        Duration::from_secs(10),
        || async {
            let phone: Option<String> = ctx
                .opt(&format!(
                    "select phone from hubspot.contacts where hubspot_id = '{id}'"
                ))
                .await;
            let created: i64 = ctx
                .one(&format!(
                    "select count(*) from hubspot.contacts where hubspot_id = '{new_id}'"
                ))
                .await;
            (phone.as_deref() == Some("+4930123") && created == 1).then_some(())
        },
    )
    .await;
    let took = t0.elapsed();
    // one interval (1 s) plus the poll itself; a webhook would have taken milliseconds, and
    // none arrived: the inbox never saw these changes
    assert!(
        took < Duration::from_millis(2500),
        "polling took {took:?}, more than one interval and its own run"
    );
    let polled: i64 = ctx
        .one("select poll_records from ferry.mapping_progress")
        .await;
    assert!(polled >= 2, "the poll counted what it read ({polled})");
    assert_eq!(
        ctx.sim.stats().webhook_events,
        0,
        "no webhook reached ferry"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_soft_deletes_remote_deletions_and_repairs_drift() {
    let ctx = Ctx::start_with(
        4,
        "poll_interval = \"0s\"\nreconcile_interval = \"1s\"",
        "soft_delete = true",
        "",
    )
    .await;
    ctx.quiesce().await;
    ctx.sim.set_drop_webhooks(true);
    let gone: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact1@example.com'")
        .await;
    let drifted: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact2@example.com'")
        .await;
    ctx.sim.app_archive("contacts", &gone).unwrap();
    ctx.sim
        .app_update("contacts", &drifted, props(&[("company", "Drifted Inc")]))
        .unwrap();
    eventually("reconcile applied the deletion and the drift", Duration::from_secs(15), || async {
        let deleted: bool = ctx.one("select _deleted_at is not null from hubspot.contacts where email = 'contact1@example.com'").await;
        let company: String = ctx.one(&format!("select company from hubspot.contacts where hubspot_id = '{drifted}'")).await;
        (deleted && company == "Drifted Inc").then_some(())
    })
    .await;
    // soft-deleted: the row stays, unlinked; nothing is pushed back to the app
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 4);
    let linked: i64 = ctx
        .one(&format!(
            "select count(*) from ferry.links where remote_id = '{gone}'"
        ))
        .await;
    assert_eq!(linked, 0);
    // the run's counters are stored when it ends
    let (deleted, repaired): (i64, i64) =
        eventually("reconcile counters", Duration::from_secs(5), || async {
            let (d, r): (i64, i64) = ctx
                .pair("select reconcile_deleted, reconcile_repaired from ferry.mapping_progress")
                .await;
            (d > 0 && r > 0).then_some((d, r))
        })
        .await;
    assert_eq!(deleted, 1, "one deletion counted");
    assert!(repaired >= 1, "the drift repair is counted");
    ctx.quiesce().await;
    assert_eq!(
        ctx.sim
            .records("contacts")
            .iter()
            .filter(|r| !r.archived)
            .count(),
        3,
        "the app still has the other three"
    );
    ctx.stop().await;
}

fn change_event(event_id: u64, object_id: &str) -> String {
    json!([{"eventId": event_id, "subscriptionType": "contact.propertyChange", "objectId": object_id.parse::<u64>().unwrap(),
            "propertyName": "phone", "occurredAt": 1, "attemptNumber": 0}])
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_event_is_applied_once() {
    let ctx = Ctx::start_with(
        3,
        "poll_interval = \"0s\"\nreconcile_interval = \"0s\"",
        "",
        "",
    )
    .await;
    ctx.quiesce().await;
    ctx.sim.set_webhook_url(None); // only our own deliveries from here on
    let x: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact1@example.com'")
        .await;
    let y: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact2@example.com'")
        .await;

    ctx.sim
        .app_update("contacts", &x, props(&[("phone", "+1000")]))
        .unwrap();
    assert_eq!(ctx.post_signed(&change_event(77, &x)).await, 204);
    eventually("first delivery applied", Duration::from_secs(5), || async {
        let p: String = ctx
            .one(&format!(
                "select phone from hubspot.contacts where hubspot_id = '{x}'"
            ))
            .await;
        (p == "+1000").then_some(())
    })
    .await;

    // the app changes x again without telling anyone; a replay of event 77 must not apply it
    ctx.sim
        .app_update("contacts", &x, props(&[("phone", "+2000")]))
        .unwrap();
    assert_eq!(
        ctx.post_signed(&change_event(77, &x)).await,
        204,
        "a replay is acknowledged (and dropped)"
    );
    // a fresh event afterwards goes through the same queue: once it is applied, the replay
    // would have been too
    ctx.sim
        .app_update("contacts", &y, props(&[("phone", "+3000")]))
        .unwrap();
    assert_eq!(ctx.post_signed(&change_event(78, &y)).await, 204);
    eventually("fresh event applied", Duration::from_secs(5), || async {
        let p: String = ctx
            .one(&format!(
                "select phone from hubspot.contacts where hubspot_id = '{y}'"
            ))
            .await;
        (p == "+3000").then_some(())
    })
    .await;
    let p: String = ctx
        .one(&format!(
            "select phone from hubspot.contacts where hubspot_id = '{x}'"
        ))
        .await;
    assert_eq!(p, "+1000", "the replayed event was not applied again");
    let seen: i64 = ctx.one("select count(*) from ferry.seen_events").await;
    assert_eq!(seen, 2);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_links_existing_rows_by_match_key() {
    // the hub already holds people before ferry ever runs: one of them is an app contact
    // (email in another case), one is not
    let setup = "create schema hubspot;
                 create table hubspot.contacts (id bigint generated always as identity primary key,
                                                email text, firstname text, lastname text, phone text, company text);
                 insert into hubspot.contacts (email, firstname, phone) values
                     ('Contact2@Example.com', 'Hub-side', '+111'),
                     ('hub-only@example.com', 'Only', '+222');";
    let ctx = Ctx::start_with(3, "", "", setup).await;
    ctx.quiesce().await;
    eventually(
        "the hub-only row is created in the app",
        Duration::from_secs(10),
        || async {
            let n: i64 = ctx
                .one("select count(*) from hubspot.contacts where hubspot_id is null")
                .await;
            (n == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(
        rows, 4,
        "three app contacts + the hub-only row; the matched row was not duplicated"
    );
    let matched_id: i64 = ctx
        .one("select id from hubspot.contacts where lower(email) = 'contact2@example.com'")
        .await;
    assert_eq!(
        matched_id, 1,
        "the existing row was linked, not a new one inserted"
    );
    let remote = ctx.sim.records("contacts");
    let live: Vec<_> = remote.iter().filter(|r| !r.archived).collect();
    assert_eq!(live.len(), 4, "no duplicate contact was created in the app");
    let emails: std::collections::BTreeSet<String> = live
        .iter()
        .filter_map(|r| r.properties.get("email").cloned())
        .collect();
    assert_eq!(emails.len(), 4);
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0, "no create was refused as a duplicate");
    ctx.stop().await;
}

/// A remote value the hub column cannot hold (text into an integer column) refuses that record
/// alone: an inbound dead letter with the database's message; the other records apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_column_cannot_hold_refuses_only_its_record() {
    let zip = r#"{ column = "zip", property = "zip", type = "integer" },"#;
    let ctx = Ctx::start_full(3, "", "", zip, "").await;
    ctx.quiesce().await;
    let (bad, good): (String, String) = (
        ctx.one("select hubspot_id from hubspot.contacts where id = 1")
            .await,
        ctx.one("select hubspot_id from hubspot.contacts where id = 2")
            .await,
    );
    for (id, value) in [(&bad, "not-a-number"), (&good, "12345")] {
        ctx.sim
            .app_update("contacts", id, props(&[("zip", value)]))
            .unwrap();
    }
    let error: String = eventually(
        "the bad record refused",
        Duration::from_secs(10),
        || async {
            ctx.opt::<String>("select error from ferry.dead_letters where direction = 'inbound'")
                .await
        },
    )
    .await;
    assert!(error.contains("integer"), "{error}");
    eventually(
        "the good record applied",
        Duration::from_secs(10),
        || async {
            let zip: Option<i32> = ctx
                .one("select zip from hubspot.contacts where id = 2")
                .await;
            (zip == Some(12345)).then_some(())
        },
    )
    .await;
    let bad_zip: Option<i32> = ctx
        .one("select zip from hubspot.contacts where id = 1")
        .await;
    assert_eq!(bad_zip, None);
    ctx.stop().await;
}

/// Two inbox workers (or two ferry processes) may apply the same record at once, and a
/// record's state read before its deletion may be applied after it: neither may duplicate a
/// row, fail a record, or bring a deleted row back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_stale_applies_of_one_record_are_safe() {
    let ctx = Ctx::start(3).await;
    ctx.quiesce().await;
    let mapping: i32 = ctx.one("select id from ferry.mappings").await;
    let now = chrono::Utc::now();
    let new = json!([{"id": "990001", "updated_at": now.to_rfc3339(), "values": {"email": "twice@example.com", "firstname": "Twice"}}]);
    let mut c1 = ctx.hub.client().await.unwrap();
    let c2 = ctx.hub.client().await.unwrap();
    let tx1 = c1.transaction().await.unwrap();
    let first: Value = tx1
        .query_one("select ferry.apply($1, $2, false)", &[&mapping, &new])
        .await
        .unwrap()
        .get(0);
    assert_eq!(first["inserted"], 1, "{first}");
    let second = {
        let new = new.clone();
        tokio::spawn(async move {
            c2.query_one("select ferry.apply($1, $2, false)", &[&mapping, &new])
                .await
                .map(|r| r.get::<_, Value>(0))
        })
    };
    eventually("the second apply waits for the first", Duration::from_secs(5), || async {
        let waiting: i64 = ctx
            .one("select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%ferry.apply%'")
            .await;
        (waiting >= 1).then_some(())
    })
    .await;
    tx1.commit().await.unwrap();
    let second = second.await.unwrap().unwrap();
    assert_eq!(second["errors"], json!([]), "{second}");
    assert_eq!(second["inserted"], 0, "{second}");
    let rows: i64 = ctx
        .one("select count(*) from hubspot.contacts where hubspot_id = '990001'")
        .await;
    assert_eq!(rows, 1);

    // deleted, then a state read before the deletion arrives: the row stays gone
    let deleted = json!([{"id": "990001", "deleted": true}]);
    let _: Value = ctx
        .hub
        .client()
        .await
        .unwrap()
        .query_one("select ferry.apply($1, $2, false)", &[&mapping, &deleted])
        .await
        .unwrap()
        .get(0);
    let stale: Value = ctx
        .hub
        .client()
        .await
        .unwrap()
        .query_one("select ferry.apply($1, $2, false)", &[&mapping, &new])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale["inserted"], 0, "{stale}");
    let rows: i64 = ctx
        .one("select count(*) from hubspot.contacts where hubspot_id = '990001'")
        .await;
    assert_eq!(rows, 0, "a stale state does not bring a deleted row back");
    // a later state (the record restored in the app) does
    let later = json!([{"id": "990001", "updated_at": (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339(), "values": {"email": "twice@example.com"}}]);
    let back: Value = ctx
        .hub
        .client()
        .await
        .unwrap()
        .query_one("select ferry.apply($1, $2, false)", &[&mapping, &later])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back["inserted"], 1, "{back}");
    ctx.stop().await;
}
