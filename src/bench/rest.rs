//! `ferry bench rest`: the generic REST connector against the REST simulator serving the
//! sample cursor-paged profile (`src/sim/rest/profiles/cursor_bearer.toml`) — the backfill of
//! N records under the HubSpot preset's budget (records/s, calls, records per call) next to
//! the HubSpot preset's backfill of N contacts in the same run, then webhook ingest (app edits
//! → signed deliveries of one event each, or of `--webhook-batch` → inbox → fetch → rows,
//! events/s) next to HubSpot's.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::baseline::{
    hubspot_backfill, hubspot_webhook_ingest, read_all, report_backfill, timed_backfill,
    wait_count, Backfill, HUBSPOT_BUDGET, SECRET, TOKEN,
};
use super::{BenchError, Rig};
use crate::config::{Config, Secrets};
use crate::sim::rest::{Profile, RestSim, SimConfig};

pub struct Options {
    /// Records seeded in the REST simulator (and contacts in HubSpot's, for the baseline).
    pub records: usize,
    /// Records edited in the app for the webhook run (in both apps).
    pub events: usize,
    /// Webhook deliveries the REST simulator has in flight at once.
    pub webhook_concurrency: usize,
    /// Events per delivery.
    pub webhook_batch: usize,
    /// What the connection says its events carry (`records`: applied without a fetch when
    /// safe; `ids`: every event's record fetched).
    pub webhook_carries: String,
}

/// The sample profile with the bench's credentials and the HubSpot preset's budget.
fn profile(concurrency: usize, batch: usize) -> Result<Profile, BenchError> {
    let mut p = Profile::parse(include_str!("../sim/rest/profiles/cursor_bearer.toml"))
        .map_err(BenchError::Setup)?;
    p.auth.secret = Some(TOKEN.into());
    p.webhooks.secret = Some(SECRET.into());
    // `concurrency` POSTs side by side (GitHub's and Svix's senders do not
    // wait for one delivery before the next)
    p.webhooks.concurrency = concurrency;
    // events per POST: 1 as those senders do; more as arrays (HubSpot sends up to 100)
    p.webhooks.batch = batch;
    Ok(p)
}

/// `rest.contacts` ↔ the simulator's contacts, told to ferry; polling and reconcile off.
fn config(rig: &Rig, sim: &RestSim, carries: &str) -> Result<Config, BenchError> {
    let text = format!(
        r#"
        [engine]
        listen = "127.0.0.1:0"
        slot = "{db}"
        poll_interval = "0s"
        reconcile_interval = "0s"
        [connections.rest]
        kind = "rest"
        base_url = "{url}"
        token_env = "UNUSED"
        webhook_secret_env = "UNUSED_SECRET"
        [connections.rest.resources.contacts]
        path = "/v1/contacts"
        records = "/data"
        pages = {{ style = "cursor", cursor = "/next_cursor", has_more = "/has_more", size = 100 }}
        [connections.rest.webhook]
        scheme = "hmac"
        header = "X-Signature"
        prefix = "sha256="
        signed = "{{timestamp}}.{{body}}"
        timestamp_header = "X-Timestamp"
        carries = "{carries}"
        [[mappings]]
        connection = "rest"
        object = "contacts"
        table = "rest.contacts"
        match_key = "email"
        fields = [
          {{ column = "email", property = "email", transform = "lowercase" }},
          {{ column = "name",  property = "name" }},
          {{ column = "phone", property = "phone" }},
        ]
        "#,
        db = rig.db,
        url = sim.base_url(),
        carries = carries.escape_default(),
    );
    Ok(Config::parse(&text, "bench config")?)
}

