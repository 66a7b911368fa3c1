//! Faults: with the app answering 20% 5xx and 10% 429 (and some writes whose response is lost),
//! hub and app still converge, with no duplicate records.

mod harness;

use std::time::{Duration, Instant};

use harness::{workload, Ctx};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_errors_throttles_and_lost_responses() {
    // the workload deletes rows on purpose: no mass-delete fuse here
    let ctx = Ctx::start_with(100, "", "delete_fuse = { enabled = false }", "").await;
    ctx.quiesce().await;
    ctx.sim.set_faults(0.20, 0.10, 0.03);
    let t0 = Instant::now();
    let (i, u, d) = workload::run(&ctx.url, 7, 1500).await;
    println!(
        "workload: {i} inserts, {u} updates, {d} deletes in {:?}",
        t0.elapsed()
    );
    workload::assert_converges(&ctx.url, &ctx.sim, Duration::from_secs(90)).await;
    let s = ctx.sim.stats();
    println!(
        "converged after {:?}; injected {} errors, {} throttles, {} lost responses",
        t0.elapsed(),
        s.errors_injected,
        s.throttles_injected,
        s.lost_responses
    );
    assert!(
        s.errors_injected > 0 && s.throttles_injected > 0,
        "faults were injected: {s:?}"
    );
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(
        dead, 0,
        "transient faults never dead-letter within the retry budget"
    );
    ctx.sim.set_faults(0.0, 0.0, 0.0);
    ctx.stop().await;
}
