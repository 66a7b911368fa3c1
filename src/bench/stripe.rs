//! `ferry bench stripe`: the Stripe preset against its simulator with Stripe's budget on — the
//! backfill of N customers (records/s, API calls, records per call) next to the HubSpot
//! preset's backfill of N contacts in the same run, then a backlog of hub edits written under
//! the budget. Stripe has no batch endpoints: the ideal is one customer per request the budget
//! allows, and the measure is the rate against it and the share of calls answered 429.

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
use crate::sim::stripe::{SimConfig, StripeSim};

pub struct Options {
    /// Customers seeded in the Stripe simulator (and contacts in HubSpot's, for the baseline).
    pub customers: usize,
    /// Stripe's budget (`25/1s` in sandbox): the simulator's and the connection's `rate_limit`.
    pub budget: String,
}

/// The Stripe preset's customers mapping, polling and reconcile off: each phase measures one
/// path.
fn config(rig: &Rig, sim: &StripeSim, budget: &str) -> Result<Config, BenchError> {
    let text = format!(
        r#"
        [engine]
        listen = "127.0.0.1:0"
        slot = "{db}"
        poll_interval = "0s"
        reconcile_interval = "0s"
        [connections.stripe]
        kind = "stripe"
        base_url = "{url}"
        token_env = "UNUSED"
        rate_limit = "{budget}"
        [[mappings]]
        connection = "stripe"
        object = "customers"
        table = "billing.customers"
        match_key = "email"
        fields = [
          {{ column = "email", property = "email", transform = "lowercase" }},
          {{ column = "name",  property = "name" }},
          {{ column = "phone", property = "phone" }},
          {{ column = "city",  property = "address.city" }},
          {{ column = "plan",  property = "metadata.plan" }},
        ]
        "#,
        db = rig.db,
        url = sim.base_url(),
    );
    Ok(Config::parse(&text, "bench config")?)
}

/// Waits until every `(customer id, phone)` of `want` is in the simulator; the time, and the
/// customers written when the first second was over (the budget's burst spent by then).
async fn wait_phones(
    sim: &StripeSim,
    want: &HashMap<String, String>,
    t0: Instant,
    limit: Duration,
) -> Result<(Duration, Option<(f64, u64)>), BenchError> {
    let before = sim.stats().writes;
    let mut first = None;
    loop {
        let written = sim.stats().writes - before;
        if first.is_none() && t0.elapsed() >= Duration::from_secs(1) {
            first = Some((t0.elapsed().as_secs_f64(), written));
        }
        if written >= want.len() as u64 {
            let there = sim
                .records("customers")
                .iter()
                .filter(|c| {
                    c["id"]
                        .as_str()
                        .and_then(|id| want.get(id))
                        .is_some_and(|p| c["phone"].as_str() == Some(p.as_str()))
                })
                .count();
            if there == want.len() {
                return Ok((t0.elapsed(), first));
            }
        }
        if t0.elapsed() > limit {
            return Err(BenchError::Timeout("the hub's edits in Stripe".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(data_dir: &Path, opts: Options) -> Result<(), BenchError> {
    let budget = Budget::from_str(&opts.budget).map_err(BenchError::Setup)?;
    let n = opts.customers;
    println!(
        "# ferry bench stripe ({n} customers; Stripe budget {} in the simulator and the connection, HubSpot's {})",
        opts.budget,
        super::baseline::HUBSPOT_BUDGET
    );

    // ---- the baseline: the HubSpot preset's backfill of the same number of records ----
    let hubspot = hubspot_backfill(data_dir, n).await?;

    // ---- the Stripe backfill: listing pages of 100 customers → billing.customers ----
    let rig = Rig::start(data_dir, "ferry_bench_stripe").await?;
    let sim = StripeSim::start(
        SimConfig {
            seed_customers: n,
            sandbox_rate_limit: Some((budget.requests, budget.window)),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("Stripe simulator: {e}")))?;
    let config = config(&rig, &sim, &opts.budget)?;
    let secrets = HashMap::from([(
        "stripe".to_string(),
        Secrets {
            token: sim.test_key(),
            webhook_secret: None,
        },
    )]);
    sim.set_rate_limit_enabled(false);
    let read_secs = read_all(&config, &secrets, n, "customers").await?;
    sim.set_rate_limit_enabled(true);
    sim.reset_stats();
    let (engine, start_secs, secs) =
        timed_backfill(&rig, &config, &secrets, "billing.customers", n).await?;
    let b = sim.stats();
    let stripe = Backfill {
        records: n,
        secs,
        calls: b.requests,
        read_secs,
        start_secs,
    };
    rig.wait_outbox_empty().await?;
    report_backfill(
        ("Stripe", "customers", "stripe"),
        &stripe,
        &b.by_route,
        Some(b.throttled),
        &hubspot,
    );

    // ---- writes under the budget: one statement edits every customer's phone ----
    tokio::time::sleep(budget.window).await;
    sim.reset_stats();
    let written_before = sim.stats().writes;
    let c = rig.hub.client().await?;
    let t0 = Instant::now();
    let edited = c
        .query(
            "update billing.customers set phone = '+1444' || lpad(id::text, 7, '0')
              returning stripe_id, phone",
            &[],
        )
        .await?;
    let want: HashMap<String, String> = edited
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<String>>(0)?, r.get(1))))
        .collect();
    if want.len() != n {
        return Err(BenchError::Setup(format!(
            "{} of {n} rows have no Stripe id",
            n - want.len()
        )));
    }
    let ideal = ideal_rate(budget, 1);
    // generous: a tenth of the ideal rate, plus a minute
    let limit = Duration::from_secs_f64(n as f64 / ideal * 10.0) + Duration::from_secs(60);
    let (took, first) = wait_phones(&sim, &want, t0, limit).await?;
    let secs = took.as_secs_f64();
    rig.wait_outbox_empty().await?;
    let s = sim.stats();
    engine.shutdown().await;
    sim.shutdown();
    let writes = s.writes - written_before;
    let rate = n as f64 / secs;
    let sustained = first
        .filter(|(at, _)| secs >= 2.0 * at)
        .map(|(at, w)| (n as f64 - w as f64) / (secs - at));
    let share_429 = per(s.throttled as f64, s.requests as f64);
    println!(
        "writes: {n} hub edits (one UPDATE) in Stripe in {secs:.2} s = {rate:.1} records/s; ideal {ideal:.1} records/s \
         ({} requests / {:.0} s, one customer a call); ratio {:.3}",
        budget.requests,
        budget.window.as_secs_f64(),
        rate / ideal
    );
    println!(
        "  {} calls ({}), {writes} customers written, {} answered 429 ({:.2} %)",
        s.requests,
        route_list(&s.by_route),
        s.throttled,
        share_429 * 100.0
    );
    if let Some(r) = sustained {
        println!(
            "  after the first second (its burst spent): {r:.1} records/s, ratio {:.3}",
            r / ideal
        );
    }
    println!(
        "{}",
        json!({"bench": "stripe.writes", "records": n, "seconds": secs, "records_per_s": rate,
               "ideal_records_per_s": ideal, "ratio": rate / ideal, "budget": opts.budget,
               "after_first_second_records_per_s": sustained, "calls": s.requests,
               "calls_429": s.throttled, "share_429": share_429, "by_route": s.by_route,
               "records_per_call": per(writes as f64, s.requests as f64)})
    );
    Ok(())
}
