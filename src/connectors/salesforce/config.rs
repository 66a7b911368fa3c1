//! Salesforce connector, configuration edge: a `[connections.<name>]` of kind `salesforce`
//! turned into a connector — the OAuth grant and its secrets (each read from the environment
//! variable the config names), the API version, the external-id field creates are keyed on,
//! the daily-allocation share and the optional request budget.

use std::sync::Arc;

use super::{soql, Grant, Options, Salesforce};
use crate::connectors::ratelimit::Budget;
use crate::connectors::Connector;

/// The registry's builder (connectors/mod.rs): a connection of kind `salesforce`.
pub fn build(
    name: &str,
    connection: &crate::config::ConnectionConfig,
    secrets: &crate::config::Secrets,
) -> Result<Arc<dyn Connector>, String> {
    let env = |key: &Option<String>, what: &'static str| -> Result<String, String> {
        let var = key.as_deref().ok_or_else(|| {
            format!("connection `{name}`: a salesforce connection needs {what} (the name of the environment variable holding the connected app's consumer {})",
                if what == "client_id_env" { "key" } else { "secret" })
        })?;
        connection
            .env_secret(name, var, what)
            .map_err(|e| e.to_string())
    };
    let client_id = env(&connection.client_id_env, "client_id_env")?;
    let client_secret = env(&connection.client_secret_env, "client_secret_env")?;
    let grant = if connection.client_credentials() {
        Grant::ClientCredentials {
            client_id,
            client_secret,
        }
    } else {
        Grant::RefreshToken {
            client_id,
            client_secret,
            refresh_token: secrets.token.clone(),
        }
    };
    let defaults = Options::default();
    let options = Options {
        api_version: connection
            .api_version
            .clone()
            .unwrap_or(defaults.api_version.clone()),
        daily_share: connection.daily_share.unwrap_or(defaults.daily_share),
        external_id_field: connection.external_id_field.clone(),
        rate_limit: Budget::of(connection)?,
        ..defaults
    };
    if let Some(f) = options
        .external_id_field
        .as_deref()
        .filter(|f| !soql::is_name(f))
    {
        return Err(format!(
            "connection `{name}`: external_id_field `{f}` is not a Salesforce field name"
        ));
    }
    Ok(Arc::new(Salesforce::new(
        name,
        &connection.base_url,
        grant,
        options,
    )))
}
