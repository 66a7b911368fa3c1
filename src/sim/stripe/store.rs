//! Stripe simulator: the data of one mode (test or live) — customers, invoices, invoice items
//! and the event log — with the creation sequence that orders lists, and event emission
//! (snapshot, `previous_attributes`, request) into an outbox the caller sends as webhooks.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::invoices::{Invoice, Item};
use super::wire::{random_id, Mode};

/// A customer; `fields` holds the rendered attributes besides id/object/created/livemode.
#[derive(Clone, Debug)]
pub(crate) struct Customer {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub deleted: bool,
    pub fields: Map<String, Value>,
}

impl Customer {
    /// The API rendering: the full object, or the deletion stub.
    pub(crate) fn render(&self, mode: Mode) -> Value {
        if self.deleted {
            return json!({"id": self.id, "object": "customer", "deleted": true});
        }
        let mut m = self.fields.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!("customer"));
        m.insert("created".into(), json!(self.created));
        m.insert("livemode".into(), json!(mode.livemode()));
        Value::Object(m)
    }
}

/// An event as logged; `body` is the API rendering.
#[derive(Clone, Debug)]
pub(crate) struct StoredEvent {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub kind: String,
    pub body: Value,
}

/// Who caused a change: the API request (id and idempotency key) or, with both None, an edit
/// inside Stripe (Dashboard, automatic).
#[derive(Clone, Debug, Default)]
pub(crate) struct Origin {
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

/// What an operation needs besides the data: the time, the caller and event settings.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub now: i64,
    pub origin: Origin,
    pub api_version: String,
    /// `pending_webhooks` of new events (1 with a webhook endpoint, else 0).
    pub pending_webhooks: u32,
}

/// One mode's objects and events.
#[derive(Debug)]
pub(crate) struct Store {
    pub mode: Mode,
    seq: u64,
    pub customers: HashMap<String, Customer>,
    pub invoices: HashMap<String, Invoice>,
    pub items: HashMap<String, Item>,
    pub events: Vec<StoredEvent>,
    /// Events made since the last drain, for the webhook sender.
    pub outbox: Vec<Value>,
    /// Objects created, updated or deleted since the last drain.
    pub writes: u64,
}

impl Store {
    pub(crate) fn new(mode: Mode) -> Store {
        Store {
            mode,
            seq: 0,
            customers: HashMap::new(),
            invoices: HashMap::new(),
            items: HashMap::new(),
            events: Vec::new(),
            outbox: Vec::new(),
            writes: 0,
        }
    }

    /// The next creation sequence number (the tiebreak between equal `created` seconds).
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(crate) fn livemode(&self) -> bool {
        self.mode.livemode()
    }

    /// Logs an event of `kind` about `object` (a full snapshot); `previous` only for
    /// `*.updated`.
    pub(crate) fn emit(&mut self, ctx: &Ctx, kind: &str, object: Value, previous: Option<Value>) {
        let id = random_id("evt_", 24);
        let mut data = Map::new();
        data.insert("object".into(), object);
        if let Some(p) = previous {
            data.insert("previous_attributes".into(), p);
        }
        let body = json!({
            "id": id,
            "object": "event",
            "api_version": ctx.api_version,
            "created": ctx.now,
            "data": data,
            "livemode": self.livemode(),
            "pending_webhooks": ctx.pending_webhooks,
            "request": {
                "id": ctx.origin.request_id,
                "idempotency_key": ctx.origin.idempotency_key,
            },
            "type": kind,
        });
        let seq = self.next_seq();
        self.outbox.push(body.clone());
        self.events.push(StoredEvent {
            id,
            seq,
            created: ctx.now,
            kind: kind.to_string(),
            body,
        });
    }

    /// Emits `{object}.updated` if `before` and `after` differ; returns whether they did.
    pub(crate) fn emit_updated(
        &mut self,
        ctx: &Ctx,
        kind: &str,
        before: &Value,
        after: &Value,
    ) -> bool {
        match previous_attributes(before, after) {
            Some(prev) => {
                self.emit(ctx, kind, after.clone(), Some(prev));
                true
            }
            None => false,
        }
    }

    pub(crate) fn event(&self, id: &str) -> Option<&StoredEvent> {
        self.events.iter().rev().find(|e| e.id == id)
    }
}

/// The old values of the top-level fields that changed; for a hash that changed (metadata,
/// status_transitions, address) only its changed keys, absent ones as null. None if nothing
/// changed.
pub(crate) fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return None;
    };
    let mut prev = Map::new();
    for (k, new) in a {
        let old = b.get(k).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        let value = match (old, new) {
            (Value::Object(o), Value::Object(n)) if k != "lines" => {
                let mut sub = Map::new();
                for key in o.keys().chain(n.keys()) {
                    if o.get(key) != n.get(key) {
                        sub.insert(key.clone(), o.get(key).cloned().unwrap_or(Value::Null));
                    }
                }
                Value::Object(sub)
            }
            _ => old.clone(),
        };
        prev.insert(k.clone(), value);
    }
    (!prev.is_empty()).then_some(Value::Object(prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_attributes_keep_old_values_of_changed_fields() {
        let before =
            json!({"name": "A", "email": "a@x", "metadata": {"plan": "gold", "gone": "x"}, "n": 1});
        let after = json!({"name": "B", "email": "a@x", "metadata": {"plan": "silver", "new": "y"}, "n": 1});
        assert_eq!(
            previous_attributes(&before, &after),
            Some(json!({"name": "A", "metadata": {"plan": "gold", "gone": "x", "new": null}}))
        );
        assert_eq!(previous_attributes(&before, &before), None);
    }

    #[test]
    fn events_are_logged_and_queued() {
        let mut s = Store::new(Mode::Live);
        let ctx = Ctx {
            now: 1_700_000_000,
            origin: Origin {
                request_id: Some("req_1".into()),
                idempotency_key: None,
            },
            api_version: "2024-06-20".into(),
            pending_webhooks: 1,
        };
        assert!(!s.emit_updated(&ctx, "customer.updated", &json!({"a": 1}), &json!({"a": 1})));
        assert!(s.emit_updated(&ctx, "customer.updated", &json!({"a": 1}), &json!({"a": 2})));
        let e = &s.outbox[0];
        assert_eq!(e["type"], "customer.updated");
        assert_eq!(e["data"]["previous_attributes"], json!({"a": 1}));
        assert_eq!(e["livemode"], true);
        assert_eq!(
            e["request"],
            json!({"id": "req_1", "idempotency_key": null})
        );
        let id = e["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(id.len(), 28);
        assert_eq!(s.event(&id).map(|e| e.seq), Some(1));
    }
}
