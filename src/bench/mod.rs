//! Benchmarks (`ferry bench ...`): the whole engine against the simulators on a private
//! PostgreSQL, each figure printed next to its same-run baseline, plus one JSON line per result.

pub mod baseline;
pub mod cpu;
pub mod inbound;
pub mod nway;
pub mod outbound;
pub mod rest;
pub mod salesforce;
pub mod salesforce_day;
pub mod stripe;
pub mod zendesk;

use std::path::Path;
use std::time::{Duration, Instant};

use postgres_protocol::escape::escape_identifier;

use crate::config::{Config, ConfigError};
use crate::engine::EngineError;
use crate::hub::embedded::{EmbeddedError, EmbeddedPg};
use crate::hub::{Hub, HubError};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl From<tokio_postgres::Error> for BenchError {
    fn from(e: tokio_postgres::Error) -> Self {
        BenchError::Hub(HubError::Sql(e))
    }
}

/// `q`-quantile of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A private hub for one benchmark: embedded PostgreSQL (or FERRY_DATABASE_URL's server) and a
/// fresh database.
pub struct Rig {
    pub hub: Hub,
    pub url: String,
    pub db: String,
    /// Last, so it stops after the pool closed its connections (fields drop in order).
    _pg: Option<EmbeddedPg>,
}

