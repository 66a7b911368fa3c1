//! Conflict policies: both sides change the same field since the base. The mapping is paused
//! while the conflict is staged (the hub edit is queued, not sent) and the app's change is
//! applied through `ferry.apply`, the inbound write path, so the outcome does not depend on
//! which side ferry happens to hear first.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};
use serde_json::json;

/// Row 1's phone: the hub says "+1-hub" (a user edit), the app says "+1-app" (applied with
/// the given remote update time, in milliseconds relative to the user's edit, after the
/// record's last sync). Returns the context
/// (mapping paused) and the record's remote id.
async fn staged(policy: &str, remote_after_hub_ms: i64) -> (Ctx, String) {
    let ctx = Ctx::start_with(3, "", &format!("conflict_policy = \"{policy}\""), "").await;
    ctx.quiesce().await;
    ctx.sim.set_drop_webhooks(true);
    let msg: String = ctx.one("select ferry.pause('hubspot.contacts')").await;
    assert!(msg.contains("paused"), "{msg}");
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 1")
        .await;
    ctx.exec("update hubspot.contacts set phone = '+1-hub' where id = 1")
        .await;
    let mut props = serde_json::Map::new();
    props.insert("phone".into(), json!("+1-app"));
    ctx.sim.app_update("contacts", &id, props).unwrap();
    let at: String = ctx
        .one(&format!(
            "select to_char(((_ferry_modified ->> 'phone')::timestamptz + interval '{remote_after_hub_ms} milliseconds') at time zone 'utc',
                             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
               from hubspot.contacts where id = 1"
        ))
        .await;
    let records = json!([{"id": id, "updated_at": at, "values": {"phone": "+1-app"}}]).to_string();
    let outcome: serde_json::Value = ctx
        .one(&format!(
            "select ferry.apply((select id from ferry.mappings), '{records}'::jsonb, false)"
        ))
        .await;
    assert_eq!(outcome["conflicts"], 1, "{outcome}");
    (ctx, id)
}

async fn hub_phone(ctx: &Ctx) -> Option<String> {
    ctx.one("select phone from hubspot.contacts where id = 1")
        .await
}

async fn decision(ctx: &Ctx) -> (String, String) {
    ctx.pair("select policy, decision from ferry.conflicts order by id desc limit 1")
        .await
}

