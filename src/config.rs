//! Configuration: `ferry.toml` plus the environment. Secrets are named, never written here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration cannot be used. Never retried: the operator must fix the file or env.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no configuration file at {path}: `ferry init` writes a commented starter there (see the README's \"Configuration\" section)")]
    Missing { path: String },
    #[error("{path} is not valid ferry configuration: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("connection `{connection}`: environment variable {var} ({what}) is not set")]
    MissingEnv {
        connection: String,
        var: String,
        what: &'static str,
    },
}

/// 1-based line and column (in characters) of a byte offset into `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
    #[serde(default)]
    pub mappings: Vec<MappingConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// HTTP listener for webhooks, /healthz.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL apps post webhooks to, as they see it (HubSpot signs the full URL).
    /// Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Replication slot name (lowercase).
    #[serde(default = "default_slot")]
    pub slot: String,
    #[serde(default = "default_publication")]
    pub publication: String,
    /// Outbound worker tasks per process, shared out among the connections: each connection
    /// has its own lane (an equal share, at least two), so a slow app never holds the others.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How often each mapping asks its app for records changed since the last poll: the sure
    /// path for changes whose webhook was lost. `0s` turns polling off.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// How far back each poll reaches before the last change it saw (search indexes lag,
    /// clocks differ). Records read twice are applied once.
    #[serde(default = "default_poll_overlap", deserialize_with = "duration")]
    pub poll_overlap: Duration,
    /// How often each mapping compares every remote id with its links: remote deletions reach
    /// the hub, missing records are fetched. `0s` turns it off.
    #[serde(default = "default_reconcile_interval", deserialize_with = "duration")]
    pub reconcile_interval: Duration,
    /// How long ferry.history keeps each field change ferry sent or applied; `0s` records
    /// none.
    #[serde(default = "default_history_retention", deserialize_with = "duration")]
    pub history_retention: Duration,
}

fn default_history_retention() -> Duration {
    Duration::from_secs(30 * 86400)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_poll_overlap() -> Duration {
    Duration::from_secs(60)
}
fn default_reconcile_interval() -> Duration {
    Duration::from_secs(6 * 3600)
}

/// `250ms`, `30s`, `5m`, `6h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("duration `{s}` must look like 250ms, 30s, 5m, 6h or 30d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "duration `{s}` must look like 250ms, 30s, 5m, 6h or 30d"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` is out of range"))
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}
fn default_slot() -> String {
    "ferry".into()
}
fn default_publication() -> String {
    "ferry".into()
}
/// Outbound workers per process; each holds one hub connection at a time. On 2 cores, 6 left
/// less CPU idle than 4 while draining (15,800-24,100 changes/s against 15,900-17,200 in the
/// same hour; see BENCHMARKS.md).
pub fn default_workers() -> usize {
    6
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            listen: default_listen(),
            public_url: None,
            slot: default_slot(),
            publication: default_publication(),
            workers: default_workers(),
            poll_interval: default_poll_interval(),
            poll_overlap: default_poll_overlap(),
            reconcile_interval: default_reconcile_interval(),
            history_retention: default_history_retention(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub kind: String,
    pub base_url: String,
    /// Name of the environment variable holding the API token.
    pub token_env: String,
    /// Name of the environment variable holding the webhook signing secret.
    pub webhook_secret_env: Option<String>,
    /// API budget, e.g. `190/10s` (HubSpot private apps); none = unlimited.
    pub rate_limit: Option<String>,
    /// The agent's email for connectors whose API token goes with a user name (Zendesk:
    /// `{email}/token` basic auth; without it the token is sent as an OAuth bearer token).
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// Default: `<connection>.<object>`.
    pub name: Option<String>,
    pub connection: String,
    /// Remote object, e.g. `contacts`.
    pub object: String,
    /// Hub table, `schema.table`.
    pub table: String,
    #[serde(default = "default_policy")]
    pub conflict_policy: String,
    pub match_key: Option<String>,
    #[serde(default)]
    pub soft_delete: bool,
    /// What a deletion in this app does to the hub row: `delete` it (default), `soft` (set
    /// `_deleted_at`; what `soft_delete = true` says) or `unlink` (keep the row, drop this
    /// app's link).
    pub on_remote_delete: Option<String>,
    /// What deleting a hub row does in this app: `delete` its record (default) or `ignore`
    /// (the record stays in the app, unlinked).
    #[serde(default = "default_on_hub_delete")]
    pub on_hub_delete: String,
    /// Which hub rows this app gets: an SQL predicate on the row's columns
    /// (`lifecycle = 'customer'`). A row that leaves it is deleted or released in the app per
    /// `on_hub_delete`; none: every row.
    pub filter: Option<String>,
    /// The mass-delete fuse: deletions past it wait for an operator.
    #[serde(default)]
    pub delete_fuse: DeleteFuse,
    pub fields: Vec<FieldConfig>,
}

/// `delete_fuse = { rows = 50, share = 0.05, window = "10m" }`: deletions of a mapping in
/// either direction are held once more than `rows` *and* more than `share` of its linked rows
/// happen within `window`; `enabled = false` turns the fuse off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteFuse {
    #[serde(default = "default_fuse_enabled")]
    pub enabled: bool,
    #[serde(default = "default_fuse_rows")]
    pub rows: i32,
    #[serde(default = "default_fuse_share")]
    pub share: f64,
    #[serde(default = "default_fuse_window", deserialize_with = "duration")]
    pub window: Duration,
}

