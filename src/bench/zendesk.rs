//! `ferry bench zendesk`: the Zendesk preset against its simulator with Zendesk's budgets on —
//! the backfill of N users (records/s, API calls, records per call) next to the HubSpot
//! preset's backfill of N contacts in the same run, then a backlog of hub edits written under
//! the account budget (records/s against the budget's ideal, 429 share, calls per bulk job).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::baseline::{
    hubspot_backfill, ideal_rate, per, read_alone, route_list, secrets, timed_backfill, Backfill,
    HUBSPOT_BUDGET, SECRET, TOKEN,
};
use super::{BenchError, Rig};
use crate::config::Config;
use crate::connectors::ratelimit::Budget;
use crate::connectors::zendesk::MAX_BATCH;
use crate::sim::zendesk::{SimConfig, SimStats, ZendeskSim};

pub struct Options {
    /// End-users seeded in the Zendesk simulator (and contacts in HubSpot's, for the baseline).
    pub users: usize,
    /// Zendesk's account budget (`700/60s`): the simulator's and the connection's `rate_limit`.
    pub budget: String,
}

const UPDATE_MANY: &str = "PUT /api/v2/users/update_many";
const JOB_STATUS: &str = "GET /api/v2/job_statuses/show_many";
const SHOW_MANY: &str = "GET /api/v2/users/show_many";

/// The Zendesk preset's users mapping (`ferry init --preset zendesk`, the plan field on), with
/// polling and reconcile off: each phase measures one path.
fn config(rig: &Rig, sim: &ZendeskSim, budget: &str) -> Result<Config, BenchError> {
    let text = format!(
        r#"
        [engine]
        listen = "127.0.0.1:0"
        slot = "{db}"
        poll_interval = "0s"
        reconcile_interval = "0s"
        [connections.zendesk]
        kind = "zendesk"
        base_url = "{url}"
        email = "{email}"
        token_env = "UNUSED"
        rate_limit = "{budget}"
        [[mappings]]
        connection = "zendesk"
        object = "users"
        table = "support.users"
        match_key = "email"
        fields = [
          {{ column = "email", property = "email", transform = "lowercase" }},
          {{ column = "name",  property = "name" }},
          {{ column = "phone", property = "phone" }},
          {{ column = "tags",  property = "tags", type = "text[]" }},
          {{ column = "plan",  property = "user_fields.plan" }},
        ]
        "#,
        db = rig.db,
        url = sim.base_url(),
        email = sim.email(),
    );
    Ok(Config::parse(&text, "bench config")?)
}

fn route(s: &SimStats, r: &str) -> u64 {
    s.by_route.get(r).copied().unwrap_or(0)
}

fn routes(s: &SimStats) -> String {
    route_list(&s.by_route)
}

/// Gives every seeded end-user tags and a plan, as an agent would in Zendesk's UI (no API
/// calls, no webhooks: none is configured).
fn seed_values(sim: &ZendeskSim) -> Result<(), BenchError> {
    let owner = sim.email();
    for (i, u) in sim.records("users").iter().enumerate() {
        if u.fields.get("email").and_then(Value::as_str) == Some(owner.as_str()) {
            continue;
        }
        let plan = ["free", "pro", "enterprise"][i % 3];
        let mut f = Map::new();
        f.insert("tags".into(), json!(["bench", format!("cohort{}", i % 7)]));
        f.insert("user_fields".into(), json!({ "plan": plan }));
        sim.app_update("users", u.id, f)
            .map_err(|e| BenchError::Setup(format!("seeding Zendesk: {e}")))?;
    }
    Ok(())
}

/// When the backlog was all in Zendesk, and the seconds and records written at the end of the
/// first budget window (the window's burst is spent by then).
struct Landed {
    took: Duration,
    /// `(seconds since the edit, records written)`, every 20 ms.
    samples: Vec<(f64, u64)>,
}

impl Landed {
    /// The rate over the whole budget windows after the first (whose burst is spent): a
    /// rolling window allows at most its budget in any span of one window, so a span of whole
    /// windows can never show more than the ideal, whatever the burst's phase. None when the
    /// phase lasted less than two windows.
    fn sustained(&self, window: f64) -> Option<f64> {
        let whole = ((self.took.as_secs_f64() - window) / window).floor();
        if whole < 1.0 {
            return None;
        }
        let at = |t: f64| {
            self.samples
                .iter()
                .take_while(|(s, _)| *s <= t)
                .last()
                .map_or(0, |(_, w)| *w)
        };
        let end = window * (1.0 + whole);
        Some((at(end) - at(window)) as f64 / (end - window))
    }
}

