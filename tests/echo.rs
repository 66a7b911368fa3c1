//! No echo: a hub edit causes exactly one API write; an inbound change causes none.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_edit_is_exactly_one_write() {
    let ctx = Ctx::start(50).await;
    ctx.quiesce().await;
    ctx.sim.reset_stats();
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 10")
        .await;
    ctx.exec("update hubspot.contacts set company = 'Echo Inc' where id = 10")
        .await;
    eventually("update in the app", Duration::from_secs(5), || async {
        (ctx.remote(&id, "company").as_deref() == Some("Echo Inc")).then_some(())
    })
    .await;
    ctx.quiesce().await;
    let s = ctx.sim.stats();
    assert_eq!(s.write_requests, 1, "one API write for one hub edit: {s:?}");
    assert_eq!(s.records_written, 1, "{s:?}");
    assert!(
        s.webhook_events >= 1,
        "the app announced the change back (the echo ferry must ignore): {s:?}"
    );
    let queued: i64 = ctx.one("select count(*) from ferry.outbox").await;
    assert_eq!(queued, 0);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_insert_is_exactly_one_write() {
    let ctx = Ctx::start(5).await;
    ctx.quiesce().await;
    ctx.sim.reset_stats();
    ctx.exec("insert into hubspot.contacts (email, firstname) values ('once@example.com', 'Once')")
        .await;
    eventually("created in the app", Duration::from_secs(5), || async {
        ctx.sim
            .records("contacts")
            .iter()
            .any(|r| r.properties.get("email").map(String::as_str) == Some("once@example.com"))
            .then_some(())
    })
    .await;
    ctx.quiesce().await;
    let s = ctx.sim.stats();
    assert_eq!(s.write_requests, 1, "{s:?}");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_changes_cause_no_writes() {
    let ctx = Ctx::start(50).await;
    ctx.quiesce().await;
    ctx.sim.reset_stats();
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 20")
        .await;
    let mut props = serde_json::Map::new();
    props.insert("lastname".into(), json!("Changed-In-App"));
    ctx.sim.app_update("contacts", &id, props).unwrap();
    let mut created = serde_json::Map::new();
    created.insert("email".into(), json!("from-app@example.com"));
    created.insert("firstname".into(), json!("App"));
    let new_id = ctx.sim.app_create("contacts", created).unwrap();
    ctx.sim
        .app_archive(
            "contacts",
            &ctx.one::<String>("select hubspot_id from hubspot.contacts where id = 21")
                .await,
        )
        .unwrap();
    eventually(
        "inbound changes applied",
        Duration::from_secs(5),
        || async {
            let ok: bool = ctx
                .one(&format!(
                "select (select lastname from hubspot.contacts where id = 20) = 'Changed-In-App'
                    and exists (select 1 from hubspot.contacts where hubspot_id = '{new_id}')
                    and not exists (select 1 from hubspot.contacts where id = 21)"
            ))
                .await;
            ok.then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let s = ctx.sim.stats();
    assert_eq!(
        s.write_requests, 0,
        "inbound changes must not be written back: {s:?}"
    );
    ctx.stop().await;
}

/// Rows inserted by ferry from the app's records are announced with `ferry.note_applied` in the
/// same transaction; the listener queues no mark for them (their base already holds what was
/// written). The proof: a noted row is never created in the app, while a row a user inserts in the
/// same transaction, and one inserted in the next, both are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_noted_as_inserted_by_ferry_queue_no_mark() {
    let ctx = Ctx::start(5).await;
    ctx.quiesce().await;
    ctx.sim.reset_stats();
    let mut c = ctx.hub.client().await.unwrap();
    let tx = c.transaction().await.unwrap();
    let noted: i64 = tx
        .query_one(
            "insert into hubspot.contacts (email) values ('noted@example.com') returning id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "insert into hubspot.contacts (email) values ('same-tx@example.com')",
        &[],
    )
    .await
    .unwrap();
    tx.execute(
        "select ferry.note_applied((select id from ferry.mappings), array[$1::bigint])",
        &[&noted],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    ctx.exec("insert into hubspot.contacts (email) values ('after@example.com')")
        .await;
    let emails = |ctx: &Ctx| -> Vec<String> {
        ctx.sim
            .records("contacts")
            .iter()
            .filter_map(|r| r.properties.get("email").cloned())
            .collect()
    };
    eventually(
        "the user's rows created in the app",
        Duration::from_secs(5),
        || async {
            let e = emails(&ctx);
            (e.contains(&"same-tx@example.com".to_string())
                && e.contains(&"after@example.com".to_string()))
            .then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    assert!(
        !emails(&ctx).contains(&"noted@example.com".to_string()),
        "a noted row is not pushed"
    );
    assert_eq!(ctx.sim.stats().records_written, 2, "{:?}", ctx.sim.stats());
    ctx.stop().await;
}
