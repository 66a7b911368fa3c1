//! Logical decoding streams a commit as soon as its WAL is flushed, a moment before other
//! sessions can see it — and for as long as a synchronous standby holds it. A worker that read
//! the row in that moment would find nothing to send and drop the mark: the change would be
//! lost. Here a synchronous standby that never comes holds a commit open on purpose.

mod harness;

use std::time::Duration;

use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::hubspot::{HubSpotSim, SimConfig};
use harness::{eventually, SECRET, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_held_by_synchronous_replication_is_not_lost() {
    // a private cluster: the standby setting below is server-wide
    let pg = harness::new_cluster("visibility");
    let admin = Hub::connect(&pg.url("postgres")).await.unwrap();
    let a = admin.client().await.unwrap();
    a.batch_execute("create database vis").await.unwrap();
    // every session of this database commits locally unless it asks for more
    a.batch_execute("alter database vis set synchronous_commit = local")
        .await
        .unwrap();
    let url = pg.url("vis");
    let hub = Hub::connect(&url).await.unwrap();
    let sim = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: 2,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let engine = Engine::start(
        hub.clone(),
        &harness::config(&sim.base_url(), "vis"),
        &harness::secrets(),
    )
    .await
    .unwrap();
    let c = hub.client().await.unwrap();
    eventually("backfill and first sync", Duration::from_secs(30), || async {
        let r = c
            .query_one("select (select backfill_state = 'done' from ferry.mappings), (select count(*) from ferry.outbox)", &[])
            .await
            .unwrap();
        (r.get::<_, bool>(0) && r.get::<_, i64>(1) == 0).then_some(())
    })
    .await;
    let remote: String = c
        .query_one("select hubspot_id from hubspot.contacts where id = 1", &[])
        .await
        .unwrap()
        .get(0);

    // from now on a commit that asks for a synchronous standby waits for one that never comes:
    // its WAL is flushed (and decoded) but it stays invisible until the wait is cancelled
    a.batch_execute("alter system set synchronous_standby_names = 'nobody'")
        .await
        .unwrap();
    a.batch_execute("select pg_reload_conf()").await.unwrap();
    let (held, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    eventually(
        "the standby setting in force",
        Duration::from_secs(10),
        || async {
            let v: String = held
                .query_one("show synchronous_standby_names", &[])
                .await
                .unwrap()
                .get(0);
            (v == "nobody").then_some(())
        },
    )
    .await;
    let held_pid: i32 = held
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let commit = tokio::spawn(async move {
        held.batch_execute(
            "set synchronous_commit = on;
             begin;
             update hubspot.contacts set company = 'held-update' where id = 1;
             insert into hubspot.contacts (email, firstname) values ('held@example.com', 'Held');
             commit;",
        )
        .await
    });
    // the commit is flushed and waiting for the standby ...
    let flushed: String = eventually("the commit waiting for the standby", Duration::from_secs(10), || async {
        let r = c
            .query_one(
                "select count(*) filter (where pid = $1 and wait_event = 'SyncRep'), pg_current_wal_flush_lsn()::text
                   from pg_stat_activity",
                &[&held_pid],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0) == 1).then(|| r.get::<_, String>(1))
    })
    .await;
    // ... ferry's walsender has streamed it, and the outbox stays empty for a while: a worker
    // that had planned the invisible rows would have come and gone by now
    let mut calm = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while calm < 10 {
        let r = c
            .query_one(
                "select coalesce(bool_or(sent_lsn >= $1::text::pg_lsn), false), (select count(*) from ferry.outbox)
                   from pg_stat_replication",
                &[&flushed],
            )
            .await
            .unwrap();
        calm = if r.get::<_, bool>(0) && r.get::<_, i64>(1) == 0 {
            calm + 1
        } else {
            0
        };
        assert!(
            std::time::Instant::now() < deadline,
            "the held commit was never streamed to ferry"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // release the commit: it becomes visible, and must reach the app
    a.execute("select pg_cancel_backend($1)", &[&held_pid])
        .await
        .unwrap();
    let _ = commit.await;
    a.batch_execute("alter system reset synchronous_standby_names")
        .await
        .unwrap();
    a.batch_execute("select pg_reload_conf()").await.unwrap();
    eventually(
        "the held update and insert in the app",
        Duration::from_secs(15),
        || async {
            let updated = sim
                .get("contacts", &remote)
                .and_then(|r| r.properties.get("company").cloned());
            let inserted = sim.records("contacts").iter().any(|r| {
                !r.archived
                    && r.properties.get("email").map(String::as_str) == Some("held@example.com")
            });
            (updated.as_deref() == Some("held-update") && inserted).then_some(())
        },
    )
    .await;
    engine.shutdown().await;
    sim.shutdown();
}
