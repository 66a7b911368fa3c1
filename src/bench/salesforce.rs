//! `ferry bench salesforce`: the Salesforce preset against its simulator — the backfill of N
//! Contacts (records/s, calls, records per call) next to the HubSpot preset's backfill of N
//! contacts in the same run, then a backlog of hub edits written through sObject Collections
//! under the connection's `rate_limit` (records per call against Collections' 200, rate
//! against the ideal), then the daily allocation paced over two simulated days
//! (`salesforce_day.rs`).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;

use super::baseline::{
    hubspot_backfill, ideal_rate, per, read_all, report_backfill, route_list, timed_backfill,
    Backfill,
};
use super::{BenchError, Rig};
use crate::config::{Config, Secrets};
use crate::connectors::ratelimit::Budget;
use crate::sim::salesforce::{SalesforceSim, SimConfig};

/// sObject Collections' most records a call.
const COLLECTION_MAX: usize = 200;

pub struct Options {
    /// Contacts seeded in the Salesforce simulator (and in HubSpot's, for the baseline).
    pub contacts: usize,
    /// The connection's `rate_limit` (Salesforce itself limits the day, not the second).
    pub budget: String,
    /// The org's daily allocation in the simulated days.
    pub daily_limit: u32,
}

pub const CLIENT_ID_ENV: &str = "FERRY_BENCH_SF_CLIENT_ID";
pub const CLIENT_SECRET_ENV: &str = "FERRY_BENCH_SF_CLIENT_SECRET";

/// The Salesforce preset's Contact mapping, polling and reconcile off: each phase measures
/// one path.
fn config(rig: &Rig, sim: &SalesforceSim, budget: &str) -> Result<Config, BenchError> {
    let text = format!(
        r#"
        [engine]
        listen = "127.0.0.1:0"
        slot = "{db}"
        poll_interval = "0s"
        reconcile_interval = "0s"
        [connections.salesforce]
        kind = "salesforce"
        base_url = "{url}"
        token_env = "UNUSED"
        client_id_env = "{CLIENT_ID_ENV}"
        client_secret_env = "{CLIENT_SECRET_ENV}"
        rate_limit = "{budget}"
        [[mappings]]
        connection = "salesforce"
        object = "Contact"
        table = "crm.contacts"
        match_key = "email"
        fields = [
          {{ column = "email",     property = "Email" }},
          {{ column = "last_name", property = "LastName" }},
          {{ column = "phone",     property = "Phone" }},
        ]
        "#,
        db = rig.db,
        url = sim.base_url(),
    );
    Ok(Config::parse(&text, "bench config")?)
}

