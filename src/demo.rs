//! `ferry demo`: the seeds' job on one machine — embedded PostgreSQL hub, seeded HubSpot and
//! Zendesk simulators, and the engine keeping both apps identical through one hub table,
//! `crm.people`.

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
use crate::sim::zendesk::{SimConfig as ZendeskConfig, ZendeskSim};

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
    #[error("cannot start a simulator on {0}: {1}")]
    Sim(SocketAddr, std::io::Error),
    #[error("the backfill did not finish within {0:?}")]
    Timeout(Duration),
}

const TOKEN: &str = "demo-token";
const SECRET: &str = "demo-webhook-secret";
const DB: &str = "ferry";

/// The demo's configuration, pointed at the simulators.
pub fn config(
    hubspot_url: &str,
    zendesk_url: &str,
    zendesk_email: &str,
    listen: SocketAddr,
) -> Result<Config, ConfigError> {
    let text = include_str!("demo.toml")
        .replace("{hubspot_url}", hubspot_url)
        .replace("{zendesk_url}", zendesk_url)
        .replace("{zendesk_email}", zendesk_email)
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

/// Where the Zendesk simulator listens: the port after HubSpot's (or any, for port 0).
fn zendesk_addr(hubspot: SocketAddr) -> SocketAddr {
    let port = match hubspot.port() {
        0 => 0,
        p => p.saturating_add(1),
    };
    SocketAddr::new(hubspot.ip(), port)
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
    // a support desk with a quarter as many people, a fifth of them also in the CRM (same email
    // and first name): the first sync makes them one row each
    let zd_addr = zendesk_addr(opts.sim_listen);
    let zd = ZendeskSim::start(
        ZendeskConfig {
            token: TOKEN.into(),
            webhook_secret: SECRET.into(),
            seed_users: opts.contacts / 4,
            ..ZendeskConfig::default()
        },
        zd_addr,
    )
    .await
    .map_err(|e| DemoError::Sim(zd_addr, e))?;
    let shared_emails: std::collections::HashSet<String> = (1..=opts.contacts / 20)
        .map(|n| format!("contact{n}@example.com"))
        .collect();
    let shared: Vec<_> = sim
        .records("contacts")
        .into_iter()
        .filter(|c| {
            c.properties
                .get("email")
                .is_some_and(|e| shared_emails.contains(e))
        })
        .collect();
    for c in &shared {
        let mut fields = serde_json::Map::new();
        for (from, to) in [
            ("email", "email"),
            ("firstname", "name"),
            ("phone", "phone"),
        ] {
            if let Some(v) = c.properties.get(from) {
                fields.insert(to.into(), v.clone().into());
            }
        }
        // a seeded contact Zendesk refuses (no name) is simply not shared
        let _ = zd.app_create("users", fields);
    }

    let config = config(&sim.base_url(), &zd.base_url(), &zd.email(), opts.listen)?;
    let secret = || Secrets {
        token: TOKEN.into(),
        webhook_secret: Some(SECRET.into()),
    };
    let secrets = HashMap::from([
        ("hubspot".to_string(), secret()),
        ("zendesk".to_string(), secret()),
    ]);
    let engine = Engine::start(hub.clone(), &config, &secrets).await?;
    sim.set_webhook_url(Some(engine.webhook_url("hubspot")));
    zd.set_webhook_url(Some(engine.webhook_url("zendesk")));

    let started = Instant::now();
    let total = (opts.contacts + zd.records("users").len()) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "backfill {bar:40} {pos}/{len} records ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let limit = Duration::from_secs(120);
    loop {
        let row = hub
            .client()
            .await?
            .query_one(
                "select coalesce(sum(p.backfill_rows), 0)::bigint, bool_and(m.backfill_state = 'done')
                   from ferry.mappings m join ferry.mapping_progress p on p.mapping_id = m.id",
                &[],
            )
            .await
            .map_err(HubError::from)?;
        bar.set_position(row.get::<_, i64>(0) as u64);
        if row.get::<_, Option<bool>>(1) == Some(true) {
            break;
        }
        if started.elapsed() > limit {
            return Err(DemoError::Timeout(limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bar.finish();

    // a person in both apps, for the commands below
    let both = hub
        .client()
        .await?
        .query_opt(
            "select id, hubspot_id, zendesk_id from crm.people
              where hubspot_id is not null and zendesk_id is not null order by id limit 1",
            &[],
        )
        .await
        .map_err(HubError::from)?;
    let (row, hs_id, zd_id): (i64, String, String) = both
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap_or((1, "1".into(), "1".into()));
    let psql_url = pg.url(DB);
    let sim_url = sim.base_url();
    let zd_url = zd.base_url();
    let zd_email = zd.email();
    println!(
        "\nferry demo is running: {n} HubSpot contacts and {z} Zendesk users, one row per person in crm.people, \
         first sync in {ms} ms (what each app lacks is being created there: see ferry.status).\n\n\
         hub (PostgreSQL):  {psql_url}\n\
         \x20                  psql {psql_url}\n\
         HubSpot simulator: {sim_url}   token: {TOKEN}\n\
         Zendesk simulator: {zd_url}   user: {zd_email}/token   password: {TOKEN}\n\
         webhooks into:     {hook} and {zd_hook}\n\n\
         Try it (person {row} is in both apps):\n\
         \x20 curl -s -u '{zd_email}/token:{TOKEN}' -X PUT -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"user\":{{\"phone\":\"+15550199\"}}}}' {zd_url}/api/v2/users/{zd_id}.json\n\
         \x20 curl -s -H 'Authorization: Bearer {TOKEN}' '{sim_url}/crm/v3/objects/contacts/{hs_id}?properties=phone'\n\
         \x20 psql {psql_url} -c \"select id, hubspot_id, zendesk_id, firstname, phone from crm.people where id = {row}\"\n\
         \x20 psql {psql_url} -c \"update crm.people set phone = '+15550100' where id = {row}\"\n\
         \x20 curl -s -u '{zd_email}/token:{TOKEN}' {zd_url}/api/v2/users/{zd_id}.json\n\
         \x20 psql {psql_url} -c \"select * from ferry.status\"\n\n\
         Press Ctrl-C to stop (PostgreSQL stops too; {where_}).",
        n = opts.contacts,
        z = zd.records("users").len(),
        ms = started.elapsed().as_millis(),
        hook = engine.webhook_url("hubspot"),
        zd_hook = engine.webhook_url("zendesk"),
        where_ = pg.banner(),
    );

    wait_for_signal().await;
    // stdout may be gone by now (a closed pipe): never panic on the way out
    let _ = writeln!(std::io::stdout(), "stopping ...");
    engine.shutdown().await;
    sim.shutdown();
    zd.shutdown();
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
