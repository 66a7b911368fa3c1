//! REST connector, inbound edge: listing pages (records without an id skipped, the others
//! kept), records fetched by id (the configured "gone" statuses taken as deletions) and
//! records found by a property's value, checked again here because an app may ignore a filter
//! it does not know.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::Value;

use super::config::Resource;
use super::pages::{self, Position};
use super::{record, Rest, FETCH_SIDE_BY_SIDE};
use crate::connectors::{path, ConnectorError, Page, RemoteRecord};

impl Rest {
    pub(super) async fn list_page(
        &self,
        res: &Resource,
        properties: &[String],
        after: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let at = Position::parse(after)?;
        let read = pages::read(&self.client, &self.name, res, &[], &at).await?;
        Ok(Page {
            records: self.readable(res, &read.records, properties),
            after: read.after.map(|p| p.text()),
        })
    }

    /// The page's records ferry can read; one without an id is logged and skipped.
    fn readable(&self, res: &Resource, raw: &[Value], properties: &[String]) -> Vec<RemoteRecord> {
        raw.iter()
            .filter_map(|r| match record::read(res, r, properties) {
                Ok(rec) => Some(rec),
                Err(e) => {
                    tracing::warn!(connection = %self.name, resource = %res.path, error = %e, "a listed record was skipped");
                    None
                }
            })
            .collect()
    }

    /// One record by id; None when the app answers one of the resource's "gone" statuses.
    pub(super) async fn get_one(
        &self,
        res: &Resource,
        id: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        match self
            .client
            .call(Method::GET, &res.item(id), &[], None)
            .await
        {
            Ok(a) => Ok(record::single(res, &a.body).cloned()),
            Err(r) if res.gone.contains(&r.status) => Ok(None),
            Err(r) => Err(r.classify()),
        }
    }

    pub(super) async fn fetch_records(
        &self,
        res: &Resource,
        ids: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(FETCH_SIDE_BY_SIDE) {
            for answer in join_all(chunk.iter().map(|id| self.get_one(res, id))).await {
                if let Some(raw) = answer? {
                    out.extend(self.readable(res, std::slice::from_ref(&raw), properties));
                }
            }
        }
        Ok(out)
    }

    /// Live records whose `property` is one of `values`: by the resource's `find` parameter
    /// when it names this property, else by reading the whole listing.
    pub(super) async fn find_records(
        &self,
        res: &Resource,
        property: &str,
        values: &[String],
        properties: &[String],
    ) -> Result<Vec<RemoteRecord>, ConnectorError> {
        let mut props: Vec<String> = properties.to_vec();
        if !props.iter().any(|p| p == property) {
            props.push(property.to_string());
        }
        let matches = |raw: &Value| {
            path::get(raw, property)
                .and_then(record::id_text)
                .is_some_and(|v| values.contains(&v))
        };
        // one filtered listing per value, or the whole listing when no filter is configured
        let filters: Vec<Vec<(String, String)>> =
            match res.find.as_ref().filter(|f| f.property == property) {
                Some(find) => {
                    let param = find.param.clone().unwrap_or_else(|| property.to_string());
                    values
                        .iter()
                        .map(|v| vec![(param.clone(), v.clone())])
                        .collect()
                }
                None => vec![Vec::new()],
            };
        let mut found = Vec::new();
        for extra in &filters {
            let mut at = Position::default();
            loop {
                let read = pages::read(&self.client, &self.name, res, extra, &at).await?;
                let hits: Vec<Value> = read.records.into_iter().filter(|r| matches(r)).collect();
                found.extend(self.readable(res, &hits, &props));
                match read.after {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        found.retain(|r| !r.archived);
        Ok(found)
    }
}
