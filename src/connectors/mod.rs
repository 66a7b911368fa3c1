//! Connectors: the edge between ferry and one app's API (both directions).

pub mod hubspot;
pub mod path;
pub mod ratelimit;
pub mod rest;
pub mod salesforce;
pub mod stripe;
pub mod wire;
pub mod zendesk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{ConnectionConfig, Secrets};

/// A record's values as typed JSON (string, number, boolean, array, object), keyed by property
/// path (`email`, `address.city`); JSON null is unset (and, in a write, clears the property).
/// Each connector converts to and from its own wire (HubSpot: every value a string).
pub type Properties = BTreeMap<String, serde_json::Value>;

/// One remote record, as fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRecord {
    pub id: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub properties: Properties,
    pub archived: bool,
}

/// The outcome of one write: the record's id and the app's version of it after the write.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub id: String,
    pub updated_at: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub records: Vec<RemoteRecord>,
    /// Cursor of the next page; `None` on the last page.
    pub after: Option<String>,
}

/// One page of a change feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    /// Records changed since the feed's position, deletions as `archived`. Records may repeat
    /// across pages and polls; the engine applies a record once whatever the repeats.
    pub records: Vec<RemoteRecord>,
    /// The position after this page: opaque text the connector makes and reads back (a
    /// timestamp watermark, an export cursor, an event id).
    pub cursor: String,
    /// More changes are ready now; false: caught up until the next poll.
    pub more: bool,
    /// The records are states as of their `updated_at` (Stripe's event snapshots), not reads
    /// of the app's present state: a snapshot older than a write ferry recorded is read again
    /// rather than applied over it (see `inbound::apply::stamp_read`).
    pub snapshots: bool,
}

/// Where a change feed with no stored position begins (the moment its first backfill
/// started), and how far a watermark reaches back for changes an app's index shows late.
#[derive(Debug, Clone, Copy)]
pub struct FeedStart {
    pub at: DateTime<Utc>,
    pub overlap: Duration,
}

/// A change the app announced (webhook); the record is fetched afterwards unless deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The app's own event id, used to drop replays.
    pub event_id: Option<String>,
    pub object: String,
    pub remote_id: String,
    pub deleted: bool,
    /// The event as the app sent it, kept in ferry.inbox.
    pub raw: serde_json::Value,
}

/// What one connector's API offers; the engine plans its calls by it.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// Records per call, per operation: the engine never hands a write more in one call.
    pub batch: BatchSizes,
    /// Properties creates are keyed on: the app creates or updates by this value (Zendesk's
    /// `create_or_update_many` by email or external id), so a create repeated after a crash
    /// lands on the record the first one made. When the mapping's match key is one of them the
    /// engine repeats an interrupted create as it is instead of looking the record up first (an
    /// app's search index may not show a record created a moment ago). Empty: every create
    /// makes a new record, and an interrupted one is looked up by the match key before it is
    /// repeated.
    pub create_keys: &'static [&'static str],
    /// Writes run as asynchronous jobs the connector polls for per-item results (Zendesk's
    /// `job_status`): a write round mostly waits on the app, so its lane gets a worker more.
    pub async_writes: bool,
    /// What the app's webhook events carry. The engine fetches the records of events unless
    /// they carry whole records it can apply safely (see [`Connector::event_record`]): an
    /// event may be older than the app's state, and deliveries come out of order.
    pub webhook_payload: WebhookPayload,
}

/// Records per call for each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSizes {
    pub create: usize,
    pub update: usize,
    pub archive: usize,
    /// Records fetched by id in one call.
    pub fetch: usize,
}

impl BatchSizes {
    /// The same size for every operation.
    pub const fn uniform(n: usize) -> BatchSizes {
        BatchSizes {
            create: n,
            update: n,
            archive: n,
            fetch: n,
        }
    }

    /// The largest write batch: how many marks one outbound round claims and plans.
    pub fn largest_write(&self) -> usize {
        self.create.max(self.update).max(self.archive).max(1)
    }
}

/// What a webhook event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookPayload {
    /// Only the ids of the changed records.
    Ids,
    /// The new values of the fields that changed (HubSpot's `propertyChange`, Zendesk's user
    /// events with their `current` value), not the whole record.
    ChangedFields,
    /// The whole record as it was when the event happened (Stripe's `data.object`).
    Records,
}

/// An API call's failure, classified by what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// Throttled: retry after the server's hint.
    #[error("rate limited ({policy}); retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        policy: String,
    },
    /// 5xx, timeouts, resets: retry with exponential backoff.
    #[error("transient API failure: {0}")]
    Transient(String),
    /// Validation and other 4xx: never retried; becomes a dead letter with the API's text.
    #[error("{message}")]
    Rejected { status: u16, message: String },
    /// The record does not exist (anymore) on the remote side.
    #[error("remote record not found")]
    NotFound,
    /// Bad or expired credentials: retry after a delay (the operator must fix the token).
    #[error("authentication failed: {0}")]
    Auth(String),
}

impl ConnectorError {
    /// Whether retrying can ever help.
    pub fn retryable(&self) -> bool {
        !matches!(self, ConnectorError::Rejected { .. })
    }
}

