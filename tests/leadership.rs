//! Several ferry processes on one hub: one reads the slot (advisory-lock leadership), all run
//! workers; when the leader goes, another takes over within seconds.

mod harness;

use std::time::{Duration, Instant};

use ferry::engine::Engine;
use harness::{eventually, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_over_the_slot() {
    let mut ctx = Ctx::start(20).await;
    let second = Engine::start(ctx.hub.clone(), &ctx.config, &harness::secrets())
        .await
        .expect("second engine");
    ctx.quiesce().await;
    let readers: i64 = ctx
        .one("select count(*) from pg_stat_replication where application_name = 'ferry-listener'")
        .await;
    assert_eq!(readers, 1, "exactly one process reads the slot");

    ctx.exec("update hubspot.contacts set company = 'Two Engines' where id = 1")
        .await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 1")
        .await;
    eventually(
        "update with two engines",
        Duration::from_secs(5),
        || async { (ctx.remote(&id, "company").as_deref() == Some("Two Engines")).then_some(()) },
    )
    .await;

    // the first engine held the slot (it started first); stop it
    ctx.engine.take().unwrap().shutdown().await;
    let t0 = Instant::now();
    ctx.exec("update hubspot.contacts set company = 'Survivor' where id = 1")
        .await;
    eventually(
        "update through the follower",
        Duration::from_secs(10),
        || async { (ctx.remote(&id, "company").as_deref() == Some("Survivor")).then_some(()) },
    )
    .await;
    println!("follower took over within {:?}", t0.elapsed());
    second.shutdown().await;
    ctx.sim.shutdown();
}
