//! Stripe connector (customers both ways, invoices inbound), the connector's face: the
//! [`Connector`] implementation that hands each operation to its part — form-encoded writes
//! with idempotency keys (`writes.rs`), id-cursor listings and fetches (`reads.rs`), the
//! `/v1/events` change feed (`feed.rs`) and `Stripe-Signature`d webhooks (`webhook.rs`).
//! Stripe has no batch endpoints: every write is one call for one record, and the engine runs
//! calls for different records side by side.

mod client;
mod config;
mod errors;
mod feed;
mod form;
mod idempotency;
mod mapping;
mod reads;
pub mod signature;
mod webhook;
mod writes;

#[cfg(test)]
mod tests_feed;
#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_webhooks;
#[cfg(test)]
mod tests_writes;

use std::time::Duration;

pub use config::build;

use super::ratelimit::Budget;
use super::{
    BatchSizes, Capabilities, ChangeEvent, Connector, ConnectorError, FeedPage, FeedStart,
    FieldUse, Page, Properties, RemoteRecord, WebhookError, WebhookPayload, WebhookRequest,
    Written,
};
use client::Client;
use mapping::Object;

/// Records per listing page (Stripe's largest `limit`).
pub const PAGE_LIMIT: usize = 100;
/// Records one write hands over: each is its own call, made side by side.
const SIDE_BY_SIDE: usize = 25;
/// Records fetched by id at once (each one its own `GET`).
const FETCH_CONCURRENCY: usize = 8;

/// How a connection talks to Stripe.
#[derive(Debug, Clone)]
pub struct Options {
    /// The request budget; [`config::default_budget`] picks one per key mode when unset.
    pub budget: Option<Budget>,
    /// A previous webhook signing secret still accepted during a rotation.
    pub previous_webhook_secret: Option<String>,
    /// How far a webhook's `t=` may be from now (Stripe's SDKs: 300 s).
    pub webhook_tolerance: Duration,
    /// Records per listing page (1–100).
    pub page_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: None,
            previous_webhook_secret: None,
            webhook_tolerance: Duration::from_secs(signature::TOLERANCE_SECS as u64),
            page_limit: PAGE_LIMIT,
        }
    }
}

pub struct Stripe {
    client: Client,
    /// The connection's name, part of every create's idempotency key.
    name: String,
    previous_webhook_secret: Option<String>,
    webhook_tolerance: Duration,
    page_limit: usize,
}

impl Stripe {
    /// `name`: the connection's name (metrics, logs, idempotency keys). `base_url`: the API
    /// base without `/v1` (`https://api.stripe.com`). `key`: the secret key (`sk_test_…`).
    pub fn new(name: &str, base_url: &str, key: &str, options: Options) -> Stripe {
        Stripe {
            client: Client::new(name, base_url, key, options.budget),
            name: name.to_string(),
            previous_webhook_secret: options.previous_webhook_secret,
            webhook_tolerance: options.webhook_tolerance,
            page_limit: options.page_limit.clamp(1, PAGE_LIMIT),
        }
    }
}

#[async_trait::async_trait]
impl Connector for Stripe {
    fn kind(&self) -> &'static str {
        "stripe"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // no batch endpoints: a batch is one call a record, all side by side (the
            // connection's budget paces them)
            batch: BatchSizes {
                create: SIDE_BY_SIDE,
                update: SIDE_BY_SIDE,
                archive: SIDE_BY_SIDE,
                fetch: PAGE_LIMIT,
            },
            // creates carry an idempotency key, not an upsert key: an interrupted create is
            // looked up by the match key (`find`) before it is sent again
            create_keys: &[],
            async_writes: false,
            webhook_payload: WebhookPayload::Records,
        }
    }

    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError> {
        let object = Object::parse(object)?;
        self.list_page(object, properties, after.as_deref(), self.page_limit)
            .await
    }

    async fn changes(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        let object = Object::parse(object)?;
        self.feed_page(object, properties, cursor, start).await
    }

    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = Object::parse(object)?;
        self.fetch_records(object, ids, properties).await
    }

    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        match Object::writable(object) {
            Ok(o) => self.create_records(o, items).await,
            Err(e) => items.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        match Object::writable(object) {
            Ok(o) => self.update_records(o, items).await,
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
        let object = Object::parse(object)?;
        self.find_records(object, property, values, properties)
            .await
    }

    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        match Object::writable(object) {
            Ok(o) => self.delete_records(o, ids).await,
            Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        webhook::parse(
            request,
            secret,
            self.previous_webhook_secret.as_deref(),
            chrono::Utc::now(),
            self.webhook_tolerance,
        )
    }

    async fn check_fields(&self, object: &str, fields: &[FieldUse]) -> Result<(), String> {
        mapping::check_fields(object, fields)
    }
}
