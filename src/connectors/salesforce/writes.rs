//! Salesforce connector, outbound: writes through sObject Collections, up to 200 records a
//! call with `allOrNone: false` so one refused record fails alone — creates
//! (`POST /composite/sobjects`), creates keyed on the external-id field as upserts
//! (`PATCH /composite/sobjects/{Object}/{Field}`: sent twice, they make one record), updates
//! (`PATCH /composite/sobjects`) and deletes (`DELETE /composite/sobjects?ids=`, a record
//! already gone counts as deleted).

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::encode;
use super::mapping::{key_text, write_record, ItemResult};
use super::soql::name;
use super::{whole_request, Salesforce, MAX_BATCH};
use crate::connectors::{ConnectorError, Properties, Written};

type Items = Vec<Result<ItemResult, ConnectorError>>;

/// Codes of a delete whose record is gone already (or never was one).
const GONE: &[&str] = &[
    "ENTITY_IS_DELETED",
    "INVALID_CROSS_REFERENCE_KEY",
    "MALFORMED_ID",
    "NOT_FOUND",
];

/// The version a write gives its records. Collections answers carry no timestamp, so this
/// is a lower bound: the answer's `Date` (Salesforce's clock when it answered, whole seconds)
/// minus a second, before which the records' `SystemModstamp` cannot be unless the call
/// spent more than that after stamping them. It is enough for the engine's version guard,
/// which only refuses versions older than it, and costs no call to read the records back.
fn version(date: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    date.map(|d| d - TimeDelta::seconds(1))
}

fn failed_all<T>(n: usize, e: &ConnectorError) -> Vec<Result<T, ConnectorError>> {
    (0..n).map(|_| Err(e.clone())).collect()
}

impl Salesforce {
    /// One Collections call for `records` (≤200): one result per record, in order, and the
    /// answer's `Date`. A request Salesforce refuses whole (a value of the wrong type fails
    /// the JSON of all of them) wrote nothing, so it is split in halves until the refused
    /// record stands alone: the others are written, and only it fails.
    fn send<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        records: &'a [Value],
    ) -> BoxFuture<'a, (Option<DateTime<Utc>>, Items)> {
        Box::pin(async move {
            let body = json!({"allOrNone": false, "records": records});
            match self.client.call(method.clone(), path, Some(&body)).await {
                Ok(resp) => match resp.parse::<Vec<ItemResult>>() {
                    Ok(items) if items.len() == records.len() => {
                        (resp.date, items.into_iter().map(Ok).collect())
                    }
                    Ok(items) => {
                        let e = ConnectorError::Transient(format!(
                            "Salesforce answered {} results for {} records",
                            items.len(),
                            records.len()
                        ));
                        (None, failed_all(records.len(), &e))
                    }
                    Err(e) => (None, failed_all(records.len(), &e)),
                },
                Err(ConnectorError::Rejected { .. }) if records.len() > 1 => {
                    let (a, b) = records.split_at(records.len() / 2);
                    let (da, mut first) = self.send(method.clone(), path, a).await;
                    let (db, second) = self.send(method, path, b).await;
                    first.extend(second);
                    // the earlier answer's date bounds both halves' records
                    let date = match (da, db) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    (date, first)
                }
                Err(e) => (None, failed_all(records.len(), &whole_request(e))),
            }
        })
    }

    /// Results as written records (`id` of an update when Salesforce leaves it out).
    fn written(
        date: Option<DateTime<Utc>>,
        items: Items,
        ids: &[Option<&str>],
    ) -> Vec<Result<Written, ConnectorError>> {
        items
            .into_iter()
            .zip(ids)
            .map(|(item, known)| {
                let item = item?;
                if !item.success {
                    return Err(item.error());
                }
                let id = item
                    .id
                    .or_else(|| known.map(str::to_string))
                    .ok_or_else(|| {
                        ConnectorError::Transient("a Collections result without an id".into())
                    })?;
                Ok(Written {
                    id,
                    updated_at: version(date),
                })
            })
            .collect()
    }

    pub(super) async fn create_records(
        &self,
        object: &str,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        let object = match name(object, "object") {
            Ok(o) => o,
            Err(e) => return failed_all(items.len(), &e),
        };
        let mut out: Vec<Option<Result<Written, ConnectorError>>> =
            items.iter().map(|_| None).collect();
        // a create that names its external id is an upsert on it
        let (keyed, plain): (Vec<usize>, Vec<usize>) = (0..items.len()).partition(|i| {
            self.external_id
                .as_deref()
                .is_some_and(|f| key_text(&items[*i], f).is_some())
        });
        let upsert_path = self
            .external_id
            .as_deref()
            .map(|f| format!("/composite/sobjects/{object}/{}", encode(f)));
        let lanes = [
            (Method::POST, "/composite/sobjects".to_string(), plain),
            (Method::PATCH, upsert_path.unwrap_or_default(), keyed),
        ];
        for (method, path, indexes) in lanes {
            for chunk in indexes.chunks(MAX_BATCH) {
                let records: Vec<Value> = chunk
                    .iter()
                    .map(|i| write_record(&object, &items[*i], None))
                    .collect();
                let (date, results) = self.send(method.clone(), &path, &records).await;
                let none = vec![None; chunk.len()];
                for (i, r) in chunk.iter().zip(Self::written(date, results, &none)) {
                    out[*i] = Some(r);
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(ConnectorError::Transient("no outcome".into()))))
            .collect()
    }

    pub(super) async fn update_records(
        &self,
        object: &str,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        let object = match name(object, "object") {
            Ok(o) => o,
            Err(e) => return failed_all(items.len(), &e),
        };
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(MAX_BATCH) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(id, props)| write_record(&object, props, Some(id)))
                .collect();
            let (date, results) = self
                .send(Method::PATCH, "/composite/sobjects", &records)
                .await;
            let ids: Vec<Option<&str>> = chunk.iter().map(|(id, _)| Some(id.as_str())).collect();
            out.extend(Self::written(date, results, &ids));
        }
        out
    }

    pub(super) async fn delete_records(&self, ids: &[String]) -> Vec<Result<(), ConnectorError>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH) {
            let list: Vec<String> = chunk.iter().map(|i| encode(i)).collect();
            let path = format!("/composite/sobjects?ids={}&allOrNone=false", list.join(","));
            let results: Items = match self.client.call(Method::DELETE, &path, None).await {
                Ok(resp) => match resp.parse::<Vec<ItemResult>>() {
                    Ok(items) if items.len() == chunk.len() => items.into_iter().map(Ok).collect(),
                    Ok(_) => failed_all(
                        chunk.len(),
                        &ConnectorError::Transient(
                            "Salesforce answered a delete with the wrong number of results".into(),
                        ),
                    ),
                    Err(e) => failed_all(chunk.len(), &e),
                },
                Err(e) => failed_all(chunk.len(), &whole_request(e)),
            };
            out.extend(results.into_iter().map(|r| {
                let item = r?;
                if item.success || GONE.contains(&item.code()) {
                    Ok(())
                } else {
                    Err(item.error())
                }
            }));
        }
        out
    }
}