/// Waits until every `(Zendesk id, phone)` of `want` is in the simulator.
async fn wait_phones(
    sim: &ZendeskSim,
    want: &HashMap<u64, String>,
    t0: Instant,
    limit: Duration,
) -> Result<Landed, BenchError> {
    let n = want.len() as u64;
    let mut samples = Vec::new();
    loop {
        let written = sim.stats().records_written;
        samples.push((t0.elapsed().as_secs_f64(), written));
        if written >= n {
            let there = sim
                .records("users")
                .iter()
                .filter(|u| {
                    want.get(&u.id).is_some_and(|p| {
                        u.fields.get("phone").and_then(Value::as_str) == Some(p.as_str())
                    })
                })
                .count();
            if there == want.len() {
                return Ok(Landed {
                    took: t0.elapsed(),
                    samples,
                });
            }
        }
        if t0.elapsed() > limit {
            return Err(BenchError::Timeout("the hub's edits in Zendesk".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn run(data_dir: &Path, opts: Options) -> Result<(), BenchError> {
    let budget = Budget::from_str(&opts.budget).map_err(BenchError::Setup)?;
    let window = budget.window.as_secs_f64();
    println!(
        "# ferry bench zendesk ({} users; Zendesk budget {} in the simulator and the connection, HubSpot's {HUBSPOT_BUDGET})",
        opts.users, opts.budget
    );

    // ---- the baseline: the HubSpot preset's backfill of the same number of records ----
    let hubspot = hubspot_backfill(data_dir, opts.users).await?;

    // ---- the Zendesk backfill: cursor pages of 100 users → support.users ----
    let rig = Rig::start(data_dir, "ferry_bench_zendesk").await?;
    let sim = ZendeskSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_users: opts.users,
            rate_limit: Some((budget.requests, budget.window)),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("Zendesk simulator: {e}")))?;
    seed_values(&sim)?;
    let job_delay = SimConfig::default().job_delay;
    // the seeded end-users and the account owner (an admin, listed like any user)
    let rows = sim.records("users").len();
    let config = config(&rig, &sim, &opts.budget)?;
    sim.set_rate_limit_enabled(false);
    let (read_secs, read_records, read_pages) = read_alone(&config, &secrets("zendesk")).await?;
    sim.set_rate_limit_enabled(true);
    if read_records != rows {
        return Err(BenchError::Setup(format!(
            "the listing has {read_records} users, the simulator {rows}"
        )));
    }
    sim.reset_stats();
    let (engine, start_secs, secs) =
        timed_backfill(&rig, &config, &secrets("zendesk"), "support.users", rows).await?;
    let b = sim.stats();
    let zendesk = Backfill {
        records: rows,
        secs,
        calls: b.requests,
        read_secs,
        start_secs,
    };
    rig.wait_outbox_empty().await?;
    let after = sim.stats().requests - b.requests;
    let ratio = zendesk.rate() / hubspot.rate();
    println!(
        "backfill: Zendesk {:.0} records/s ({} users incl. the account owner in {:.2} s, {} API calls, {:.1} records/call: {}; {} answered 429); \
         HubSpot preset {:.0} records/s ({} contacts in {:.2} s, {} calls, {:.1} records/call); ratio {ratio:.3}",
        zendesk.rate(),
        zendesk.records,
        zendesk.secs,
        zendesk.calls,
        per(zendesk.records as f64, zendesk.calls as f64),
        routes(&b),
        b.throttled,
        hubspot.rate(),
        hubspot.records,
        hubspot.secs,
        hubspot.calls,
        per(hubspot.records as f64, hubspot.calls as f64),
    );
    println!(
        "  of which engine start (until Engine::start returned: schema, slot, workers): Zendesk {:.2} s, HubSpot {:.2} s",
        zendesk.start_secs, hubspot.start_secs
    );
    println!(
        "  the read path alone (the connector walking the same listing into nothing, no budget): \
         Zendesk {read_pages} pages in {:.2} s ({:.0} records/s), HubSpot {:.2} s ({:.0} records/s)",
        zendesk.read_secs,
        zendesk.records as f64 / zendesk.read_secs,
        hubspot.read_secs,
        hubspot.records as f64 / hubspot.read_secs,
    );
    if after > 0 {
        println!("  after the backfill, until the outbox was empty: {after} more Zendesk calls");
    }
    println!(
        "{}",
        json!({"bench": "zendesk.backfill", "records": zendesk.records, "seconds": zendesk.secs,
               "records_per_s": zendesk.rate(), "calls": zendesk.calls,
               "records_per_call": per(zendesk.records as f64, zendesk.calls as f64),
               "by_route": b.by_route, "calls_429": b.throttled,
               "hubspot_records": hubspot.records, "hubspot_seconds": hubspot.secs,
               "hubspot_records_per_s": hubspot.rate(), "hubspot_calls": hubspot.calls,
               "read_alone_seconds": zendesk.read_secs, "hubspot_read_alone_seconds": hubspot.read_secs,
               "engine_start_seconds": zendesk.start_secs, "hubspot_engine_start_seconds": hubspot.start_secs,
               "ratio": ratio})
    );

    // ---- writes under the budget: one statement edits every end-user's phone ----
    println!("waiting {window:.0} s for a clean budget window");
    tokio::time::sleep(budget.window).await;
    let owner = sim.email();
    sim.reset_stats();
    let c = rig.hub.client().await?;
    let t0 = Instant::now();
    let edited = c
        .query(
            "update support.users set phone = '+1444' || lpad(id::text, 7, '0')
              where email <> $1 returning zendesk_id::text, phone",
            &[&owner],
        )
        .await?;
    let want: HashMap<u64, String> = edited
        .iter()
        .filter_map(|r| {
            let id: Option<String> = r.get(0);
            Some((id?.parse().ok()?, r.get(1)))
        })
        .collect();
    if want.len() != edited.len() {
        return Err(BenchError::Setup(format!(
            "{} of {} edited rows have no Zendesk id",
            edited.len() - want.len(),
            edited.len()
        )));
    }
    let n = want.len();
    // generous: a tenth of the ideal rate, plus a few windows
    let limit = Duration::from_secs_f64(n as f64 / ideal_rate(budget, MAX_BATCH) * 10.0)
        + budget.window * 3
        + Duration::from_secs(60);
    let landed = wait_phones(&sim, &want, t0, limit).await?;
    let secs = landed.took.as_secs_f64();
    let sustained = landed.sustained(budget.window.as_secs_f64());
    let at_done = sim.stats();
    // the calls that finish the last jobs (their last status checks) come after the
    // records are in Zendesk: count the phase until ferry is done with it
    rig.wait_outbox_empty().await?;
    let drained = t0.elapsed().as_secs_f64();
    let s = sim.stats();
    engine.shutdown().await;
    sim.shutdown();

    let rate = n as f64 / secs;
    let ideal = ideal_rate(budget, MAX_BATCH);
    let (writes, polls, reads) = (
        route(&s, UPDATE_MANY),
        route(&s, JOB_STATUS),
        route(&s, SHOW_MANY),
    );
    let jobs = s.jobs_completed;
    let calls_per_job = per(s.requests as f64, jobs as f64);
    let per_write = per(s.records_written as f64, writes as f64);
    let per_call = per(s.records_written as f64, s.requests as f64);
    let share_429 = per(s.throttled as f64, s.requests as f64);
    // what the budget would allow this connector at its measured calls per record
    let budget_bound = ideal_rate(budget, 1) * per_call;
    // the simulator runs jobs side by side, each `job_delay` after it was queued, at most 30
    // queued or running at once (Zendesk's job limit)
    let job_ceiling = 30.0 * MAX_BATCH as f64 / job_delay.as_secs_f64();
    println!(
        "writes: {n} hub edits (one UPDATE) in Zendesk in {secs:.2} s = {rate:.0} records/s; ideal {ideal:.0} records/s \
         ({} requests / {window:.0} s × {MAX_BATCH} users per update_many); ratio {:.3}",
        budget.requests,
        rate / ideal
    );
    println!(
        "  calls until ferry was done ({drained:.2} s): {} ({}), {} answered 429 ({:.2} %); {} at the moment the last record landed",
        s.requests,
        routes(&s),
        s.throttled,
        share_429 * 100.0,
        at_done.requests
    );
    println!(
        "  {jobs} bulk jobs: {calls_per_job:.2} calls per job ({:.2} job_status checks, {:.2} record show_many reads); \
         {per_write:.1} records per update_many, {per_call:.1} records per API call",
        per(polls as f64, jobs as f64),
        per(reads as f64, jobs as f64),
    );
    println!(
        "  what bounds it: the budget allows {budget_bound:.0} records/s at {per_call:.1} records a call ({:.3} of the ideal); \
         the simulator runs up to 30 jobs at once, {} ms each: at most {job_ceiling:.0} records/s ({:.3} of the ideal)",
        budget_bound / ideal,
        job_delay.as_millis(),
        job_ceiling / ideal
    );
    match sustained {
        Some(r) => println!(
            "  sustained, whole {window:.0} s windows after the first (its burst spent): {r:.0} records/s, ratio {:.3}",
            r / ideal
        ),
        None => println!("  the phase lasted less than two budget windows: no rate after the first"),
    }
    if s.requests < u64::from(budget.requests) && drained < window {
        println!(
            "  the budget did not bind: {} calls, fewer than the {} one window allows",
            s.requests, budget.requests
        );
    }
    println!(
        "{}",
        json!({"bench": "zendesk.writes", "records": n, "seconds": secs, "records_per_s": rate,
               "ideal_records_per_s": ideal, "ratio": rate / ideal, "budget": opts.budget,
               "after_first_window_records_per_s": sustained,
               "seconds_until_outbox_empty": drained, "calls": s.requests, "calls_429": s.throttled,
               "share_429": share_429, "by_route": s.by_route, "jobs": jobs,
               "calls_per_job": calls_per_job, "polls_per_job": per(polls as f64, jobs as f64),
               "records_per_write_call": per_write, "records_per_call": per_call,
               "budget_bound_records_per_s": budget_bound, "sim_job_ceiling_records_per_s": job_ceiling})
    );
    Ok(())
}
