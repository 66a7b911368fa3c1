//! `ferry demo`: the whole loop on one machine — embedded PostgreSQL hub, a seeded HubSpot
//! simulator, and the engine syncing `hubspot.contacts` both ways.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError, Secrets};
use crate::engine::{Engine, EngineError};
use crate::hub::embedded::{EmbeddedError, EmbeddedPg};
use crate::hub::{Hub, HubError};
use crate::sim::hubspot::{HubSpotSim, SimConfig};

pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub contacts: usize,
    pub sim_listen: SocketAddr,
    pub listen: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the HubSpot simulator on {0}: {1}")]
    Sim(SocketAddr, std::io::Error),
    #[error("the backfill did not finish within {0:?}")]
    Timeout(Duration),
}

const TOKEN: &str = "demo-token";
const SECRET: &str = "demo-webhook-secret";
const DB: &str = "ferry";

/// The demo's configuration, pointed at the simulator.
pub fn config(sim_url: &str, listen: SocketAddr) -> Result<Config, ConfigError> {
    let text = include_str!("demo.toml")
        .replace("{sim_url}", sim_url)
        .replace("{listen}", &listen.to_string());
    Config::parse(&text, "demo.toml")
}

async fn fresh_database(pg: &EmbeddedPg) -> Result<(), DemoError> {
    let admin = Hub::connect(&pg.url("postgres")).await?;
    let client = admin.client().await?;
    // the simulator keeps no state between runs, so neither does the demo's hub
    client
        .execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1",
            &[&DB],
        )
        .await
        .map_err(HubError::from)?;
    client
        .batch_execute(&format!("drop database if exists {DB} with (force)"))
        .await
        .map_err(HubError::from)?;
    drop(client);
    pg.ensure_database(DB).await?;
    Ok(())
}

pub async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    println!("starting PostgreSQL under {} ...", opts.data_dir.display());
    let dir = opts.data_dir.clone();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir))
        .await
        .map_err(|e| EmbeddedError::Io(e.to_string()))??;
    fresh_database(&pg).await?;
    let hub = Hub::connect(&pg.url(DB)).await?;

    let sim = HubSpotSim::start(
        SimConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_contacts: opts.contacts,
            ..SimConfig::default()
        },
        opts.sim_listen,
    )
    .await
    .map_err(|e| DemoError::Sim(opts.sim_listen, e))?;

    let config = config(&sim.base_url(), opts.listen)?;
    let secrets = HashMap::from([(
        "hubspot".to_string(),
        Secrets {
            token: TOKEN.into(),
            webhook_secret: Some(SECRET.into()),
        },
    )]);
    let engine = Engine::start(hub.clone(), &config, &secrets).await?;
    sim.set_webhook_url(Some(engine.webhook_url("hubspot")));

    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(opts.contacts as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "backfill {bar:40} {pos}/{len} contacts ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let limit = Duration::from_secs(120);
    loop {
        let row = hub
            .client()
            .await?
            .query_one(
                "select p.backfill_rows, m.backfill_state = 'done' from ferry.mappings m
                   join ferry.mapping_progress p on p.mapping_id = m.id where m.name = 'hubspot.contacts'",
                &[],
            )
            .await
            .map_err(HubError::from)?;
        bar.set_position(row.get::<_, i64>(0) as u64);
        if row.get::<_, bool>(1) {
            break;
        }
        if started.elapsed() > limit {
            return Err(DemoError::Timeout(limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bar.finish();

    let psql_url = pg.url(DB);
    let sim_url = sim.base_url();
    println!(
        "\nferry demo is running: {n} HubSpot contacts synced into hubspot.contacts in {ms} ms.\n\n\
         hub (PostgreSQL):  {psql_url}\n\
         \x20                  psql {psql_url}\n\
         HubSpot simulator: {sim_url}   token: {TOKEN}\n\
         webhooks into:     {hook}\n\n\
         Try it:\n\
         \x20 psql {psql_url} -c \"update hubspot.contacts set phone = '+15550100' where id = 1\"\n\
         \x20 curl -s -H 'Authorization: Bearer {TOKEN}' '{sim_url}/crm/v3/objects/contacts/1?properties=phone'\n\
         \x20 curl -s -X PATCH -H 'Authorization: Bearer {TOKEN}' -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"properties\":{{\"firstname\":\"Ada\"}}}}' {sim_url}/crm/v3/objects/contacts/2\n\
         \x20 psql {psql_url} -c \"select id, hubspot_id, firstname, phone from hubspot.contacts where id <= 2\"\n\
         \x20 psql {psql_url} -c \"select * from ferry.status\"\n\n\
         Press Ctrl-C to stop (PostgreSQL stops too; {where_}).",
        n = opts.contacts,
        ms = started.elapsed().as_millis(),
        hook = engine.webhook_url("hubspot"),
        where_ = pg.banner(),
    );

    wait_for_signal().await;
    // stdout may be gone by now (a closed pipe): never panic on the way out
    let _ = writeln!(std::io::stdout(), "stopping ...");
    engine.shutdown().await;
    sim.shutdown();
    hub.close().await;
    pg.stop();
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
