//! `ferry bench outbound`: hub commits → API writes, measured against the simulator, with the
//! same-run baselines the benchmark contract asks for (pg_recvlogical on the same WAL; the
//! API's ideal rate under a rate limit).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::cpu::CpuSnapshot;
use super::{percentile, BenchError, Rig};
use crate::config::Secrets;
use crate::engine::Engine;
use crate::sim::hubspot::{HubSpotSim, SimConfig};

pub struct Options {
    pub rows: usize,
    pub latency_samples: usize,
    pub rate_limited_secs: u64,
    /// Outbound workers of the engine under test.
    pub workers: usize,
}

const TOKEN: &str = "bench-token";

fn secrets() -> HashMap<String, Secrets> {
    HashMap::from([(
        "hubspot".to_string(),
        Secrets {
            token: TOKEN.into(),
            webhook_secret: Some("bench".into()),
        },
    )])
}

async fn start_sim(
    rows: usize,
    rate_limit: Option<(u32, Duration)>,
) -> Result<HubSpotSim, BenchError> {
    HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            seed_contacts: rows,
            rate_limit,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("simulator: {e}")))
}

/// Waits until `f` holds, polling every `every`; errors after `limit`.
async fn until(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<Duration, BenchError> {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > limit {
            return Err(BenchError::Timeout(what.to_string()));
        }
        tokio::time::sleep(every).await;
    }
    Ok(t0.elapsed())
}