/// Why a webhook delivery was refused: answered 401/400, and nothing is stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature rejected: {0}")]
    Signature(String),
    #[error("no webhook secret configured for this connection")]
    NoSecret,
    #[error("malformed webhook body: {0}")]
    Malformed(String),
}

/// The HTTP request of a webhook delivery, as received.
pub struct WebhookRequest<'a> {
    pub method: &'a str,
    /// The full URL the app posted to (apps sign it).
    pub url: &'a str,
    pub headers: &'a axum::http::HeaderMap,
    pub body: &'a [u8],
}

/// One app kind's API.
///
/// Contract:
/// - **At least once.** The engine may call any write again after a crash or a timeout whose
///   outcome is unknown; `update` and `archive` must therefore be idempotent (same values,
///   same outcome), and `create` is guarded by the engine's create intent (a link with no remote
///   id) so a retried create is looked up before it is repeated.
/// - **Per-record order.** The engine never has two writes for the same record in flight;
///   batches hold distinct records. Records in different batches may run in parallel.
/// - **Per-item results.** Batch writes return one result per input, in input order: a partial
///   failure (HubSpot 207) fails only the items it names.
/// - **No hidden retries.** A connector reports failures classified ([`ConnectorError`]);
///   the engine owns retry, backoff and dead letters.
/// - Values are typed JSON ([`Properties`]); the connector converts them to its wire format and
///   back, so the engine never sees one app's encoding. Null clears a property.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    fn kind(&self) -> &'static str;
    fn capabilities(&self) -> Capabilities;
    /// One page of all live records, from `after` (None = first page).
    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError>;
    /// The change feed's next page after `cursor` (the last [`FeedPage::cursor`] the engine
    /// stored; None before the first page, then `start` says where to begin).
    ///
    /// The engine stores the returned cursor in the transaction that applies the page, so a
    /// crash repeats at most that page: the cursor may advance only over records the page
    /// holds. Pages may carry deletions (`archived`) when the app's feed reports them; a feed
    /// that does not (HubSpot search) leaves deletions to the reconcile.
    async fn changes(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError>;
    /// Current state of the given records. A missing record is absent from the result; a deleted
    /// one is absent or present with `archived` (Zendesk returns soft-deleted users): the engine
    /// takes both as the deletion.
    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError>;
    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>>;
    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>>;
    /// Live records whose `property` equals one of `values`: how the engine finds a record an
    /// interrupted create may have made before it creates again.
    async fn find(
        &self,
        object: &str,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError>;
    /// Deletes (archives); a record already gone counts as success.
    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>>;
    /// The record a stored webhook event (its [`ChangeEvent::raw`]) carries whole, read as
    /// [`fetch`](Connector::fetch) would return it; None when the app's events do not carry
    /// whole records (the default) or this one has none. The engine applies it instead of
    /// fetching only when it is the record's one event of the round, on its first attempt,
    /// its `updated_at` is strictly newer than the state applied, and no write of ferry's
    /// was recorded after it; otherwise it fetches the record as for any event.
    fn event_record(
        &self,
        object: &str,
        event: &serde_json::Value,
        properties: &[String],
    ) -> Option<RemoteRecord> {
        let _ = (object, event, properties);
        None
    }
    /// Verifies the delivery's signature and returns its events.
    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError>;
    /// Checks a mapping's fields against what the app says about `object` (Salesforce's
    /// describe): `Err` holds one sentence per field that does not exist or cannot be written
    /// in its direction, joined by newlines. Apps with no such metadata accept everything.
    async fn check_fields(&self, object: &str, fields: &[FieldUse]) -> Result<(), String> {
        let _ = (object, fields);
        Ok(())
    }
}

/// One mapped field as [`Connector::check_fields`] sees it: its remote property and whether
/// ferry writes it to the app (`both` / `outbound` directions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    pub property: String,
    pub writes: bool,
}

/// Builds one connection's connector from its configuration and secrets.
pub type Builder = fn(&str, &ConnectionConfig, &Secrets) -> Result<Arc<dyn Connector>, String>;

/// The connector kinds this build knows, one line each: `ferry.toml` may name only these.
const REGISTRY: &[(&str, Builder)] = &[
    ("hubspot", hubspot::build),
    ("zendesk", zendesk::build),
    ("salesforce", salesforce::build),
    ("stripe", stripe::build),
    ("rest", rest::build),
];

/// The kinds `ferry.toml` may name.
pub fn kinds() -> Vec<&'static str> {
    REGISTRY.iter().map(|(kind, _)| *kind).collect()
}

/// Builds the connector for one connection.
pub fn build(
    name: &str,
    connection: &ConnectionConfig,
    secrets: &Secrets,
) -> Result<Arc<dyn Connector>, String> {
    match REGISTRY.iter().find(|(kind, _)| *kind == connection.kind) {
        Some((_, build)) => build(name, connection, secrets),
        None => Err(format!(
            "unknown connector kind `{}` (known: {})",
            connection.kind,
            kinds().join(", ")
        )),
    }
}
