//! The backfill: stopped halfway it resumes from its last page; a field added to a mapping
//! becomes a column filled by a column backfill; the app changing during a backfill and a batch
//! that fails to store both end with the hub equal to the app. Its set-based merge
//! (`ferry.backfill_merge`) writes as base the row's typed values, for typed and text-only
//! mappings, null properties and records that lack some properties; a page mixing new records
//! with records linked already merges the linked ones field by field and duplicates nothing.

mod harness;

use std::time::{Duration, Instant};

use harness::{eventually, props, Ctx};
use serde_json::{json, Value};

/// A context whose engine is stopped and whose simulator sends no webhooks: the backfill of the
/// next engine started is the only reader.
async fn ctx_for_backfill() -> Ctx {
    // the app deletes records during some of these backfills on purpose, as many as the
    // machine's speed lets the loop make: no mass-delete fuse here
    let mut ctx = Ctx::start_with(
        0,
        "poll_interval = \"0s\"\nreconcile_interval = \"0s\"",
        "delete_fuse = { enabled = false }",
        "",
    )
    .await;
    ctx.engine.take().unwrap().shutdown().await;
    ctx.sim.set_webhook_url(None);
    ctx
}

/// The mapping backfills again from its first page when an engine next starts.
async fn reset_backfill(ctx: &Ctx) {
    ctx.exec("update ferry.mappings set backfill_state = 'pending'")
        .await;
    ctx.exec("update ferry.mapping_progress set backfill_after = null, backfill_pages = 0, backfill_rows = 0").await;
}

/// The hub's remote ids are exactly the app's live records, none twice.
async fn assert_hub_holds_exactly_the_remote_set(ctx: &Ctx) {
    let remote: std::collections::BTreeSet<String> = ctx
        .sim
        .records("contacts")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let hub: Vec<String> = ctx.column("select hubspot_id from hubspot.contacts").await;
    assert_eq!(hub.len(), remote.len(), "no row twice");
    assert_eq!(
        hub.into_iter().collect::<std::collections::BTreeSet<_>>(),
        remote,
        "exactly the remote set"
    );
}

