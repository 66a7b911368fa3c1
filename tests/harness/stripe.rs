//! Test harness: a hub and the Stripe simulator (test mode), optionally the HubSpot simulator
//! beside it, with the engine in process between them (secret key as bearer, signed webhooks,
//! the events feed); how a customer is found by email.

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::hubspot::HubSpotSim;
use ferry::sim::stripe::{SimConfig, StripeSim};
use serde_json::Value;

use super::{backfilled, fresh_db, hubspot_activity, hubspot_beside, hubspot_secrets, Sql};

/// Customers both ways: name, email (the match key), phone, two address parts, a metadata key.
pub const CUSTOMERS: &str = r#"
[[mappings]]
connection = "stripe"
object = "customers"
table = "billing.customers"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "name",  property = "name" },
  { column = "email", property = "email", transform = "lowercase" },
  { column = "phone", property = "phone" },
  { column = "line1", property = "address.line1" },
  { column = "city",  property = "address.city" },
  { column = "plan",  property = "metadata.plan" },
]
"#;

/// A running hub + Stripe simulator + engine, backfilled.
pub struct StripeCtx {
    pub hub: Hub,
    pub stripe: StripeSim,
    pub hubspot: Option<HubSpotSim>,
    pub engine: Option<Engine>,
}

impl StripeCtx {
    /// A hub, the Stripe simulator with `seed` customers (`configure` may change its settings
    /// first), with `with_hubspot` a HubSpot simulator and its connection too, and the engine
    /// running `mappings` with `engine_lines` in its `[engine]` table, backfilled.
    pub async fn start(
        seed: usize,
        engine_lines: &str,
        mappings: &str,
        with_hubspot: bool,
        configure: impl FnOnce(&mut SimConfig),
    ) -> StripeCtx {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let mut cfg = SimConfig {
            seed_customers: seed,
            ..SimConfig::default()
        };
        configure(&mut cfg);
        let stripe = StripeSim::start(cfg, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("stripe simulator starts");
        let (hubspot, hubspot_connection) = hubspot_beside(with_hubspot).await;
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            publication = "ferry"
            workers = 2
            {engine_lines}

            [connections.stripe]
            kind = "stripe"
            base_url = "{base}"
            token_env = "UNUSED"
            webhook_secret_env = "UNUSED_SECRET"
            {hubspot_connection}
            {mappings}
            "#,
            base = stripe.base_url(),
        );
        let config = Config::parse(&text, "test config").expect("config parses");
        let secrets = HashMap::from([
            (
                "stripe".to_string(),
                Secrets {
                    token: stripe.test_key(),
                    webhook_secret: stripe.webhook_secrets().first().cloned(),
                },
            ),
            ("hubspot".to_string(), hubspot_secrets()),
        ]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        stripe.set_webhook_url(Some(engine.webhook_url("stripe")));
        if let Some(h) = &hubspot {
            h.set_webhook_url(Some(engine.webhook_url("hubspot")));
        }
        let ctx = StripeCtx {
            hub,
            stripe,
            hubspot,
            engine: Some(engine),
        };
        backfilled(&ctx.hub, config.mappings.len()).await;
        ctx
    }

    /// The live customer with this email.
    pub fn customer(&self, email: &str) -> Option<Value> {
        self.stripe
            .records("customers")
            .into_iter()
            .find(|c| c["email"] == email)
    }

    /// Waits until nothing is queued either way and the simulator sees no new calls.
    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(30), || {
            let s = self.stripe.stats();
            let h = hubspot_activity(&self.hubspot);
            vec![s.requests, s.webhooks_delivered, h]
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.stripe.shutdown();
        if let Some(h) = &self.hubspot {
            h.shutdown();
        }
    }
}

impl Sql for StripeCtx {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}
