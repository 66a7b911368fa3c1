//! `ferry bench nway`: the N-way hop through one hub table — a change made inside Zendesk's
//! simulator until HubSpot's simulator has accepted the write ferry made of it (webhook →
//! inbox → `crm.people` → replication → outbox → HubSpot batch update). Unloaded, and under a
//! background load of hub edits that both apps receive. The same-run baseline is the first half
//! of the hop: the same change until the hub row shows it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::{percentile, BenchError, Rig};
use crate::config::{Config, Secrets};
use crate::engine::Engine;
use crate::sim::hubspot::{HubSpotSim, SimConfig};
use crate::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};

pub struct Options {
    /// People in both apps.
    pub people: usize,
    /// Changes timed per phase (unloaded, loaded).
    pub samples: usize,
    /// Hub edits per second in the loaded phase.
    pub load_per_sec: f64,
}

const TOKEN: &str = "bench-token";
const SECRET: &str = "bench-secret";

fn config(rig: &Rig, hubspot: &str, zendesk: &str, email: &str) -> Result<Config, BenchError> {
    let text = format!(
        r#"
        [engine]
        listen = "127.0.0.1:0"
        slot = "{db}"
        poll_interval = "0s"
        reconcile_interval = "0s"
        [connections.hubspot]
        kind = "hubspot"
        base_url = "{hubspot}"
        token_env = "UNUSED"
        [connections.zendesk]
        kind = "zendesk"
        base_url = "{zendesk}"
        email = "{email}"
        token_env = "UNUSED"
        [[mappings]]
        connection = "hubspot"
        object = "contacts"
        table = "crm.people"
        match_key = "email"
        fields = [
          {{ column = "email", property = "email", transform = "lowercase" }},
          {{ column = "firstname", property = "firstname" }},
          {{ column = "phone", property = "phone" }},
        ]
        [[mappings]]
        connection = "zendesk"
        object = "users"
        table = "crm.people"
        match_key = "email"
        fields = [
          {{ column = "email", property = "email", transform = "lowercase" }},
          {{ column = "firstname", property = "name" }},
          {{ column = "phone", property = "phone" }},
        ]
        "#,
        db = rig.db
    );
    Ok(Config::parse(&text, "bench config")?)
}

/// p50 / p99 / max in milliseconds.
fn summary(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (
        percentile(samples, 0.5),
        percentile(samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN),
    )
}

/// Edits random people's phones in the hub at about `per_sec` until aborted: the upper half
/// of the people (the timed changes use the lower half).
fn background_load(rig: &Rig, people: usize, per_sec: f64) -> tokio::task::JoinHandle<()> {
    let half = people as i64 / 2;
    super::load(
        &rig.hub,
        "update crm.people set phone = '+2' || $2::text where id = $1",
        half + 1..=people as i64,
        per_sec,
    )
}

