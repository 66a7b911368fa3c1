//! The hub's start-up check: which platform the server is (self-hosted, Amazon RDS / Aurora,
//! Cloud SQL, Azure, Supabase, Neon), whether it can feed logical replication to ferry's role,
//! and each refusal as one sentence naming that platform's fix.

/// Where the hub server runs, told apart by the roles each platform creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    SelfHosted,
    /// Amazon RDS and Aurora: replication is membership in `rds_replication`.
    Rds,
    CloudSql,
    Azure,
    Supabase,
    Neon,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::SelfHosted => "PostgreSQL",
            Platform::Rds => "Amazon RDS / Aurora",
            Platform::CloudSql => "Cloud SQL",
            Platform::Azure => "Azure Database for PostgreSQL",
            Platform::Supabase => "Supabase",
            Platform::Neon => "Neon",
        }
    }
}

/// What the start-up query found.
#[derive(Debug)]
pub struct ServerFacts {
    pub platform: Platform,
    pub wal_level: String,
    pub user: String,
    pub database: String,
    pub superuser: bool,
    /// The REPLICATION attribute, or (RDS / Aurora) membership in `rds_replication`.
    pub can_replicate: bool,
    /// CREATE on the database, or the ferry schema is there already.
    pub can_create: bool,
}

pub const FACTS_SQL: &str = include_str!("../../sql/checks/server_facts.sql");

impl ServerFacts {
    pub fn from_row(row: &tokio_postgres::Row) -> ServerFacts {
        let platform = match row.get::<_, Option<String>>("platform").as_deref() {
            Some("rds") => Platform::Rds,
            Some("cloudsql") => Platform::CloudSql,
            Some("azure") => Platform::Azure,
            Some("supabase") => Platform::Supabase,
            Some("neon") => Platform::Neon,
            _ => Platform::SelfHosted,
        };
        ServerFacts {
            platform,
            wal_level: row.get("wal_level"),
            user: row.get("usr"),
            database: row.get("db"),
            superuser: row.get("superuser"),
            can_replicate: row.get("can_replicate"),
            can_create: row.get("can_create"),
        }
    }

    /// The first reason this server cannot run ferry, as one sentence with the platform's fix.
    pub fn refusal(&self) -> Option<String> {
        let user = ident(&self.user);
        let db = ident(&self.database);
        if self.wal_level != "logical" {
            let fix = match self.platform {
                Platform::Rds => "set rds.logical_replication = 1 in the instance's (Aurora: the cluster's) DB parameter group and reboot it".to_string(),
                Platform::CloudSql => "set the instance's flag cloudsql.logical_decoding = on (gcloud sql instances patch INSTANCE --database-flags=cloudsql.logical_decoding=on), which restarts it".to_string(),
                Platform::Azure => "set the server parameter wal_level = logical (az postgres flexible-server parameter set --name wal_level --value logical) and restart the server".to_string(),
                Platform::Neon => "enable logical replication in the Neon Console (Project settings → Logical Replication)".to_string(),
                Platform::Supabase | Platform::SelfHosted => "run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL".to_string(),
            };
            return Some(format!(
                "the hub server has wal_level={}; ferry needs wal_level=logical: {fix}",
                self.wal_level
            ));
        }
        if !self.can_replicate {
            return Some(match self.platform {
                Platform::Rds => format!(
                    "role {} may not replicate: on Amazon RDS / Aurora run GRANT rds_replication TO {user}; as the master user",
                    self.user
                ),
                Platform::CloudSql => format!(
                    "role {} lacks the REPLICATION attribute: on Cloud SQL run ALTER USER {user} WITH REPLICATION; as the postgres user (a cloudsqlsuperuser)",
                    self.user
                ),
                Platform::Azure => format!(
                    "role {} lacks the REPLICATION attribute: on Azure run ALTER ROLE {user} WITH REPLICATION; as the server's admin user (azure_pg_admin)",
                    self.user
                ),
                Platform::Supabase => format!(
                    "role {} lacks the REPLICATION attribute: on Supabase run ALTER ROLE {user} WITH REPLICATION; as the postgres user",
                    self.user
                ),
                Platform::Neon => format!(
                    "role {} lacks the REPLICATION attribute: on Neon run ALTER ROLE {user} WITH REPLICATION; as a neon_superuser role (roles made in the Console have it)",
                    self.user
                ),
                Platform::SelfHosted => format!(
                    "role {} lacks the REPLICATION attribute: run ALTER ROLE {user} REPLICATION; as a superuser",
                    self.user
                ),
            });
        }
        if !self.can_create {
            return Some(format!(
                "role {} may not create schemas in database {}: run GRANT CREATE ON DATABASE {db} TO {user}; as the database's owner",
                self.user, self.database
            ));
        }
        None
    }
}

/// A role or database name as SQL needs it: bare when it can be, quoted otherwise.
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        postgres_protocol::escape::escape_identifier(name)
    }
}
