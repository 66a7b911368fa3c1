//! Zendesk Support connector (users, organizations), both directions: cursor-paged listing
//! for backfill, `show_many` for fetches, incremental exports for polling (deletions
//! included), bulk jobs for writes (users created through `create_or_update_many`, so a create
//! sent twice updates the record the first one made), signed event webhooks.

pub mod client;
pub mod feed;
pub mod jobs;
pub mod mapping;
mod poller;
pub mod signature;
pub mod webhook;

#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_sync;
#[cfg(test)]
mod tests_writes;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};

use super::ratelimit::Budget;
use super::{
    BatchSizes, Capabilities, ChangeEvent, Connector, ConnectorError, FeedPage, FeedStart, Page,
    Properties, RemoteRecord, WebhookError, WebhookPayload, WebhookRequest, Written,
};
use client::{authorization, encode, Client};
use jobs::{Item, Keys};
use mapping::{has_value, remote_record, remote_records, write_item, Listing, Object};
use poller::Poller;

/// Zendesk's limit for bulk writes, `show_many` ids and list pages.
pub const MAX_BATCH: usize = 100;
/// How long a write waits for its bulk job before it reports a transient failure.
pub const JOB_WAIT: Duration = Duration::from_secs(60);

/// How a connection spends its budgets and waits for jobs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The account budget (`rate_limit`, e.g. `700/60s` on Enterprise); None = unlimited.
    pub budget: Option<Budget>,
    /// The incremental exports' own budget (Zendesk: 10 a minute).
    pub export_budget: Budget,
    pub job_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: None,
            export_budget: client::EXPORT_BUDGET,
            job_wait: JOB_WAIT,
        }
    }
}

pub struct Zendesk {
    client: Arc<Client>,
    poller: Poller,
    job_wait: Duration,
}

impl Zendesk {
    /// `name`: the connection's name, for metrics and logs. `email`: the agent of an API
    /// token (`{email}/token` Basic auth); None: `token` is an OAuth access token (Bearer).
    pub fn new(
        name: &str,
        base_url: &str,
        email: Option<&str>,
        token: &str,
        options: Options,
    ) -> Zendesk {
        let client = Arc::new(Client::new(
            name,
            base_url,
            authorization(email, token),
            options.budget,
            options.export_budget,
        ));
        Zendesk {
            poller: Poller::new(client.clone()),
            client,
            job_wait: options.job_wait,
        }
    }

