//! `ferry init`: the commented starter `ferry.toml` for a connector kind, and what to do next.

/// Connector kinds `ferry init --preset` knows.
pub const PRESETS: &[&str] = &["hubspot", "zendesk", "salesforce", "stripe"];

/// The starter configuration for `preset`, or `None` for an unknown preset.
pub fn text(preset: &str) -> Option<&'static str> {
    match preset {
        "hubspot" => Some(HUBSPOT),
        "zendesk" => Some(ZENDESK),
        "salesforce" => Some(SALESFORCE),
        "stripe" => Some(STRIPE),
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
        "salesforce" => &[
            (
                "SALESFORCE_REFRESH_TOKEN",
                "the integration user's refresh token (or `ferry sim salesforce`'s)",
            ),
            ("SALESFORCE_CLIENT_ID", "the connected app's consumer key"),
            (
                "SALESFORCE_CLIENT_SECRET",
                "the connected app's consumer secret",
            ),
        ],
        "stripe" => &[
            (
                "STRIPE_SECRET_KEY",
                "a secret or restricted key, sk_test_/sk_live_ (or `ferry sim stripe`'s)",
            ),
            (
                "STRIPE_WEBHOOK_SECRET",
                "the signing secret (whsec_...) of the Stripe endpoint that posts to ferry",
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

const SALESFORCE: &str = r#"# ferry configuration, written by `ferry init --preset salesforce`.
# Apply it with `ferry apply --dry-run` (says what would change), then `ferry run`.
# The README's "Configuration" section explains every key, "Salesforce" the OAuth set-up.
# The hub: embedded PostgreSQL under ./.ferry, or your server in FERRY_DATABASE_URL.

[engine]
listen = "127.0.0.1:8700"          # /healthz, /metrics (Salesforce sends no webhooks)
poll_interval = "10s"               # SOQL on SystemModstamp, then getDeleted
reconcile_interval = "6h"           # full comparison: drift ("0s": off)
history_retention = "30d"           # how long ferry.history keeps each change ("0s": off)

[connections.salesforce]
kind = "salesforce"
# where OAuth tokens come from: login.salesforce.com, test.salesforce.com or your My Domain;
# for the simulator (`ferry sim salesforce`): "http://127.0.0.1:8703"
base_url = "https://login.salesforce.com"
oauth = "refresh_token"                        # or "client_credentials" (then no token_env)
token_env = "SALESFORCE_REFRESH_TOKEN"         # the NAME of the variable holding the token
client_id_env = "SALESFORCE_CLIENT_ID"
client_secret_env = "SALESFORCE_CLIENT_SECRET"
daily_share = 0.8                   # ferry's share of the org's daily API allocation
# external_id_field = "Ext_Id__c"   # creates that set it are upserts (exact after a crash)

# Salesforce Contacts <-> crm.contacts (created by `ferry apply`)
[[mappings]]
connection = "salesforce"
object = "Contact"
table = "crm.contacts"
conflict_policy = "remote_wins"     # remote_wins | hub_wins | last_write_wins | manual
match_key = "email"                 # links existing rows on first sync; no duplicate creates
delete_fuse = { rows = 50, share = 0.05, window = "10m" }   # mass deletes wait for you
fields = [
  { column = "email",      property = "Email", transform = "lowercase" },
  { column = "first_name", property = "FirstName" },
  { column = "last_name",  property = "LastName" },
  { column = "phone",      property = "Phone" },
  # read-only in the hub: Salesforce computes it
  { column = "full_name",  property = "Name", direction = "inbound" },
]
"#;

const STRIPE: &str = r#"# ferry configuration, written by `ferry init --preset stripe`.
# Apply it with `ferry apply --dry-run` (says what would change), then `ferry run`.
# The README's "Configuration" section explains every key, "Stripe" the specifics.
# The hub: embedded PostgreSQL under ./.ferry, or your server in FERRY_DATABASE_URL.

[engine]
listen = "127.0.0.1:8700"          # webhooks (POST /webhooks/stripe), /healthz, /metrics
poll_interval = "30s"               # /v1/events since the last one seen, for lost webhooks
reconcile_interval = "6h"           # full comparison: drift ("0s": off)
history_retention = "30d"           # how long ferry.history keeps each change ("0s": off)

[connections.stripe]
kind = "stripe"
# the real API; for the simulator (`ferry sim stripe`): "http://127.0.0.1:8704"
base_url = "https://api.stripe.com"
token_env = "STRIPE_SECRET_KEY"               # the NAME of the variable holding the key
webhook_secret_env = "STRIPE_WEBHOOK_SECRET"  # the NAME of the variable holding the secret
# rate_limit = "100/1s"             # default: Stripe's own, 25/s with test keys, 100/s live

# Stripe customers <-> billing.customers (created by `ferry apply`)
[[mappings]]
connection = "stripe"
object = "customers"
table = "billing.customers"
conflict_policy = "remote_wins"     # remote_wins | hub_wins | last_write_wins | manual
match_key = "email"                 # links existing rows on first sync; no duplicate creates
delete_fuse = { rows = 50, share = 0.05, window = "10m" }   # mass deletes wait for you
fields = [
  { column = "email", property = "email", transform = "lowercase" },
  { column = "name",  property = "name" },
  { column = "phone", property = "phone" },
  { column = "line1", property = "address.line1" },
  { column = "city",  property = "address.city" },
  { column = "plan",  property = "metadata.plan" },
]

# Stripe invoices -> billing.invoices (inbound: Stripe computes them); `customer` is the
# billing.customers row of the invoice's customer
[[mappings]]
connection = "stripe"
object = "invoices"
table = "billing.invoices"
fields = [
  { column = "customer",    property = "customer", type = "bigint", references = "stripe.customers", direction = "inbound" },
  { column = "status",      property = "status", direction = "inbound" },
  { column = "amount_paid", property = "amount_paid", type = "bigint", direction = "inbound" },
  { column = "paid_at",     property = "status_transitions.paid_at", type = "timestamptz", direction = "inbound" },
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