impl Rig {
    pub async fn start(data_dir: &Path, db: &str) -> Result<Rig, BenchError> {
        let (pg, admin_url, url) = match std::env::var("FERRY_DATABASE_URL") {
            Ok(base) => {
                let cut = base
                    .rfind('/')
                    .map(|i| &base[..i])
                    .unwrap_or(&base)
                    .to_string();
                (None, format!("{cut}/postgres"), format!("{cut}/{db}"))
            }
            Err(_) => {
                let dir = data_dir.to_path_buf();
                let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir))
                    .await
                    .map_err(|e| BenchError::Setup(e.to_string()))??;
                let (a, u) = (pg.url("postgres"), pg.url(db));
                (Some(pg), a, u)
            }
        };
        let admin = Hub::connect(&admin_url).await?;
        let c = admin.client().await?;
        c.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1", &[&db]).await?;
        c.batch_execute(&format!(
            "drop database if exists {} with (force)",
            escape_identifier(db)
        ))
        .await?;
        c.batch_execute(&format!("create database {}", escape_identifier(db)))
            .await?;
        drop(c);
        let hub = Hub::connect(&url).await?;
        Ok(Rig {
            _pg: pg,
            hub,
            url,
            db: db.to_string(),
        })
    }

    /// `workers`: outbound workers of the engine under test.
    pub fn config(
        &self,
        sim_url: &str,
        rate_limit: Option<&str>,
        workers: usize,
    ) -> Result<Config, BenchError> {
        let rl = rate_limit
            .map(|r| format!("rate_limit = \"{r}\""))
            .unwrap_or_default();
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            workers = {workers}
            # each benchmark measures one path: no polling or reconcile running beside it
            poll_interval = "0s"
            reconcile_interval = "0s"
            [connections.hubspot]
            kind = "hubspot"
            base_url = "{sim_url}"
            token_env = "UNUSED"
            {rl}
            [[mappings]]
            connection = "hubspot"
            object = "contacts"
            table = "hubspot.contacts"
            match_key = "email"
            fields = [
              {{ column = "email", property = "email" }},
              {{ column = "firstname", property = "firstname" }},
              {{ column = "lastname", property = "lastname" }},
              {{ column = "phone", property = "phone" }},
              {{ column = "company", property = "company" }},
            ]
            "#,
            db = self.db
        );
        Ok(Config::parse(&text, "bench config")?)
    }

    async fn scalar_i64(&self, sql: &str) -> Result<i64, BenchError> {
        Ok(self.hub.client().await?.query_one(sql, &[]).await?.get(0))
    }

    pub async fn wait_backfill(&self, rows: usize) -> Result<(), BenchError> {
        self.wait_backfill_of("hubspot.contacts", rows).await
    }

    /// Waits until the one mapping's backfill is done and `table` (a name the benchmark's own
    /// configuration gives) holds `rows` rows.
    pub async fn wait_backfill_of(&self, table: &str, rows: usize) -> Result<(), BenchError> {
        let t0 = Instant::now();
        let count = format!("select count(*) from {table}");
        loop {
            let done = self
                .scalar_i64(
                    "select count(*) filter (where backfill_state = 'done') from ferry.mappings",
                )
                .await?;
            if done == 1 && self.scalar_i64(&count).await? == rows as i64 {
                return Ok(());
            }
            if t0.elapsed() > Duration::from_secs(600) {
                return Err(BenchError::Timeout(format!("the backfill of {table}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Both queues empty, three checks in a row.
    pub async fn wait_outbox_empty(&self) -> Result<(), BenchError> {
        let t0 = Instant::now();
        let mut calm = 0;
        while calm < 3 {
            let n = self.scalar_i64("select (select count(*) from ferry.outbox) + (select count(*) from ferry.inbox)").await?;
            calm = if n == 0 { calm + 1 } else { 0 };
            if t0.elapsed() > Duration::from_secs(600) {
                return Err(BenchError::Timeout("outbox to drain".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn baseline_slot(&self) -> String {
        format!("{}_baseline", self.db)
    }

    pub async fn create_baseline_slot(&self) -> Result<(), BenchError> {
        let c = self.hub.client().await?;
        c.execute("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1", &[&self.baseline_slot()])
            .await?;
        c.execute(
            "select pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&self.baseline_slot()],
        )
        .await?;
        Ok(())
    }

    pub async fn current_lsn(&self) -> Result<String, BenchError> {
        Ok(self
            .hub
            .client()
            .await?
            .query_one("select pg_current_wal_lsn()::text", &[])
            .await?
            .get(0))
    }

    /// `rows` single-row UPDATE transactions, one per row, pipelined over 4 connections.
    pub async fn update_each_row_once(&self, rows: usize) -> Result<(), BenchError> {
        self.update_each_row_to(rows, "bench-").await
    }

    /// One single-row `UPDATE` transaction per row, setting `company` to `prefix || id` (a
    /// prefix not used before, so every update changes the row and goes to the app).
    pub async fn update_each_row_to(&self, rows: usize, prefix: &str) -> Result<(), BenchError> {
        let mut tasks = vec![];
        for part in 0..4i64 {
            let hub = self.hub.clone();
            let prefix = prefix.to_string();
            tasks.push(tokio::spawn(async move {
                let c = hub.client().await?;
                let stmt = c
                    .prepare("update hubspot.contacts set company = $2 || id where id = $1")
                    .await?;
                let keys: Vec<i64> = (1..=rows as i64).filter(|k| k % 4 == part).collect();
                for chunk in keys.chunks(256) {
                    let futs = chunk.iter().map(|k| {
                        let (c, stmt, prefix) = (&c, &stmt, &prefix);
                        async move { c.execute(stmt, &[k, prefix]).await }
                    });
                    for r in futures_util::future::join_all(futs).await {
                        r?;
                    }
                }
                Ok::<_, BenchError>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| BenchError::Setup(e.to_string()))??;
        }
        Ok(())
    }

    /// Seconds pg_recvlogical takes to drain the baseline slot up to `end_lsn`.
    pub async fn drain_baseline(&self, end_lsn: &str) -> Result<f64, BenchError> {
        let t0 = Instant::now();
        let out = tokio::process::Command::new("pg_recvlogical")
            .arg("-d")
            .arg(&self.url)
            .args([
                "--slot",
                &self.baseline_slot(),
                "--start",
                "--no-loop",
                "-f",
                "/dev/null",
            ])
            .args([
                "-o",
                "proto_version=1",
                "-o",
                "publication_names=ferry",
                "--endpos",
                end_lsn,
            ])
            .output()
            .await
            .map_err(|e| {
                BenchError::Setup(format!("pg_recvlogical (Debian postgresql-client): {e}"))
            })?;
        if !out.status.success() {
            return Err(BenchError::Setup(format!(
                "pg_recvlogical: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(t0.elapsed().as_secs_f64())
    }

    /// The hub's side of one row, for a probe that never arrived.
    pub async fn probe_state(&self, key: i64) -> Result<String, BenchError> {
        let c = self.hub.client().await?;
        let row = c
            .query_one(
                "select jsonb_build_object('company', (select company from hubspot.contacts where id = $1),
                          'base', (select base -> 'company' from ferry.links where row_key = $1),
                          'synced_at', (select synced_at from ferry.links where row_key = $1),
                          'mark', (select to_jsonb(o) from ferry.outbox o where row_key = $1),
                          'slot', (select jsonb_build_object('confirmed', confirmed_flush_lsn::text, 'current', pg_current_wal_lsn()::text)
                                     from pg_replication_slots where slot_name = $2))::text",
                &[&key, &self.db],
            )
            .await?;
        Ok(row.get(0))
    }

    pub async fn remote_id(&self, key: i64) -> Result<String, BenchError> {
        Ok(self
            .hub
            .client()
            .await?
            .query_one(
                "select hubspot_id from hubspot.contacts where id = $1",
                &[&key],
            )
            .await?
            .get(0))
    }

    /// One UPDATE; returns how long the statement took.
    pub async fn update_company(&self, key: i64, value: &str) -> Result<Duration, BenchError> {
        let c = self.hub.client().await?;
        let t0 = Instant::now();
        c.execute(
            "update hubspot.contacts set company = $2 where id = $1",
            &[&key, &value],
        )
        .await?;
        Ok(t0.elapsed())
    }

    /// Updates random rows at about `per_sec` changes/s until aborted.
    pub fn background_load(&self, rows: usize, per_sec: f64) -> tokio::task::JoinHandle<()> {
        load(
            &self.hub,
            "update hubspot.contacts set phone = '+1' || $2::text where id = $1",
            1..=rows as i64,
            per_sec,
        )
    }
}

/// Background hub edits: `sql` (`$1` the row key, `$2` a counter as text) on keys spread over
/// `keys`, at about `per_sec` a second, until the task is aborted.
pub fn load(
    hub: &Hub,
    sql: &'static str,
    keys: std::ops::RangeInclusive<i64>,
    per_sec: f64,
) -> tokio::task::JoinHandle<()> {
    let hub = hub.clone();
    tokio::spawn(async move {
        let Ok(c) = hub.client().await else { return };
        let tick = Duration::from_millis(10);
        let per_tick = (per_sec * tick.as_secs_f64()).max(1.0) as usize;
        let span = (keys.end() - keys.start() + 1).max(1) as u64;
        let mut n: u64 = 0;
        loop {
            let t0 = Instant::now();
            let futs = (0..per_tick).map(|_| {
                n += 1;
                let key = (n.wrapping_mul(2_654_435_761) % span) as i64 + keys.start();
                let c = &c;
                async move { c.execute(sql, &[&key, &n.to_string()]).await }
            });
            let _ = futures_util::future::join_all(futs).await;
            tokio::time::sleep(tick.saturating_sub(t0.elapsed())).await;
        }
    })
}

/// The best rate with ferry.history on and off, from runs alternated in one benchmark, as
/// `(on, off)`.
pub fn history_best(rates: &std::collections::HashMap<bool, Vec<f64>>) -> (f64, f64) {
    let best = |on: bool| {
        rates
            .get(&on)
            .map_or(f64::NAN, |r| r.iter().copied().fold(f64::NAN, f64::max))
    };
    (best(true), best(false))
}
