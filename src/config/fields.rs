//! Configuration: a mapping's `fields` — hub column, app property, type, direction,
//! transform, value map and reference — and their validation.

use serde::Deserialize;

use super::{ConfigError, MappingConfig, POLICIES};

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
pub const TRANSFORMS: &[&str] = &["lowercase", "uppercase", "trim"];

impl FieldConfig {
    /// What the field's values may be, in mapping `mapping` among `mappings`: a reference to a
    /// mapping that exists (held as a bigint row key), a known `unmapped`, a map that can be
    /// read back.
    pub(super) fn validate_values(
        &self,
        mapping: &str,
        mappings: &[MappingConfig],
    ) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Some(r) = &self.references {
            if !mappings.iter().any(|o| &o.name() == r) {
                return bad(format!(
                    "mapping `{mapping}`, field `{}`: references `{r}`, which is no mapping here (names are <connection>.<object>)",
                    self.column
                ));
            }
            if self.ty != "bigint" {
                return bad(format!(
                    "mapping `{mapping}`, field `{}`: a reference field holds a hub row key: type = \"bigint\"",
                    self.column
                ));
            }
        }
        if !["refuse", "pass"].contains(&self.unmapped.as_str()) {
            return bad(format!(
                "mapping `{mapping}`, field `{}`: unmapped is `refuse` or `pass`, not `{}`",
                self.column, self.unmapped
            ));
        }
        if let Some(map) = &self.map {
            let mut seen = std::collections::BTreeMap::new();
            for (hub, app) in map {
                if let Some(other) = seen.insert(app, hub) {
                    return bad(format!(
                        "mapping `{mapping}`, field `{}`: map sends both `{other}` and `{hub}` to `{app}`, so `{app}` coming back is ambiguous",
                        self.column
                    ));
                }
            }
        }
        Ok(())
    }

    /// The field's column in mapping `mapping` (whose link column is `id_column`): not one
    /// ferry reserves, of a known type, direction, transform and conflict policy.
    pub(super) fn validate_column(
        &self,
        mapping: &str,
        id_column: &str,
    ) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let at = format!("mapping `{mapping}`, field `{}`", self.column);
        if self.column == "id" || self.column == id_column || self.column.starts_with("_ferry") {
            return bad(format!("{at}: column name is reserved for ferry"));
        }
        if !FIELD_TYPES.iter().any(|(t, _)| *t == self.ty) {
            let known: Vec<_> = FIELD_TYPES.iter().map(|(t, _)| *t).collect();
            return bad(format!(
                "{at}: unknown type `{}` (one of {})",
                self.ty,
                known.join(", ")
            ));
        }
        if !DIRECTIONS.contains(&self.direction.as_str()) {
            return bad(format!(
                "{at}: unknown direction `{}` (one of {})",
                self.direction,
                DIRECTIONS.join(", ")
            ));
        }
        if let Some(t) = &self.transform {
            if !TRANSFORMS.contains(&t.as_str()) {
                return bad(format!(
                    "{at}: unknown transform `{t}` (one of {})",
                    TRANSFORMS.join(", ")
                ));
            }
        }
        if let Some(p) = &self.conflict_policy {
            if !POLICIES.contains(&p.as_str()) {
                return bad(format!("{at}: unknown conflict_policy `{p}`"));
            }
        }
        Ok(())
    }
}
