//! `ferry.apply` on a batch: the plain updates take the set-based path, every other record
//! (both sides changed a field, listed twice, unknown, deleted, a value the hub refuses) the
//! per-record one, and the outcome is the same as one record at a time.

mod harness;

use harness::Ctx;
use serde_json::{json, Value};

/// A stopped engine's hub with five synced contacts; the remote ids by hub row key.
async fn hub_of_five() -> (Ctx, Vec<String>) {
    let mut ctx = Ctx::start(5).await;
    ctx.quiesce().await;
    ctx.engine.take().unwrap().shutdown().await;
    let mut ids = vec![String::new()];
    for key in 1..=5 {
        ids.push(
            ctx.one(&format!(
                "select hubspot_id from hubspot.contacts where id = {key}"
            ))
            .await,
        );
    }
    (ctx, ids)
}

async fn apply(ctx: &Ctx, records: Value) -> Value {
    ctx.one(&format!("select ferry.apply(1, '{records}'::jsonb, false)"))
        .await
}

fn record(id: &str, values: Value) -> Value {
    json!({"id": id, "updated_at": "2030-01-01T00:00:00Z", "deleted": false, "values": values})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_updates_conflicts_and_repeats_in_one_batch() {
    let (ctx, ids) = hub_of_five().await;
    // a user edit of row 2's phone: the app's change of it is a conflict (last write wins: the
    // app's update time, in 2030, is the later one)
    ctx.exec("update hubspot.contacts set phone = '+2-hub' where id = 2")
        .await;
    let base4: Value = ctx
        .one("select base from ferry.links where row_key = 4")
        .await;
    let outcome = apply(
        &ctx,
        json!([
            record(&ids[1], json!({"phone": "+1-app", "company": null})),
            record(&ids[2], json!({"phone": "+2-app"})),
            record(&ids[3], json!({"firstname": "Three"})),
            record(&ids[4], json!({"phone": base4["phone"]})),
            record(&ids[3], json!({"firstname": "Three again"})),
            record("no-such-record", json!({"phone": "+0"})),
        ]),
    )
    .await;
    // 1, 2 (the app won the conflict), 3 twice; 4 unchanged
    assert_eq!(outcome["updated"], json!(4), "{outcome}");
    assert_eq!(outcome["unchanged"], json!(1), "{outcome}");
    assert_eq!(outcome["conflicts"], json!(1), "{outcome}");
    assert_eq!(
        outcome["inserted"],
        json!(1),
        "an unknown record is inserted: {outcome}"
    );
    assert_eq!(outcome["errors"], json!([]), "{outcome}");

    type Row = (i64, Option<String>, Option<String>, Option<String>);
    let rows: Vec<Row> = {
        let c = ctx.hub.client().await.unwrap();
        c.query(
            "select id, phone, company, firstname from hubspot.contacts where id <= 4 order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    };
    assert_eq!(
        (rows[0].1.as_deref(), rows[0].2.as_deref()),
        (Some("+1-app"), None),
        "a null from the app clears the column"
    );
    assert_eq!(rows[1].1.as_deref(), Some("+2-app"), "the later write wins");
    assert_eq!(
        rows[2].3.as_deref(),
        Some("Three again"),
        "a record listed twice ends as last listed"
    );
    let decision: String = ctx
        .one("select decision from ferry.conflicts where row_key = 2 and field = 'phone'")
        .await;
    assert_eq!(decision, "remote");
    // every base now holds the values applied, for the fields the records carried
    let bases_behind: i64 = ctx
        .one(
            "select count(*) from ferry.links l join hubspot.contacts t on t.id = l.row_key
              where l.row_key <= 4
                and l.base is distinct from (select jsonb_object_agg(k, to_jsonb(t) -> k) from jsonb_object_keys(l.base) k)",
        )
        .await;
    assert_eq!(bases_behind, 0);
    let base1: Value = ctx
        .one("select base from ferry.links where row_key = 1")
        .await;
    assert_eq!(
        (&base1["phone"], &base1["company"]),
        (&json!("+1-app"), &Value::Null)
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_the_table_refuses_fails_only_its_record() {
    let (ctx, ids) = hub_of_five().await;
    ctx.exec("alter table hubspot.contacts add constraint phone_not_bad check (phone <> 'bad')")
        .await;
    let outcome = apply(
        &ctx,
        json!([
            record(&ids[1], json!({"phone": "+1-good"})),
            record(&ids[2], json!({"phone": "bad"})),
            record(&ids[3], json!({"phone": "+3-good"})),
        ]),
    )
    .await;
    assert_eq!(outcome["updated"], json!(2), "{outcome}");
    let errors = outcome["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{outcome}");
    assert_eq!(errors[0]["id"], json!(ids[2]));
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("phone_not_bad"),
        "{outcome}"
    );
    let phones: Vec<Option<String>> = ctx
        .column("select phone from hubspot.contacts where id <= 3 order by id")
        .await;
    assert_eq!(phones[0].as_deref(), Some("+1-good"));
    assert_ne!(phones[1].as_deref(), Some("bad"));
    assert_eq!(phones[2].as_deref(), Some("+3-good"));
    ctx.stop().await;
}

/// A record refused before SQL as a whole (its app id holds a NUL: see inbound/screen.rs),
/// sent with its id escaped, refuses only itself, in an apply and in a backfill page alike:
/// one dead letter, however often it comes again; the others apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_refused_before_sql_is_one_dead_letter() {
    let (ctx, ids) = hub_of_five().await;
    let refused = json!({"id": "9\\u0000x", "refused": "the id holds a NUL character"});
    for n in 0..2 {
        let outcome = apply(
            &ctx,
            json!([
                refused,
                record(&ids[1], json!({"phone": format!("+1-fine{n}")}))
            ]),
        )
        .await;
        assert_eq!(outcome["updated"], json!(1), "{outcome}");
        assert_eq!(outcome["inserted"], json!(0), "{outcome}");
        assert_eq!(outcome["errors"][0]["id"], json!("9\\u0000x"), "{outcome}");
    }
    // a backfill page: staged as merge_page stages it, merged by ferry.backfill_merge
    let c = ctx.hub.client().await.unwrap();
    c.batch_execute(
        "begin;
         create temp table if not exists ferry_stage (remote_id text, updated_at timestamptz, rec jsonb) on commit delete rows",
    )
    .await
    .unwrap();
    let fresh = json!({"id": "new-1", "updated_at": null, "deleted": false,
                       "values": {"email": "new-1@example.com", "phone": "+9"}});
    for (id, rec) in [("9\\u0000x", &refused), ("new-1", &fresh)] {
        c.execute(
            "insert into pg_temp.ferry_stage (remote_id, rec) values ($1, $2)",
            &[&id, rec],
        )
        .await
        .unwrap();
    }
    let merged: Value = c
        .query_one("select ferry.backfill_merge(1)", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute("commit").await.unwrap();
    assert_eq!(merged["inserted"], json!(1), "{merged}");
    let letters: Vec<(String, i32)> = {
        let rows = c
            .query(
                "select remote_id, times from ferry.dead_letters where direction = 'inbound'",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    assert_eq!(
        letters,
        vec![("9\\u0000x".to_string(), 3)],
        "one letter, seen three times"
    );
    let phone: String = ctx
        .one("select phone from hubspot.contacts where id = 1")
        .await;
    assert_eq!(phone, "+1-fine1");
    let new: i64 = ctx
        .one("select count(*) from hubspot.contacts where email = 'new-1@example.com'")
        .await;
    assert_eq!(new, 1);
    ctx.stop().await;
}
