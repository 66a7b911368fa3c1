//! A REST app from configuration alone, end to end: the engine between a real hub and the
//! REST simulator serving a people API (`kind = "rest"`; cursor pages, 1-second timestamps,
//! an updated-since filter, HMAC webhooks with changed fields only). Backfill; a hub edit sent
//! as one PATCH of the changed (nested) fields; a hub insert created and its id written back;
//! app edits and deletes arriving by webhook; with webhooks lost, the updated-since poll finds
//! every edit made within one second; deletions by the app's deleted-records feed, a mass
//! delete held by the fuse until released; a create whose answer was lost makes one record;
//! and the three-party run with HubSpot through one table under SIGKILLs.

mod harness;

use std::time::Duration;

use harness::parties::apps::HubSpotParty;
use harness::parties::convergence::converge;
use harness::parties::World;
use harness::rest::{RestCtx, RestParty, Shape, PEOPLE, WEBHOOK_SECRET};
use harness::{eventually, Sql};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sync_both_ways() {
    let ctx = RestCtx::people(5).await;
    let rows: i64 = ctx.one("select count(*) from crm.people").await;
    assert_eq!(rows, 5, "the backfill brought every person");
    ctx.quiesce().await;

    // an edit in the app reaches the hub by its signed webhook
    let p2 = ctx.person("record2@example.com").expect("record2");
    let id2 = p2["id"].clone();
    ctx.sim
        .edit(
            "people",
            &id2,
            json!({"phone": "+15550102", "address": {"city": "Lyon", "zip": "69001"}}),
        )
        .expect("edited");
    eventually("the app's edit in the hub", Duration::from_secs(15), || async {
        let row: Option<String> = ctx
            .opt("select concat(phone, '|', city) from crm.people where email = 'record2@example.com'")
            .await;
        (row.as_deref() == Some("+15550102|Lyon")).then_some(())
    })
    .await;
    ctx.quiesce().await;

    // a hub edit is one PATCH carrying only the changed fields, nested parts kept
    let patches = ctx.calls("PATCH /v2/people/{id}");
    ctx.exec("update crm.people set city = 'Paris', name = 'Ann Two' where email = 'record2@example.com'")
        .await;
    eventually(
        "the hub's edit in the app",
        Duration::from_secs(15),
        || async {
            let p = ctx.sim.get("people", &id2)?;
            (p["address"]["city"] == "Paris" && p["name"] == "Ann Two").then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let p = ctx.sim.get("people", &id2).unwrap();
    assert_eq!(
        p["address"]["zip"], "69001",
        "the address's other parts kept"
    );
    assert_eq!(p["phone"], "+15550102");
    assert_eq!(
        ctx.calls("PATCH /v2/people/{id}") - patches,
        1,
        "one write, no echo"
    );

    // a hub insert becomes a record, its id written back
    ctx.exec("insert into crm.people (name, email, phone) values ('New One', 'new@example.com', '+15550100')")
        .await;
    let made = eventually(
        "the hub's insert in the app",
        Duration::from_secs(15),
        || async { ctx.person("new@example.com") },
    )
    .await;
    assert_eq!(made["phone"], "+15550100");
    let id = made["id"].to_string();
    eventually("the new id in the hub", Duration::from_secs(15), || async {
        let link: Option<String> = ctx
            .one("select rest_id::text from crm.people where email = 'new@example.com'")
            .await;
        (link.as_deref() == Some(id.as_str())).then_some(())
    })
    .await;

    // a deletion in the app deletes the hub row
    let p3 = ctx.person("record3@example.com").expect("record3");
    assert!(ctx.sim.delete("people", &p3["id"]));
    eventually(
        "the app's deletion in the hub",
        Duration::from_secs(15),
        || async {
            let n: i64 = ctx
                .one("select count(*) from crm.people where email = 'record3@example.com'")
                .await;
            (n == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}

/// With every webhook lost, the poll (`updated_since` with the overlap window) finds each of
/// thirty edits made within the same second as others — the app's timestamps have 1-second
/// precision, so a poll that saw a second's first edits must still find its last ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_webhooks_lost_the_poll_finds_every_edit_of_a_second() {
    let ctx = RestCtx::people(30).await;
    ctx.quiesce().await;
    ctx.sim.set_webhook_url(None);
    let people = ctx.sim.records("people");
    let polls = || async {
        ctx.one::<i64>("select coalesce(sum(poll_records), 0)::bigint from ferry.mapping_progress")
            .await
    };
    for (burst, group) in people.chunks(10).enumerate() {
        for p in group {
            ctx.sim
                .edit(
                    "people",
                    &p["id"],
                    json!({"phone": format!("+1999{}", p["id"])}),
                )
                .expect("edited");
        }
        // the next burst once a poll has brought this one: the polls' overlap reads some of
        // these again next time, in the same sim second or the next
        let want = (burst as i64 + 1) * 10;
        eventually("the burst in the hub", Duration::from_secs(30), || async {
            let n: i64 = ctx
                .one("select count(*) from crm.people where phone like '+1999%'")
                .await;
            (n == want).then_some(())
        })
        .await;
    }
    // two more polls: whatever the overlap reads again is applied once
    let seen = polls().await;
    eventually("two more polls", Duration::from_secs(30), || async {
        (polls().await >= seen + 1).then_some(())
    })
    .await;
    let applied: i64 = ctx
        .one(
            "select count(*) from ferry.field_changes
              where field = 'phone' and direction = 'app_to_hub' and new_value::text like '%+1999%'",
        )
        .await;
    assert_eq!(
        applied, 30,
        "each edit applied once, however often it was read"
    );
    assert_eq!(ctx.calls("PATCH /v2/people/{id}"), 0, "and never sent back");
    ctx.stop().await;
}

/// With polling and the reconcile off, an app edit reaches the hub by its webhook alone: the
/// event names the changed fields, ferry fetches the record and applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_field_events_alone_bring_app_edits() {
    let ctx = RestCtx::start(
        5,
        "poll_interval = \"0s\"\nreconcile_interval = \"0s\"",
        PEOPLE,
        false,
        Shape::default(),
    )
    .await;
    ctx.quiesce().await;
    let gets = ctx.calls("GET /v2/people/{id}");
    let p = ctx.person("record3@example.com").expect("record3");
    ctx.sim
        .edit("people", &p["id"], json!({"phone": "+41 44 000 00 03"}))
        .expect("edited");
    eventually("the edit in the hub", Duration::from_secs(20), || async {
        ctx.opt::<String>(
            "select phone from crm.people where email = 'record3@example.com' and phone = '+41 44 000 00 03'",
        )
        .await
    })
    .await;
    assert!(
        ctx.calls("GET /v2/people/{id}") > gets,
        "the record fetched: its event carried the changed fields only"
    );
    let polled: i64 = ctx
        .one("select coalesce(sum(poll_records), 0)::bigint from ferry.mapping_progress")
        .await;
    assert_eq!(polled, 0, "no poll ran");
    let failed: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(failed, 0);
    ctx.stop().await;
}

/// A create the app made but whose answer was lost (as a SIGKILL between the call and the
/// commit leaves it) is found by its match key before it is sent again: one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_makes_one_record() {
    let ctx = RestCtx::people(2).await;
    ctx.quiesce().await;
    ctx.sim.faults().set_rates(0.0, 0.0, 1.0);
    ctx.exec("insert into crm.people (name, email) values ('Lost Answer', 'lost@example.com')")
        .await;
    eventually(
        "the create made in the app",
        Duration::from_secs(15),
        || async { ctx.person("lost@example.com") },
    )
    .await;
    ctx.sim.faults().set_rates(0.0, 0.0, 0.0);
    assert!(
        ctx.sim.stats().lost_responses >= 1,
        "the create's answer was lost"
    );
    let made = ctx.person("lost@example.com").unwrap();
    let id = made["id"].to_string();
    eventually("the record linked", Duration::from_secs(30), || async {
        let link: Option<String> = ctx
            .one("select rest_id::text from crm.people where email = 'lost@example.com'")
            .await;
        (link.as_deref() == Some(id.as_str())).then_some(())
    })
    .await;
    ctx.quiesce().await;
    let copies = ctx
        .sim
        .records("people")
        .into_iter()
        .filter(|p| p["email"] == "lost@example.com")
        .count();
    assert_eq!(copies, 1, "one record for one hub row");
    ctx.stop().await;
}

/// An app that gives a deleted record's id to the next new one (`reused_ids`): with the
/// deletion's webhook lost, the new record still becomes a new hub row, never lands on the old
/// one, and the reconcile removes the old row; a hub edit of the old row is not written to
/// the new record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_come_by_the_deleted_records_feed_and_pass_the_fuse() {
    let mapping = PEOPLE.replace(
        "delete_fuse = { enabled = false }",
        r#"delete_fuse = { rows = 3, share = 0.1, window = "10m" }"#,
    );
    let ctx = RestCtx::start(
        30,
        r#"poll_interval = "1s""#,
        &mapping,
        false,
        Shape {
            deleted_log: true,
            ..Shape::default()
        },
    )
    .await;
    ctx.quiesce().await;
    // no webhooks and no reconcile: the deleted-records feed alone brings deletions
    ctx.sim.set_webhook_url(None);
    let people = ctx.sim.records("people");
    let rows = |n: i64| {
        let ctx = &ctx;
        move || async move {
            let have: i64 = ctx.one("select count(*) from crm.people").await;
            (have == n).then_some(())
        }
    };
    assert!(ctx.sim.delete("people", &people[0]["id"]));
    eventually("one deletion applied", Duration::from_secs(20), rows(29)).await;
    let tombstones: i64 = ctx.one("select count(*) from ferry.tombstones").await;
    assert_eq!(tombstones, 1);

    // ten at once: past 3 rows and a tenth of the 29 linked ones, held for an operator
    for p in &people[1..11] {
        assert!(ctx.sim.delete("people", &p["id"]));
    }
    eventually("the mass delete held", Duration::from_secs(20), || async {
        let held: i64 = ctx
            .one("select count(*) from ferry.deletes_held where side = 'app'")
            .await;
        let have: i64 = ctx.one("select count(*) from crm.people").await;
        // a poll may have caught the first few alone (allowed); the rest wait, rows kept
        (held >= 7 && held + (29 - have) == 10).then_some(())
    })
    .await;
    let said: String = ctx.one("select ferry.release_deletes('rest.people')").await;
    assert!(said.contains("deleted"), "{said}");
    eventually(
        "released and carried out",
        Duration::from_secs(20),
        rows(19),
    )
    .await;
    let held: i64 = ctx.one("select count(*) from ferry.deletes_held").await;
    assert_eq!(held, 0);
    assert_eq!(
        ctx.sim.records("people").len(),
        19,
        "the app keeps the rest"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_reused_after_a_delete_never_attaches_a_new_record_to_an_old_row() {
    let ctx = RestCtx::start(
        3,
        "poll_interval = \"1s\"\nreconcile_interval = \"3s\"",
        PEOPLE,
        false,
        Shape {
            reused_ids: true,
            ..Shape::default()
        },
    )
    .await;
    ctx.quiesce().await;
    ctx.sim.set_webhook_url(None);
    let old = ctx.person("record2@example.com").expect("record2");
    let old_link: String = ctx
        .one("select rest_id::text from crm.people where email = 'record2@example.com'")
        .await;
    assert!(ctx.sim.delete("people", &old["id"]));
    let new = ctx.sim.insert(
        "people",
        json!({"email": "reborn@example.com", "name": "Reborn"}),
    );
    assert_eq!(
        new["id"], old["id"],
        "the simulator gave the freed id again"
    );
    // a hub edit of the old row meanwhile must not reach the new record
    ctx.exec("update crm.people set name = 'Old Edit' where email = 'record2@example.com'")
        .await;
    let new_link = eventually(
        "the new record in the hub",
        Duration::from_secs(20),
        || async {
            ctx.opt::<String>(
                "select rest_id::text from crm.people where email = 'reborn@example.com'",
            )
            .await
        },
    )
    .await;
    assert_ne!(new_link, old_link, "a new key for the new record");
    eventually(
        "the old row gone by the reconcile",
        Duration::from_secs(30),
        || async {
            let n: i64 = ctx
                .one("select count(*) from crm.people where email = 'record2@example.com'")
                .await;
            (n == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let now = ctx.sim.get("people", &new["id"]).expect("the new record");
    assert_eq!(now["name"], "Reborn", "the old row's edit never reached it");
    assert_eq!(now["email"], "reborn@example.com");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_hubspot_and_a_rest_app_converge_through_sigkills() {
    let w = World::start(HubSpotParty::start().await, RestParty::start().await).await;
    converge(w, ["hs", "re"]).await;
}

/// Posts one event as the app signs its deliveries.
async fn deliver(ctx: &RestCtx, event: &Value) -> u16 {
    use ferry::sim::rest::profile::{Algorithm, Encoding};
    let body = event.to_string();
    let ts = chrono::Utc::now().timestamp().to_string();
    let text = format!("{ts}.{body}");
    let sig = ferry::sim::rest::hmac_signature(
        Algorithm::Sha256,
        Encoding::Hex,
        WEBHOOK_SECRET.as_bytes(),
        text.as_bytes(),
    );
    reqwest::Client::new()
        .post(ctx.engine.as_ref().expect("engine").webhook_url("rest"))
        .header("X-People-Timestamp", ts)
        .header("X-People-Signature", format!("sha256={sig}"))
        .body(body)
        .send()
        .await
        .expect("ferry answers")
        .status()
        .as_u16()
}

/// Events that carry the whole record (`carries = "records"`) are applied without asking the
/// app again when they are strictly newer than the state applied; a late delivery of an older
/// state, or of one from the same (whole) second, is not applied: its record is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_record_events_are_applied_without_a_fetch_unless_in_doubt() {
    let shape = Shape {
        whole_records: true,
        ..Shape::default()
    };
    let engine = "poll_interval = \"0s\"\nreconcile_interval = \"0s\"";
    let ctx = RestCtx::start(3, engine, PEOPLE, false, shape).await;
    ctx.quiesce().await;
    let gets = || ctx.calls("GET /v2/people/{id}");
    let phone = || async {
        ctx.one::<Option<String>>(
            "select phone from crm.people where email = 'record1@example.com'",
        )
        .await
    };
    let before = gets();
    let old = ctx.person("record1@example.com").expect("record1");
    // the app's edit, seconds after the backfill's state: the event alone brings it
    ctx.sim.clock().advance(Duration::from_secs(3));
    let new = ctx
        .sim
        .edit("people", &old["id"], json!({"phone": "+111"}))
        .expect("edited");
    eventually(
        "the carried record applied",
        Duration::from_secs(10),
        || async { (phone().await.as_deref() == Some("+111")).then_some(()) },
    )
    .await;
    assert_eq!(gets(), before, "applied from the event, no fetch");

    // late deliveries the app never sent in this order: the backfill's state, and a state of
    // the current second that is not the app's — neither is applied, both records fetched
    ctx.sim.set_webhook_url(None);
    let event = |n: u32, record: &Value| {
        json!({"id": format!("evt_late_{n}"), "type": "people.updated", "resource": "people",
               "occurred_at": record["updated_at"], "data": record})
    };
    let mut same_second = new.clone();
    same_second["phone"] = json!("+222");
    assert_eq!(deliver(&ctx, &event(1, &old)).await, 204);
    assert_eq!(deliver(&ctx, &event(2, &same_second)).await, 204);
    eventually("both records fetched", Duration::from_secs(10), || async {
        (gets() >= before + 2).then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(
        phone().await.as_deref(),
        Some("+111"),
        "the app's state stands"
    );
    let letters: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(letters, 0);
    ctx.stop().await;
}
