//! `ferry bench salesforce`, last part: the org's daily API allocation over two simulated
//! days. The Salesforce simulator's clock moves 20 s every few milliseconds; ferry's
//! connector paces its share by that clock while it asks for more than the share allows (a
//! poll every 20 s), and another integration of the org spends its own calls in working
//! hours. Per three hours: ferry's calls, the other's, the org's usage and ferry's
//! longest silence; at the end, whether the allocation was ever exhausted.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::BenchError;
use crate::connectors::salesforce::{Grant, Options, Salesforce};
use crate::connectors::{Connector, ConnectorError};
use crate::sim::salesforce::{SalesforceSim, SimConfig};

/// ferry's share of the org's allocation (the connection's default `daily_share`).
const SHARE: f64 = 0.8;
/// Simulated hours.
const HOURS: u64 = 48;
/// Calls the other integration makes in each working hour (09:00–17:00): one a minute.
const OTHER_PER_HOUR: u64 = 60;
/// ferry's poll interval: one call each (4,320 a day, more than its share of the default
/// allocation allows).
const POLL: u64 = 20;
/// How far the simulated clock moves at each step, and the real pause between steps.
const STEP: u64 = 20;
const STEP_REAL: Duration = Duration::from_millis(3);

fn connector(sim: &SalesforceSim, options: Options) -> Salesforce {
    let c = sim.config();
    Salesforce::new(
        "bench",
        &sim.base_url(),
        Grant::RefreshToken {
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone(),
            refresh_token: c.refresh_token.clone(),
        },
        options,
    )
}

/// What ferry's poller saw: simulated seconds of each answered call, and polls its budget
/// put off (no call sent; the poll is tried again at the next interval).
#[derive(Default)]
struct Log {
    calls: Mutex<Vec<u64>>,
    deferred: AtomicU64,
}

pub async fn run(daily_limit: u32) -> Result<(), BenchError> {
    let sim = SalesforceSim::start(
        SimConfig {
            seed_contacts: 5,
            daily_api_limit: daily_limit,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(|e| BenchError::Setup(format!("Salesforce simulator: {e}")))?;
    let clock = sim.clock().clone();
    let start = clock.now();
    let at = move |c: &crate::sim::core::clock::SimClock| (c.now() - start).num_seconds() as u64;
    let ferry = Arc::new(connector(
        &sim,
        Options {
            daily_share: SHARE,
            probe_every: Duration::from_secs(600),
            pace_clock: Some(clock.clone()),
            ..Options::default()
        },
    ));
    let other = connector(
        &sim,
        Options {
            daily_share: 1.0,
            pacing: false,
            ..Options::default()
        },
    );
    let log = Arc::new(Log::default());
    let stop = Arc::new(AtomicBool::new(false));
    // ferry polls every POLL simulated seconds, when its budget lets it
    let poller = {
        let (ferry, log, stop, clock) = (ferry.clone(), log.clone(), stop.clone(), clock.clone());
        tokio::spawn(async move {
            let props = vec!["Email".to_string()];
            while !stop.load(Ordering::Relaxed) {
                match ferry.list("Contact", &props, None).await {
                    Ok(_) => log.calls.lock().expect("log").push(at(&clock)),
                    Err(ConnectorError::RateLimited { .. }) => {
                        log.deferred.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => eprintln!("ferry's poll failed: {e}"),
                }
                let next = at(&clock) + POLL;
                while at(&clock) < next && !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        })
    };
    println!(
        "daily allocation: {daily_limit} calls a rolling 24 h; ferry's share {SHARE} ({} calls), paced past a quarter of it; \
         ferry polls every {POLL} s; another integration makes {OTHER_PER_HOUR} calls an hour 09:00–17:00",
        (SHARE * daily_limit as f64) as u64
    );
    println!("  hours   ferry calls  other calls  org usage at end  ferry's longest silence");
    let (mut other_calls, mut other_slot, mut max_usage) = (0u64, 0u64, 0u32);
    let mut rows = Vec::new();
    let mut seen = 0usize;
    let mut last_call = 0u64;
    let mut slot_silence = 0u64;
    const SLOT: u64 = 3 * 3600;
    for step in 0..HOURS * 3600 / STEP {
        clock.advance(Duration::from_secs(STEP));
        let now = at(&clock);
        let hour = now / 3600 % 24;
        let minute_began = now % 60 < STEP;
        if (9..17).contains(&hour) && minute_began && now % 3600 / 60 < OTHER_PER_HOUR {
            match other.list("Contact", &[], None).await {
                Ok(_) => other_slot += 1,
                Err(e) => eprintln!("the other integration's call failed: {e}"),
            }
        }
        tokio::time::sleep(STEP_REAL).await;
        {
            let calls = log.calls.lock().expect("log");
            for &t in &calls[seen..] {
                slot_silence = slot_silence.max(t.saturating_sub(last_call));
                last_call = t;
            }
            seen = calls.len();
        }
        slot_silence = slot_silence.max(now.saturating_sub(last_call));
        max_usage = max_usage.max(sim.stats().api_usage);
        if ((step + 1) * STEP).is_multiple_of(SLOT) {
            let calls = log.calls.lock().expect("log");
            let from = (step + 1) * STEP - SLOT;
            let ferry_slot = calls
                .iter()
                .filter(|t| (from..from + SLOT).contains(t))
                .count();
            let usage = sim.stats().api_usage;
            println!(
                "  {:>2}–{:<2}  {ferry_slot:>11}  {other_slot:>11}  {usage:>16}  {:>6.1} min",
                from / 3600,
                (from + SLOT) / 3600,
                slot_silence as f64 / 60.0
            );
            rows.push(json!({"from_hour": from / 3600, "ferry_calls": ferry_slot,
                             "other_calls": other_slot, "org_usage": usage,
                             "longest_silence_s": slot_silence}));
            other_calls += other_slot;
            other_slot = 0;
            slot_silence = 0;
        }
    }
    stop.store(true, Ordering::Relaxed);
    // the poller may be waiting on the budget: it ends with the next simulated minutes
    for _ in 0..1000 {
        if poller.is_finished() {
            break;
        }
        clock.advance(Duration::from_secs(600));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    poller.abort();
    let calls = log.calls.lock().expect("log").clone();
    let day2 = calls
        .iter()
        .filter(|t| **t >= 24 * 3600 && **t < 48 * 3600)
        .count();
    let deferred = log.deferred.load(Ordering::Relaxed);
    let s = sim.stats();
    sim.shutdown();
    let share_calls = SHARE * daily_limit as f64;
    println!(
        "  ferry: {} calls in {HOURS} h, {day2} on the second day ({:.3} of its share of {share_calls:.0}); \
         the other integration {other_calls}; the org's usage peaked at {max_usage} of {daily_limit} ({:.3}); \
         {deferred} polls put off by ferry's budget, {} REQUEST_LIMIT_EXCEEDED answers",
        calls.len(),
        day2 as f64 / share_calls,
        max_usage as f64 / daily_limit as f64,
        s.limit_exceeded
    );
    println!(
        "{}",
        json!({"bench": "salesforce.daily", "daily_limit": daily_limit, "share": SHARE,
               "ferry_calls": calls.len(), "ferry_calls_day2": day2,
               "day2_of_share": day2 as f64 / share_calls, "other_calls": other_calls,
               "peak_usage": max_usage, "deferred_polls": deferred, "limit_exceeded": s.limit_exceeded,
               "slots": rows})
    );
    Ok(())
}
