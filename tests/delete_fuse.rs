//! Nothing destructive happens unasked: the mass-delete fuse holds deletions past its
//! threshold, in both directions, until an operator releases or discards them in SQL.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};

async fn held(ctx: &Ctx, side: &str) -> i64 {
    ctx.one(&format!(
        "select count(*) from ferry.held_deletes where side = '{side}' and released_at is null"
    ))
    .await
}

/// Records the app has deleted (archived), of the 1,000 seeded.
fn archived(ctx: &Ctx) -> usize {
    1000 - ctx.sim.records("contacts").len()
}

/// `DELETE FROM` a mapped table of 1,000 linked rows: no delete call reaches the app; the
/// status, the held list and /metrics say so; discard brings every row back with its remote
/// id and sends nothing; the same delete released is carried out in the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_delete_in_the_hub_waits_for_an_operator() {
    let ctx = Ctx::start(1000).await;
    ctx.quiesce().await;
    let before: Vec<(i64, String)> = {
        let c = ctx.hub.client().await.unwrap();
        c.query(
            "select id, hubspot_id from hubspot.contacts order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(before.len(), 1000);
    ctx.exec("delete from hubspot.contacts").await;
    eventually("every deletion held", Duration::from_secs(30), || async {
        (held(&ctx, "hub").await == 1000).then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(archived(&ctx), 0, "no delete reached the app");
    let (state, count): (String, i64) = ctx
        .pair("select state, held_deletes from ferry.status")
        .await;
    assert_eq!((state.as_str(), count), ("active, holding deletes", 1000));
    let metrics = reqwest::get(format!("{}/metrics", ctx.engine().public_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ferry_held_deletes{mapping=\"hubspot.contacts\"} 1000"),
        "{metrics}"
    );

    let said: String = ctx
        .one("select ferry.discard_deletes('hubspot.contacts')")
        .await;
    assert!(said.contains("1000 hub rows restored"), "{said}");
    let after: Vec<(i64, String)> = {
        let c = ctx.hub.client().await.unwrap();
        c.query(
            "select id, hubspot_id from hubspot.contacts order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(after, before, "every row back with its key and remote id");
    let links: i64 = ctx
        .one("select count(*) from ferry.links where remote_id is not null")
        .await;
    assert_eq!(links, 1000);
    ctx.sim.reset_stats();
    ctx.quiesce().await;
    assert_eq!(archived(&ctx), 0);
    assert_eq!(ctx.sim.records("contacts").len(), 1000, "nothing created");
    assert_eq!(ctx.sim.stats().write_requests, 0, "nothing sent to the app");
    let state: String = ctx.one("select state from ferry.status").await;
    assert_eq!(state, "active");

    // the same mass delete, released: carried out in the app
    ctx.exec("delete from hubspot.contacts").await;
    eventually("held again", Duration::from_secs(30), || async {
        (held(&ctx, "hub").await == 1000).then_some(())
    })
    .await;
    let said: String = ctx
        .one("select ferry.release_deletes('hubspot.contacts')")
        .await;
    assert!(
        said.contains("1000 records being deleted in the app"),
        "{said}"
    );
    eventually(
        "the app's records deleted",
        Duration::from_secs(60),
        || async { (archived(&ctx) == 1000).then_some(()) },
    )
    .await;
    eventually("nothing held", Duration::from_secs(10), || async {
        let n: i64 = ctx.one("select count(*) from ferry.deletes_held").await;
        (n == 0).then_some(())
    })
    .await;
    let state: String = ctx.one("select state from ferry.status").await;
    assert_eq!(state, "active");
    ctx.stop().await;
}

/// The app deleting 500 of 1,000 records at once: the hub loses at most the threshold, the
/// rest is held; release carries it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_delete_in_the_app_loses_at_most_the_threshold() {
    let ctx = Ctx::start(1000).await;
    ctx.quiesce().await;
    let ids: Vec<String> = ctx
        .column("select hubspot_id from hubspot.contacts order by id limit 500")
        .await;
    for id in &ids {
        ctx.sim.app_archive("contacts", id).unwrap();
    }
    eventually(
        "all 500 deletions handled",
        Duration::from_secs(30),
        || async {
            let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
            (1000 - rows + held(&ctx, "app").await == 500).then_some(rows)
        },
    )
    .await;
    ctx.quiesce().await;
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert!(
        rows >= 950,
        "at most the threshold (50) deleted: {rows} rows left"
    );
    let state: String = ctx.one("select state from ferry.status").await;
    assert_eq!(state, "active, holding deletes");
    let said: String = ctx
        .one("select ferry.release_deletes('hubspot.contacts')")
        .await;
    assert!(said.contains("hub rows deleted as the app did"), "{said}");
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 500);
    let held_now: i64 = ctx.one("select count(*) from ferry.deletes_held").await;
    assert_eq!(held_now, 0);
    ctx.stop().await;
}

/// A reconcile whose listing comes back empty (an outage, a token that lost its rights)
/// trips the fuse before deleting anything; release carries the deletions out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_listing_trips_the_fuse_instead_of_deleting() {
    let ctx = Ctx::start_with(200, "reconcile_interval = \"1s\"", "", "").await;
    ctx.quiesce().await;
    ctx.sim.set_empty_listings(true);
    eventually(
        "the reconcile's deletions held",
        Duration::from_secs(30),
        || async { (held(&ctx, "app").await == 200).then_some(()) },
    )
    .await;
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 200, "the hub lost nothing");
    let reason: String = ctx.one("select fuse_reason from ferry.status").await;
    assert!(
        reason.contains("reconcile listed 0 records of 200 linked"),
        "{reason}"
    );
    let said: String = ctx
        .one("select ferry.release_deletes('hubspot.contacts')")
        .await;
    assert!(
        said.contains("200 hub rows deleted as the app did"),
        "{said}"
    );
    ctx.stop().await;
}

/// Discarding the app's held deletions creates those records in the app again from the hub's
/// values, and writes their new ids back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discarding_the_apps_deletions_creates_the_records_again() {
    let ctx = Ctx::start(200).await;
    ctx.quiesce().await;
    let ids: Vec<String> = ctx
        .column("select hubspot_id from hubspot.contacts order by id limit 120")
        .await;
    for id in &ids {
        ctx.sim.app_archive("contacts", id).unwrap();
    }
    let held_now = eventually(
        "all 120 deletions handled",
        Duration::from_secs(30),
        || async {
            let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
            let h = held(&ctx, "app").await;
            (200 - rows + h == 120).then_some(h)
        },
    )
    .await;
    assert!(
        held_now >= 70,
        "at most the threshold (50) deleted: {held_now} held"
    );
    let said: String = ctx
        .one("select ferry.discard_deletes('hubspot.contacts')")
        .await;
    assert!(
        said.contains(&format!(
            "{held_now} records being created in the app again"
        )),
        "{said}"
    );
    eventually(
        "created again, new ids written back",
        Duration::from_secs(30),
        || async {
            let unlinked: i64 = ctx
                .one("select count(*) from hubspot.contacts where hubspot_id is null")
                .await;
            (unlinked == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(
        ctx.sim.records("contacts").len() as i64,
        rows,
        "the app and the hub agree"
    );
    let reused: i64 = ctx
        .one(&format!(
            "select count(*) from hubspot.contacts where hubspot_id in ({})",
            ids.iter()
                .map(|i| format!("'{i}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .await;
    assert_eq!(reused, 0, "the records were created anew, under new ids");
    let state: String = ctx.one("select state from ferry.status").await;
    assert_eq!(state, "active");
    ctx.stop().await;
}