/// Links whose base differs from their row's typed values (for the keys the base holds).
async fn bases_unlike_their_rows(ctx: &Ctx) -> i64 {
    ctx.one(
        "select count(*) from ferry.links l join hubspot.contacts t on t.id = l.row_key
          where l.base is distinct from
                (select coalesce(jsonb_object_agg(k, to_jsonb(t) -> k), '{}') from jsonb_object_keys(l.base) k)",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfilled_bases_are_the_rows_typed_values() {
    let zip = r#"{ column = "zip", property = "zip", type = "integer" },"#;
    let mut ctx = Ctx::start_full(
        0,
        "poll_interval = \"0s\"\nreconcile_interval = \"0s\"",
        "",
        zip,
        "",
    )
    .await;
    ctx.engine.take().unwrap().shutdown().await;
    ctx.sim.set_webhook_url(None);
    // 250 records over three pages: a third with a zip ("0…": the integer drops the zero), a
    // third without a phone, the rest with neither
    for n in 0..250 {
        let email = format!("typed{n}@example.com");
        let zip = format!("0{n}");
        let mut p = vec![("email", email.as_str()), ("firstname", "Ada")];
        match n % 3 {
            0 => p.extend([("zip", zip.as_str()), ("phone", "+15550001")]),
            1 => p.push(("zip", zip.as_str())),
            _ => {}
        }
        ctx.sim.app_create("contacts", props(&p)).unwrap();
    }
    ctx.exec("update ferry.mappings set backfill_state = 'pending'")
        .await;
    ctx.exec("update ferry.mapping_progress set backfill_after = null, backfill_pages = 0, backfill_rows = 0").await;
    ctx.engine = Some(
        ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
            .await
            .unwrap(),
    );
    ctx.wait_backfill().await;

    let rows: i64 = ctx
        .one("select count(distinct hubspot_id) from hubspot.contacts")
        .await;
    assert_eq!(rows, 250);
    assert_eq!(
        bases_unlike_their_rows(&ctx).await,
        0,
        "every base holds its row's typed values"
    );
    let (zip, base): (Option<i32>, Value) = ctx
        .pair("select t.zip, l.base from hubspot.contacts t join ferry.links l on l.row_key = t.id where t.email = 'typed30@example.com'")
        .await;
    assert_eq!(zip, Some(30));
    assert_eq!(
        base["zip"],
        json!(30),
        "the base holds the typed value, not the app's text: {base}"
    );
    assert_eq!(base["phone"], json!("+15550001"));
    // the API answers every requested property, null when unset: the base says null too
    let base: Value = ctx
        .one("select l.base from ferry.links l join hubspot.contacts t on t.id = l.row_key where t.email = 'typed32@example.com'")
        .await;
    assert_eq!(
        (&base["phone"], &base["zip"]),
        (&Value::Null, &Value::Null),
        "{base}"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_mixing_new_and_linked_records_duplicates_nothing() {
    let mut ctx = Ctx::start(3).await;
    ctx.quiesce().await;
    ctx.engine.take().unwrap().shutdown().await;
    let linked: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 2")
        .await;
    let mapping: i32 = ctx.one("select id from ferry.mappings").await;
    let record = |id: &str, values: Value| json!({"id": id, "updated_at": "2030-01-01T00:00:00Z", "deleted": false, "values": values});
    // the page's first record (by remote id) is new, so the merge starts without probing the
    // links and finds the linked record by the hub insert's conflict
    let page = [
        record(
            "0-new",
            json!({"email": "new0@example.com", "firstname": "Zero", "lastname": "N", "phone": "+1", "company": "C"}),
        ),
        record(&linked, json!({"firstname": "Changed"})),
        record(
            "zz-new",
            json!({"email": "newzz@example.com", "firstname": "Zed"}),
        ),
    ];
    let mut client = ctx.hub.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    // as the backfill stages a page (a pooled connection may hold the table already)
    tx.batch_execute("create temp table if not exists ferry_stage (remote_id text, updated_at timestamptz, rec jsonb) on commit delete rows")
        .await
        .unwrap();
    for r in &page {
        tx.execute(
            "insert into ferry_stage values ($1::jsonb ->> 'id', ($1::jsonb ->> 'updated_at')::timestamptz, $1::jsonb)",
            &[r],
        )
        .await
        .unwrap();
    }
    let outcome: Value = tx
        .query_one("select ferry.backfill_merge($1)", &[&mapping])
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    assert_eq!(outcome["inserted"], json!(2), "{outcome}");
    assert_eq!(outcome["updated"], json!(1), "{outcome}");

    let (rows, distinct): (i64, i64) = ctx
        .pair("select count(*), count(distinct hubspot_id) from hubspot.contacts")
        .await;
    assert_eq!((rows, distinct), (5, 5), "no record twice");
    let firstname: String = ctx
        .one(&format!(
            "select firstname from hubspot.contacts where hubspot_id = '{linked}'"
        ))
        .await;
    assert_eq!(firstname, "Changed");
    assert_eq!(bases_unlike_their_rows(&ctx).await, 0);
    let base: Value = ctx
        .one("select base from ferry.links where remote_id = 'zz-new'")
        .await;
    assert_eq!(
        base,
        json!({"email": "newzz@example.com", "firstname": "Zed"}),
        "a text mapping's base is the record's values"
    );
    // the engine comes back and finds nothing to push for what the merge wrote (the records'
    // own values, noted as applied)
    let writes = ctx.sim.stats().write_requests;
    ctx.engine = Some(
        ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
            .await
            .unwrap(),
    );
    ctx.quiesce().await;
    assert_eq!(
        ctx.sim.stats().write_requests,
        writes,
        "nothing pushed back to the app"
    );
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_stopped_halfway_resumes_from_its_last_page() {
    const N: usize = 5000; // 50 pages of 100
    let mut ctx = ctx_for_backfill().await;
    for n in 0..N {
        ctx.sim
            .app_create(
                "contacts",
                props(&[("email", &format!("bulk{n}@example.com"))]),
            )
            .unwrap();
    }
    // a fresh backfill of the same mapping
    reset_backfill(&ctx).await;
    ctx.sim.reset_stats();
    let engine = ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
        .await
        .unwrap();
    let pages_before: i64 = eventually("a few pages in", Duration::from_secs(20), || async {
        let p: i64 = ctx
            .one("select backfill_pages from ferry.mapping_progress")
            .await;
        (p >= 3).then_some(p)
    })
    .await;
    engine.shutdown().await;
    let pages_done: i64 = ctx
        .one("select backfill_pages from ferry.mapping_progress")
        .await;
    let state: String = ctx.one("select backfill_state from ferry.mappings").await;
    assert!(
        pages_done >= pages_before,
        "progress is kept ({pages_done} pages, {state})"
    );
    assert_ne!(state, "done", "the backfill was stopped before its end");
    let reads_first = ctx.sim.stats().read_requests;
    ctx.sim.reset_stats();
    ctx.engine = Some(
        ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
            .await
            .unwrap(),
    );
    ctx.wait_backfill().await;
    let reads_second = ctx.sim.stats().read_requests;
    // pages of 100: the second run reads only what was left
    let total_pages = (N as u64).div_ceil(100);
    assert!(
        reads_second <= total_pages - pages_done as u64 + 1,
        "the resumed backfill read {reads_second} pages; {pages_done} of {total_pages} were done before"
    );
    // only pages read ahead and not stored yet when the engine stopped are read twice
    let read_ahead = ferry::inbound::backfill::READ_AHEAD_PAGES;
    assert!(
        reads_first + reads_second <= total_pages + read_ahead + 2,
        "pages read twice: {reads_first} + {reads_second} ({pages_done} stored before the stop, {total_pages} in all)"
    );
    assert_hub_holds_exactly_the_remote_set(&ctx).await;
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_field_becomes_a_filled_column_and_a_missing_property_is_no_crash() {
    let mut ctx = Ctx::start_with(
        3,
        "poll_interval = \"0s\"\nreconcile_interval = \"0s\"",
        "",
        "",
    )
    .await;
    ctx.quiesce().await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where email = 'contact1@example.com'")
        .await;
    ctx.sim
        .app_update("contacts", &id, props(&[("city", "Lisbon")]))
        .unwrap();
    ctx.quiesce().await;
    ctx.engine.take().unwrap().shutdown().await;

    // the mapping gains `city`, and `ghost`, a property the app does not have
    let text = harness::config_text(
        &ctx.sim.base_url(),
        &ctx.db,
        "127.0.0.1:0",
        ("UNUSED_IN_TESTS", "UNUSED_IN_TESTS_SECRET"),
        "{ column = \"city\", property = \"city\" }, { column = \"ghost\", property = \"no_such_property\" },",
    )
    .replacen("workers = 2\n", "workers = 2\npoll_interval = \"0s\"\nreconcile_interval = \"0s\"\n", 1);
    let config = ferry::config::Config::parse(&text, "test config").unwrap();
    ctx.engine = Some(
        ferry::engine::Engine::start(ctx.hub.clone(), &config, &harness::secrets())
            .await
            .unwrap(),
    );
    eventually(
        "the new column filled by a column backfill",
        Duration::from_secs(15),
        || async {
            let city: Option<Option<String>> = ctx
                .opt(&format!(
                    "select city from hubspot.contacts where hubspot_id = '{id}'"
                ))
                .await;
            let city = city.flatten();
            let state: String = ctx.one("select backfill_state from ferry.mappings").await;
            (city.as_deref() == Some("Lisbon") && state == "done").then_some(())
        },
    )
    .await;
    let ghosts: i64 = ctx.one("select count(ghost) from hubspot.contacts").await;
    assert_eq!(
        ghosts, 0,
        "a property the app does not have leaves its column empty"
    );
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 3, "the column backfill duplicated nothing");
    ctx.stop().await;
}

/// The app keeps changing while a backfill of several thousand records runs (its batches merge
/// two at a time): webhook applies race the merges, records are created and deleted behind and
/// ahead of the pages read, yet the hub ends exactly equal to the app, nothing refused or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_changes_during_a_backfill_converge() {
    const N: usize = 4000;
    let mut ctx = ctx_for_backfill().await;
    let mut ids: Vec<String> = (0..N)
        .map(|n| {
            ctx.sim
                .app_create(
                    "contacts",
                    props(&[
                        ("email", &format!("bulk{n}@example.com")),
                        ("firstname", "v0"),
                    ]),
                )
                .unwrap()
        })
        .collect();
    reset_backfill(&ctx).await;
    let engine = ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
        .await
        .unwrap();
    ctx.sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
    ctx.engine = Some(engine);

    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let mut changes_during_backfill = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "the backfill did not finish within 90 s while the app changed"
        );
        for _ in 0..20 {
            let op = next(20);
            let n = next(ids.len());
            if op == 0 {
                let id = ids.swap_remove(n);
                ctx.sim.app_archive("contacts", &id).unwrap();
            } else if op == 1 {
                let email = format!("new{changes_during_backfill}@example.com");
                ids.push(
                    ctx.sim
                        .app_create(
                            "contacts",
                            props(&[("email", &email), ("firstname", "new")]),
                        )
                        .unwrap(),
                );
            } else {
                ctx.sim
                    .app_update(
                        "contacts",
                        &ids[n],
                        props(&[("firstname", &format!("v{changes_during_backfill}"))]),
                    )
                    .unwrap();
            }
            changes_during_backfill += 1;
        }
        let done: bool = ctx
            .one("select backfill_state = 'done' from ferry.mappings")
            .await;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await; // paces the workload, not a wait
    }
    assert!(
        changes_during_backfill >= 20,
        "the app changed while the backfill ran"
    );

    let remote: std::collections::BTreeMap<String, (String, String)> = ctx
        .sim
        .records("contacts")
        .into_iter()
        .map(|r| {
            (
                r.id,
                (
                    r.properties["email"].clone(),
                    r.properties.get("firstname").cloned().unwrap_or_default(),
                ),
            )
        })
        .collect();
    eventually(
        "the hub equal to the app",
        Duration::from_secs(30),
        || async {
            let c = ctx.hub.client().await.unwrap();
            let hub: std::collections::BTreeMap<String, (String, String)> = c
                .query(
                    "select hubspot_id, email, coalesce(firstname, '') from hubspot.contacts",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            (hub == remote).then_some(())
        },
    )
    .await;
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows as usize, remote.len(), "no row twice");
    let refused: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(refused, 0, "nothing refused");
    ctx.stop().await;
}

/// A batch that fails to store (here: the hub refuses its progress update) stops the backfill
/// with an error while pages are still queued; the reader must not stay blocked on the full
/// queue: the backfill retries, and once the hub accepts again it ends with the exact set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_whose_batch_fails_retries_and_completes() {
    const N: usize = 5000;
    let mut ctx = ctx_for_backfill().await;
    for n in 0..N {
        ctx.sim
            .app_create(
                "contacts",
                props(&[("email", &format!("bulk{n}@example.com"))]),
            )
            .unwrap();
    }
    ctx.hub
        .client()
        .await
        .unwrap()
        .batch_execute(
            "create sequence refused_batches;
             create function refuse_batch() returns trigger language plpgsql as $$
             begin
                 if new.backfill_pages >= 10 then
                     perform nextval('refused_batches');
                     raise exception 'injected: the hub refuses this batch';
                 end if;
                 return new;
             end $$;
             create trigger refuse_batch before update on ferry.mapping_progress
                for each row execute function refuse_batch();",
        )
        .await
        .unwrap();
    reset_backfill(&ctx).await;
    ctx.engine = Some(
        ferry::engine::Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
            .await
            .unwrap(),
    );
    // refused, then tried again (a hung reader would leave it at one refusal)
    eventually(
        "the refused batch tried again",
        Duration::from_secs(20),
        || async {
            let refused: i64 = ctx
                .one("select case when is_called then last_value else 0 end from refused_batches")
                .await;
            (refused >= 2).then_some(())
        },
    )
    .await;
    ctx.exec("drop trigger refuse_batch on ferry.mapping_progress")
        .await;
    ctx.wait_backfill().await;
    assert_hub_holds_exactly_the_remote_set(&ctx).await;
    ctx.stop().await;
}
