//! HubSpot CRM v3 connector (contacts, companies, deals): batch endpoints for writes,
//! `batch/read` for fetches, paged listing for backfill, v3-signed webhooks.

pub mod client;
pub mod feed;
pub mod mapping;
pub mod signature;
pub mod webhook;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::ratelimit::{Budget, RateLimiter};
use super::{
    BatchSizes, Capabilities, ChangeEvent, Connector, ConnectorError, FeedPage, FeedStart, Page,
    Properties, RemoteRecord, WebhookError, WebhookPayload, WebhookRequest, Written,
};
use mapping::WriteResponse;

/// Results one search query can page through.
const SEARCH_CAP: usize = 10_000;
/// HubSpot's batch limit.
pub const MAX_BATCH: usize = 100;

pub struct HubSpot {
    client: client::Client,
}

impl HubSpot {
    /// `name`: the connection's name, for metrics.
    pub fn new(name: &str, base_url: &str, token: &str, budget: Option<Budget>) -> HubSpot {
        let limiter = budget.map(|b| std::sync::Arc::new(RateLimiter::new(b)));
        HubSpot {
            client: client::Client::new(name, base_url, token, limiter),
        }
    }
}

fn path(object: &str, rest: &str) -> String {
    format!("/crm/v3/objects/{object}{rest}")
}

/// A failure of a whole batch request. A 404 there is not "the record is gone" (that comes
/// per record in a 207): it is a wrong path or object type, and nothing is retried blindly.
fn whole_request(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::NotFound => ConnectorError::Rejected {
            status: 404,
            message:
                "HubSpot answered 404 for the whole batch request (unknown object type or path)"
                    .into(),
        },
        other => other,
    }
}

/// Errors of a 207 response, keyed by the context value they name (`id` or trace id).
fn batch_errors(errors: &[Value], context_key: &str) -> HashMap<String, ConnectorError> {
    let mut out = HashMap::new();
    for e in errors {
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("batch item failed")
            .to_string();
        let category = e.get("category").and_then(Value::as_str).unwrap_or("");
        let status = e.get("status").and_then(|s| {
            s.as_str()
                .and_then(|s| s.parse().ok())
                .or(s.as_u64().map(|n| n as u16))
        });
        let err = match category {
            "OBJECT_NOT_FOUND" => ConnectorError::NotFound,
            "RATE_LIMITS" => ConnectorError::RateLimited {
                retry_after: std::time::Duration::from_secs(1),
                policy: category.into(),
            },
            _ => ConnectorError::Rejected {
                status: status.unwrap_or(400),
                message,
            },
        };
        for key in e
            .pointer(&format!("/context/{context_key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = key.as_str() {
                out.insert(k.to_string(), err.clone());
            }
        }
    }
    out
}

/// The registry's builder (connectors/mod.rs): a connection of kind `hubspot`.
pub fn build(
    name: &str,
    connection: &crate::config::ConnectionConfig,
    secrets: &crate::config::Secrets,
) -> Result<std::sync::Arc<dyn Connector>, String> {
    let budget = crate::connectors::ratelimit::Budget::of(connection)?;
    Ok(std::sync::Arc::new(HubSpot::new(
        name,
        &connection.base_url,
        &secrets.token,
        budget,
    )))
}

