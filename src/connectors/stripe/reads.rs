//! Stripe connector, inbound: reads — listing pages (`limit=100&starting_after=<last id>`,
//! newest first as Stripe lists them), fetches by id (`GET /v1/customers/{id}`, a deletion
//! stub read as archived, an unknown id left out) and lookups by a property (customers by
//! `email` through the list filter, which is read-after-write consistent, unlike Search;
//! other properties by reading the listing through).

use futures_util::future::join_all;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::client::encode;
use super::mapping::{record, Object};
use super::{Stripe, FETCH_CONCURRENCY, PAGE_LIMIT};
use crate::connectors::{ConnectorError, Page, RemoteRecord};

/// Stripe's list object.
#[derive(Deserialize)]
pub struct List {
    #[serde(default)]
    pub data: Vec<Value>,
    #[serde(default)]
    pub has_more: bool,
}

impl List {
    pub fn of(body: Value) -> Result<List, ConnectorError> {
        serde_json::from_value(body)
            .map_err(|e| ConnectorError::Transient(format!("unreadable Stripe list: {e}")))
    }
}

/// A 404 for a whole listing is a wrong base URL or path, not a missing record.
pub fn whole_request(e: ConnectorError) -> ConnectorError {
    match e {
        ConnectorError::NotFound => ConnectorError::Rejected {
            status: 404,
            message: "Stripe answered 404 for a listing (check the connection's base_url: the API base without /v1)".into(),
        },
        other => other,
    }
}

impl Stripe {
    /// One list call of `path` with `params`.
    pub(super) async fn list_call(
        &self,
        path: &str,
        params: Vec<(String, String)>,
    ) -> Result<List, ConnectorError> {
        let resp = self
            .client
            .call(Method::GET, path, &params, None)
            .await
            .map_err(whole_request)?;
        List::of(resp.body)
    }

    pub(super) async fn list_page(
        &self,
        object: Object,
        properties: &[String],
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, ConnectorError> {
        let mut params = vec![("limit".to_string(), limit.to_string())];
        if let Some(a) = after {
            params.push(("starting_after".into(), a.to_string()));
        }
        let list = self.list_call(object.path(), params).await?;
        let records = list
            .data
            .iter()
            .map(|o| record(o, properties, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            after: records
                .last()
                .filter(|_| list.has_more)
                .map(|r| r.id.clone()),
            records,
        })
    }

    pub(super) async fn fetch_records(
        &self,
        object: Object,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_CONCURRENCY) {
            let got = join_all(
                chunk
                    .iter()
                    .map(|id| self.fetch_one(object, id, properties)),
            )
            .await;
            for r in got {
                found.push(r?);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// One record by id; None when Stripe has no such record.
    async fn fetch_one(
        &self,
        object: Object,
        id: &str,
        properties: &[String],
    ) -> Result<Option<RemoteRecord>, ConnectorError> {
        let path = format!("{}/{}", object.path(), encode(id));
        match self.client.call(Method::GET, &path, &[], None).await {
            Ok(resp) => record(&resp.body, properties, None).map(Some),
            Err(ConnectorError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn find_records(
        &self,
        object: Object,
        property: &str,
        values_wanted: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut wanted: Vec<String> = properties.to_vec();
        if !wanted.iter().any(|p| p == property) {
            wanted.push(property.to_string());
        }
        let mut out = vec![];
        if object == Object::Customers && property == "email" {
            for v in values_wanted {
                let mut after: Option<String> = None;
                loop {
                    let mut params = vec![
                        ("email".to_string(), v.clone()),
                        ("limit".to_string(), PAGE_LIMIT.to_string()),
                    ];
                    params.extend(after.take().map(|a| ("starting_after".to_string(), a)));
                    let list = self.list_call(object.path(), params).await?;
                    for o in &list.data {
                        out.push(record(o, &wanted, None)?);
                    }
                    let last = list.data.last().and_then(|o| o.get("id")?.as_str());
                    match (list.has_more, last) {
                        (true, Some(last)) => after = Some(last.to_string()),
                        _ => break,
                    }
                }
            }
            return Ok(out);
        }
        // no consistent filter for this property: the whole listing, compared here
        tracing::debug!(connection = %self.client.name(), object = object.name(), property, "stripe lookup by reading the listing through");
        let mut after: Option<String> = None;
        loop {
            let page = self
                .list_page(object, &wanted, after.as_deref(), PAGE_LIMIT)
                .await?;
            for r in page.records {
                let text = r.properties.get(property).and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                });
                if text.is_some_and(|t| values_wanted.iter().any(|w| w.eq_ignore_ascii_case(&t))) {
                    out.push(r);
                }
            }
            match page.after {
                Some(a) => after = Some(a),
                None => return Ok(out),
            }
        }
    }
}
