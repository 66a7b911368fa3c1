//! `ferry bench inbound`: app → hub, measured against the simulator with same-run baselines:
//! the backfill against `psql \copy` of the same rows, its peak memory, and webhook ingest
//! (events/s and webhook-to-row latency).

use std::time::{Duration, Instant};

use serde_json::json;

use super::cpu::CpuSnapshot;
use super::{percentile, BenchError, Rig};
use crate::config::Config;
use crate::engine::Engine;
use crate::sim::hubspot::{HubSpotSim, SimConfig};

pub struct Options {
    /// Records the backfill reads (the simulator runs as its own process).
    pub records: usize,
    /// Records updated in the app for the webhook run.
    pub webhook_events: usize,
    pub latency_samples: usize,
}

const TOKEN: &str = "bench-token";
const SECRET: &str = "bench-secret";

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn no_polling(config: &Config) -> Config {
    let mut c = config.clone();
    c.engine.poll_interval = Duration::ZERO;
    c.engine.reconcile_interval = Duration::ZERO;
    c
}

/// The simulator as a child process, so its memory is not counted as ferry's.
struct SimProcess {
    child: tokio::process::Child,
    url: String,
}

impl SimProcess {
    async fn start(seed: usize) -> Result<SimProcess, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Setup(e.to_string()))?
            .port();
        let exe = std::env::current_exe().map_err(|e| BenchError::Setup(e.to_string()))?;
        let child = tokio::process::Command::new(exe)
            .args([
                "sim",
                "hubspot",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--token",
                TOKEN,
                "--seed",
                &seed.to_string(),
            ])
            .env("FERRY_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("simulator process: {e}")))?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let t0 = Instant::now();
        loop {
            let probe = http
                .get(format!("{url}/crm/v3/objects/contacts?limit=1"))
                .bearer_auth(TOKEN)
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if t0.elapsed() > Duration::from_secs(300) {
                return Err(BenchError::Timeout("simulator process to listen".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(SimProcess { child, url })
    }
}

pub async fn run(data_dir: &std::path::Path, opts: Options) -> Result<(), BenchError> {
    println!(
        "# ferry bench inbound ({} records backfilled, {} webhook events)",
        opts.records, opts.webhook_events
    );
    let secrets = std::collections::HashMap::from([(
        "hubspot".to_string(),
        crate::config::Secrets {
            token: TOKEN.into(),
            webhook_secret: Some(SECRET.into()),
        },
    )]);

    // ---- backfill: simulator pages of 100 → hub, vs psql \copy of the same rows ----
    let rig = Rig::start(data_dir, "ferry_bench_inbound").await?;
    let seeding = Instant::now();
    let mut sim = SimProcess::start(opts.records).await?;
    println!(
        "simulator process seeded {} contacts in {:.1} s",
        opts.records,
        seeding.elapsed().as_secs_f64()
    );
    let config = no_polling(&rig.config(&sim.url, None, crate::config::default_workers())?);
    let rss_before = peak_rss_mib();
    let t0 = Instant::now();
    let cpu = CpuSnapshot::take_with(&[("simulator process", sim.child.id().unwrap_or(0))]);
    let engine = Engine::start(rig.hub.clone(), &config, &secrets).await?;
    let c = rig.hub.client().await?;
    wait_backfill(&c, t0, "backfill").await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_report = cpu.report_since(&rig.hub).await;
    let peak = peak_rss_mib();
    let rate = opts.records as f64 / secs;

    // ferry.resync over the synced hub: every record is read again and, being known and
    // unchanged, goes through ferry.apply (its set-based path) and changes nothing
    let t = Instant::now();
    c.execute("select ferry.resync(name) from ferry.mappings", &[])
        .await?;
    wait_backfill(&c, t, "resync").await?;
    let resync_secs = t.elapsed().as_secs_f64();
    engine.shutdown().await;
    let _ = sim.child.kill().await;

    // the ceiling the issue names: the same rows into a bare table; and the storage part of a
    // backfill alone: the hub rows and their links into tables of the same shape and indexes
    let file = data_dir.join("bench-contacts.csv");
    let file = file.to_string_lossy();
    let links_file = data_dir.join("bench-links.csv");
    let links_file = links_file.to_string_lossy();
    c.batch_execute(
        "drop table if exists ferry_bench_copy, ferry_bench_copy_hub, ferry_bench_copy_links;
         create table ferry_bench_copy as select * from hubspot.contacts with no data;
         create table ferry_bench_copy_hub (like hubspot.contacts including defaults including indexes);
         create table ferry_bench_copy_links (like ferry.links including defaults including indexes)",
    )
    .await?;
    let copy = |table, direction, file| copy_csv(&rig.url, table, direction, file);
    copy("hubspot.contacts", "to", &file).await?;
    copy("ferry.links", "to", &links_file).await?;
    let t = Instant::now();
    copy("ferry_bench_copy", "from", &file).await?;
    let copy_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    copy("ferry_bench_copy_hub", "from", &file).await?;
    copy("ferry_bench_copy_links", "from", &links_file).await?;
    let indexed_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&*file);
    let _ = std::fs::remove_file(&*links_file);
    c.batch_execute("drop table ferry_bench_copy, ferry_bench_copy_hub, ferry_bench_copy_links")
        .await?;
    let copy_rate = opts.records as f64 / copy_secs;
    let indexed_rate = opts.records as f64 / indexed_secs;
    println!(
        "backfill: {rate:.0} records/s ({} records in {secs:.1} s, pages of 100); psql \\copy of the same rows {copy_rate:.0} rows/s; ratio {:.3}",
        opts.records,
        rate / copy_rate
    );
    println!(
        "  storage alone: psql \\copy of the hub rows and their links into tables of the same shape and indexes {indexed_rate:.0} records/s; ratio {:.3}",
        rate / indexed_rate
    );
    println!("{cpu_report}");
    println!(
        "resync (ferry.resync: every record read again over the synced hub, nothing to change): {:.0} records/s ({} records in {resync_secs:.1} s)",
        opts.records as f64 / resync_secs,
        opts.records
    );
    println!(
        "peak RSS of the ferry process: {peak:.0} MiB (before the backfill: {rss_before:.0} MiB)"
    );
    println!(
        "{}",
        json!({"bench": "inbound.backfill", "records": opts.records, "seconds": secs, "records_per_s": rate,
               "copy_rows_per_s": copy_rate, "ratio": rate / copy_rate,
               "copy_indexed_records_per_s": indexed_rate, "ratio_indexed": rate / indexed_rate, "peak_rss_mib": peak})
    );
    println!(
        "{}",
        json!({"bench": "inbound.resync", "records": opts.records, "seconds": resync_secs,
               "records_per_s": opts.records as f64 / resync_secs})
    );

    drop(c);

    // ---- webhooks: app changes → signed deliveries → inbox → fetch → rows ----
    let rig = Rig::start(data_dir, "ferry_bench_webhooks").await?;
    let sim = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: opts.webhook_events,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("simulator: {e}")))?;
    let config =
        no_polling(&rig.config(&sim.base_url(), None, crate::config::default_workers())?);
    let engine = Engine::start(rig.hub.clone(), &config, &secrets).await?;
    rig.wait_backfill(opts.webhook_events).await?;
    rig.wait_outbox_empty().await?;
    sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
    let c = rig.hub.client().await?;
    let ids: Vec<String> = c
        .query("select hubspot_id from hubspot.contacts order by id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();

    let t0 = Instant::now();
    for id in &ids {
        let mut p = serde_json::Map::new();
        p.insert("company".into(), json!(format!("wh-{id}")));
        sim.app_update("contacts", id, p)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    let n = ids.len() as i64;
    loop {
        let done: i64 = c
            .query_one(
                "select count(*) from hubspot.contacts where company like 'wh-%'",
                &[],
            )
            .await?
            .get(0);
        if done >= n {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            return Err(BenchError::Timeout("webhook ingest".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ingest_secs = t0.elapsed().as_secs_f64();
    let ingest_rate = n as f64 / ingest_secs;

    // the cost of ferry.history: the same ingest with history off and on, alternated (the
    // engine restarted with each setting)
    let mut engine = engine;
    let mut rates: std::collections::HashMap<bool, Vec<f64>> = std::collections::HashMap::new();
    for (round, history) in [false, true, false, true].into_iter().enumerate() {
        engine.shutdown().await;
        let mut variant = config.clone();
        variant.engine.history_retention = if history {
            Duration::from_secs(30 * 86400)
        } else {
            Duration::ZERO
        };
        engine = Engine::start(rig.hub.clone(), &variant, &secrets).await?;
        sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
        let tag = format!("h{round}-");
        let t0 = Instant::now();
        for id in &ids {
            let mut p = serde_json::Map::new();
            p.insert("company".into(), json!(format!("{tag}{id}")));
            sim.app_update("contacts", id, p)
                .map_err(|e| BenchError::Setup(e.to_string()))?;
        }
        loop {
            let done: i64 = c
                .query_one(
                    "select count(*) from hubspot.contacts where starts_with(company, $1)",
                    &[&tag],
                )
                .await?
                .get(0);
            if done >= n {
                break;
            }
            if t0.elapsed() > Duration::from_secs(600) {
                return Err(BenchError::Timeout("webhook ingest".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        rates
            .entry(history)
            .or_default()
            .push(n as f64 / t0.elapsed().as_secs_f64());
    }
    let (on, off) = super::history_best(&rates);
    println!(
        "history: webhook ingest {on:.0} events/s with ferry.history on, {off:.0} off (best of 2 each, alternated); \
         on/off ratio {:.3} (runs on {:?}, off {:?})",
        on / off,
        rates[&true].iter().map(|r| r.round()).collect::<Vec<_>>(),
        rates[&false].iter().map(|r| r.round()).collect::<Vec<_>>(),
    );
    println!(
        "{}",
        json!({"bench": "inbound.webhooks_history", "events": n, "on_events_per_s": on, "off_events_per_s": off,
               "ratio": on / off, "runs_on": rates[&true], "runs_off": rates[&false]})
    );

    let stmt = c
        .prepare("select company from hubspot.contacts where hubspot_id = $1")
        .await?;
    let mut samples = Vec::with_capacity(opts.latency_samples);
    for i in 0..opts.latency_samples {
        let id = &ids[i % ids.len()];
        let value = format!("lat-{i}");
        let mut p = serde_json::Map::new();
        p.insert("company".into(), json!(value));
        let t = Instant::now();
        sim.app_update("contacts", id, p)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        loop {
            let v: Option<String> = c.query_one(&stmt, &[id]).await?.get(0);
            if v.as_deref() == Some(value.as_str()) {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                return Err(BenchError::Timeout(format!("webhook latency probe {i}")));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    engine.shutdown().await;
    sim.shutdown();
    samples.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "webhooks: {ingest_rate:.0} events/s ingested ({n} app updates → signed deliveries of ≤100 events → rows in {ingest_secs:.1} s); \
         webhook-to-row latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({} samples, app change → hub row)",
        samples.len()
    );
    println!(
        "{}",
        json!({"bench": "inbound.webhooks", "events": n, "seconds": ingest_secs, "events_per_s": ingest_rate,
               "p50_ms": p50, "p99_ms": p99, "max_ms": max, "samples": samples.len()})
    );
    Ok(())
}

/// `psql -c "\\copy <table> <to|from> '<file>' csv"`: the baselines load and export as a user
/// would.
async fn copy_csv(url: &str, table: &str, direction: &str, file: &str) -> Result<(), BenchError> {
    let command = format!("\\copy {table} {direction} '{file}' csv");
    let out = tokio::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            &command,
        ])
        .output()
        .await
        .map_err(|e| BenchError::Setup(format!("psql (Debian postgresql-client): {e}")))?;
    if !out.status.success() {
        return Err(BenchError::Setup(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Waits until the mapping's backfill (or resync) started at `t0` is done, printing its
/// progress every 10 seconds.
async fn wait_backfill(
    c: &tokio_postgres::Client,
    t0: Instant,
    what: &str,
) -> Result<(), BenchError> {
    let mut last_print = Instant::now();
    loop {
        let r = c
            .query_one(
                "select m.backfill_state, p.backfill_rows from ferry.mappings m join ferry.mapping_progress p on p.mapping_id = m.id",
                &[],
            )
            .await?;
        let (state, rows): (String, i64) = (r.get(0), r.get(1));
        if state == "done" {
            return Ok(());
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  … {what}: {rows} records after {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
        if t0.elapsed() > Duration::from_secs(3600) {
            return Err(BenchError::Timeout(what.into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
