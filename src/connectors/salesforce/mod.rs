//! Salesforce connector (REST API: sObjects such as Contact, Account), both directions:
//! OAuth 2.0 sessions (refresh-token or client-credentials grant), SOQL listings and lookups,
//! Collections reads and writes (creates keyed on an external id are upserts, so a create sent
//! twice makes one record), a change feed on `SystemModstamp` with getDeleted for deletions,
//! the describe check of a mapping's fields, and the org's daily API allocation shared out.
//! Salesforce sends no webhooks: changes come by polling.

mod auth;
mod budget;
mod client;
mod config;
mod describe;
mod errors;
mod feed;
mod mapping;
mod soql;
mod writes;

#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_feed;
#[cfg(test)]
mod tests_limits;
#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_writes;

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

pub use auth::Grant;
use budget::DailyBudget;
pub use budget::PaceClock;
use client::{encode, Client};
pub use config::build;
use mapping::{remote_records, QueryPage};

use super::ratelimit::Budget;
use super::{
    BatchSizes, Capabilities, ChangeEvent, Connector, ConnectorError, FeedPage, FeedStart,
    FieldUse, Page, Properties, RemoteRecord, WebhookError, WebhookPayload, WebhookRequest,
    Written,
};

/// Records per Collections call (creates, updates, deletes, retrieves by id).
pub const MAX_BATCH: usize = 200;
/// Values per `IN (...)` of a lookup (the query stays well inside a URL's length).
const FIND_CHUNK: usize = 100;

/// How a connection talks to its org.
#[derive(Debug, Clone)]
pub struct Options {
    /// REST API version (`62.0`).
    pub api_version: String,
    /// Share of the org's daily allocation ferry may use (see `budget.rs`).
    pub daily_share: f64,
    /// External-id field creates are keyed on (`Ext_Id__c`), if any.
    pub external_id_field: Option<String>,
    /// Records per listing page (SOQL `LIMIT`; the query page size asked is kept in
    /// Salesforce's 200–2,000).
    pub page_size: usize,
    /// The pause after a 403 for the daily allocation.
    pub limit_pause: Duration,
    /// While held at the share, how often one call goes to read the usage again.
    pub probe_every: Duration,
    /// Past a quarter of the share, calls are spaced out so the share lasts (off: they go freely
    /// until the share, then hold).
    pub pacing: bool,
    /// The clock the daily budget paces by (None: the wall clock; benchmarks pass a
    /// simulator's to show a day in seconds).
    pub pace_clock: Option<std::sync::Arc<dyn budget::PaceClock>>,
    /// The connection's own request budget (`rate_limit`), if any.
    pub rate_limit: Option<Budget>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_version: "62.0".into(),
            daily_share: 0.8,
            external_id_field: None,
            page_size: 2000,
            limit_pause: Duration::from_secs(15 * 60),
            probe_every: Duration::from_secs(60),
            pacing: true,
            pace_clock: None,
            rate_limit: None,
        }
    }
}

pub struct Salesforce {
    client: Client,
    external_id: Option<String>,
    /// `create_keys`: the external-id field, leaked once per connection for `'static`.
    create_keys: &'static [&'static str],
    page_size: usize,
}

impl Salesforce {
    /// `name`: the connection's name (metrics, logs). `base_url`: where OAuth tokens come
    /// from (`https://login.salesforce.com` or the org's My Domain); the API is at the
    /// `instance_url` the token answer names.
    pub fn new(name: &str, base_url: &str, grant: Grant, options: Options) -> Salesforce {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("static reqwest configuration is valid");
        let auth = auth::Auth::new(http.clone(), base_url, grant);
        let budget = DailyBudget::new(name, &options);
        let client = Client::new(name, http, auth, budget, &options);
        let create_keys: &'static [&'static str] = match &options.external_id_field {
            Some(f) => Box::leak(vec![&*Box::leak(f.clone().into_boxed_str())].into_boxed_slice()),
            None => &[],
        };
        Salesforce {
            client,
            external_id: options.external_id_field,
            create_keys,
            page_size: options.page_size.max(1),
        }
    }

    /// The org's API usage and daily allocation as Salesforce last reported them.
    pub fn api_usage(&self) -> Option<(u64, u64)> {
        self.client.budget.usage()
    }

    /// Reads a query to its end, following `nextRecordsUrl`.
    async fn query_all(&self, q: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut page: QueryPage = self.query(q).await?;
        let mut out = std::mem::take(&mut page.records);
        while let (false, Some(next)) = (page.done, page.next.take()) {
            page = self
                .client
                .call(Method::GET, &next, None)
                .await
                .map_err(whole_request)?
                .parse()?;
            out.append(&mut page.records);
        }
        Ok(out)
    }
}

