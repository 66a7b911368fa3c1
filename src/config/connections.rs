//! Configuration: `[connections.<name>]`, one app account each (connector kind, base URL,
//! rate budget), and the secrets read from the environment variables it names.

use serde::Deserialize;

use super::ConfigError;

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

    /// Structural checks of connection `name`: a known connector kind, a readable budget.
    pub(super) fn validate(&self, name: &str) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !crate::connectors::kinds().contains(&self.kind.as_str()) {
            return bad(format!(
                "connection `{name}`: unknown connector kind `{}` (known: {})",
                self.kind,
                crate::connectors::kinds().join(", ")
            ));
        }
        if let Some(r) = &self.rate_limit {
            if let Err(e) = r.parse::<crate::connectors::ratelimit::Budget>() {
                return bad(format!("connection `{name}`: {e}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::OK;
    use super::super::Config;

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
}
