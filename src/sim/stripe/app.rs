//! Stripe simulator: the handle's accessors, knobs and app-side edits — changes made "inside
//! Stripe" (Dashboard) that run the same operations as the API and emit the same events, with
//! `request.id` null — plus records, stats and webhook secret rotation.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use super::api::{execute, Op};
use super::knobs::Counters;
use super::params::Params;
use super::store::Origin;
use super::wire::{Mode, StripeError};
use super::{SimStats, StripeSim};
use crate::sim::core::{lock, FaultSettings, SimClock};

fn to_params(v: Value) -> Result<Params, StripeError> {
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Params::new()),
        _ => Err(StripeError::invalid(
            "fields",
            "App-side fields must be a JSON object".into(),
        )),
    }
}

impl StripeSim {
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`, the API base (`stripe.api_base`); the API lives under `/v1/`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    pub fn test_key(&self) -> String {
        self.inner.test_key.clone()
    }

    pub fn live_key(&self) -> Option<String> {
        self.inner.live_key.clone()
    }

    /// This handle's mode (app-side edits and `records` act in it).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A handle whose app-side edits and records are in live mode.
    pub fn live(&self) -> StripeSim {
        StripeSim {
            inner: self.inner.clone(),
            mode: Mode::Live,
        }
    }

    /// The simulator clock (`created` times, rate windows, event retention, key expiry).
    pub fn clock(&self) -> &SimClock {
        &self.inner.clock
    }

    /// Changes the request fault rates (5xx, 429, lost responses); clamped to `[0, 1]`.
    pub fn set_faults(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.inner
            .faults
            .set_rates(error_rate, throttle_rate, lost_response_rate);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.inner.faults.set_latency(latency);
    }

    pub fn faults(&self) -> FaultSettings {
        self.inner.faults.settings()
    }

    /// How long a write with an idempotency key runs (its key in use meanwhile).
    pub fn set_keyed_write_time(&self, time: Duration) {
        let ms = u64::try_from(time.as_millis()).unwrap_or(u64::MAX);
        self.inner
            .knobs
            .keyed_write_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Share of writes answered 429 `lock_timeout` from now on.
    pub fn set_lock_timeouts(&self, rate: f64) {
        self.inner.knobs.lock_timeout.set(rate);
    }

    /// Switches the per-mode rate budgets off and on.
    pub fn set_rate_limit_enabled(&self, on: bool) {
        self.inner.budgets.set_enabled(on);
    }

    /// Share of webhook deliveries dropped from now on.
    pub fn set_drop_webhooks(&self, rate: f64) {
        self.inner.faults.set_webhook_drop_rate(rate);
    }

    /// Share of events delivered twice.
    pub fn set_duplicate_webhooks(&self, rate: f64) {
        self.inner.knobs.duplicate.set(rate);
    }

    /// Share of events delivered after the next one; at 0 the held ones are sent at once.
    pub fn set_reorder_webhooks(&self, rate: f64) {
        self.inner.knobs.reorder.set(rate);
        if rate <= 0.0 {
            let _data = lock(&self.inner.data);
            self.inner.hooks.enqueue(self.inner.knobs.release());
        }
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.inner.hooks.set_url(url);
    }

    /// The endpoint secrets every delivery is signed with (one `v1=` each).
    pub fn webhook_secrets(&self) -> Vec<String> {
        self.inner.hooks.format().secrets()
    }

    /// Replaces the signing secrets; two during a rotation.
    pub fn set_webhook_secrets(&self, secrets: Vec<String>) {
        self.inner.hooks.format().set_secrets(secrets);
    }

    /// Starts a rotation: deliveries are signed with the current secrets and `new`.
    pub fn rotate_webhook_secret(&self, new: &str) {
        let mut s = self.webhook_secrets();
        s.push(new.to_string());
        self.set_webhook_secrets(s);
    }

    fn run(&self, op: Op, p: Value) -> Result<Value, StripeError> {
        execute(
            &self.inner,
            self.mode,
            Origin::default(),
            &op,
            &to_params(p)?,
            false,
        )
    }

    /// Creates a customer as the Dashboard would (`customer.created`); `fields` use the API's
    /// parameter names (`{"email": .., "metadata": {..}}`).
    pub fn app_create_customer(&self, fields: Value) -> Result<Value, StripeError> {
        self.run(Op::CustomerCreate, fields)
    }

    pub fn app_update_customer(&self, id: &str, fields: Value) -> Result<Value, StripeError> {
        self.run(Op::CustomerUpdate(id.into()), fields)
    }

    pub fn app_delete_customer(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::CustomerDelete(id.into()), Value::Null)
    }

    /// A draft invoice for `customer`; `fields` as `POST /v1/invoices` takes them.
    pub fn app_create_invoice(&self, customer: &str, fields: Value) -> Result<Value, StripeError> {
        let mut p = to_params(fields)?;
        p.insert("customer".into(), json!(customer));
        self.run(Op::InvoiceCreate, Value::Object(p))
    }

    /// Adds an item of `amount` (minor units) to a draft invoice; returns the item.
    pub fn app_add_invoice_item(
        &self,
        invoice: &str,
        amount: i64,
        description: &str,
    ) -> Result<Value, StripeError> {
        let customer = self
            .get(invoice)
            .and_then(|i| i["customer"].as_str().map(str::to_string))
            .ok_or_else(|| StripeError::no_such("invoice", invoice))?;
        let p = json!({"customer": customer, "invoice": invoice, "amount": amount, "description": description});
        self.run(Op::ItemCreate, p)
    }

    pub fn app_update_invoice(&self, id: &str, fields: Value) -> Result<Value, StripeError> {
        self.run(Op::InvoiceUpdate(id.into()), fields)
    }

    pub fn app_delete_invoice(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::InvoiceDelete(id.into()), Value::Null)
    }

    pub fn app_finalize_invoice(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::InvoiceFinalize(id.into()), Value::Null)
    }

    pub fn app_pay_invoice(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::InvoicePay(id.into()), Value::Null)
    }

    pub fn app_void_invoice(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::InvoiceVoid(id.into()), Value::Null)
    }

    pub fn app_mark_uncollectible(&self, id: &str) -> Result<Value, StripeError> {
        self.run(Op::InvoiceMarkUncollectible(id.into()), Value::Null)
    }

    /// Live records of `object` ("customers", "invoices", "invoiceitems", "events"), oldest
    /// first, as the API renders them (deleted ones left out; events of every age).
    pub fn records(&self, object: &str) -> Vec<Value> {
        let data = lock(&self.inner.data);
        let store = match self.mode {
            Mode::Test => &data.test,
            Mode::Live => &data.live,
        };
        let mut out: Vec<(u64, Value)> = match object {
            "customers" => store
                .customers
                .values()
                .filter(|c| !c.deleted)
                .map(|c| (c.seq, c.render(store.mode)))
                .collect(),
            "invoices" => store
                .invoices
                .values()
                .filter(|i| !i.deleted)
                .map(|i| (i.seq, i.render(store)))
                .collect(),
            "invoiceitems" => store
                .items
                .values()
                .map(|i| (i.seq, i.render(store.livemode())))
                .collect(),
            "events" => store
                .events
                .iter()
                .map(|e| (e.seq, e.body.clone()))
                .collect(),
            _ => Vec::new(),
        };
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// One object by id (`cus_`, `in_`, `ii_`, `evt_`), deletion stubs included.
    pub fn get(&self, id: &str) -> Option<Value> {
        let data = lock(&self.inner.data);
        let store = match self.mode {
            Mode::Test => &data.test,
            Mode::Live => &data.live,
        };
        if let Some(c) = store.customers.get(id) {
            return Some(c.render(store.mode));
        }
        if let Some(i) = store.invoices.get(id) {
            return Some(i.render(store));
        }
        if let Some(i) = store.items.get(id) {
            return Some(i.render(store.livemode()));
        }
        store.event(id).map(|e| e.body.clone())
    }

    pub fn stats(&self) -> SimStats {
        let s = self.inner.stats.snapshot();
        let c = &self.inner.counters;
        let w = self.inner.hooks.counts();
        SimStats {
            requests: s.requests,
            by_route: s.by_route.clone(),
            unauthorized: s.status(401),
            throttled: s.throttled,
            lock_timeouts: Counters::get(&c.lock_timeouts),
            server_errors: s.server_errors,
            errors_injected: s.errors_injected,
            throttles_injected: s.throttles_injected,
            lost_responses: s.lost_responses,
            writes: Counters::get(&c.writes),
            idempotent_replays: Counters::get(&c.replays),
            webhooks_delivered: w.delivered,
            webhooks_dropped: w.dropped,
            webhooks_failed: w.failed,
        }
    }

    pub fn reset_stats(&self) {
        self.inner.stats.reset();
        self.inner.counters.reset();
        self.inner.hooks.reset_counts();
    }

    /// Forgets every stored idempotency key.
    pub fn clear_idempotency_keys(&self) {
        self.inner.idempotency.clear();
    }
}
