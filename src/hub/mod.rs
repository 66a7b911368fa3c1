//! The hub: the PostgreSQL server ferry syncs into — connection pool, server checks,
//! migrations, mirror-table DDL, and the catalog of mappings the engine runs from.

pub mod catalog;
pub mod embedded;
pub mod fuse;
pub mod migrate;
pub mod platform;
pub mod schema;
pub mod tls;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::Socket;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use tls::{SslMode, TlsSettings};

/// A hub session's connection half (drive it on a task), TLS or not.
pub type HubConnection =
    tokio_postgres::Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>;

/// Errors at the hub boundary.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The server cannot be reached or refused us: retry after a delay (it may be restarting).
    /// `why` is one sentence when TLS is the reason (a wrong CA or host name is not retried
    /// away: the operator fixes the URL).
    #[error("cannot connect to the hub database {url}: {}", connect_reason(why.as_deref(), source))]
    Connect {
        url: String,
        why: Option<String>,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("the database URL is not valid: {0}")]
    BadUrl(String),
    #[error("the database URL's TLS settings: {0}")]
    Tls(#[from] tls::TlsError),
    /// Never retried: the operator must change the server or the role's rights. One sentence
    /// naming the platform's fix (see [`platform::ServerFacts::refusal`]).
    #[error("{0}")]
    Refused(String),
    #[error("hub migration failed: {0}")]
    Migrate(String),
    #[error("hub pool: {}", chain(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed; retry with backoff if the server went away, else it is a bug or bad config.
    #[error("hub query failed: {}", chain(.0))]
    Sql(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Schema(String),
}

/// `why` first when there is one, then the error's own words.
fn connect_reason(why: Option<&str>, source: &tokio_postgres::Error) -> String {
    match why {
        Some(why) => format!("{why} ({})", chain(source)),
        None => chain(source),
    }
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
    /// sslmode and certificates, for the connections tokio-postgres does not open (the
    /// walsender client).
    pub tls: TlsSettings,
    pub tls_config: std::sync::Arc<rustls::ClientConfig>,
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
        let (url, tls) = TlsSettings::split(url)?;
        let tls_config = tls.client_config()?;
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
        config.ssl_mode(tls.mode.for_tokio_postgres());
        let manager = Manager::from_config(
            config.clone(),
            MakeRustlsConnect::new((*tls_config).clone()),
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
        let hub = Hub {
            pool,
            config,
            display_url,
            tls,
            tls_config,
        };
        let (client, conn) = hub.session().await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let facts =
            platform::ServerFacts::from_row(&client.query_one(platform::FACTS_SQL, &[]).await?);
        if let Some(refusal) = facts.refusal() {
            return Err(HubError::Refused(refusal));
        }
        tracing::debug!(
            platform = facts.platform.name(),
            superuser = facts.superuser,
            tls = hub.tls.mode.as_str(),
            "hub server checked"
        );
        Ok(hub)
    }

    /// The TLS connector of tokio-postgres connections (the pool's and [`Hub::session`]'s).
    pub fn connector(&self) -> MakeRustlsConnect {
        MakeRustlsConnect::new((*self.tls_config).clone())
    }

    /// A connection of its own, outside the pool (migrations, LISTEN, the first copy, the
    /// replication leader's lock): drive the returned connection on a task.
    pub async fn session(&self) -> Result<(tokio_postgres::Client, HubConnection), HubError> {
        self.config
            .connect(self.connector())
            .await
            .map_err(|source| {
                let host = match self.config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    _ => "the socket".into(),
                };
                HubError::Connect {
                    url: self.display_url.clone(),
                    why: self.tls.explain(&chain(&source), &host),
                    source,
                }
            })
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, HubError> {
        Ok(self.pool.get().await?)
    }

    /// Grows the pool to at least `n` connections (the engine's parts that may each hold one at
    /// once); never shrinks it.
    pub fn reserve_connections(&self, n: usize) {
        if n > self.pool.status().max_size {
            self.pool.resize(n);
        }
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
    /// A pooled connection that cannot be made says why, not only "error connecting" (the
    /// driver keeps the reason — refused, TLS, the server's own message — in its source).
    #[tokio::test]
    async fn pool_errors_carry_their_cause() {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(1).user("ferry");
        let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(1)
            .build()
            .expect("pool");
        let e = pool.get().await.err().expect("nothing listens on port 1");
        let text = super::HubError::from(e).to_string();
        assert!(
            text.starts_with("hub pool: Error occurred while creating a new object: error connecting to server: "),
            "{text}"
        );
    }

    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:p@h:5/db"),
            "postgres://u@h:5/db"
        );
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
    }
}