impl Default for DeleteFuse {
    fn default() -> Self {
        DeleteFuse {
            enabled: default_fuse_enabled(),
            rows: default_fuse_rows(),
            share: default_fuse_share(),
            window: default_fuse_window(),
        }
    }
}

fn default_fuse_enabled() -> bool {
    true
}
fn default_fuse_rows() -> i32 {
    50
}
fn default_fuse_share() -> f64 {
    0.05
}
fn default_fuse_window() -> Duration {
    Duration::from_secs(600)
}

fn default_on_hub_delete() -> String {
    "delete".into()
}

pub const HUB_DELETE_POLICIES: &[&str] = &["delete", "ignore"];

fn default_policy() -> String {
    "remote_wins".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub column: String,
    pub property: String,
    #[serde(default = "default_type", rename = "type")]
    pub ty: String,
    #[serde(default = "default_direction")]
    pub direction: String,
    pub transform: Option<String>,
    pub conflict_policy: Option<String>,
    /// `{hub value = "app value"}`, applied both ways (`customer = "paying"`).
    pub map: Option<std::collections::BTreeMap<String, String>>,
    /// A value the map does not name: `refuse` (default: it refuses only itself, a dead
    /// letter) or `pass` (sent or applied as it is).
    #[serde(default = "default_unmapped")]
    pub unmapped: String,
    /// The mapping whose records this field's value names (`references = "zendesk.organizations"`):
    /// the column holds the hub row key of the referenced row (bigint), the app the record's id.
    pub references: Option<String>,
}

fn default_unmapped() -> String {
    "refuse".into()
}

fn default_type() -> String {
    "text".into()
}
fn default_direction() -> String {
    "both".into()
}

/// Column types a mapping may declare, with their SQL spelling.
pub const FIELD_TYPES: &[(&str, &str)] = &[
    ("text", "text"),
    ("integer", "integer"),
    ("bigint", "bigint"),
    ("numeric", "numeric"),
    ("boolean", "boolean"),
    ("date", "date"),
    ("timestamptz", "timestamptz"),
    // an app's nested object or list as it is, e.g. Zendesk's user_fields
    ("jsonb", "jsonb"),
    // a list of strings, e.g. Zendesk's tags
    ("text[]", "text[]"),
];
pub const DIRECTIONS: &[&str] = &["both", "inbound", "outbound"];
pub const POLICIES: &[&str] = &["remote_wins", "hub_wins", "last_write_wins", "manual"];
pub const TRANSFORMS: &[&str] = &["lowercase", "uppercase", "trim"];