#[async_trait::async_trait]
impl Connector for HubSpot {
    fn kind(&self) -> &'static str {
        "hubspot"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: BatchSizes::uniform(MAX_BATCH),
            // batch/create makes a new contact whatever its email (409 on a duplicate)
            create_keys: &[],
            async_writes: false,
            webhook_payload: WebhookPayload::ChangedFields,
        }
    }

    async fn list(
        &self,
        object: &str,
        properties: &[String],
        after: Option<String>,
    ) -> Result<Page, ConnectorError> {
        let mut q = format!("?limit=100&properties={}", properties.join(","));
        if let Some(a) = &after {
            q.push_str("&after=");
            q.push_str(a);
        }
        let resp = self
            .client
            .call(Method::GET, &path(object, &q), None)
            .await?;
        let (records, after) = resp.records()?;
        Ok(Page { records, after })
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

    async fn fetch(
        &self,
        object: &str,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        // the batches go out together (the rate limiter still spaces them): a round of 1,000
        // webhook events waited for ten calls one after the other
        let calls = ids.chunks(MAX_BATCH).map(|chunk| async move {
            let body = json!({
                "properties": properties,
                "inputs": chunk.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            });
            match self
                .client
                .call(Method::POST, &path(object, "/batch/read"), Some(&body))
                .await
            {
                Ok(resp) => Ok(resp.records()?.0),
                // per-record absence comes as a 207; a 404 for the whole request means the path
                // or object type is wrong, and must not read as "every record was deleted"
                Err(e) => Err(whole_request(e)),
            }
        });
        Ok(futures_util::future::try_join_all(calls)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    async fn find(
        &self,
        object: &str,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut out = vec![];
        let mut wanted: Vec<String> = properties.to_vec();
        if !wanted.iter().any(|p| p == property) {
            wanted.push(property.to_string());
        }
        if object == "contacts" && property == "email" {
            // a unique property: batch/read by it sees a record at once (search lags behind)
            for chunk in values.chunks(MAX_BATCH) {
                let body = json!({
                    "idProperty": "email",
                    "properties": wanted,
                    "inputs": chunk.iter().map(|v| json!({"id": v})).collect::<Vec<_>>(),
                });
                let resp = self
                    .client
                    .call(Method::POST, &path(object, "/batch/read"), Some(&body))
                    .await
                    .map_err(whole_request)?;
                out.extend(resp.records()?.0);
            }
            return Ok(out);
        }
        for chunk in values.chunks(MAX_BATCH) {
            let body = json!({
                "filterGroups": [{"filters": [{"propertyName": property, "operator": "IN", "values": chunk}]}],
                "properties": wanted,
                "limit": 100,
            });
            let resp = self
                .client
                .call(Method::POST, &path(object, "/search"), Some(&body))
                .await?;
            out.extend(resp.records()?.0);
        }
        Ok(out)
    }

    async fn create(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        let body = json!({
            "inputs": items.iter().enumerate().map(|(i, p)| json!({
                "properties": mapping::properties_json(p),
                "objectWriteTraceId": i.to_string(),
            })).collect::<Vec<_>>(),
        });
        let resp = match self
            .client
            .call(Method::POST, &path(object, "/batch/create"), Some(&body))
            .await
            .and_then(|r| r.parse::<WriteResponse>())
        {
            Ok(r) => r,
            Err(e) => {
                return items
                    .iter()
                    .map(|_| Err(whole_request(e.clone())))
                    .collect()
            }
        };
        let mut errors = batch_errors(&resp.errors, "objectWriteTraceId");
        let mut by_trace: HashMap<String, Written> = HashMap::new();
        for r in resp.results {
            if let Some(trace) = r.trace.0.clone() {
                if let Some(w) = r.into_written() {
                    by_trace.insert(trace, w);
                }
            }
        }
        (0..items.len())
            .map(|i| {
                let key = i.to_string();
                by_trace.remove(&key).ok_or_else(|| {
                    errors.remove(&key).unwrap_or_else(|| {
                        ConnectorError::Transient(
                            "batch create returned no result for an input".into(),
                        )
                    })
                })
            })
            .collect()
    }

    async fn update(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        let body = json!({
            "inputs": items.iter().map(|(id, p)| json!({"id": id, "properties": mapping::properties_json(p)})).collect::<Vec<_>>(),
        });
        let resp = match self
            .client
            .call(Method::POST, &path(object, "/batch/update"), Some(&body))
            .await
            .and_then(|r| r.parse::<WriteResponse>())
        {
            Ok(r) => r,
            Err(e) => {
                return items
                    .iter()
                    .map(|_| Err(whole_request(e.clone())))
                    .collect()
            }
        };
        let mut errors = batch_errors(&resp.errors, "id");
        let mut by_id: HashMap<String, Written> = resp
            .results
            .into_iter()
            .filter_map(|r| r.into_written())
            .map(|w| (w.id.clone(), w))
            .collect();
        items
            .iter()
            .map(|(id, _)| {
                by_id.remove(id).ok_or_else(|| {
                    errors.remove(id).unwrap_or_else(|| {
                        ConnectorError::Transient(
                            "batch update returned no result for an input".into(),
                        )
                    })
                })
            })
            .collect()
    }

    async fn archive(&self, object: &str, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        let body = json!({"inputs": ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()});
        match self
            .client
            .call(Method::POST, &path(object, "/batch/archive"), Some(&body))
            .await
        {
            // archiving records that are already gone is a success (HubSpot ignores them)
            Ok(_) => ids.iter().map(|_| Ok(())).collect(),
            Err(e) => ids.iter().map(|_| Err(whole_request(e.clone()))).collect(),
        }
    }

    fn parse_webhook(
        &self,
        request: &WebhookRequest<'_>,
        secret: Option<&str>,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        webhook::parse(request, secret, chrono::Utc::now().timestamp_millis())
    }
}
