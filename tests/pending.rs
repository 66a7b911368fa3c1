//! Preview: ferry.pending shows, without calling the app, the exact write the next attempt
//! makes; `ferry apply --dry-run` (schema::apply_with) changes nothing.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::{eventually, Ctx};

/// (row key, operation, field, sends, state) of every pending line.
type Line = (i64, String, Option<String>, Option<String>, String);

async fn pending(ctx: &Ctx) -> Vec<Line> {
    let c = ctx.hub.client().await.unwrap();
    c.query(
        "select row_key, operation, field, sends, state from ferry.pending",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_is_what_the_next_attempt_sends() {
    let ctx = Ctx::start(3).await;
    ctx.quiesce().await;
    let (id1, id3): (String, String) = ctx
        .pair("select (select hubspot_id from hubspot.contacts where id = 1), (select hubspot_id from hubspot.contacts where id = 3)")
        .await;
    let old_phone: String = ctx
        .one("select phone from hubspot.contacts where id = 1")
        .await;
    ctx.one::<String>("select ferry.pause('hubspot.contacts')")
        .await;
    ctx.exec("update hubspot.contacts set phone = '+1 555 0142', email = 'New.Address@Example.COM' where id = 1")
        .await;
    ctx.exec(
        "insert into hubspot.contacts (email, lastname) values ('fresh@example.com', 'Fresh')",
    )
    .await;
    ctx.exec("delete from hubspot.contacts where id = 3").await;
    let lines = eventually("the three rows queued", Duration::from_secs(10), || async {
        let l = pending(&ctx).await;
        (l.iter()
            .map(|x| x.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 3)
            .then_some(l)
    })
    .await;
    assert!(lines.iter().all(|l| l.4 == "paused"), "{lines:?}");
    let by_row = |row: i64| -> Vec<(String, Option<String>, Option<String>)> {
        lines
            .iter()
            .filter(|l| l.0 == row)
            .map(|l| (l.1.clone(), l.2.clone(), l.3.clone()))
            .collect()
    };
    assert_eq!(
        by_row(1),
        vec![
            (
                "update".into(),
                Some("email".into()),
                Some("new.address@example.com".into())
            ),
            (
                "update".into(),
                Some("phone".into()),
                Some("+1 555 0142".into())
            ),
        ]
    );
    let base: Option<serde_json::Value> = ctx
        .one("select base_value from ferry.pending where row_key = 1 and field = 'phone'")
        .await;
    assert_eq!(base, Some(serde_json::Value::String(old_phone)));
    assert_eq!(by_row(3), vec![("delete".into(), None, None)]);
    let new_key: i64 = ctx
        .one("select id from hubspot.contacts where email = 'fresh@example.com'")
        .await;
    let create: BTreeMap<String, String> = by_row(new_key)
        .into_iter()
        .map(|(op, f, v)| {
            assert_eq!(op, "create");
            (f.unwrap(), v.unwrap())
        })
        .collect();
    assert_eq!(
        create,
        BTreeMap::from([
            ("email".to_string(), "fresh@example.com".to_string()),
            ("lastname".to_string(), "Fresh".to_string())
        ])
    );

    // what the app receives is what ferry.pending said
    ctx.sim.reset_stats();
    ctx.one::<String>("select ferry.resume('hubspot.contacts')")
        .await;
    ctx.quiesce().await;
    assert!(pending(&ctx).await.is_empty());
    assert_eq!(
        ctx.remote(&id1, "email").as_deref(),
        Some("new.address@example.com")
    );
    assert_eq!(ctx.remote(&id1, "phone").as_deref(), Some("+1 555 0142"));
    assert!(
        ctx.remote(&id3, "email").is_none(),
        "row 3's record deleted"
    );
    let fresh_id: String = ctx
        .one(&format!(
            "select hubspot_id from hubspot.contacts where id = {new_key}"
        ))
        .await;
    let rec = ctx.sim.get("contacts", &fresh_id).unwrap();
    for (prop, v) in &create {
        assert_eq!(rec.properties.get(prop), Some(v), "{prop}");
    }
    assert_eq!(
        ctx.sim.stats().records_written,
        3,
        "one write per pending row"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_and_changes_nothing() {
    let ctx = Ctx::start(2).await;
    ctx.quiesce().await;
    let extra = r#"{ column = "city", property = "city" },"#;
    let text = harness::config_text(
        &ctx.sim.base_url(),
        &ctx.db,
        "127.0.0.1:0",
        ("UNUSED_IN_TESTS", "UNUSED_IN_TESTS_SECRET"),
        extra,
    );
    let config = ferry::config::Config::parse(&text, "test config").unwrap();
    let snapshot = "select (select string_agg(hub_column, ',' order by hub_column) from ferry.fields)
                        || ' ' || (select string_agg(column_name, ',' order by column_name) from information_schema.columns
                                   where table_schema = 'hubspot' and table_name = 'contacts')
                        || ' ' || (select backfill_state from ferry.mappings)";
    let before: String = ctx.one(snapshot).await;
    let report = ferry::hub::schema::apply_with(&ctx.hub, &config, true)
        .await
        .unwrap();
    assert!(
        report.columns_added.iter().any(|c| c.contains("city")),
        "{report}"
    );
    let after: String = ctx.one(snapshot).await;
    assert_eq!(before, after, "the dry run changed nothing");
    assert!(!after.contains("city"));
    let pending = ferry::hub::migrate::pending(&ctx.hub).await.unwrap();
    assert!(pending.is_empty(), "{pending:?}");
    ctx.stop().await;
}