impl MappingConfig {
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}.{}", self.connection, self.object))
    }

    /// The hub column holding the remote record id (`<connection>_id`), written by ferry only.
    pub fn id_column(&self) -> String {
        format!("{}_id", self.connection)
    }

    /// What a deletion in the app does to the hub row: delete, unlink or soft.
    pub fn remote_delete(&self) -> &str {
        match (self.on_remote_delete.as_deref(), self.soft_delete) {
            (Some(policy), _) => policy,
            (None, true) => "soft",
            (None, false) => "delete",
        }
    }

    /// `(schema, table)`; a bare name lands in the connection's schema.
    pub fn schema_table(&self) -> (String, String) {
        match self.table.split_once('.') {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => (self.connection.clone(), self.table.clone()),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.display().to_string(),
                }
            } else {
                ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                }
            }
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', "; ");
            ConfigError::Parse {
                path: origin.to_string(),
                message: match e.span() {
                    Some(s) => {
                        let (line, column) = position(text, s.start);
                        format!("line {line}, column {column}: {message} (the README's \"Configuration\" section lists every key)")
                    }
                    None => message,
                },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Structural checks that need no environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let slot = &self.engine.slot;
        if slot.is_empty()
            || slot.len() > 63
            || !slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return bad(format!(
                "engine.slot `{slot}`: slot names are 1-63 characters of a-z, 0-9 and _"
            ));
        }
        for (name, c) in &self.connections {
            if !crate::connectors::KINDS.contains(&c.kind.as_str()) {
                return bad(format!(
                    "connection `{name}`: unknown connector kind `{}` (known: {})",
                    c.kind,
                    crate::connectors::KINDS.join(", ")
                ));
            }
            if let Some(r) = &c.rate_limit {
                if let Err(e) = r.parse::<crate::connectors::ratelimit::Budget>() {
                    return bad(format!("connection `{name}`: {e}"));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for m in &self.mappings {
            let name = m.name();
            if !names.insert(name.clone()) {
                return bad(format!("mapping `{name}` is declared twice"));
            }
            if !self.connections.contains_key(&m.connection) {
                return bad(format!(
                    "mapping `{name}`: no connection named `{}`",
                    m.connection
                ));
            }
            if !POLICIES.contains(&m.conflict_policy.as_str()) {
                return bad(format!(
                    "mapping `{name}`: unknown conflict_policy `{}` (one of {})",
                    m.conflict_policy,
                    POLICIES.join(", ")
                ));
            }
            match (m.on_remote_delete.as_deref(), m.soft_delete) {
                (None | Some("delete" | "unlink" | "soft"), false) | (None | Some("soft"), true) => {}
                (Some(other @ ("delete" | "unlink")), true) => {
                    return bad(format!(
                        "mapping `{name}`: soft_delete = true and on_remote_delete = \"{other}\" disagree (soft_delete is on_remote_delete = \"soft\")"
                    ))
                }
                (Some(other), _) => {
                    return bad(format!(
                        "mapping `{name}`: unknown on_remote_delete `{other}` (one of delete, unlink, soft)"
                    ))
                }
            }
            if !HUB_DELETE_POLICIES.contains(&m.on_hub_delete.as_str()) {
                return bad(format!(
                    "mapping `{name}`: unknown on_hub_delete `{}` (one of {})",
                    m.on_hub_delete,
                    HUB_DELETE_POLICIES.join(", ")
                ));
            }
            for f in &m.fields {
                if let Some(r) = &f.references {
                    if !self.mappings.iter().any(|o| &o.name() == r) {
                        return bad(format!(
                            "mapping `{name}`, field `{}`: references `{r}`, which is no mapping here (names are <connection>.<object>)",
                            f.column
                        ));
                    }
                    if f.ty != "bigint" {
                        return bad(format!(
                            "mapping `{name}`, field `{}`: a reference field holds a hub row key: type = \"bigint\"",
                            f.column
                        ));
                    }
                }
                if !["refuse", "pass"].contains(&f.unmapped.as_str()) {
                    return bad(format!(
                        "mapping `{name}`, field `{}`: unmapped is `refuse` or `pass`, not `{}`",
                        f.column, f.unmapped
                    ));
                }
                if let Some(map) = &f.map {
                    let mut seen = std::collections::BTreeMap::new();
                    for (hub, app) in map {
                        if let Some(other) = seen.insert(app, hub) {
                            return bad(format!(
                                "mapping `{name}`, field `{}`: map sends both `{other}` and `{hub}` to `{app}`, so `{app}` coming back is ambiguous",
                                f.column
                            ));
                        }
                    }
                }
            }
            if m.fields.is_empty() {
                return bad(format!("mapping `{name}` has no fields"));
            }
            let fuse = &m.delete_fuse;
            if fuse.rows < 0 || !(0.0..=1.0).contains(&fuse.share) || fuse.window.is_zero() {
                return bad(format!(
                    "mapping `{name}`: delete_fuse needs rows >= 0, share between 0 and 1 (0.05 = 5 %) and a window above 0s"
                ));
            }
            if let Some(k) = &m.match_key {
                if !m.fields.iter().any(|f| &f.column == k) {
                    return bad(format!(
                        "mapping `{name}`: match_key `{k}` is not one of its field columns"
                    ));
                }
            }
            let mut cols = std::collections::HashSet::new();
            for f in &m.fields {
                let at = format!("mapping `{name}`, field `{}`", f.column);
                if !cols.insert(f.column.as_str()) {
                    return bad(format!("{at}: column declared twice"));
                }
                if f.column == "id" || f.column == m.id_column() || f.column.starts_with("_ferry") {
                    return bad(format!("{at}: column name is reserved for ferry"));
                }
                if !FIELD_TYPES.iter().any(|(t, _)| *t == f.ty) {
                    let known: Vec<_> = FIELD_TYPES.iter().map(|(t, _)| *t).collect();
                    return bad(format!(
                        "{at}: unknown type `{}` (one of {})",
                        f.ty,
                        known.join(", ")
                    ));
                }
                if !DIRECTIONS.contains(&f.direction.as_str()) {
                    return bad(format!(
                        "{at}: unknown direction `{}` (one of {})",
                        f.direction,
                        DIRECTIONS.join(", ")
                    ));
                }
                if let Some(t) = &f.transform {
                    if !TRANSFORMS.contains(&t.as_str()) {
                        return bad(format!(
                            "{at}: unknown transform `{t}` (one of {})",
                            TRANSFORMS.join(", ")
                        ));
                    }
                }
                if let Some(p) = &f.conflict_policy {
                    if !POLICIES.contains(&p.as_str()) {
                        return bad(format!("{at}: unknown conflict_policy `{p}`"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Secrets of one connection, read from the environment variables the config names.
#[derive(Clone)]
pub struct Secrets {
    pub token: String,
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl ConnectionConfig {
    pub fn secrets(&self, connection: &str) -> Result<Secrets, ConfigError> {
        let read = |var: &str, what: &'static str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::MissingEnv {
                    connection: connection.to_string(),
                    var: var.to_string(),
                    what,
                })
        };
        Ok(Secrets {
            token: read(&self.token_env, "token_env")?,
            webhook_secret: match &self.webhook_secret_env {
                Some(v) => Some(read(v, "webhook_secret_env")?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
        [connections.hubspot]
        kind = "hubspot"
        base_url = "http://127.0.0.1:1"
        token_env = "FERRY_TEST_TOKEN_UNSET_VAR"

        [[mappings]]
        connection = "hubspot"
        object = "contacts"
        table = "hubspot.contacts"
        fields = [{ column = "email", property = "email" }]
    "#;

    #[test]
    fn parses_and_names() {
        let c = Config::parse(OK, "t").unwrap();
        assert_eq!(c.mappings[0].name(), "hubspot.contacts");
        assert_eq!(
            c.mappings[0].schema_table(),
            ("hubspot".into(), "contacts".into())
        );
    }

    #[test]
    fn shipped_example_is_valid() {
        let c = Config::parse(include_str!("../ferry.toml"), "ferry.toml").unwrap();
        assert_eq!(c.mappings.len(), 2);
        let demo = crate::demo::config(
            "http://127.0.0.1:1",
            "http://127.0.0.1:2",
            "agent@example.com",
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(demo.mappings[0].name(), "hubspot.contacts");
        assert_eq!(demo.mappings[1].name(), "zendesk.users");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn unknown_kind_is_one_sentence() {
        let err = Config::parse(
            &OK.replace("kind = \"hubspot\"", "kind = \"pipedrive\""),
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection `hubspot`: unknown connector kind `pipedrive` (known: hubspot, zendesk)"
        );
    }

    #[test]
    fn missing_env_names_the_variable() {
        let c = Config::parse(OK, "t").unwrap();
        let err = c.connections["hubspot"].secrets("hubspot").unwrap_err();
        assert!(
            err.to_string().contains("FERRY_TEST_TOKEN_UNSET_VAR"),
            "{err}"
        );
    }
    #[test]
    fn toml_errors_name_line_and_column() {
        let text = "[engine]\nworkers = 2\npoll_interval = 30s\n";
        let e = Config::parse(text, "f.toml").unwrap_err().to_string();
        assert!(e.contains("line 3, column 19"), "{e}");
        assert_eq!(position("ab\ncé\nx", 6), (2, 3));
    }

    #[test]
    fn a_missing_file_points_to_ferry_init() {
        let e = Config::load(std::path::Path::new("/nonexistent/ferry.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ferry init") && e.contains("/nonexistent/ferry.toml"),
            "{e}"
        );
    }
}
