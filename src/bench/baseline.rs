//! Benchmarks of the presets: what `ferry bench zendesk`, `stripe`, `salesforce` and `rest`
//! share — the simulators' credentials, the same-run baselines (the HubSpot preset's backfill
//! of as many records under its budget, its webhook ingest), the read path alone, and the
//! arithmetic of ideal rates.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use super::{BenchError, Rig};
use crate::config::{Config, Secrets};
use crate::connectors::ratelimit::Budget;
use crate::engine::Engine;
use crate::sim::hubspot::{HubSpotSim, SimConfig as HubSpotConfig};

pub const TOKEN: &str = "bench-token";
pub const SECRET: &str = "bench-secret";
/// The HubSpot preset's budget (`ferry init --preset hubspot`), in its simulator too.
pub const HUBSPOT_BUDGET: &str = "190/10s";

pub fn secrets(connection: &str) -> HashMap<String, Secrets> {
    HashMap::from([(
        connection.to_string(),
        Secrets {
            token: TOKEN.into(),
            webhook_secret: Some(SECRET.into()),
        },
    )])
}

/// `a / b`, NaN when `b` is zero.
pub fn per(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// Records per second a budget allows at `batch` records per call, spending every request on
/// a write.
pub fn ideal_rate(budget: Budget, batch: usize) -> f64 {
    budget.requests as f64 / budget.window.as_secs_f64() * batch as f64
}

/// `route n, route n` of a simulator's calls by route.
pub fn route_list(by_route: &BTreeMap<String, u64>) -> String {
    by_route
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One backfill: records, seconds, API calls.
pub struct Backfill {
    pub records: usize,
    pub secs: f64,
    pub calls: u64,
    /// The same pages read by the connector alone, without the hub.
    pub read_secs: f64,
    /// Of `secs`, until `Engine::start` returned (schema, slot, workers).
    pub start_secs: f64,
}

impl Backfill {
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
}

/// Prints a preset's backfill (`app`'s `noun`s) next to the HubSpot baseline, then its JSON
/// line (`bench` = `{key}.backfill`); `throttled`: calls answered 429, where the app throttles.
/// Returns the ratio to the baseline.
pub fn report_backfill(
    (app, noun, key): (&str, &str, &str),
    preset: &Backfill,
    by_route: &BTreeMap<String, u64>,
    throttled: Option<u64>,
    hubspot: &Backfill,
) -> f64 {
    let n = preset.records;
    let ratio = preset.rate() / hubspot.rate();
    let answered_429 = throttled.map_or(String::new(), |t| format!("; {t} answered 429"));
    println!(
        "backfill: {app} {:.0} records/s ({n} {noun} in {:.2} s, {} API calls, {:.1} records/call: {}{answered_429}); \
         HubSpot preset {:.0} records/s ({} contacts in {:.2} s, {} calls, {:.1} records/call); ratio {ratio:.3}",
        preset.rate(),
        preset.secs,
        preset.calls,
        per(n as f64, preset.calls as f64),
        route_list(by_route),
        hubspot.rate(),
        hubspot.records,
        hubspot.secs,
        hubspot.calls,
        per(hubspot.records as f64, hubspot.calls as f64),
    );
    println!(
        "  engine start: {app} {:.2} s, HubSpot {:.2} s; the read path alone (no budget): {app} {:.2} s, HubSpot {:.2} s",
        preset.start_secs, hubspot.start_secs, preset.read_secs, hubspot.read_secs
    );
    println!(
        "{}",
        serde_json::json!({"bench": format!("{key}.backfill"), "records": n, "seconds": preset.secs,
               "records_per_s": preset.rate(), "calls": preset.calls,
               "records_per_call": per(n as f64, preset.calls as f64),
               "by_route": by_route, "calls_429": throttled,
               "hubspot_records_per_s": hubspot.rate(), "hubspot_seconds": hubspot.secs,
               "read_alone_seconds": preset.read_secs, "ratio": ratio})
    );
    ratio
}

/// The read path alone: the connector of `config`'s mapping, without a budget, walks the
/// listing the backfill reads, page after page, into nothing (seconds, records, pages).
pub async fn read_alone(
    config: &Config,
    secrets: &HashMap<String, Secrets>,
) -> Result<(f64, usize, usize), BenchError> {
    let m = &config.mappings[0];
    let mut connection = config.connections[&m.connection].clone();
    connection.rate_limit = None;
    let connector = crate::connectors::build(&m.connection, &connection, &secrets[&m.connection])
        .map_err(BenchError::Setup)?;
    let properties: Vec<String> = m.fields.iter().map(|f| f.property.clone()).collect();
    let t0 = Instant::now();
    let (mut records, mut pages, mut after) = (0, 0, None);
    loop {
        let page = connector
            .list(&m.object, &properties, after)
            .await
            .map_err(|e| BenchError::Setup(format!("listing {}: {e}", m.connection)))?;
        records += page.records.len();
        pages += 1;
        match page.after {
            Some(a) => after = Some(a),
            None => return Ok((t0.elapsed().as_secs_f64(), records, pages)),
        }
    }
}

/// [`read_alone`] of a listing that must hold exactly the simulator's `n` `noun`s: its
/// seconds.
pub async fn read_all(
    config: &Config,
    secrets: &HashMap<String, Secrets>,
    n: usize,
    noun: &str,
) -> Result<f64, BenchError> {
    let (secs, records, _) = read_alone(config, secrets).await?;
    if records != n {
        return Err(BenchError::Setup(format!(
            "the listing has {records} {noun}, the simulator {n}"
        )));
    }
    Ok(secs)
}

/// Starts the engine on `config` and waits until its one mapping has backfilled `rows` rows
/// into `table`: the running engine, the seconds until `Engine::start` returned, and until the
/// backfill was done.
pub async fn timed_backfill(
    rig: &Rig,
    config: &Config,
    secrets: &HashMap<String, Secrets>,
    table: &str,
    rows: usize,
) -> Result<(Engine, f64, f64), BenchError> {
    let t0 = Instant::now();
    let engine = Engine::start(rig.hub.clone(), config, secrets).await?;
    let start_secs = t0.elapsed().as_secs_f64();
    rig.wait_backfill_of(table, rows).await?;
    Ok((engine, start_secs, t0.elapsed().as_secs_f64()))
}

/// The same-run baseline: the HubSpot preset's backfill of `users` contacts under its budget.
pub async fn hubspot_backfill(data_dir: &Path, users: usize) -> Result<Backfill, BenchError> {
    let budget = Budget::from_str(HUBSPOT_BUDGET).map_err(BenchError::Setup)?;
    let rig = Rig::start(data_dir, "ferry_bench_zd_hubspot").await?;
    let sim = HubSpotSim::start(
        HubSpotConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: users,
            rate_limit: Some((budget.requests, budget.window)),
            ..HubSpotConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("HubSpot simulator: {e}")))?;
    let config = rig.config(
        &sim.base_url(),
        Some(HUBSPOT_BUDGET),
        crate::config::default_workers(),
    )?;
    // the read path alone first, outside the budget (nothing counted)
    sim.set_rate_limit_enabled(false);
    let (read_secs, _, _) = read_alone(&config, &secrets("hubspot")).await?;
    sim.set_rate_limit_enabled(true);
    sim.reset_stats();
    let (engine, start_secs, secs) = timed_backfill(
        &rig,
        &config,
        &secrets("hubspot"),
        "hubspot.contacts",
        users,
    )
    .await?;
    let s = sim.stats();
    engine.shutdown().await;
    sim.shutdown();
    if s.throttled > 0 {
        println!(
            "  (HubSpot baseline: {} of {} calls answered 429)",
            s.throttled, s.requests
        );
    }
    Ok(Backfill {
        records: users,
        secs,
        calls: s.requests,
        read_secs,
        start_secs,
    })
}

/// Waits until `count_sql` (one `count(*)`) reaches `n`, up to ten minutes after `t0`.
pub async fn wait_count(
    c: &tokio_postgres::Client,
    count_sql: &str,
    n: usize,
    t0: Instant,
    what: &str,
) -> Result<(), BenchError> {
    loop {
        let done: i64 = c.query_one(count_sql, &[]).await?.get(0);
        if done >= n as i64 {
            return Ok(());
        }
        if t0.elapsed() > std::time::Duration::from_secs(600) {
            return Err(BenchError::Timeout(what.into()));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The same-run baseline of webhook ingest: `n` contacts edited in HubSpot's simulator, its
/// signed deliveries of at most `batch` events (HubSpot's own: 100), `concurrency` in flight
/// (HubSpot's own: 1), into the hub; events/s.
pub async fn hubspot_webhook_ingest(
    data_dir: &Path,
    n: usize,
    batch: usize,
    concurrency: usize,
) -> Result<f64, BenchError> {
    let rig = Rig::start(data_dir, "ferry_bench_hubspot_webhooks").await?;
    let sim = HubSpotSim::start(
        HubSpotConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: n,
            webhook_batch: batch,
            webhook_concurrency: concurrency,
            ..HubSpotConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("HubSpot simulator: {e}")))?;
    let mut config = rig.config(&sim.base_url(), None, crate::config::default_workers())?;
    config.engine.poll_interval = std::time::Duration::ZERO;
    config.engine.reconcile_interval = std::time::Duration::ZERO;
    let engine = Engine::start(rig.hub.clone(), &config, &secrets("hubspot")).await?;
    rig.wait_backfill(n).await?;
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
        p.insert("company".into(), serde_json::json!(format!("wh-{id}")));
        sim.app_update("contacts", id, p)
            .map_err(|e| BenchError::Setup(e.to_string()))?;
    }
    wait_count(
        &c,
        "select count(*) from hubspot.contacts where company like 'wh-%'",
        ids.len(),
        t0,
        "HubSpot webhook ingest",
    )
    .await?;
    let rate = ids.len() as f64 / t0.elapsed().as_secs_f64();
    engine.shutdown().await;
    sim.shutdown();
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ideal_rate_is_the_budget_times_the_batch() {
        let b = Budget::from_str("700/60s").expect("budget");
        assert!((ideal_rate(b, 100) - 1_166.67).abs() < 0.01);
        assert!((ideal_rate(b, 1) - 11.667).abs() < 0.001);
        assert!(per(1.0, 0.0).is_nan());
    }
}
