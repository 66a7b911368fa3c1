//! Configuration: `[connections.<name>]`, one app account each (connector kind, base URL,
//! rate budget), and the secrets read from the environment variables it names.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    pub kind: String,
    pub base_url: String,
    /// Name of the environment variable holding the API token (Salesforce: the OAuth refresh
    /// token; not needed with `oauth = "client_credentials"`).
    #[serde(default)]
    pub token_env: String,
    /// Name of the environment variable holding the webhook signing secret.
    pub webhook_secret_env: Option<String>,
    /// Stripe: the environment variable holding the previous signing secret while the
    /// endpoint's secret is rotated (a delivery signed with either is accepted).
    pub webhook_secret_previous_env: Option<String>,
    /// API budget, e.g. `190/10s` (HubSpot private apps); none = unlimited.
    pub rate_limit: Option<String>,
    /// The agent's email for connectors whose API token goes with a user name (Zendesk:
    /// `{email}/token` basic auth; without it the token is sent as an OAuth bearer token).
    pub email: Option<String>,
    /// Salesforce: the REST API version, `62.0` when unset.
    pub api_version: Option<String>,
    /// Salesforce: the OAuth 2.0 grant ferry uses at `{base_url}/services/oauth2/token`,
    /// `refresh_token` (default; the refresh token is read from `token_env`) or
    /// `client_credentials` (the connected app's own user).
    pub oauth: Option<String>,
    /// Salesforce: names of the environment variables holding the connected app's consumer
    /// key and secret.
    pub client_id_env: Option<String>,
    pub client_secret_env: Option<String>,
    /// Salesforce: an external-id field (e.g. `Ext_Id__c`). A create whose values set it is
    /// sent as an upsert on it, so a create repeated after a crash updates the record the
    /// first one made instead of making a second one.
    pub external_id_field: Option<String>,
    /// Salesforce: the share of the org's daily API allocation ferry may use (`0.5`: ferry
    /// holds its calls while the org's usage is at half its allocation or more); 0.8 when
    /// unset.
    pub daily_share: Option<f64>,
    /// REST: how the connection signs in (`[connections.<name>.auth]`).
    pub auth: Option<crate::connectors::rest::config::Auth>,
    /// REST: the resources a mapping's `object` may name, each with its endpoints and shapes.
    #[serde(default)]
    pub resources: std::collections::BTreeMap<String, crate::connectors::rest::config::Resource>,
    /// REST: how webhook deliveries are verified and read.
    pub webhook: Option<crate::connectors::rest::config::Webhook>,
    /// REST: headers sent with every request (`{ "X-GitHub-Api-Version" = "2022-11-28" }`).
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// OAuth grants a Salesforce connection may name.
pub const OAUTH_GRANTS: &[&str] = &["refresh_token", "client_credentials"];

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
        // a client-credentials connection has no token of its own
        let token = if self.token_env.is_empty() && self.client_credentials() {
            String::new()
        } else {
            read(&self.token_env, "token_env")?
        };
        Ok(Secrets {
            token,
            webhook_secret: match &self.webhook_secret_env {
                Some(v) => Some(read(v, "webhook_secret_env")?),
                None => None,
            },
        })
    }

    /// Whether the connection signs in with the OAuth client-credentials grant.
    pub fn client_credentials(&self) -> bool {
        self.oauth.as_deref() == Some("client_credentials")
    }

    /// The value of the environment variable `var` (named by the config key `what`), one
    /// clear sentence when it is not set.
    pub fn env_secret(
        &self,
        connection: &str,
        var: &str,
        what: &'static str,
    ) -> Result<String, ConfigError> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError::MissingEnv {
                connection: connection.to_string(),
                var: var.to_string(),
                what,
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
        if self.token_env.is_empty() && !self.client_credentials() {
            return bad(format!(
                "connection `{name}`: token_env (the environment variable holding the API token) is required"
            ));
        }
        if let Some(g) = self.oauth.as_deref().filter(|g| !OAUTH_GRANTS.contains(g)) {
            return bad(format!(
                "connection `{name}`: oauth = `{g}` is not a grant ferry knows (known: {})",
                OAUTH_GRANTS.join(", ")
            ));
        }
        if self.kind == "rest" {
            crate::connectors::rest::validate(name, self).map_err(ConfigError::Invalid)?;
        } else if self.auth.is_some()
            || !self.resources.is_empty()
            || self.webhook.is_some()
            || !self.headers.is_empty()
        {
            return bad(format!(
                "connection `{name}`: auth, resources, webhook and headers are for kind = \"rest\" (this connection is {})",
                self.kind
            ));
        }
        if let Some(s) = self.daily_share.filter(|s| !(*s > 0.0 && *s <= 1.0)) {
            return bad(format!(
                "connection `{name}`: daily_share = {s} must be more than 0 and at most 1"
            ));
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
            "connection `hubspot`: unknown connector kind `pipedrive` (known: hubspot, zendesk, salesforce, stripe, rest)"
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
