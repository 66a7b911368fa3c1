//! Restarting PostgreSQL mid-stream loses nothing: the listener reconnects and resumes from the
//! slot, the workers and the inbox get fresh connections. This binary's cluster is its own.

mod harness;

use std::time::Duration;

use ferry::hub::embedded::EmbeddedPg;
use harness::{eventually, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_nothing() {
    let ctx = Ctx::start(200).await;
    ctx.quiesce().await;
    // a stream of changes, with the server restarted in the middle of it
    for i in 0..20 {
        ctx.exec(&format!(
            "update hubspot.contacts set company = 'before-{i}' where id % 20 = {i}"
        ))
        .await;
    }
    let pg = harness::cluster();
    pg.stop();
    let restarted = tokio::task::spawn_blocking({
        let dir = pg.dir.clone();
        move || EmbeddedPg::start(&dir).expect("cluster restarts")
    })
    .await
    .unwrap();
    assert_eq!(restarted.port, pg.port, "same port after the restart");
    // the pool hands out fresh connections once the server is back
    eventually("hub reachable again", Duration::from_secs(20), || async {
        let c = ctx.hub.client().await.ok()?;
        c.execute("select 1", &[]).await.ok().map(|_| ())
    })
    .await;
    for i in 0..20 {
        let sql = format!("update hubspot.contacts set phone = '+1555{i:07}' where id % 20 = {i}");
        eventually("update after restart", Duration::from_secs(10), || async {
            ctx.hub
                .client()
                .await
                .ok()?
                .execute(&sql, &[])
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }
    ctx.exec("insert into hubspot.contacts (email, firstname) values ('after-restart@example.com', 'After')").await;
    eventually(
        "every change reached the app",
        Duration::from_secs(30),
        || async {
            let rows = ctx
                .hub
                .client()
                .await
                .ok()?
                .query(
                    "select hubspot_id, company, phone from hubspot.contacts",
                    &[],
                )
                .await
                .ok()?;
            let all = rows.iter().all(|r| {
                let Some(id) = r.get::<_, Option<String>>(0) else {
                    return false;
                };
                ctx.remote(&id, "company") == r.get::<_, Option<String>>(1)
                    && ctx.remote(&id, "phone") == r.get::<_, Option<String>>(2)
            });
            (all && rows.len() == 201).then_some(())
        },
    )
    .await;
    ctx.stop().await;
    std::mem::forget(restarted); // the harness stops the cluster at exit
}