pub async fn run(data_dir: &Path, opts: Options) -> Result<(), BenchError> {
    let rig = Rig::start(data_dir, "ferry_bench_outbound").await?;
    println!("# ferry bench outbound ({} rows)", opts.rows);

    // ---- throughput: N single-row UPDATE transactions queued in the WAL, then drained ----
    let sim = start_sim(opts.rows, None).await?;
    let config = rig.config(&sim.base_url(), None, opts.workers)?;
    let engine = Engine::start(rig.hub.clone(), &config, &secrets()).await?;
    rig.wait_backfill(opts.rows).await?;
    rig.wait_outbox_empty().await?;
    engine.shutdown().await;

    // a second slot, created now, sees exactly the same WAL as ferry's
    rig.create_baseline_slot().await?;
    let generated = Instant::now();
    rig.update_each_row_once(opts.rows).await?;
    let gen_secs = generated.elapsed().as_secs_f64();
    let end_lsn = rig.current_lsn().await?;
    println!(
        "generated {} single-row UPDATE transactions in {gen_secs:.2} s",
        opts.rows
    );

    sim.reset_stats();
    let engine = Engine::start(rig.hub.clone(), &config, &secrets()).await?;
    // timed from the moment the engine runs: the queued WAL, decoded, marked, written
    let t0 = Instant::now();
    let cpu = CpuSnapshot::take();
    let n = opts.rows as u64;
    until(
        "all changes accepted",
        Duration::from_secs(600),
        Duration::from_millis(5),
        || sim.stats().records_written >= n,
    )
    .await?;
    let ferry_secs = t0.elapsed().as_secs_f64();
    let cpu_report = cpu.report_since(&rig.hub).await;
    let stats = sim.stats();
    engine.shutdown().await;
    let recv_secs = rig.drain_baseline(&end_lsn).await?;
    let ferry_rate = opts.rows as f64 / ferry_secs;
    let recv_rate = opts.rows as f64 / recv_secs;
    println!(
        "throughput: {ferry_rate:.0} changes/s through ferry to the API ({} API calls, {:.1} records/call); \
         pg_recvlogical drains the same WAL at {recv_rate:.0} changes/s; ratio {:.3}",
        stats.write_requests,
        stats.records_written as f64 / stats.write_requests.max(1) as f64,
        ferry_rate / recv_rate
    );
    println!("{cpu_report}");
    println!(
        "{}",
        json!({"bench": "outbound.throughput", "changes": opts.rows, "seconds": ferry_secs, "changes_per_s": ferry_rate,
               "pg_recvlogical_changes_per_s": recv_rate, "ratio": ferry_rate / recv_rate,
               "api_calls": stats.write_requests})
    );

    // ---- the cost of ferry.history: the same drain with history off and on, alternated ----
    let mut rates: HashMap<bool, Vec<f64>> = HashMap::new();
    for (round, history) in [false, true, false, true].into_iter().enumerate() {
        let mut variant = config.clone();
        variant.engine.history_retention = if history {
            Duration::from_secs(30 * 86400)
        } else {
            Duration::ZERO
        };
        rig.update_each_row_to(opts.rows, &format!("history{round}-"))
            .await?;
        sim.reset_stats();
        let engine = Engine::start(rig.hub.clone(), &variant, &secrets()).await?;
        let t0 = Instant::now();
        until(
            "all changes accepted",
            Duration::from_secs(600),
            Duration::from_millis(5),
            || sim.stats().records_written >= n,
        )
        .await?;
        let secs = t0.elapsed().as_secs_f64();
        engine.shutdown().await;
        rates.entry(history).or_default().push(n as f64 / secs);
    }
    let (on, off) = super::history_best(&rates);
    println!(
        "history: drain {on:.0} changes/s with ferry.history on, {off:.0} off (best of 2 each, alternated); \
         on/off ratio {:.3} (runs on {:?}, off {:?})",
        on / off,
        rates[&true].iter().map(|r| r.round()).collect::<Vec<_>>(),
        rates[&false].iter().map(|r| r.round()).collect::<Vec<_>>(),
    );
    println!(
        "{}",
        json!({"bench": "outbound.history", "changes": opts.rows, "on_changes_per_s": on, "off_changes_per_s": off,
               "ratio": on / off, "runs_on": rates[&true], "runs_off": rates[&false]})
    );

    // ---- latency: commit → the simulator holds the value; unloaded, then under load ----
    let engine = Engine::start(rig.hub.clone(), &config, &secrets()).await?;
    rig.wait_outbox_empty().await?;
    let mut report = vec![];
    for loaded in [false, true] {
        let load = if loaded {
            Some(rig.background_load(opts.rows, 5_000.0))
        } else {
            None
        };
        let mut samples = Vec::with_capacity(opts.latency_samples);
        // sample 0 is the warm-up, reported on its own: right after the engine starts, the
        // listener may still be connecting to its slot (measured ~0.5 s)
        for i in 0..=opts.latency_samples {
            let key = (i % opts.rows) as i64 + 1;
            let value = format!("lat-{loaded}-{i}");
            let remote = rig.remote_id(key).await?;
            let t = rig.update_company(key, &value).await?;
            let waited = match until(
                "latency probe",
                Duration::from_secs(30),
                Duration::from_micros(200),
                || {
                    sim.get("contacts", &remote)
                        .and_then(|r| r.properties.get("company").cloned())
                        .as_deref()
                        == Some(value.as_str())
                },
            )
            .await
            {
                Ok(w) => w,
                Err(e) => {
                    // say where the change stopped: hub row, its link and mark, the app's record
                    let state = rig.probe_state(key).await.unwrap_or_else(|e| e.to_string());
                    let app = sim
                        .get("contacts", &remote)
                        .map(|r| format!("{:?}", r.properties.get("company")));
                    return Err(BenchError::Setup(format!(
                        "{e}: row {key} value {value}; hub: {state}; app company: {app:?}"
                    )));
                }
            };
            let ms = (waited + t).as_secs_f64() * 1000.0;
            if i == 0 {
                if !loaded {
                    println!(
                        "first change after the engine started: {ms:.1} ms (warm-up, not a sample)"
                    );
                }
                continue;
            }
            samples.push(ms);
        }
        if let Some(load) = load {
            load.abort();
        }
        samples.sort_by(f64::total_cmp);
        let (p50, p99, max) = (
            percentile(&samples, 0.50),
            percentile(&samples, 0.99),
            samples[samples.len() - 1],
        );
        let label = if loaded {
            "at ~5,000 changes/s background load"
        } else {
            "unloaded"
        };
        println!(
            "latency {label}: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} samples)",
            samples.len()
        );
        report.push(json!({"bench": "outbound.latency", "loaded": loaded, "p50_ms": p50, "p99_ms": p99, "max_ms": max, "samples": samples.len()}));
    }
    for r in report {
        println!("{r}");
    }
    engine.shutdown().await;
    sim.shutdown();

    // ---- rate-limited: 190 requests / 10 s, batches of 100 ----
    if opts.rate_limited_secs > 0 {
        let budget = (190u32, Duration::from_secs(10));
        let rl_rows = (1_900.0 * opts.rate_limited_secs as f64) as usize;
        let rig = Rig::start(data_dir, "ferry_bench_ratelimit").await?;
        let sim = start_sim(rl_rows, Some(budget)).await?;
        let config = rig.config(&sim.base_url(), Some("190/10s"), opts.workers)?;
        // seed the hub without spending the budget: backfill once, unthrottled, then throttle
        sim.set_rate_limit_enabled(false);
        let engine = Engine::start(rig.hub.clone(), &config, &secrets()).await?;
        rig.wait_backfill(rl_rows).await?;
        rig.wait_outbox_empty().await?;
        engine.shutdown().await;
        sim.set_rate_limit_enabled(true);
        rig.update_each_row_once(rl_rows).await?;
        // the budget window starts clean
        tokio::time::sleep(budget.1).await;
        sim.reset_stats();
        let engine = Engine::start(rig.hub.clone(), &config, &secrets()).await?;
        let t0 = Instant::now();
        until(
            "rate-limited drain",
            Duration::from_secs(opts.rate_limited_secs * 4 + 60),
            Duration::from_millis(20),
            || sim.stats().records_written >= rl_rows as u64,
        )
        .await?;
        let secs = t0.elapsed().as_secs_f64();
        let s = sim.stats();
        engine.shutdown().await;
        sim.shutdown();
        let rate = rl_rows as f64 / secs;
        let share_429 = s.throttled as f64 / s.requests.max(1) as f64;
        println!(
            "rate-limited (190 req/10 s, batches of 100): {rate:.0} records/s = {:.1}% of the ideal 1,900/s; \
             {} of {} calls answered 429 ({:.2}%)",
            rate / 19.0,
            s.throttled,
            s.requests,
            share_429 * 100.0
        );
        println!(
            "{}",
            json!({"bench": "outbound.rate_limited", "records": rl_rows, "seconds": secs, "records_per_s": rate,
                   "fraction_of_ideal": rate / 1900.0, "calls": s.requests, "calls_429": s.throttled})
        );
    }
    Ok(())
}
