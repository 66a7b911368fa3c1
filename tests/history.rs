//! Every change is on record: ferry.history has one row per field change ferry sent or applied,
//! with its direction and origin (the hub session's role and application_name; the app's path
//! and its own word on the source) and the conflict that decided it; retention prunes.

mod harness;

use std::time::Duration;

use harness::{eventually, props, Ctx};

/// (field, old, new, direction, operation, origin, conflict id) of a row's history.
type Entry = (
    String,
    Option<serde_json::Value>,
    Option<serde_json::Value>,
    String,
    String,
    Option<String>,
    Option<i64>,
);

async fn story(ctx: &Ctx, row: i64) -> Vec<Entry> {
    let c = ctx.hub.client().await.unwrap();
    c.query(
        "select field, old_value, new_value, direction, operation, origin, conflict_id
           from ferry.row_history('hubspot.contacts', $1)",
        &[&row],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_inbound_and_conflict_decided_changes_are_on_record() {
    let ctx = Ctx::start(3).await;
    ctx.quiesce().await;

    // a hub edit from a named console session
    let mut cfg: tokio_postgres::Config = ctx.url.parse().unwrap();
    cfg.application_name("alice-console");
    let (console, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let old_phone: Option<String> = ctx
        .one("select phone from hubspot.contacts where id = 1")
        .await;
    console
        .execute(
            "update hubspot.contacts set phone = '+1 555 0100' where id = 1",
            &[],
        )
        .await
        .unwrap();
    let out = eventually(
        "the outbound change on record",
        Duration::from_secs(10),
        || async {
            story(&ctx, 1)
                .await
                .into_iter()
                .find(|e| e.0 == "phone" && e.3 == "hub → hubspot")
        },
    )
    .await;
    assert_eq!(out.1, old_phone.map(serde_json::Value::String));
    assert_eq!(out.2, Some(serde_json::json!("+1 555 0100")));
    assert_eq!(out.4, "update");
    let origin = out.5.unwrap();
    assert!(origin.contains("via alice-console"), "{origin}");

    // an app edit, by webhook: the app's changeSource comes with it
    let id2: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 2")
        .await;
    ctx.sim
        .app_update("contacts", &id2, props(&[("lastname", "Inbound")]))
        .unwrap();
    let inb = eventually(
        "the inbound change on record",
        Duration::from_secs(10),
        || async {
            story(&ctx, 2)
                .await
                .into_iter()
                .find(|e| e.0 == "lastname" && e.3 == "hubspot → hub")
        },
    )
    .await;
    assert_eq!(inb.2, Some(serde_json::json!("Inbound")));
    assert_eq!(inb.5.as_deref(), Some("hubspot webhook (CRM_UI)"));
    assert_eq!(inb.6, None);
    ctx.quiesce().await;

    // both sides change the same field: remote_wins decides, and history names the conflict
    ctx.one::<String>("select ferry.pause('hubspot.contacts')")
        .await;
    ctx.exec("update hubspot.contacts set company = 'Hub Co' where id = 3")
        .await;
    let id3: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 3")
        .await;
    ctx.sim
        .app_update("contacts", &id3, props(&[("company", "App Co")]))
        .unwrap();
    let decided = eventually(
        "the conflict-decided change on record",
        Duration::from_secs(10),
        || async {
            story(&ctx, 3)
                .await
                .into_iter()
                .find(|e| e.0 == "company" && e.6.is_some())
        },
    )
    .await;
    assert_eq!(decided.2, Some(serde_json::json!("App Co")));
    assert_eq!(decided.3, "hubspot → hub");
    let (policy, decision): (String, String) = ctx
        .pair(&format!(
            "select policy, decision from ferry.conflicts where id = {}",
            decided.6.unwrap()
        ))
        .await;
    assert_eq!(
        (policy.as_str(), decision.as_str()),
        ("remote_wins", "remote")
    );
    ctx.one::<String>("select ferry.resume('hubspot.contacts')")
        .await;

    // retention: rows past it are pruned, the rest stay
    let all: i64 = ctx.one("select count(*) from ferry.history").await;
    ctx.exec("update ferry.field_changes set at = now() - interval '31 days' where row_key = 1")
        .await;
    let old: i64 = ctx
        .one("select count(*) from ferry.field_changes where row_key = 1")
        .await;
    assert!(old > 0);
    let pruned: i64 = ctx.one("select ferry.prune_history()").await;
    assert_eq!(pruned, old);
    let left: i64 = ctx.one("select count(*) from ferry.history").await;
    assert_eq!(left, all - old);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_off_records_nothing() {
    let ctx = Ctx::start_with(3, "history_retention = \"0s\"", "", "").await;
    ctx.quiesce().await;
    ctx.exec("update hubspot.contacts set phone = '+1 555 0199' where id = 1")
        .await;
    let id2: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 2")
        .await;
    ctx.sim
        .app_update("contacts", &id2, props(&[("lastname", "Off")]))
        .unwrap();
    eventually("both changes synced", Duration::from_secs(10), || async {
        let l: Option<String> = ctx
            .one("select lastname from hubspot.contacts where id = 2")
            .await;
        let id1: String = ctx
            .one("select hubspot_id from hubspot.contacts where id = 1")
            .await;
        (l.as_deref() == Some("Off") && ctx.remote(&id1, "phone").as_deref() == Some("+1 555 0199"))
            .then_some(())
    })
    .await;
    let n: i64 = ctx.one("select count(*) from ferry.field_changes").await;
    assert_eq!(n, 0);
    ctx.stop().await;
}
