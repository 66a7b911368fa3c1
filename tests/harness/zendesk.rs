//! Test harness: a hub and the Zendesk simulator with the engine in process between them, a
//! HubSpot simulator beside it on request (HubSpot and Zendesk on one table); how a Zendesk
//! user is found by email.

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::hubspot::HubSpotSim;
use ferry::sim::zendesk::{SimConfig, SimRecord, ZendeskSim};

use super::{
    backfilled, fresh_db, hubspot_activity, hubspot_beside, hubspot_secrets, zendesk_sim, Sql,
};

/// `support.users` mapped to Zendesk users: name, email as the match key, phone, role
/// read-only, tags as `text[]`, plan from `user_fields.plan`.
pub const USERS: &str = r#"
[[mappings]]
connection = "zendesk"
object = "users"
table = "support.users"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "name",  property = "name" },
  { column = "email", property = "email", transform = "lowercase" },
  { column = "phone", property = "phone" },
  { column = "role",  property = "role", direction = "inbound" },
  { column = "tags",  property = "tags", type = "text[]" },
  { column = "plan",  property = "user_fields.plan" },
]
"#;

/// A running hub + Zendesk simulator (+ HubSpot simulator) + engine, backfilled.
pub struct ZendeskCtx {
    pub hub: Hub,
    pub zendesk: ZendeskSim,
    pub hubspot: Option<HubSpotSim>,
    pub engine: Option<Engine>,
}

/// The `[connections.zendesk]` table for `sim`.
fn zendesk_connection(sim: &ZendeskSim) -> String {
    format!(
        r#"
        [connections.zendesk]
        kind = "zendesk"
        base_url = "{}"
        email = "{}"
        token_env = "UNUSED"
        webhook_secret_env = "UNUSED_SECRET"
        rate_limit = "700/60s"
        "#,
        sim.base_url(),
        sim.email()
    )
}

impl ZendeskCtx {
    /// A hub, the Zendesk simulator (`prepare` runs on it before the engine starts), with
    /// `with_hubspot` a HubSpot simulator and its connection too, and the engine running
    /// `mappings`, backfilled.
    pub async fn start(
        seed: usize,
        engine_lines: &str,
        mappings: &str,
        with_hubspot: bool,
        prepare: impl FnOnce(&ZendeskSim),
    ) -> ZendeskCtx {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let zendesk = zendesk_sim(SimConfig {
            seed_users: seed,
            ..SimConfig::default()
        })
        .await;
        prepare(&zendesk);
        let (hubspot, hubspot_connection) = hubspot_beside(with_hubspot).await;
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            publication = "ferry"
            workers = 2
            {engine_lines}
            {zc}
            {hubspot_connection}
            {mappings}
            "#,
            zc = zendesk_connection(&zendesk),
        );
        let config = Config::parse(&text, "test config").expect("config parses");
        let secrets = HashMap::from([
            (
                "zendesk".to_string(),
                Secrets {
                    token: zendesk.token(),
                    webhook_secret: Some(zendesk.webhook_secret()),
                },
            ),
            ("hubspot".to_string(), hubspot_secrets()),
        ]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        zendesk.set_webhook_url(Some(engine.webhook_url("zendesk")));
        if let Some(h) = &hubspot {
            h.set_webhook_url(Some(engine.webhook_url("hubspot")));
        }
        let ctx = ZendeskCtx {
            hub,
            zendesk,
            hubspot,
            engine: Some(engine),
        };
        backfilled(&ctx.hub, config.mappings.len()).await;
        ctx
    }

    /// The live Zendesk user with this email.
    pub fn user(&self, email: &str) -> Option<SimRecord> {
        self.zendesk
            .records("users")
            .into_iter()
            .find(|u| u.fields["email"] == email)
    }

    /// Waits until nothing is queued either way and no simulator sees new calls or sends new
    /// webhooks.
    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(30), || {
            let z = self.zendesk.stats();
            let h = hubspot_activity(&self.hubspot);
            vec![z.requests, z.webhooks_delivered, h]
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.zendesk.shutdown();
        if let Some(h) = &self.hubspot {
            h.shutdown();
        }
    }
}

impl Sql for ZendeskCtx {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}

/// The id of the Zendesk user with this email; panics if there is none.
pub fn user_id(sim: &ZendeskSim, email: &str) -> u64 {
    sim.records("users")
        .into_iter()
        .find(|u| u.fields["email"] == email)
        .map(|u| u.id)
        .unwrap_or_else(|| panic!("no user {email}"))
}
