//! Stripe connector, outbound: writes, one call per record — creates
//! (`POST /v1/customers` with an `Idempotency-Key` derived from the create, so a create sent
//! again gets the first one's customer back), updates of only the paths the engine hands over
//! (`POST /v1/customers/{id}`; Stripe replaces an address as a whole, so a change of some of
//! its parts is sent with the others as Stripe has them), and deletes
//! (`DELETE /v1/customers/{id}`; a customer already gone counts as deleted).

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::Value;

use super::client::encode;
use super::form::params;
use super::idempotency::idempotency_key;
use super::mapping::{unix_time, Object};
use super::Stripe;
use crate::connectors::{ConnectorError, Properties, Written};

const ADDRESS: &[&str] = &["line1", "line2", "city", "state", "postal_code", "country"];

fn id_of(body: &Value) -> Result<String, ConnectorError> {
    body.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ConnectorError::Transient("a Stripe answer without an id".into()))
}

impl Stripe {
    pub(super) async fn create_records(
        &self,
        object: Object,
        items: &[Properties],
    ) -> Vec<Result<Written, ConnectorError>> {
        join_all(items.iter().map(|props| self.create_one(object, props))).await
    }

    async fn create_one(
        &self,
        object: Object,
        props: &Properties,
    ) -> Result<Written, ConnectorError> {
        let key = idempotency_key(&self.name, object, props);
        let resp = self
            .client
            .call(Method::POST, object.path(), &params(props), Some(&key))
            .await?;
        if resp.replayed {
            tracing::info!(connection = %self.name, object = object.name(), "stripe replayed an earlier create with the same idempotency key");
        }
        Ok(Written {
            id: id_of(&resp.body)?,
            // a new customer's state dates from its creation
            updated_at: resp
                .body
                .get("created")
                .and_then(Value::as_i64)
                .and_then(unix_time),
        })
    }

    pub(super) async fn update_records(
        &self,
        object: Object,
        items: &[(String, Properties)],
    ) -> Vec<Result<Written, ConnectorError>> {
        join_all(
            items
                .iter()
                .map(|(id, props)| self.update_one(object, id, props)),
        )
        .await
    }

    async fn update_one(
        &self,
        object: Object,
        id: &str,
        props: &Properties,
    ) -> Result<Written, ConnectorError> {
        let path = format!("{}/{}", object.path(), encode(id));
        if props.is_empty() {
            return Ok(Written {
                id: id.to_string(),
                updated_at: None,
            });
        }
        let props = self.whole_address(&path, props).await?;
        let resp = self
            .client
            .call(Method::POST, &path, &params(&props), None)
            .await?;
        Ok(Written {
            id: id_of(&resp.body)?,
            // Stripe's records carry no updated time, and no time of the answer bounds the
            // state's (an update that changes nothing makes no event): the engine holds back
            // reads and event snapshots older than the write it records instead
            updated_at: None,
        })
    }

    /// `props` with the address parts it leaves out as Stripe has them, when it changes some
    /// (Stripe takes an address as a whole: the parts not sent would be cleared).
    async fn whole_address(
        &self,
        path: &str,
        props: &Properties,
    ) -> Result<Properties, ConnectorError> {
        let given = |k: &str| props.contains_key(&format!("address.{k}"));
        let n = ADDRESS.iter().filter(|k| given(k)).count();
        if n == 0 || n == ADDRESS.len() {
            return Ok(props.clone());
        }
        let current = self.client.call(Method::GET, path, &[], None).await?.body;
        let mut out = props.clone();
        for k in ADDRESS.iter().filter(|k| !given(k)) {
            let v = current
                .pointer(&format!("/address/{k}"))
                .cloned()
                .unwrap_or(Value::Null);
            if !v.is_null() {
                out.insert(format!("address.{k}"), v);
            }
        }
        Ok(out)
    }

    pub(super) async fn delete_records(
        &self,
        object: Object,
        ids: &[String],
    ) -> Vec<Result<(), ConnectorError>> {
        join_all(ids.iter().map(|id| async move {
            let path = format!("{}/{}", object.path(), encode(id));
            match self.client.call(Method::DELETE, &path, &[], None).await {
                Ok(_) | Err(ConnectorError::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        }))
        .await
    }
}
