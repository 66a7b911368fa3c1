//! REST simulator: the handle's accessors and in-app edits — changes made "inside the app"
//! (its own UI, automations) that run the same operations as the API, bump `updated_at` the
//! same way and send the same webhooks, but skip the API's required/unique checks — plus the
//! records, clock, faults, stats and webhook target.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::profile::Profile;
use super::store::Id;
use super::{records, RestSim};
use crate::sim::core::{lock, Faults, SimClock, StatsSnapshot, WebhookCounts};

impl RestSim {
    /// `http://127.0.0.1:PORT`; resources live at their profile paths under it.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The profile the sim serves.
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// The sim clock: record times, token expiry, rate windows, webhook timestamps.
    pub fn clock(&self) -> &Arc<SimClock> {
        &self.inner.clock
    }

    /// The live fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Requests per route and status, and the faults injected.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    pub fn reset_stats(&self) {
        self.inner.stats.reset();
        self.inner.hooks.reset_counts();
    }

    pub fn webhook_counts(&self) -> WebhookCounts {
        self.inner.hooks.counts()
    }

    /// Changes where events go; None stops them (queued ones are discarded).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.hooks.set_url(url);
    }

    fn id(&self, resource: &str, id: &Value) -> Option<Id> {
        let spec = self.inner.profile.resource(resource)?;
        Id::from_json(id, spec.ids)
    }

    /// Creates a record inside the app; returns it as the API renders it (id included), or
    /// null for an unknown resource or non-object fields.
    pub fn insert(&self, resource: &str, fields: Value) -> Value {
        let Value::Object(fields) = fields else {
            return Value::Null;
        };
        records::insert(&self.inner, resource, fields, false).unwrap_or(Value::Null)
    }

    /// Edits a live record inside the app (fields merged as a PATCH would, whatever the
    /// profile's update style); None if there is no such live record.
    pub fn edit(&self, resource: &str, id: &Value, fields: Value) -> Option<Value> {
        let id = self.id(resource, id)?;
        let fields = match fields {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => return None,
        };
        records::write(&self.inner, resource, &id, fields, false, false).ok()
    }

    /// Deletes a live record inside the app (hard or tombstone, as the profile says); false if
    /// there is no such live record.
    pub fn delete(&self, resource: &str, id: &Value) -> bool {
        self.id(resource, id)
            .is_some_and(|id| records::remove(&self.inner, resource, &id).is_ok())
    }

    /// Every record of `resource`, tombstones included, in id order (creation order for
    /// string ids), as the API renders them.
    pub fn records(&self, resource: &str) -> Vec<Value> {
        let data = lock(&self.inner.data);
        data.tables
            .get(resource)
            .map(|t| t.all().into_iter().map(|r| t.render(r)).collect())
            .unwrap_or_default()
    }

    /// One record (tombstones included) as the API renders it.
    pub fn get(&self, resource: &str, id: &Value) -> Option<Value> {
        let id = self.id(resource, id)?;
        records::fetch(&self.inner, resource, &id).ok()
    }
}
