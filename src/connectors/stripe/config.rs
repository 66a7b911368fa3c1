//! Stripe connector, configuration edge: a `[connections.<name>]` of kind `stripe` turned into
//! a connector — the secret key (`token_env`), the previous webhook signing secret during a
//! rotation (`webhook_secret_previous_env`; the current one is `webhook_secret_env`, which
//! the engine hands to every webhook check) and the request budget, Stripe's own per mode
//! when `rate_limit` is unset (sandbox 25/s, live 100/s).

use std::sync::Arc;
use std::time::Duration;

use super::{Options, Stripe};
use crate::connectors::ratelimit::Budget;
use crate::connectors::Connector;

/// Stripe's global budget in sandbox (test-mode) keys: 25 requests a second.
pub const SANDBOX_BUDGET: Budget = Budget {
    requests: 25,
    window: Duration::from_secs(1),
};
/// Stripe's global budget in live mode: 100 requests a second.
pub const LIVE_BUDGET: Budget = Budget {
    requests: 100,
    window: Duration::from_secs(1),
};

/// The key's mode: `Some(true)` live, `Some(false)` sandbox, None not a Stripe secret or
/// restricted key.
pub fn live_mode(key: &str) -> Option<bool> {
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Some(true)
    } else if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Some(false)
    } else {
        None
    }
}

/// The budget of a key when the connection sets none.
pub fn default_budget(key: &str) -> Budget {
    match live_mode(key) {
        Some(true) => LIVE_BUDGET,
        _ => SANDBOX_BUDGET,
    }
}

/// The registry's builder (connectors/mod.rs): a connection of kind `stripe`.
pub fn build(
    name: &str,
    connection: &crate::config::ConnectionConfig,
    secrets: &crate::config::Secrets,
) -> Result<Arc<dyn Connector>, String> {
    let key = secrets.token.trim();
    if live_mode(key).is_none() {
        return Err(format!(
            "connection `{name}`: the key in {} is not a Stripe secret key (it must start with sk_test_, sk_live_, rk_test_ or rk_live_)",
            connection.token_env
        ));
    }
    let previous = match &connection.webhook_secret_previous_env {
        Some(var) => Some(
            connection
                .env_secret(name, var, "webhook_secret_previous_env")
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let budget = Budget::of(connection)?.unwrap_or_else(|| default_budget(key));
    let options = Options {
        budget: Some(budget),
        previous_webhook_secret: previous,
        ..Options::default()
    };
    Ok(Arc::new(Stripe::new(
        name,
        &connection.base_url,
        key,
        options,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_follow_the_key_mode() {
        assert_eq!(default_budget("sk_test_abc"), SANDBOX_BUDGET);
        assert_eq!(default_budget("rk_live_abc"), LIVE_BUDGET);
        assert_eq!(default_budget("sk_live_abc").requests, 100);
        assert_eq!(live_mode("pk_test_abc"), None);
        assert_eq!(live_mode("whsec_abc"), None);
    }

    #[test]
    fn builds_from_configuration() {
        let toml = r#"
kind = "stripe"
base_url = "http://127.0.0.1:9"
token_env = "FERRY_STRIPE_TEST_KEY"
"#;
        let conn: crate::config::ConnectionConfig = toml::from_str(toml).expect("config");
        let secrets = |token: &str| crate::config::Secrets {
            token: token.into(),
            webhook_secret: None,
        };
        let c = build("billing", &conn, &secrets("sk_test_123")).expect("built");
        assert_eq!(c.kind(), "stripe");
        let err = build("billing", &conn, &secrets("pk_test_123"))
            .err()
            .expect("refused");
        assert_eq!(err, "connection `billing`: the key in FERRY_STRIPE_TEST_KEY is not a Stripe secret key (it must start with sk_test_, sk_live_, rk_test_ or rk_live_)");
        let rotating = format!("{toml}webhook_secret_previous_env = \"FERRY_STRIPE_UNSET_PREV\"\n");
        let conn: crate::config::ConnectionConfig = toml::from_str(&rotating).expect("config");
        let err = build("billing", &conn, &secrets("sk_test_123"))
            .err()
            .expect("refused");
        assert!(err.contains("FERRY_STRIPE_UNSET_PREV"), "{err}");
    }
}
