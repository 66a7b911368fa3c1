//! `ferry init`: the commented starter `ferry.toml` for a connector kind, and what to do next.

/// Connector kinds `ferry init --preset` knows.
pub const PRESETS: &[&str] = &["hubspot", "zendesk"];

/// The starter configuration for `preset`, or `None` for an unknown preset.
pub fn text(preset: &str) -> Option<&'static str> {
    match preset {
        "hubspot" => Some(HUBSPOT),
        "zendesk" => Some(ZENDESK),
        _ => None,
    }
}

/// The environment variables the starter for `preset` names, with what each holds.
pub fn env_vars(preset: &str) -> &'static [(&'static str, &'static str)] {
    match preset {
        "hubspot" => &[
            (
                "HUBSPOT_TOKEN",
                "a private app's access token (or `ferry sim hubspot`'s token)",
            ),
            (
                "HUBSPOT_WEBHOOK_SECRET",
                "the private app's client secret, which signs its webhooks",
            ),
        ],
        "zendesk" => &[
            (
                "ZENDESK_TOKEN",
                "an API token of the agent named by `email` (or `ferry sim zendesk`'s token)",
            ),
            (
                "ZENDESK_WEBHOOK_SECRET",
                "the signing secret of the Zendesk webhook that posts to ferry",
            ),
        ],
        _ => &[],
    }
}

const HUBSPOT: &str = r#"# ferry configuration, written by `ferry init --preset hubspot`.
# Apply it with `ferry apply --dry-run` (says what would change), then `ferry run`.
# The README's "Configuration" section explains every key.
# The hub: embedded PostgreSQL under ./.ferry, or your server in FERRY_DATABASE_URL, e.g.
#   postgres://ferry:PASSWORD@db.example.com:5432/app?sslmode=verify-full&sslrootcert=/etc/ferry/ca.pem
# (grants and per-platform settings: the README's "Run it on your PostgreSQL").

[engine]
listen = "127.0.0.1:8700"          # webhooks (POST /webhooks/<connection>), /healthz, /metrics
# public_url = "https://ferry.example.com"   # the URL HubSpot posts to (it signs the full URL)
poll_interval = "30s"               # changes since the last poll, for lost webhooks ("0s": off)
reconcile_interval = "6h"           # full comparison: remote deletions, drift ("0s": off)
history_retention = "30d"           # how long ferry.history keeps each change ("0s": off)

[connections.hubspot]
kind = "hubspot"
# the real API; for the simulator (`ferry sim hubspot`): "http://127.0.0.1:8701"
base_url = "https://api.hubapi.com"
token_env = "HUBSPOT_TOKEN"                   # the NAME of the variable holding the token
webhook_secret_env = "HUBSPOT_WEBHOOK_SECRET" # the NAME of the variable holding the secret
rate_limit = "190/10s"                        # HubSpot private apps: 190 requests per 10 s

# HubSpot contacts <-> hubspot.contacts (created by `ferry apply`)
[[mappings]]
connection = "hubspot"
object = "contacts"
table = "hubspot.contacts"
conflict_policy = "remote_wins"     # remote_wins | hub_wins | last_write_wins | manual
match_key = "email"                 # links existing rows on first sync; no duplicate creates
delete_fuse = { rows = 50, share = 0.05, window = "10m" }   # mass deletes wait for you
fields = [
  { column = "email",     property = "email", transform = "lowercase" },
  { column = "firstname", property = "firstname" },
  { column = "lastname",  property = "lastname" },
  { column = "phone",     property = "phone" },
  { column = "company",   property = "company" },
  # read-only in the hub: HubSpot owns it
  { column = "lifecycle", property = "lifecyclestage", direction = "inbound" },
]
"#;

const ZENDESK: &str = r#"# ferry configuration, written by `ferry init --preset zendesk`.
# Apply it with `ferry apply --dry-run` (says what would change), then `ferry run`.
# The README's "Configuration" section explains every key, "Connectors" the Zendesk specifics.
# The hub: embedded PostgreSQL under ./.ferry, or your server in FERRY_DATABASE_URL.

[engine]
listen = "127.0.0.1:8700"          # webhooks (POST /webhooks/zendesk), /healthz, /metrics
poll_interval = "30s"               # incremental export since the last poll, for lost webhooks
reconcile_interval = "6h"           # full comparison: drift ("0s": off)
history_retention = "30d"           # how long ferry.history keeps each change ("0s": off)

[connections.zendesk]
kind = "zendesk"
# your account; for the simulator (`ferry sim zendesk`): "http://127.0.0.1:8702"
base_url = "https://example.zendesk.com"
email = "agent@example.com"         # the token's agent ({email}/token); remove for an OAuth token
token_env = "ZENDESK_TOKEN"                   # the NAME of the variable holding the token
webhook_secret_env = "ZENDESK_WEBHOOK_SECRET" # the NAME of the variable holding the secret
rate_limit = "700/60s"              # Enterprise; Team 200/60s, Growth and Professional 400/60s

# Zendesk users <-> support.users (created by `ferry apply`)
[[mappings]]
connection = "zendesk"
object = "users"
table = "support.users"
conflict_policy = "remote_wins"     # remote_wins | hub_wins | last_write_wins | manual
match_key = "email"                 # links existing rows on first sync; no duplicate creates
delete_fuse = { rows = 50, share = 0.05, window = "10m" }   # mass deletes wait for you
fields = [
  { column = "email", property = "email", transform = "lowercase" },
  { column = "name",  property = "name" },
  { column = "phone", property = "phone" },
  { column = "tags",  property = "tags", type = "text[]" },
  # a custom user field, by its key
  # { column = "plan", property = "user_fields.plan" },
  # read-only in the hub: Zendesk owns it
  { column = "role",  property = "role", direction = "inbound" },
]
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every starter is a valid configuration as written.
    #[test]
    fn starters_parse_and_validate() {
        for preset in PRESETS {
            let text = text(preset).expect("known preset");
            crate::config::Config::parse(text, "starter").expect("starter is valid");
            for (var, _) in env_vars(preset) {
                assert!(text.contains(var), "{preset}: {var}");
            }
        }
        assert!(text("nope").is_none());
    }
}