/// A failure of a whole request: a 404 there is not "the record is gone" (that comes per
/// record) but a wrong object name, version or base URL.
fn whole_request(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::NotFound => ConnectorError::Rejected {
            status: 404,
            message: "Salesforce answered 404 for the whole request (check the object's API name, the connection's base_url and api_version)".into(),
        },
        other => other,
    }
}

#[async_trait::async_trait]
impl Connector for Salesforce {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: BatchSizes::uniform(MAX_BATCH),
            // a create carrying the external id is an upsert on it
            create_keys: self.create_keys,
            async_writes: false,
            webhook_payload: WebhookPayload::Ids,
        }
    }

    /// Pages in id order (`WHERE Id > last ORDER BY Id LIMIT n`): a page's position is the
    /// last id it holds, so a backfill resumes after a crash with no query locator to expire.
    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError> {
        let q = soql::list(object, properties, after.as_deref(), self.page_size)?;
        let page = self.query(&q).await?;
        let records = remote_records(&page.records, properties);
        let full = !page.done || records.len() >= self.page_size;
        Ok(Page {
            after: records.last().filter(|_| full).map(|r| r.id.clone()),
            records,
        })
    }

    async fn changes(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        self.feed_page(object, properties, cursor, start).await
    }

    /// `GET /composite/sobjects/{Object}?ids=&fields=`, 200 ids a call; an id Salesforce
    /// has no live record for answers `null` and is left out (the engine reads that as gone).
    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = soql::name(object, "object")?;
        let fields = soql::fields(properties)?.join(",");
        let ids: Vec<&String> = ids.iter().filter(|i| soql::is_id(i)).collect();
        let mut out = vec![];
        for chunk in ids.chunks(MAX_BATCH) {
            let list: Vec<String> = chunk.iter().map(|i| encode(i)).collect();
            let path = format!(
                "/composite/sobjects/{object}?ids={}&fields={}",
                list.join(","),
                encode(&fields)
            );
            let records: Vec<Value> = self
                .client
                .call(Method::GET, &path, None)
                .await
                .map_err(whole_request)?
                .parse()?;
            out.extend(remote_records(&records, properties));
        }
        Ok(out)
    }

    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        self.create_records(object, items).await
    }

    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        self.update_records(object, items).await
    }

    /// SOQL `WHERE property IN (...)`, each value a quoted literal, 100 values a query.
    async fn find(
        &self,
        object: &str,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut wanted: Vec<String> = properties.to_vec();
        if !wanted.iter().any(|p| p.eq_ignore_ascii_case(property)) {
            wanted.push(property.to_string());
        }
        let mut out = vec![];
        for chunk in values.chunks(FIND_CHUNK) {
            let q = soql::find(object, property, chunk, &wanted)?;
            out.extend(remote_records(&self.query_all(&q).await?, &wanted));
        }
        Ok(out)
    }

    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        if let Err(e) = soql::name(object, "object") {
            return ids.iter().map(|_| Err(e.clone())).collect();
        }
        self.delete_records(ids).await
    }

    fn parse_webhook(
        &self,
        _request: &WebhookRequest<'_>,
        _secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        Err(WebhookError::Malformed(
            "Salesforce sends no webhooks ferry reads (its pushes are Change Data Capture and Outbound Messages); a salesforce connection's changes come by polling".into(),
        ))
    }

    async fn check_fields(&self, object: &str, fields: &[FieldUse]) -> Result<(), String> {
        self.check(object, fields).await
    }
}
