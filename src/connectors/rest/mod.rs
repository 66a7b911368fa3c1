//! Generic REST connector (`kind = "rest"`), the connector's face: any JSON API described in
//! `ferry.toml` — sign-in (`auth.rs`), listings and their pages (`pages.rs`, `reads.rs`), the
//! change feed (`feed.rs`), writes (`writes.rs`), records as configured (`record.rs`) and
//! verified webhooks (`signature.rs`, `webhook.rs`); the configuration's shape and checks are
//! in `config.rs` and `checks.rs`.

mod auth;
mod checks;
mod client;
pub mod config;
mod feed;
mod pages;
mod reads;
mod record;
pub mod signature;
pub mod webhook;
mod writes;

#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_feed;
#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_support;
#[cfg(test)]
mod tests_webhook;
#[cfg(test)]
mod tests_writes;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use checks::validate;

use super::ratelimit::Budget;
use super::{
    BatchSizes, Capabilities, ChangeEvent, Connector, ConnectorError, FeedPage, FeedStart,
    FieldUse, Page, Properties, RemoteRecord, WebhookError, WebhookPayload, WebhookRequest,
    Written,
};
use client::Client;
use config::{Carries, Resource, Webhook};

/// Writes of one batch sent side by side (each is its own call).
const SIDE_BY_SIDE: usize = 10;
/// Records fetched by id at once (each its own `GET`).
const FETCH_SIDE_BY_SIDE: usize = 8;

pub struct Rest {
    client: Client,
    name: String,
    resources: BTreeMap<String, Resource>,
    webhook: Webhook,
}

impl Rest {
    /// `name`: the connection's name (metrics, logs); `secret`: the value of `token_env`.
    pub fn new(
        name: &str,
        base_url: &str,
        secret: &str,
        connection: &crate::config::ConnectionConfig,
        budget: Option<Budget>,
    ) -> Result<Rest, String> {
        let signer = auth::Signer::new(connection.auth.clone(), secret);
        let client = Client::new(name, base_url, signer, budget, &connection.headers)
            .map_err(|e| format!("connection `{name}`: {e}"))?;
        Ok(Rest {
            client,
            name: name.to_string(),
            resources: connection.resources.clone(),
            webhook: connection
                .webhook
                .clone()
                .unwrap_or_else(|| toml::from_str("").expect("defaults")),
        })
    }

    fn resource(&self, object: &str) -> Result<&Resource, ConnectorError> {
        self.resources
            .get(object)
            .ok_or_else(|| ConnectorError::Rejected {
                status: 0,
                message: format!(
                    "connection `{}` has no resource `{object}` ([connections.{}.resources.{object}])",
                    self.name, self.name
                ),
            })
    }

    fn writable(&self, object: &str) -> Result<&Resource, ConnectorError> {
        let res = self.resource(object)?;
        if res.writable {
            Ok(res)
        } else {
            Err(ConnectorError::Rejected {
                status: 0,
                message: format!("resource `{object}` is read-only (writable = false)"),
            })
        }
    }
}

/// The registry's builder (connectors/mod.rs): a connection of kind `rest`.
pub fn build(
    name: &str,
    connection: &crate::config::ConnectionConfig,
    secrets: &crate::config::Secrets,
) -> Result<Arc<dyn Connector>, String> {
    validate(name, connection)?;
    let budget = Budget::of(connection)?;
    Ok(Arc::new(Rest::new(
        name,
        &connection.base_url,
        secrets.token.trim(),
        connection,
        budget,
    )?))
}

#[async_trait::async_trait]
impl Connector for Rest {
    fn kind(&self) -> &'static str {
        "rest"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: BatchSizes {
                create: SIDE_BY_SIDE,
                update: SIDE_BY_SIDE,
                archive: SIDE_BY_SIDE,
                fetch: 50,
            },
            // a plain POST makes a new record each time: an interrupted create is looked up
            // by the match key (`find`) before it is sent again
            create_keys: &[],
            async_writes: false,
            webhook_payload: match self.webhook.carries {
                Carries::Ids => WebhookPayload::Ids,
                Carries::Changes => WebhookPayload::ChangedFields,
                Carries::Records => WebhookPayload::Records,
            },
        }
    }

    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError> {
        let res = self.resource(object)?;
        self.list_page(res, properties, after.as_deref()).await
    }

    async fn changes(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        let res = self.resource(object)?;
        self.feed_page(res, properties, cursor, start).await
    }

    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let res = self.resource(object)?;
        self.fetch_records(res, ids, properties).await
    }

    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        match self.writable(object) {
            Ok(res) => self.create_records(res, items).await,
            Err(e) => items.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        match self.writable(object) {
            Ok(res) => self.update_records(res, items).await,
            Err(e) => items.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn find(
        &self,
        object: &str,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let res = self.resource(object)?;
        self.find_records(res, property, values, properties).await
    }

    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        match self.writable(object) {
            Ok(res) => self.delete_records(res, ids).await,
            Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn event_record(
        &self,
        object: &str,
        event: &serde_json::Value,
        properties: &[String],
    ) -> Option<RemoteRecord> {
        let resource = self.resources.get(object)?;
        webhook::carried_record(&self.webhook, resource, event, properties)
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        webhook::parse(
            &self.webhook,
            &self.resources,
            request,
            secret,
            chrono::Utc::now(),
        )
    }

    async fn check_fields(&self, object: &str, fields: &[FieldUse]) -> Result<(), String> {
        let res = self.resource(object).map_err(|e| e.to_string())?;
        let written: Vec<&str> = fields
            .iter()
            .filter(|f| f.writes)
            .map(|f| f.property.as_str())
            .collect();
        if !res.writable && !written.is_empty() {
            return Err(format!(
                "resource `{object}` is read-only (writable = false) but fields {} are written to it",
                written.join(", ")
            ));
        }
        Ok(())
    }
}