/// Waits until every `(Contact id, phone)` of `want` is in the simulator.
async fn wait_phones(
    sim: &SalesforceSim,
    want: &HashMap<String, String>,
    t0: Instant,
    limit: Duration,
) -> Result<Duration, BenchError> {
    loop {
        let there = sim
            .records("Contact")
            .iter()
            .filter(|c| {
                want.get(&c.id)
                    .is_some_and(|p| c.fields["Phone"].as_str() == Some(p.as_str()))
            })
            .count();
        if there == want.len() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > limit {
            return Err(BenchError::Timeout("the hub's edits in Salesforce".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(data_dir: &Path, opts: Options) -> Result<(), BenchError> {
    let budget = Budget::from_str(&opts.budget).map_err(BenchError::Setup)?;
    let n = opts.contacts;
    println!(
        "# ferry bench salesforce ({n} Contacts; the connection's rate_limit {}, HubSpot's {})",
        opts.budget,
        super::baseline::HUBSPOT_BUDGET
    );

    // ---- the baseline: the HubSpot preset's backfill of the same number of records ----
    let hubspot = hubspot_backfill(data_dir, n).await?;

    // ---- the Salesforce backfill: SOQL pages of 2,000 Contacts → crm.contacts ----
    let rig = Rig::start(data_dir, "ferry_bench_salesforce").await?;
    let sim = SalesforceSim::start(
        SimConfig {
            seed_contacts: n,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("Salesforce simulator: {e}")))?;
    sim.set_daily_limit_enabled(false);
    let c = sim.config().clone();
    std::env::set_var(CLIENT_ID_ENV, &c.client_id);
    std::env::set_var(CLIENT_SECRET_ENV, &c.client_secret);
    let config = config(&rig, &sim, &opts.budget)?;
    let secrets = HashMap::from([(
        "salesforce".to_string(),
        Secrets {
            token: c.refresh_token.clone(),
            webhook_secret: None,
        },
    )]);
    let read_secs = read_all(&config, &secrets, n, "Contacts").await?;
    sim.reset_stats();
    let (engine, start_secs, secs) =
        timed_backfill(&rig, &config, &secrets, "crm.contacts", n).await?;
    let b = sim.stats();
    let salesforce = Backfill {
        records: n,
        secs,
        calls: b.requests,
        read_secs,
        start_secs,
    };
    rig.wait_outbox_empty().await?;
    report_backfill(
        ("Salesforce", "Contacts", "salesforce"),
        &salesforce,
        &b.by_route,
        None,
        &hubspot,
    );

    // ---- writes under the budget: one statement edits every Contact's phone ----
    tokio::time::sleep(budget.window).await;
    sim.reset_stats();
    let written_before = sim.stats().records_written;
    let hub = rig.hub.client().await?;
    let t0 = Instant::now();
    let edited = hub
        .query(
            "update crm.contacts set phone = '+1555' || lpad(id::text, 7, '0')
              returning salesforce_id, phone",
            &[],
        )
        .await?;
    let want: HashMap<String, String> = edited
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<String>>(0)?, r.get(1))))
        .collect();
    if want.len() != n {
        return Err(BenchError::Setup(format!(
            "{} of {n} rows have no Salesforce id",
            n - want.len()
        )));
    }
    let ideal = ideal_rate(budget, COLLECTION_MAX);
    let limit = Duration::from_secs_f64(n as f64 / ideal * 10.0) + Duration::from_secs(60);
    let secs = wait_phones(&sim, &want, t0, limit).await?.as_secs_f64();
    rig.wait_outbox_empty().await?;
    let s = sim.stats();
    engine.shutdown().await;
    let written = s.records_written - written_before;
    let collection_calls: u64 = s
        .by_route
        .iter()
        .filter(|(r, _)| r.contains("composite/sobjects"))
        .map(|(_, n)| n)
        .sum();
    let rate = n as f64 / secs;
    let per_call = per(written as f64, collection_calls as f64);
    let refused = s.limit_exceeded + s.throttles_injected;
    println!(
        "writes: {n} hub edits (one UPDATE) in Salesforce in {secs:.2} s = {rate:.0} records/s; ideal {ideal:.0} records/s \
         ({} requests / {:.0} s, {COLLECTION_MAX} records a call); ratio {:.3}",
        budget.requests,
        budget.window.as_secs_f64(),
        rate / ideal
    );
    println!(
        "  {} calls ({}), {written} records written by {collection_calls} Collections calls = {per_call:.1} records/call \
         ({:.3} of {COLLECTION_MAX}); {refused} refused",
        s.requests,
        route_list(&s.by_route),
        per_call / COLLECTION_MAX as f64,
    );
    println!(
        "{}",
        json!({"bench": "salesforce.writes", "records": n, "seconds": secs, "records_per_s": rate,
               "ideal_records_per_s": ideal, "ratio": rate / ideal, "budget": opts.budget,
               "calls": s.requests, "collection_calls": collection_calls,
               "records_per_call": per_call, "refused": refused, "by_route": s.by_route})
    );
    sim.shutdown();

    // ---- the daily allocation over two simulated days ----
    super::salesforce_day::run(opts.daily_limit).await
}