pub async fn run(data_dir: &Path, opts: Options) -> Result<(), BenchError> {
    let n = opts.records;
    println!(
        "# ferry bench rest ({n} records, {} webhook events; the HubSpot baseline under its budget {HUBSPOT_BUDGET}, the REST app without one)",
        opts.events
    );
    let hubspot = hubspot_backfill(data_dir, n).await?;

    // ---- the REST backfill: cursor pages of 100 → rest.contacts ----
    let rig = Rig::start(data_dir, "ferry_bench_rest").await?;
    let mut cfg = SimConfig::new(profile(opts.webhook_concurrency, opts.webhook_batch)?);
    cfg.seed.insert("contacts".into(), n);
    let sim = RestSim::start(cfg)
        .await
        .map_err(|e| BenchError::Setup(format!("REST simulator: {e}")))?;
    let config = config(&rig, &sim, &opts.webhook_carries)?;
    let secrets = HashMap::from([(
        "rest".to_string(),
        Secrets {
            token: TOKEN.into(),
            webhook_secret: Some(SECRET.into()),
        },
    )]);
    let read_secs = read_all(&config, &secrets, n, "records").await?;
    sim.reset_stats();
    let (engine, start_secs, secs) =
        timed_backfill(&rig, &config, &secrets, "rest.contacts", n).await?;
    let b = sim.stats();
    let rest = Backfill {
        records: n,
        secs,
        calls: b.requests,
        read_secs,
        start_secs,
    };
    rig.wait_outbox_empty().await?;
    report_backfill(
        ("REST", "records", "rest"),
        &rest,
        &b.by_route,
        Some(b.throttled),
        &hubspot,
    );

    // ---- webhook ingest: one edit per record in the app, one signed event each ----
    let m = opts.events.min(n);
    sim.set_webhook_url(Some(engine.webhook_url("rest")));
    let ids: Vec<serde_json::Value> = sim
        .records("contacts")
        .into_iter()
        .take(m)
        .map(|r| r["id"].clone())
        .collect();
    let c = rig.hub.client().await?;
    let calls_before = sim.stats().requests;
    let t0 = Instant::now();
    for id in &ids {
        let _ = sim.edit("contacts", id, json!({"phone": format!("wh-{id}")}));
    }
    // when the app had delivered every event (answered 2xx), and when the rows were there
    let sent = sim.webhook_counts().events_delivered;
    let mut delivered_secs = None;
    let probe = async {
        loop {
            if sim.webhook_counts().events_delivered - sent >= m as u64 {
                return t0.elapsed().as_secs_f64();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let rows = wait_count(
        &c,
        "select count(*) from rest.contacts where phone like 'wh-%'",
        m,
        t0,
        "REST webhook ingest",
    );
    tokio::pin!(probe);
    tokio::pin!(rows);
    loop {
        tokio::select! {
            at = &mut probe, if delivered_secs.is_none() => delivered_secs = Some(at),
            done = &mut rows => { done?; break; }
        }
    }
    let rest_secs = t0.elapsed().as_secs_f64();
    let rest_rate = m as f64 / rest_secs;
    let delivered_secs = delivered_secs.unwrap_or(rest_secs);
    let delivered = sim.webhook_counts();
    // the app's records ferry asked for while the events came in
    let fetches = sim.stats().requests - calls_before;
    engine.shutdown().await;
    sim.stop();
    // the baseline at the same delivery shape (the connectors compared), and at HubSpot's own
    // (≤100 events a delivery, one at a time: what the sender's shape costs)
    let shape_batch = opts.webhook_batch.clamp(1, 100);
    let hubspot_rate =
        hubspot_webhook_ingest(data_dir, m, shape_batch, opts.webhook_concurrency).await?;
    let own_shape = (shape_batch, opts.webhook_concurrency) == (100, 1);
    let hubspot_own = if own_shape {
        hubspot_rate
    } else {
        hubspot_webhook_ingest(data_dir, m, 100, 1).await?
    };
    let ratio = rest_rate / hubspot_rate;
    let events_of = |batch: usize| match batch {
        0 | 1 => "one event".to_string(),
        b => format!("≤{b} events"),
    };
    let (rest_shape, shape) = (events_of(opts.webhook_batch), events_of(shape_batch));
    println!(
        "webhooks: REST {rest_rate:.0} events/s ({m} app edits → {} signed deliveries of {rest_shape}, {} in flight, carries = {:?}, {fetches} records fetched, all answered in {delivered_secs:.2} s → rows in {rest_secs:.2} s); \
         HubSpot preset {hubspot_rate:.0} events/s (the same edits, deliveries of {shape}, {} in flight); ratio {ratio:.3}",
        delivered.delivered,
        opts.webhook_concurrency,
        opts.webhook_carries,
        opts.webhook_concurrency,
    );
    if !own_shape {
        println!(
            "  HubSpot preset at HubSpot's own delivery shape (≤100 events a delivery, one at a time): {hubspot_own:.0} events/s; REST at {rest_shape} a delivery / that: {:.3}",
            rest_rate / hubspot_own
        );
    }
    println!(
        "{}",
        json!({"bench": "rest.webhooks", "events": m, "events_per_s": rest_rate, "batch": opts.webhook_batch, "concurrency": opts.webhook_concurrency, "carries": opts.webhook_carries, "fetches": fetches,
               "deliveries": delivered.delivered, "delivered_seconds": delivered_secs, "seconds": rest_secs, "hubspot_events_per_s": hubspot_rate,
               "hubspot_own_shape_events_per_s": hubspot_own, "ratio": ratio, "ratio_to_hubspot_own_shape": rest_rate / hubspot_own})
    );
    Ok(())
}