pub async fn run(data_dir: &std::path::Path, opts: Options) -> Result<(), BenchError> {
    let rig = Rig::start(data_dir, "ferry_bench_nway").await?;
    let sim_err = |e: std::io::Error| BenchError::Setup(format!("simulator: {e}"));
    let hubspot = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: opts.people,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(sim_err)?;
    let zendesk = ZendeskSim::start(
        ZendeskConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            rate_limit: None,
            incremental_limit: None,
            ..ZendeskConfig::default()
        },
        "127.0.0.1:0".parse().expect("static address"),
    )
    .await
    .map_err(sim_err)?;
    // every contact is also a Zendesk user (same email and first name)
    for c in hubspot.records("contacts") {
        let mut f = Map::new();
        for (from, to) in [
            ("email", "email"),
            ("firstname", "name"),
            ("phone", "phone"),
        ] {
            if let Some(v) = c.properties.get(from) {
                f.insert(to.into(), json!(v));
            }
        }
        zendesk
            .app_create("users", f)
            .map_err(|e| BenchError::Setup(format!("seeding Zendesk: {e}")))?;
    }
    let config = config(
        &rig,
        &hubspot.base_url(),
        &zendesk.base_url(),
        &zendesk.email(),
    )?;
    let secret = || Secrets {
        token: TOKEN.into(),
        webhook_secret: Some(SECRET.into()),
    };
    let secrets = HashMap::from([
        ("hubspot".to_string(), secret()),
        ("zendesk".to_string(), secret()),
    ]);
    let engine = Engine::start(rig.hub.clone(), &config, &secrets).await?;
    hubspot.set_webhook_url(Some(engine.webhook_url("hubspot")));
    zendesk.set_webhook_url(Some(engine.webhook_url("zendesk")));
    let t0 = Instant::now();
    loop {
        let c = rig.hub.client().await?;
        let done: bool = c
            .query_one(
                "select bool_and(backfill_state = 'done') and not exists (select 1 from ferry.outbox)
                        and (select count(*) from crm.people where hubspot_id is not null and zendesk_id is not null) >= $1
                   from ferry.mappings",
                &[&(opts.people as i64)],
            )
            .await?
            .get::<_, Option<bool>>(0)
            .unwrap_or(false);
        if done {
            break;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            return Err(BenchError::Timeout("the first sync of both apps".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "first sync: {} people in both apps in {:.1} s",
        opts.people,
        t0.elapsed().as_secs_f64()
    );
    let ids: Vec<(i64, String, u64)> = rig
        .hub
        .client()
        .await?
        .query(
            "select id, hubspot_id, zendesk_id::bigint from crm.people
              where id <= $1 and hubspot_id is not null and zendesk_id is not null order by id",
            &[&(opts.people as i64 / 2)],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as u64))
        .collect();
    if ids.is_empty() {
        return Err(BenchError::Setup("no person linked to both apps".into()));
    }
    let probe = rig.hub.client().await?;
    for loaded in [false, true] {
        let load = loaded.then(|| background_load(&rig, opts.people, opts.load_per_sec));
        let (mut hop, mut half) = (vec![], vec![]);
        for i in 0..opts.samples {
            let (key, hs_id, zd_id) = &ids[i % ids.len()];
            let phone = format!("+3{}{i}", u8::from(loaded));
            let mut f = Map::new();
            f.insert("phone".into(), json!(phone));
            let t0 = Instant::now();
            zendesk
                .app_update("users", *zd_id, f)
                .map_err(|e| BenchError::Setup(format!("Zendesk edit: {e}")))?;
            let mut in_hub = None;
            loop {
                if in_hub.is_none() {
                    let v: Option<String> = probe
                        .query_one("select phone from crm.people where id = $1", &[key])
                        .await?
                        .get(0);
                    if v.as_deref() == Some(phone.as_str()) {
                        in_hub = Some(t0.elapsed());
                    }
                }
                let there = hubspot
                    .get("contacts", hs_id)
                    .and_then(|r| r.properties.get("phone").cloned());
                if there.as_deref() == Some(phone.as_str()) {
                    let all = t0.elapsed();
                    half.push(in_hub.unwrap_or(all).as_secs_f64() * 1000.0);
                    hop.push(all.as_secs_f64() * 1000.0);
                    break;
                }
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err(BenchError::Timeout(format!(
                        "person {key}'s phone in HubSpot"
                    )));
                }
                tokio::time::sleep(Duration::from_micros(250)).await;
            }
        }
        if let Some(l) = load {
            l.abort();
        }
        let (h50, h99, hmax) = summary(&mut hop);
        let (b50, b99, bmax) = summary(&mut half);
        let phase = if loaded {
            format!("loaded ({} hub edits/s)", opts.load_per_sec)
        } else {
            "unloaded".to_string()
        };
        println!(
            "N-way hop {phase}: Zendesk change → HubSpot write p50 {h50:.1} ms, p99 {h99:.1} ms, max {hmax:.1} ms; \
             baseline Zendesk change → hub row p50 {b50:.1} ms, p99 {b99:.1} ms, max {bmax:.1} ms ({} samples)",
            hop.len()
        );
        let line: Value = json!({"bench": "nway", "phase": phase, "samples": hop.len(),
            "hop_ms": {"p50": h50, "p99": h99, "max": hmax},
            "hub_ms": {"p50": b50, "p99": b99, "max": bmax}});
        println!("{line}");
    }
    engine.shutdown().await;
    hubspot.shutdown();
    zendesk.shutdown();
    Ok(())
}
