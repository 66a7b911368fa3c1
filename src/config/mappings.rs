//! Configuration: `[[mappings]]`, one app object mapped to one hub table each — its naming,
//! conflict and deletion policies, row filter and mass-delete fuse — and their validation.

use std::time::Duration;

use serde::Deserialize;

use super::engine::duration;
use super::{Config, ConfigError, FieldConfig};

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

pub const POLICIES: &[&str] = &["remote_wins", "hub_wins", "last_write_wins", "manual"];

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

    /// Structural checks of this mapping (named `name`) within `config`: its connection, its
    /// policies, its fuse and match key, and each of its fields.
    pub(super) fn validate(&self, name: &str, config: &Config) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !config.connections.contains_key(&self.connection) {
            return bad(format!(
                "mapping `{name}`: no connection named `{}`",
                self.connection
            ));
        }
        if !POLICIES.contains(&self.conflict_policy.as_str()) {
            return bad(format!(
                "mapping `{name}`: unknown conflict_policy `{}` (one of {})",
                self.conflict_policy,
                POLICIES.join(", ")
            ));
        }
        match (self.on_remote_delete.as_deref(), self.soft_delete) {
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
        if !HUB_DELETE_POLICIES.contains(&self.on_hub_delete.as_str()) {
            return bad(format!(
                "mapping `{name}`: unknown on_hub_delete `{}` (one of {})",
                self.on_hub_delete,
                HUB_DELETE_POLICIES.join(", ")
            ));
        }
        for f in &self.fields {
            f.validate_values(name, &config.mappings)?;
        }
        if self.fields.is_empty() {
            return bad(format!("mapping `{name}` has no fields"));
        }
        let fuse = &self.delete_fuse;
        if fuse.rows < 0 || !(0.0..=1.0).contains(&fuse.share) || fuse.window.is_zero() {
            return bad(format!(
                "mapping `{name}`: delete_fuse needs rows >= 0, share between 0 and 1 (0.05 = 5 %) and a window above 0s"
            ));
        }
        if let Some(k) = &self.match_key {
            if !self.fields.iter().any(|f| &f.column == k) {
                return bad(format!(
                    "mapping `{name}`: match_key `{k}` is not one of its field columns"
                ));
            }
        }
        let mut cols = std::collections::HashSet::new();
        for f in &self.fields {
            if !cols.insert(f.column.as_str()) {
                return bad(format!(
                    "mapping `{name}`, field `{}`: column declared twice",
                    f.column
                ));
            }
            f.validate_column(name, &self.id_column())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::OK;
    use super::super::Config;

    #[test]
    fn parses_and_names() {
        let c = Config::parse(OK, "t").unwrap();
        assert_eq!(c.mappings[0].name(), "hubspot.contacts");
        assert_eq!(
            c.mappings[0].schema_table(),
            ("hubspot".into(), "contacts".into())
        );
    }
}
