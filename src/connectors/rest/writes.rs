//! REST connector, outbound edge: creates (`POST` to the collection), updates (`PATCH` of the
//! changed fields, or a read–merge–`PUT` of the whole record) and deletes, one call a record
//! made side by side (a batch is at most `SIDE_BY_SIDE` records), each answered with the record's id and its version after the write.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::Value;

use super::config::Resource;
use super::{record, Rest};
use crate::connectors::{ConnectorError, Properties, Written};

impl Rest {
    pub(super) async fn create_records(
        &self,
        res: &Resource,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        join_all(items.iter().map(|props| async move {
            let body = record::body(res, props);
            let answer = self
                .client
                .call_classified(Method::POST, &res.path, &[], Some(&body))
                .await?;
            written(res, &answer.body, None)
        }))
        .await
    }

    pub(super) async fn update_records(
        &self,
        res: &Resource,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        join_all(items.iter().map(|(id, props)| async move {
            // under reused ids the record at this id must still be the one ferry keyed
            let checked = if res.update.full || keyed_by_birth(res, id) {
                Some(
                    self.same_record(res, id)
                        .await?
                        .ok_or(ConnectorError::NotFound)?,
                )
            } else {
                None
            };
            let body = if let Some(current) = checked.filter(|_| res.update.full) {
                let mut whole = record::merged(&current, props);
                // fields the app keeps itself are not the client's to send
                for key in [&res.id, &res.updated_at, &res.created_at] {
                    if !key.contains('.') && !props.contains_key(key.as_str()) {
                        whole.remove(key.as_str());
                    }
                }
                record::wrap(res, whole)
            } else {
                record::body(res, props)
            };
            let method = Method::from_bytes(res.update.method.to_ascii_uppercase().as_bytes())
                .unwrap_or(Method::PATCH);
            let answer = self
                .client
                .call(method, &res.item(id), &[], Some(&body))
                .await
                .map_err(|r| {
                    if res.gone.contains(&r.status) {
                        ConnectorError::NotFound
                    } else {
                        r.classify()
                    }
                })?;
            written(res, &answer.body, Some(id))
        }))
        .await
    }

    pub(super) async fn delete_records(
        &self,
        res: &Resource,
        ids: &[String],
    ) -> Vec<Result<(), ConnectorError>> {
        join_all(ids.iter().map(|id| async move {
            if keyed_by_birth(res, id) && self.same_record(res, id).await?.is_none() {
                // the id now names another record: the one ferry keyed is gone
                return Ok(());
            }
            match self
                .client
                .call(Method::DELETE, &res.item(id), &[], None)
                .await
            {
                Ok(_) => Ok(()),
                // already gone counts as done
                Err(r) if res.gone.contains(&r.status) => Ok(()),
                Err(r) => Err(r.classify()),
            }
        }))
        .await
    }
}

/// Whether `key` carries a creation time (`reused_ids`), so a write checks it first.
fn keyed_by_birth(res: &Resource, key: &str) -> bool {
    res.reused_ids && record::app_id(res, key) != key
}

impl Rest {
    /// The record at `key`'s id if it is still the one `key` names (same creation time).
    async fn same_record(
        &self,
        res: &Resource,
        key: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let Some(current) = self.get_one(res, key).await? else {
            return Ok(None);
        };
        let id = crate::connectors::path::get(&current, &res.id)
            .and_then(record::id_text)
            .unwrap_or_default();
        Ok(
            (record::identity(res, &current, id) == key || !keyed_by_birth(res, key))
                .then_some(current),
        )
    }
}

/// The id and version a write's answer names; an answer without the record (204, or a body
/// without it) keeps the id the write was for and no version (the next read brings it).
fn written(res: &Resource, body: &Value, id: Option<&str>) -> Result<Written, ConnectorError> {
    let rec = record::single(res, body).filter(|r| r.is_object());
    let answered_id = rec
        .and_then(|r| crate::connectors::path::get(r, &res.id))
        .and_then(record::id_text);
    let id = match (answered_id, id) {
        (Some(a), _) => record::identity(res, rec.expect("an id came from it"), a),
        (None, Some(i)) => i.to_string(),
        (None, None) => {
            return Err(ConnectorError::Transient(format!(
                "the create's answer names no id at `{}`{}",
                res.id,
                if res.record.is_empty() {
                    String::new()
                } else {
                    format!(" in `{}`", res.record)
                }
            )))
        }
    };
    Ok(Written {
        id,
        updated_at: rec.and_then(|r| record::modified(res, r)),
    })
}
