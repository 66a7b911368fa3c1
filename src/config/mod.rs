//! Configuration: `ferry.toml` plus the environment. Secrets are named, never written here.
//! This part holds the whole file (`Config`), its loading, parsing and validation entry
//! points and the error they give; each table's settings live in the submodule named for it.

mod connections;
mod engine;
mod fields;
mod mappings;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

pub use connections::{ConnectionConfig, Secrets};
pub use engine::{default_workers, parse_duration, EngineConfig};
pub use fields::{FieldConfig, DIRECTIONS, FIELD_TYPES, TRANSFORMS};
pub use mappings::{DeleteFuse, MappingConfig, HUB_DELETE_POLICIES, POLICIES};

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

    /// Structural checks that need no environment: the engine's settings, then each
    /// connection, then each mapping (named once) with its fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.engine.validate()?;
        for (name, c) in &self.connections {
            c.validate(name)?;
        }
        let mut names = std::collections::HashSet::new();
        for m in &self.mappings {
            let name = m.name();
            if !names.insert(name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "mapping `{name}` is declared twice"
                )));
            }
            m.validate(&name, self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One HubSpot connection and one mapping, valid; the other parts' tests start from it.
    pub(super) const OK: &str = r#"
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
    fn shipped_example_is_valid() {
        let c = Config::parse(include_str!("../../ferry.toml"), "ferry.toml").unwrap();
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
