//! Test harness: a hub and the Salesforce simulator with the engine in process between them
//! (OAuth refresh-token sign-in, polling only: Salesforce sends no webhooks); how a Contact
//! is found by email.

use std::collections::HashMap;
use std::time::Duration;

use ferry::config::{Config, Secrets};
use ferry::engine::Engine;
use ferry::hub::Hub;
use ferry::sim::salesforce::{SalesforceSim, SimConfig, SimRecord};

use super::{backfilled, fresh_db, Sql};

/// The environment variables the connection names for the connected app's key and secret.
const CLIENT_ID_ENV: &str = "FERRY_TEST_SF_CLIENT_ID";
const CLIENT_SECRET_ENV: &str = "FERRY_TEST_SF_CLIENT_SECRET";

/// A running hub + Salesforce simulator + engine, backfilled.
pub struct SalesforceCtx {
    pub hub: Hub,
    pub salesforce: SalesforceSim,
    pub engine: Option<Engine>,
    config: Config,
    secrets: HashMap<String, Secrets>,
    url: String,
}

impl SalesforceCtx {
    /// A hub, the Salesforce simulator with `seed` Contacts, and the engine running
    /// `mappings` with `engine_lines` in its `[engine]` table, backfilled.
    pub async fn start(seed: usize, engine_lines: &str, mappings: &str) -> SalesforceCtx {
        let (db, url) = fresh_db().await;
        let hub = Hub::connect(&url).await.expect("hub connects");
        let salesforce = SalesforceSim::start(
            SimConfig {
                seed_contacts: seed,
                ..SimConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .expect("salesforce simulator starts");
        let c = salesforce.config().clone();
        // every test sets the same values: the simulator's defaults
        std::env::set_var(CLIENT_ID_ENV, &c.client_id);
        std::env::set_var(CLIENT_SECRET_ENV, &c.client_secret);
        let text = format!(
            r#"
            [engine]
            listen = "127.0.0.1:0"
            slot = "{db}"
            publication = "ferry"
            workers = 2
            {engine_lines}

            [connections.salesforce]
            kind = "salesforce"
            base_url = "{base}"
            token_env = "UNUSED"
            client_id_env = "{CLIENT_ID_ENV}"
            client_secret_env = "{CLIENT_SECRET_ENV}"
            external_id_field = "Ext_Id__c"
            daily_share = 0.9

            {mappings}
            "#,
            base = salesforce.base_url(),
        );
        let config = Config::parse(&text, "test config").expect("config parses");
        let secrets = HashMap::from([(
            "salesforce".to_string(),
            Secrets {
                token: c.refresh_token.clone(),
                webhook_secret: None,
            },
        )]);
        let engine = Engine::start(hub.clone(), &config, &secrets)
            .await
            .expect("engine starts");
        let ctx = SalesforceCtx {
            hub,
            salesforce,
            engine: Some(engine),
            config,
            secrets,
            url,
        };
        backfilled(&ctx.hub, ctx.config.mappings.len()).await;
        ctx
    }

    /// The live Contact with this email.
    pub fn contact(&self, email: &str) -> Option<SimRecord> {
        self.salesforce
            .records("Contact")
            .into_iter()
            .find(|c| c.fields["Email"] == email)
    }

    /// Waits until nothing is queued either way and the simulator sees no new calls.
    pub async fn quiesce(&self) {
        super::quiesce(&self.hub, Duration::from_secs(30), || {
            vec![self.salesforce.stats().requests]
        })
        .await;
    }

    /// Stops the engine and starts a new one on the same config and a new pool (a restart:
    /// whatever the old one held in memory or in its connections is gone).
    pub async fn restart(&mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.hub = Hub::connect(&self.url).await.expect("hub connects");
        // the old process's sessions end with it (an in-process engine leaves them in its pool,
        // holding the claims of the tasks it aborted)
        self.hub
            .client()
            .await
            .unwrap()
            .execute(
                "select pg_terminate_backend(pid) from pg_stat_activity
                  where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
                &[],
            )
            .await
            .unwrap();
        self.engine = Some(
            Engine::start(self.hub.clone(), &self.config, &self.secrets)
                .await
                .expect("engine restarts"),
        );
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.engine.take() {
            e.shutdown().await;
        }
        self.salesforce.shutdown();
    }
}

impl Sql for SalesforceCtx {
    fn hub(&self) -> &Hub {
        &self.hub
    }
}
