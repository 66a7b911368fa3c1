//! The hub: the PostgreSQL server ferry syncs into — connection pool, server checks,
//! migrations, mirror-table DDL, and the catalog of mappings the engine runs from.

pub mod catalog;
pub mod embedded;
pub mod fuse;
pub mod migrate;
pub mod schema;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Errors at the hub boundary.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The server cannot be reached or refused us: retry after a delay (it may be restarting).
    #[error("cannot connect to the hub database {url}: {}", chain(source))]
    Connect {
        url: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the database URL is not valid: {0}")]
    BadUrl(String),
    /// Never retried: the operator must change the server.
    #[error("the hub server has wal_level={0}; ferry needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL")]
    WalLevel(String),
    /// Never retried: the operator must grant the attribute.
    #[error(
        "role {0} lacks the REPLICATION attribute: run ALTER ROLE {0} REPLICATION; as a superuser"
    )]
    NoReplication(String),
    #[error("hub migration failed: {0}")]
    Migrate(String),
    #[error("hub pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed; retry with backoff if the server went away, else it is a bug or bad config.
    #[error("hub query failed: {}", chain(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Schema(String),
}

/// An error and its causes on one line, without repeats.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = inner.source();
    }
    out
}

/// A connection pool to the hub plus what is needed to open the replication connection.
#[derive(Clone)]
pub struct Hub {
    pub pool: Pool,
    pub config: tokio_postgres::Config,
    /// The URL without its password, safe to print.
    pub display_url: String,
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

impl Hub {
    /// Connects, checks that the server can feed logical replication, and builds the pool.
    pub async fn connect(url: &str) -> Result<Hub, HubError> {
        let display_url = redact_url(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| HubError::BadUrl(format!("{display_url}: {e}")))?;
        // jit off: ferry's statements are short and many; a merge of 1,000 records whose plan
        // cost crossed jit_above_cost (stale statistics on a growing table) spent 38 of its
        // 106 ms compiling expressions
        config.options("-c TimeZone=UTC -c extra_float_digits=3 -c jit=off");
        if config.get_application_name().is_none() {
            config.application_name("ferry");
        }
        config.connect_timeout(std::time::Duration::from_secs(10));
        let (client, conn) = config
            .connect(NoTls)
            .await
            .map_err(|source| HubError::Connect {
                url: display_url.clone(),
                source,
            })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let row = client
            .query_one(
                "select current_setting('wal_level'), current_user::text, \
                 (select rolreplication or rolsuper from pg_roles where rolname = current_user)",
                &[],
            )
            .await?;
        let wal_level: String = row.get(0);
        let user: String = row.get(1);
        let can_replicate: bool = row.get(2);
        if wal_level != "logical" {
            return Err(HubError::WalLevel(wal_level));
        }
        if !can_replicate {
            return Err(HubError::NoReplication(user));
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(24)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            // a part that cannot get a connection fails its round (and retries) instead of
            // waiting forever with its claims held
            .wait_timeout(Some(std::time::Duration::from_secs(30)))
            .create_timeout(Some(std::time::Duration::from_secs(10)))
            .build()
            .map_err(|e| HubError::Schema(format!("cannot build the connection pool: {e}")))?;
        Ok(Hub {
            pool,
            config,
            display_url,
        })
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, HubError> {
        Ok(self.pool.get().await?)
    }

    /// Closes the pool's connections, for a command that stops the embedded server next: a
    /// pooled connection the server ends on shutdown logs "Connection error: db error". The
    /// closed connections' tasks end on their next poll; the short wait lets them.
    pub async fn close(&self) {
        self.pool.close();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How long a worker's round (outbox or inbox) may leave its connection idle: the server then
/// ends the session, which lets go of the round's claims — the last resort for a process that
/// is alive but stuck, well beyond one round's calls to the app (30 s timeout each) and a
/// rate-limit pause. Set with the claim, reset by [`end_claims`].
pub const STUCK_ROUND: &str = "300s";

/// Ends a worker's round on `client`, whose claims (`ferry.claim_marks`, `ferry.claim_events`)
/// are session advisory locks: gives them back and returns the connection to the pool; after a
/// failed round, or if that fails, closes the connection instead, which gives them back on the
/// server.
pub async fn end_claims(client: deadpool_postgres::Object, round_ok: bool) {
    let released = round_ok
        && client
            .execute(
                "select pg_advisory_unlock_all(), set_config('idle_session_timeout', '0', false)",
                &[],
            )
            .await
            .is_ok();
    if !released {
        drop(deadpool_postgres::Object::take(client));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:p@h:5/db"),
            "postgres://u@h:5/db"
        );
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
    }
}
