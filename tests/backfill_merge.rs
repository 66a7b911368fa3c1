//! The backfill's set-based merge (`ferry.backfill_merge`): the base it writes for every record
//! it inserts is the row's typed values, for typed and text-only mappings, null properties and
//! records that lack some properties; a page mixing new records with records linked already merges the
//! linked ones field by field and duplicates nothing, whatever the page's order.

mod harness;

use harness::Ctx;
use serde_json::{json, Map, Value};

fn props(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
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