    /// Submits one bulk request and waits for its job: one outcome per input, in order.
    async fn bulk(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        keys: &[Keys],
    ) -> Vec<Result<Item, ConnectorError>> {
        match jobs::run(
            &self.client,
            &self.poller,
            method,
            path,
            body,
            keys,
            self.job_wait,
        )
        .await
        {
            Ok(finished) => finished
                .items
                .iter()
                .map(|i| i.clone().ok_or_else(|| finished.missing()))
                .collect(),
            Err(e) => {
                let e = whole_request(e);
                keys.iter().map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// `show_many` of up to 100 ids (soft-deleted users included, as archived).
    async fn show_many(
        &self,
        object: Object,
        ids: &[u64],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let path = object.path(&format!("/show_many?ids={}", list.join(",")));
        let listing: Listing = self
            .client
            .call(Method::GET, &path, None)
            .await
            .map_err(whole_request)?
            .parse()?;
        Ok(remote_records(&listing.records, properties))
    }

    /// Turns bulk outcomes into written records, without their update time: no call reads
    /// them back, and no time Zendesk gives bounds it (a write that changed nothing keeps the
    /// record's old `updated_at`). The engine holds back reads that began before a write was
    /// recorded instead (ferry.apply's `read_at`).
    fn written(items: Vec<Result<Item, ConnectorError>>) -> Vec<Result<Written, ConnectorError>> {
        items
            .into_iter()
            .map(|i| match i? {
                Item::Done { id: Some(id) } => Ok(Written {
                    updated_at: None,
                    id,
                }),
                Item::Done { id: None } => Err(ConnectorError::Transient(
                    "bulk job result without the record's id".into(),
                )),
                Item::Failed { code, message } => Err(item_error(&code, message)),
            })
            .collect()
    }

    /// Live records whose `property` equals one of `values`, read through the listing (for
    /// what neither `show_many` nor user search can look up).
    async fn scan(
        &self,
        object: Object,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut out = vec![];
        let mut after = None;
        loop {
            let (records, next) = self.list_page(object, after).await?;
            out.extend(
                records
                    .iter()
                    .filter(|r| values.iter().any(|v| has_value(r, property, v)))
                    .filter_map(|r| remote_record(r, properties))
                    .filter(|r| !r.archived),
            );
            match next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// One cursor page of the listing: raw records and the next page's cursor.
    async fn list_page(
        &self,
        object: Object,
        after: Option<String>,
    ) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
        let mut q = format!("?page%5Bsize%5D={MAX_BATCH}");
        if let Some(a) = &after {
            q.push_str("&page%5Bafter%5D=");
            q.push_str(&encode(a));
        }
        let listing: Listing = self
            .client
            .call(Method::GET, &object.path(&q), None)
            .await
            .map_err(whole_request)?
            .parse()?;
        let next = listing
            .meta
            .filter(|m| m.has_more)
            .and_then(|m| m.after_cursor)
            .filter(|c| !c.is_empty());
        Ok((listing.records, next))
    }
}

/// A failure of a whole request. A 404 there is not "the record is gone" (that comes per
/// record): it is a wrong path or base URL, and nothing is retried blindly.
fn whole_request(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::NotFound => ConnectorError::Rejected {
            status: 404,
            message: "Zendesk answered 404 for the whole request (check the connection's base_url)"
                .into(),
        },
        other => other,
    }
}

/// A failed bulk item: a record that is not there is NotFound; anything else is Zendesk
/// refusing the values (never retried; the dead letter holds Zendesk's words).
fn item_error(code: &str, message: String) -> ConnectorError {
    if code == "RecordNotFound" {
        ConnectorError::NotFound
    } else {
        ConnectorError::Rejected {
            status: 422,
            message,
        }
    }
}

/// What names a create's input in a result without an index: its email and external id.
fn create_keys(props: &Properties) -> Keys {
    ["email", "external_id"]
        .into_iter()
        .filter_map(|k| match props.get(k)? {
            Value::String(s) => Some((k, s.clone())),
            Value::Number(n) => Some((k, n.to_string())),
            _ => None,
        })
        .collect()
}

/// A Zendesk id as a number; other text cannot name a Zendesk record.
fn record_id(id: &str) -> Option<u64> {
    id.trim().parse().ok()
}

/// The registry's builder (connectors/mod.rs): a connection of kind `zendesk`.
pub fn build(
    name: &str,
    connection: &crate::config::ConnectionConfig,
    secrets: &crate::config::Secrets,
) -> Result<Arc<dyn Connector>, String> {
    let budget = crate::connectors::ratelimit::Budget::of(connection)?;
    Ok(Arc::new(Zendesk::new(
        name,
        &connection.base_url,
        connection.email.as_deref(),
        &secrets.token,
        Options {
            budget,
            ..Options::default()
        },
    )))
}

#[async_trait::async_trait]
impl Connector for Zendesk {
    fn kind(&self) -> &'static str {
        "zendesk"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: BatchSizes::uniform(MAX_BATCH),
            // create_or_update_many matches an active user by external id, else email
            create_keys: &["email", "external_id"],
            async_writes: true,
            webhook_payload: WebhookPayload::ChangedFields,
        }
    }

    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError> {
        let (records, after) = self.list_page(Object::parse(object)?, after).await?;
        Ok(Page {
            records: remote_records(&records, properties),
            after,
        })
    }

    async fn changes(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        self.feed_page(Object::parse(object)?, properties, cursor, start)
            .await
    }

    /// Soft-deleted users come back archived; missing records are absent.
    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = Object::parse(object)?;
        let numeric: Vec<u64> = ids.iter().filter_map(|i| record_id(i)).collect();
        // the chunks go out together (the rate limiter still spaces them)
        let calls = numeric
            .chunks(MAX_BATCH)
            .map(|chunk| self.show_many(object, chunk, properties));
        Ok(futures_util::future::try_join_all(calls)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// Users by `external_id` through `show_many`, by any other property through user search
    /// (`property:"value"`, one query a value); organizations by `external_id` through
    /// `show_many`, by any other property (a name) through the listing. Matches compare
    /// without case, as Zendesk's unique keys do.
    async fn find(
        &self,
        object: &str,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let object = Object::parse(object)?;
        let mut wanted: Vec<String> = properties.to_vec();
        if !wanted.iter().any(|p| p == property) {
            wanted.push(property.to_string());
        }
        let mut out = vec![];
        if property == "external_id" {
            for chunk in values.chunks(MAX_BATCH) {
                let list: Vec<String> = chunk.iter().map(|v| encode(v)).collect();
                let path = object.path(&format!("/show_many?external_ids={}", list.join(",")));
                let listing: Listing = self
                    .client
                    .call(Method::GET, &path, None)
                    .await
                    .map_err(whole_request)?
                    .parse()?;
                out.extend(
                    remote_records(&listing.records, &wanted)
                        .into_iter()
                        .filter(|r| !r.archived),
                );
            }
            return Ok(out);
        }
        if object == Object::Organizations {
            return self.scan(object, property, values, &wanted).await;
        }
        for value in values {
            let query = format!("{property}:\"{value}\"");
            let path = format!(
                "/api/v2/users/search?query={}&per_page={MAX_BATCH}",
                encode(&query)
            );
            let listing: Listing = self
                .client
                .call(Method::GET, &path, None)
                .await
                .map_err(whole_request)?
                .parse()?;
            out.extend(
                listing
                    .records
                    .iter()
                    .filter(|r| has_value(r, property, value))
                    .filter_map(|r| remote_record(r, &wanted))
                    .filter(|r| !r.archived),
            );
        }
        Ok(out)
    }

    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        let object = match Object::parse(object) {
            Ok(o) => o,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        // users: create_or_update_many matches an existing user by external id or email, so a
        // create repeated after a lost answer updates what the first one made
        let endpoint = match object {
            Object::Users => "/create_or_update_many",
            Object::Organizations => "/create_many",
        };
        let mut outcomes = Vec::with_capacity(items.len());
        for chunk in items.chunks(MAX_BATCH) {
            let body = json!({
                object.plural(): chunk.iter().map(|p| write_item(p, None)).collect::<Vec<_>>(),
            });
            let keys: Vec<Keys> = chunk.iter().map(create_keys).collect();
            let done = self
                .bulk(Method::POST, &object.path(endpoint), Some(&body), &keys)
                .await;
            outcomes.extend(Self::written(done));
        }
        outcomes
    }

    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        let object = match Object::parse(object) {
            Ok(o) => o,
            Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut outcomes: Vec<Option<Result<Written, ConnectorError>>> =
            items.iter().map(|_| None).collect();
        // an id that is not a number names no Zendesk record
        let sendable: Vec<(usize, u64)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, (id, _))| match record_id(id) {
                Some(n) => Some((i, n)),
                None => {
                    outcomes[i] = Some(Err(ConnectorError::NotFound));
                    None
                }
            })
            .collect();
        for chunk in sendable.chunks(MAX_BATCH) {
            let body = json!({
                object.plural(): chunk
                    .iter()
                    .map(|(i, id)| write_item(&items[*i].1, Some(*id)))
                    .collect::<Vec<_>>(),
            });
            let keys: Vec<Keys> = chunk
                .iter()
                .map(|(_, id)| vec![("id", id.to_string())])
                .collect();
            let done = self
                .bulk(
                    Method::PUT,
                    &object.path("/update_many"),
                    Some(&body),
                    &keys,
                )
                .await;
            let done = done
                .into_iter()
                .zip(chunk)
                // a result that does not repeat the id is the input's record all the same
                .map(|(r, (_, id))| match r {
                    Ok(Item::Done { id: None }) => Ok(Item::Done {
                        id: Some(id.to_string()),
                    }),
                    other => other,
                })
                .collect();
            for ((i, _), r) in chunk.iter().zip(Self::written(done)) {
                outcomes[*i] = Some(r);
            }
        }
        outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Err(ConnectorError::Transient(
                        "update without an outcome".into(),
                    ))
                })
            })
            .collect()
    }

    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        let object = match Object::parse(object) {
            Ok(o) => o,
            Err(e) => return ids.iter().map(|_| Err(e.clone())).collect(),
        };
        // an id that is not a number names no record: gone already
        let mut outcomes: Vec<Result<(), ConnectorError>> = ids.iter().map(|_| Ok(())).collect();
        let sendable: Vec<(usize, u64)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((i, record_id(id)?)))
            .collect();
        for chunk in sendable.chunks(MAX_BATCH) {
            let list: Vec<String> = chunk.iter().map(|(_, id)| id.to_string()).collect();
            let path = object.path(&format!("/destroy_many?ids={}", list.join(",")));
            let keys: Vec<Keys> = list.iter().map(|id| vec![("id", id.clone())]).collect();
            let done = self.bulk(Method::DELETE, &path, None, &keys).await;
            for ((i, _), r) in chunk.iter().zip(done) {
                outcomes[*i] = match r {
                    Ok(Item::Done { .. }) => Ok(()),
                    // already gone counts as success
                    Ok(Item::Failed { code, .. }) if code == "RecordNotFound" => Ok(()),
                    Ok(Item::Failed { code, message }) => Err(item_error(&code, message)),
                    Err(e) => Err(e),
                };
            }
        }
        outcomes
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        webhook::parse(request, secret, Utc::now())
    }
}
