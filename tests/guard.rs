//! Field directions enforced by the mirror table's trigger: a user write to a read-only column
//! fails with an error naming the column and its owner and changes nothing; user writes stamp
//! per-column times; ferry's own writes pass.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};
use serde_json::json;

const LIFECYCLE: &str =
    r#"{ column = "lifecycle", property = "lifecyclestage", direction = "inbound" },"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_columns_refuse_user_writes_and_take_ferrys() {
    let ctx = Ctx::start_full(5, "", "", LIFECYCLE, "").await;
    ctx.quiesce().await;
    let c = ctx.hub.client().await.unwrap();

    // a user write to the inbound column: refused, with the column and the owning app named
    let before: Option<String> = ctx
        .one("select lifecycle from hubspot.contacts where id = 1")
        .await;
    let err = c
        .execute(
            "update hubspot.contacts set lifecycle = 'customer', firstname = 'Still' where id = 1",
            &[],
        )
        .await
        .expect_err("a read-only column refuses user writes");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.code(),
        &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE
    );
    assert!(
        db.message().contains("\"lifecycle\"") && db.message().contains("hubspot"),
        "{}",
        db.message()
    );
    let after: Option<String> = ctx
        .one("select lifecycle from hubspot.contacts where id = 1")
        .await;
    let first: Option<String> = ctx
        .one("select firstname from hubspot.contacts where id = 1")
        .await;
    assert_eq!(after, before, "nothing changed");
    assert_ne!(
        first.as_deref(),
        Some("Still"),
        "the whole statement failed"
    );
    // the remote id column is ferry's
    let err = c
        .execute(
            "update hubspot.contacts set hubspot_id = 'x' where id = 1",
            &[],
        )
        .await
        .expect_err("ferry's column");
    assert!(
        err.as_db_error().unwrap().message().contains("hubspot_id"),
        "{err}"
    );
    // inserting a value into it is a write too
    assert!(c
        .execute(
            "insert into hubspot.contacts (email, lifecycle) values ('ro@example.com', 'lead')",
            &[]
        )
        .await
        .is_err());

    // a user write to a writable column stamps that column only
    c.execute(
        "update hubspot.contacts set firstname = 'Stamped' where id = 2",
        &[],
    )
    .await
    .unwrap();
    let stamps: serde_json::Value = ctx
        .one("select _ferry_modified from hubspot.contacts where id = 2")
        .await;
    let keys: Vec<&String> = stamps
        .as_object()
        .expect("stamps")
        .keys()
        .filter(|k| *k != "~by")
        .collect();
    assert_eq!(keys, vec!["firstname"], "{stamps}");
    // and who wrote it, for ferry.history's origin
    let writers: Vec<&String> = stamps["~by"].as_object().expect("writers").keys().collect();
    assert_eq!(writers, vec!["firstname"], "{stamps}");
    let stamped_recently: bool =
        ctx.one("select (_ferry_modified ->> 'firstname')::timestamptz > now() - interval '1 minute' from hubspot.contacts where id = 2").await;
    assert!(stamped_recently);

    // ferry's own write of the inbound column, from the app
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 3")
        .await;
    let mut props = serde_json::Map::new();
    props.insert("lifecyclestage".into(), json!("customer"));
    ctx.sim.app_update("contacts", &id, props).unwrap();
    eventually(
        "the app's value in the read-only column",
        Duration::from_secs(10),
        || async {
            let v: Option<String> = ctx
                .one("select lifecycle from hubspot.contacts where id = 3")
                .await;
            (v.as_deref() == Some("customer")).then_some(())
        },
    )
    .await;
    let stamps: Option<serde_json::Value> = ctx
        .one("select _ferry_modified from hubspot.contacts where id = 3")
        .await;
    assert!(
        stamps.as_ref().is_none_or(|s| s.get("lifecycle").is_none()),
        "ferry's writes are not user writes: {stamps:?}"
    );

    // the rules are readable in SQL
    let writable: bool = ctx
        .one("select writable from ferry.writable_columns where hub_table = 'contacts' and column_name = 'lifecycle'")
        .await;
    assert!(!writable);
    ctx.stop().await;
}