/// Resumes and waits until the app's phone is `want` and nothing is queued.
async fn resume_until_app_has(ctx: &Ctx, id: &str, want: &str) {
    let msg: String = ctx.one("select ferry.resume('hubspot.contacts')").await;
    assert!(msg.contains("resumed"), "{msg}");
    eventually("the app's value", Duration::from_secs(10), || async {
        (ctx.remote(id, "phone").as_deref() == Some(want)).then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(ctx.remote(id, "phone").as_deref(), Some(want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_wins_takes_the_apps_value() {
    let (ctx, id) = staged("remote_wins", 60_000).await;
    assert_eq!(hub_phone(&ctx).await.as_deref(), Some("+1-app"));
    assert_eq!(
        decision(&ctx).await,
        ("remote_wins".into(), "remote".into())
    );
    resume_until_app_has(&ctx, &id, "+1-app").await;
    assert_eq!(hub_phone(&ctx).await.as_deref(), Some("+1-app"));
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_wins_keeps_and_pushes_the_hub_value() {
    let (ctx, id) = staged("hub_wins", 60_000).await;
    assert_eq!(hub_phone(&ctx).await.as_deref(), Some("+1-hub"));
    assert_eq!(decision(&ctx).await, ("hub_wins".into(), "hub".into()));
    resume_until_app_has(&ctx, &id, "+1-hub").await;
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_write_wins_compares_the_field_time_with_the_record_time() {
    // the app wrote after the user: the app's value
    let (ctx, id) = staged("last_write_wins", 5_000).await;
    assert_eq!(hub_phone(&ctx).await.as_deref(), Some("+1-app"));
    assert_eq!(
        decision(&ctx).await,
        ("last_write_wins".into(), "remote".into())
    );
    resume_until_app_has(&ctx, &id, "+1-app").await;
    ctx.stop().await;
    // the user wrote after the app: the hub's value
    let (ctx, id) = staged("last_write_wins", -50).await;
    assert_eq!(hub_phone(&ctx).await.as_deref(), Some("+1-hub"));
    assert_eq!(
        decision(&ctx).await,
        ("last_write_wins".into(), "hub".into())
    );
    resume_until_app_has(&ctx, &id, "+1-hub").await;
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_holds_the_field_until_resolved_either_way() {
    for side in ["hub", "remote"] {
        let (ctx, id) = staged("manual", 0).await;
        assert_eq!(
            hub_phone(&ctx).await.as_deref(),
            Some("+1-hub"),
            "the hub value stays"
        );
        assert_eq!(decision(&ctx).await, ("manual".into(), "held".into()));
        // another field of the same row still goes out; the held one does not
        ctx.exec("update hubspot.contacts set company = 'Unrelated Inc' where id = 1")
            .await;
        let msg: String = ctx.one("select ferry.resume('hubspot.contacts')").await;
        assert!(msg.contains("resumed"), "{msg}");
        eventually("the other field sent", Duration::from_secs(10), || async {
            (ctx.remote(&id, "company").as_deref() == Some("Unrelated Inc")).then_some(())
        })
        .await;
        ctx.quiesce().await;
        assert_eq!(
            ctx.remote(&id, "phone").as_deref(),
            Some("+1-app"),
            "the held field is not pushed"
        );
        let (state, reason): (String, String) = ctx
            .pair("select state, reason from ferry.row_sync where row_key = 1")
            .await;
        assert_eq!(state, "conflict");
        assert!(reason.contains("phone"), "{reason}");
        let open: i64 = ctx.one("select open_conflicts from ferry.status").await;
        assert_eq!(open, 1);
        let conflict: i64 = ctx
            .one("select id from ferry.open_conflicts where field = 'phone'")
            .await;

        let msg: String = ctx
            .one(&format!("select ferry.resolve({conflict}, '{side}')"))
            .await;
        assert!(msg.contains("resolved"), "{msg}");
        let want = if side == "hub" { "+1-hub" } else { "+1-app" };
        eventually("both sides agree", Duration::from_secs(10), || async {
            (ctx.remote(&id, "phone").as_deref() == Some(want)
                && hub_phone(&ctx).await.as_deref() == Some(want))
            .then_some(())
        })
        .await;
        ctx.quiesce().await;
        let (resolved_by, decision): (Option<String>, String) = ctx
            .pair(&format!(
                "select resolved_by, decision from ferry.conflicts where id = {conflict}"
            ))
            .await;
        assert!(resolved_by.is_some());
        assert_eq!(decision, side);
        let state: String = ctx
            .one("select state from ferry.row_sync where row_key = 1")
            .await;
        assert_eq!(state, "synced");
        // resolving twice, or with a wrong side, is a clear error
        let c = ctx.hub.client().await.unwrap();
        let again = c
            .query_one(&format!("select ferry.resolve({conflict}, 'hub')"), &[])
            .await
            .expect_err("closed");
        assert!(
            again.as_db_error().unwrap().message().contains("not open"),
            "{again}"
        );
        let wrong = c
            .query_one(&format!("select ferry.resolve({conflict}, 'app')"), &[])
            .await
            .expect_err("bad side");
        assert!(
            wrong
                .as_db_error()
                .unwrap()
                .message()
                .contains("'hub' or 'remote'"),
            "{wrong}"
        );
        ctx.stop().await;
    }
}

/// As a user would provoke one from psql: pause, edit the hub, edit the app (its webhook is
/// applied while paused), see the open conflict, resume: the other changes go out, the
/// conflicting field waits for a decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_mapping_takes_the_apps_changes_and_records_the_conflict() {
    let ctx = Ctx::start_with(3, "", "conflict_policy = \"manual\"", "").await;
    ctx.quiesce().await;
    let _: String = ctx.one("select ferry.pause('hubspot.contacts')").await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 2")
        .await;
    ctx.exec("update hubspot.contacts set phone = '+2-hub', company = 'Hub Co' where id = 2")
        .await;
    let mut props = serde_json::Map::new();
    props.insert("phone".into(), json!("+2-app"));
    props.insert("lastname".into(), json!("App-Side"));
    ctx.sim.app_update("contacts", &id, props).unwrap();
    eventually(
        "the conflict recorded while paused",
        Duration::from_secs(10),
        || async {
            let open: i64 = ctx.one("select open_conflicts from ferry.status").await;
            (open == 1).then_some(())
        },
    )
    .await;
    let lastname: Option<String> = ctx
        .one("select lastname from hubspot.contacts where id = 2")
        .await;
    assert_eq!(
        lastname.as_deref(),
        Some("App-Side"),
        "the app's other change is applied while paused"
    );
    assert_ne!(
        ctx.remote(&id, "company").as_deref(),
        Some("Hub Co"),
        "nothing sent while paused"
    );
    let _: String = ctx.one("select ferry.resume('hubspot.contacts')").await;
    eventually(
        "the hub's other change sent",
        Duration::from_secs(10),
        || async { (ctx.remote(&id, "company").as_deref() == Some("Hub Co")).then_some(()) },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(
        ctx.remote(&id, "phone").as_deref(),
        Some("+2-app"),
        "the conflicting field waits"
    );
    let hub: Option<String> = ctx
        .one("select phone from hubspot.contacts where id = 2")
        .await;
    assert_eq!(hub.as_deref(), Some("+2-hub"));
    ctx.stop().await;
}

/// The race the worker's commit must notice: an inbound apply of the same row lands while the
/// worker's API call is in flight. Ferry's inbound write queues no echo mark, so the worker's
/// commit itself sees that the link's base moved and queues the row again: the app, which the
/// worker has just overwritten, gets the policy's outcome (here the app's later value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_apply_during_a_workers_call_still_converges() {
    let ctx = Ctx::start_with(3, "", "conflict_policy = \"remote_wins\"", "").await;
    ctx.quiesce().await;
    ctx.sim.set_drop_webhooks(true);
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 1")
        .await;
    let mut c = ctx.hub.client().await.unwrap();
    // hold the link: the worker can read the row and call the API, but not commit
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "select 1 from ferry.links where row_key = 1 for update",
        &[],
    )
    .await
    .unwrap();
    ctx.exec("update hubspot.contacts set phone = '+1-hub' where id = 1")
        .await;
    eventually(
        "the worker's call made",
        Duration::from_secs(10),
        || async { (ctx.remote(&id, "phone").as_deref() == Some("+1-hub")).then_some(()) },
    )
    .await;
    // the app's change, applied (as the inbox would) while the worker waits to commit
    let at = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let records = json!([{"id": id, "updated_at": at, "values": {"phone": "+1-app"}}]);
    let outcome: serde_json::Value = tx
        .query_one(
            "select ferry.apply((select id from ferry.mappings), $1, false)",
            &[&records],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outcome["updated"], 1, "{outcome}");
    tx.commit().await.unwrap();
    eventually(
        "both sides hold the app's value",
        Duration::from_secs(10),
        || async {
            (ctx.remote(&id, "phone").as_deref() == Some("+1-app")
                && hub_phone(&ctx).await.as_deref() == Some("+1-app"))
            .then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(ctx.remote(&id, "phone").as_deref(), Some("+1-app"));
    ctx.stop().await;
}
