//! Round trip: backfill, hub edits reaching the app, app edits reaching the hub, creates and
//! deletes on either side.

mod harness;

use std::time::{Duration, Instant};

use harness::{eventually, Ctx};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_contacts_arrive_and_match_the_app() {
    let t0 = Instant::now();
    let ctx = Ctx::start(1000).await;
    println!(
        "1000 contacts backfilled in {:?} (including engine start)",
        t0.elapsed()
    );
    let n: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(n, 1000);
    // every remote record is linked and its values equal the hub's
    let linked: i64 = ctx
        .one("select count(*) from ferry.links where remote_id is not null")
        .await;
    assert_eq!(linked, 1000);
    for r in ctx.sim.records("contacts").iter().step_by(97) {
        let row = ctx
            .hub
            .client()
            .await
            .unwrap()
            .query_one(
                "select email, firstname, phone from hubspot.contacts where hubspot_id = $1",
                &[&r.id],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, Option<String>>(0).as_deref(),
            r.properties.get("email").map(String::as_str)
        );
        assert_eq!(
            row.get::<_, Option<String>>(1).as_deref(),
            r.properties.get("firstname").map(String::as_str)
        );
        assert_eq!(
            row.get::<_, Option<String>>(2).as_deref(),
            r.properties.get("phone").map(String::as_str)
        );
    }
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_update_reaches_the_app() {
    let ctx = Ctx::start(20).await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 3")
        .await;
    let t0 = Instant::now();
    ctx.exec("update hubspot.contacts set phone = '+15550100' where id = 3")
        .await;
    eventually("phone in the app", Duration::from_secs(5), || async {
        (ctx.remote(&id, "phone").as_deref() == Some("+15550100")).then_some(())
    })
    .await;
    println!(
        "hub UPDATE visible through the API after {:?}",
        t0.elapsed()
    );
    // only the changed field went out: others are untouched
    assert_eq!(
        ctx.remote(&id, "firstname"),
        ctx.opt::<String>("select firstname from hubspot.contacts where id = 3")
            .await
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_patch_reaches_the_hub() {
    let ctx = Ctx::start(20).await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 5")
        .await;
    let t0 = Instant::now();
    let (status, _) = ctx
        .api(
            Method::PATCH,
            &format!("/crm/v3/objects/contacts/{id}"),
            Some(json!({"properties": {"phone": "+15550199", "firstname": "Ada"}})),
        )
        .await;
    assert_eq!(status, 200);
    eventually(
        "PATCH visible in the hub",
        Duration::from_secs(5),
        || async {
            let row: Option<String> = ctx
                .opt("select phone || '/' || firstname from hubspot.contacts where id = 5")
                .await;
            (row.as_deref() == Some("+15550199/Ada")).then_some(())
        },
    )
    .await;
    println!("API PATCH visible in psql after {:?}", t0.elapsed());
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_insert_creates_a_record_and_writes_its_id_back() {
    let ctx = Ctx::start(5).await;
    let key: i64 = ctx
        .one("insert into hubspot.contacts (email, firstname, phone) values ('New.Person@Example.com', 'New', '+15550123') returning id")
        .await;
    let remote_id: String =
        eventually("remote id written back", Duration::from_secs(5), || async {
            ctx.opt::<Option<String>>(&format!(
                "select hubspot_id from hubspot.contacts where id = {key}"
            ))
            .await
            .flatten()
        })
        .await;
    let rec = ctx
        .sim
        .get("contacts", &remote_id)
        .expect("record exists in the app");
    assert_eq!(
        rec.properties.get("email").map(String::as_str),
        Some("new.person@example.com"),
        "transform lowercase applied"
    );
    assert_eq!(
        rec.properties.get("phone").map(String::as_str),
        Some("+15550123")
    );
    ctx.quiesce().await;
    assert_eq!(
        ctx.sim.records("contacts").len(),
        6,
        "exactly one record created"
    );
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 6, "the creation webhook did not duplicate the row");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_cross_in_both_directions() {
    let ctx = Ctx::start(10).await;
    // hub → app
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 2")
        .await;
    ctx.exec("delete from hubspot.contacts where id = 2").await;
    eventually(
        "record archived in the app",
        Duration::from_secs(5),
        || async {
            ctx.sim
                .get("contacts", &id)
                .map(|r| r.archived)
                .unwrap_or(false)
                .then_some(())
        },
    )
    .await;
    // app → hub (through the API, as another integration would)
    let other: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 7")
        .await;
    let (status, _) = ctx
        .api(
            Method::DELETE,
            &format!("/crm/v3/objects/contacts/{other}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    eventually("row deleted in the hub", Duration::from_secs(5), || async {
        let n: i64 = ctx
            .one("select count(*) from hubspot.contacts where id = 7")
            .await;
        (n == 0).then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(ctx.sim.records("contacts").len(), 8);
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 8);
    ctx.stop().await;
}
