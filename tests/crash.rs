//! Crash safety: `ferry run` (a real process) is killed with SIGKILL at random points while
//! 10,000 hub changes (inserts, updates, deletes) flow, and restarted each time; afterwards the
//! app holds exactly the hub's final state: no duplicate records, no lost change. Some writes
//! also lose their response (the app did it, ferry cannot know), the other way to land between
//! an API call and its commit.

mod harness;

use std::time::{Duration, Instant};

use ferry::sim::hubspot::{HubSpotSim, SimConfig};
use harness::process::{free_port, scratch_dir, Ferry};
use harness::{workload, SECRET, TOKEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ENV: &[(&str, &str)] = &[("CRASH_TOKEN", TOKEN), ("CRASH_SECRET", SECRET)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let (db, url) = harness::fresh_db().await;
    let sim = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: 200,
            lost_response_rate: 0.01,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let port = free_port();
    let dir = scratch_dir("crash");
    let config = dir.join("ferry.toml");
    std::fs::write(
        &config,
        harness::config_text(
            &sim.base_url(),
            &db,
            &format!("127.0.0.1:{port}"),
            ("CRASH_TOKEN", "CRASH_SECRET"),
            "",
        )
        // the workload deletes about a thousand rows on purpose: no mass-delete fuse here
        .replacen(
            "match_key = \"email\"\n",
            "match_key = \"email\"\ndelete_fuse = { enabled = false }\n",
            1,
        ),
    )
    .unwrap();
    sim.set_webhook_url(Some(format!("http://127.0.0.1:{port}/webhooks/hubspot")));

    let mut ferry = Ferry::spawn(&config, &url, ENV);
    // the backfill lands before the workload starts
    let hub = ferry::hub::Hub::connect(&url).await.unwrap();
    harness::eventually("backfill", Duration::from_secs(30), || async {
        let c = hub.client().await.ok()?;
        let n: i64 = c
            .query_one("select count(*) from hubspot.contacts", &[])
            .await
            .ok()?
            .get(0);
        (n == 200).then_some(())
    })
    .await;

    let t0 = Instant::now();
    let load = tokio::spawn({
        let url = url.clone();
        async move { workload::run(&url, 42, 10_000).await }
    });
    let mut rng = StdRng::seed_from_u64(4242);
    let mut kills = 0;
    while !load.is_finished() || kills < 4 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..900))).await;
        ferry.kill();
        kills += 1;
        ferry = Ferry::spawn(&config, &url, ENV);
    }
    let (i, u, d) = load.await.unwrap();
    println!(
        "{i} inserts, {u} updates, {d} deletes in {:?}, ferry killed {kills} times",
        t0.elapsed()
    );

    workload::assert_converges(&url, &sim, Duration::from_secs(120)).await;
    println!(
        "converged {:?} after the workload began; {} lost responses",
        t0.elapsed(),
        sim.stats().lost_responses
    );
    let dead: i64 = hub
        .client()
        .await
        .unwrap()
        .query_one("select count(*) from ferry.dead_letters", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(dead, 0);
    drop(ferry);
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
