//! REST connector, inbound edge: webhook deliveries → change events. A delivery is verified
//! under the connection's scheme (see `signature`), then read as JSON: the events are at the
//! `events` pointer (empty: the body is one event object or an array of them). Each event is
//! routed to a resource — by the `resource_from` pointer, else the configured `resource`, else
//! its type's first dotted part (`contacts.updated` → `contacts`) when that names a resource,
//! else the only resource there is — and names its record by the `id` pointer (`/data/id`;
//! numbers and strings both). Events for resources ferry does not map, and events with no
//! record id, are skipped: apps send many events ferry has no use for. A type that is or ends
//! in `.<delete>` (`contacts.deleted`), or a record whose tombstone property is set, is a
//! deletion. The event's own id (for dropping replays) is the `event_id` pointer, else the
//! Standard Webhooks `webhook-id` header, else the event's `/id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::config::{Carries, Resource, Webhook, WebhookScheme};
use super::record;
use super::signature::{verify, STANDARD_ID};
use crate::connectors::{ChangeEvent, RemoteRecord, WebhookError, WebhookRequest};

/// The default pointer to the record's id in an event.
pub const DEFAULT_ID: &str = "/data/id";

/// Verifies the delivery with `secret` and returns its events for configured resources.
pub fn parse(
    config: &Webhook,
    resources: &BTreeMap<String, Resource>,
    request: &WebhookRequest<'_>,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ChangeEvent>, WebhookError> {
    match (config.scheme, secret) {
        (WebhookScheme::None, _) => {}
        (_, None) => return Err(WebhookError::NoSecret),
        (_, Some(secret)) => verify(config, request, secret, now)?,
    }
    let body: Value = serde_json::from_slice(request.body)
        .map_err(|e| WebhookError::Malformed(format!("expected a JSON body: {e}")))?;
    let events = match body.pointer(&config.events) {
        // a delivery without events (a ping) carries nothing to apply
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(events)) => events.as_slice(),
        Some(one @ Value::Object(_)) => std::slice::from_ref(one),
        Some(_) => {
            return Err(WebhookError::Malformed(format!(
                "expected an event object or an array of events at {:?}",
                config.events
            )))
        }
    };
    // the delivery's own id: the configured header (GitHub's `X-GitHub-Delivery`), else
    // Standard Webhooks' `webhook-id`
    let header = match (&config.event_id_header, config.scheme) {
        (Some(h), _) => Some(h.as_str()),
        (None, WebhookScheme::Standard) => Some(STANDARD_ID),
        (None, _) => None,
    };
    let delivery = header
        .and_then(|h| request.headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let many = events.len() > 1;
    Ok(events
        .iter()
        .enumerate()
        .flat_map(|(i, event)| {
            let delivery_id = delivery.map(|id| match many {
                true => format!("{id}#{i}"),
                false => id.to_string(),
            });
            change_events(config, resources, event, delivery_id)
        })
        .collect())
}

/// One event as changes: one, or one per record when its id is an array (Directus' `keys`);
/// none for an event of no configured resource or without a record id.
fn change_events(
    config: &Webhook,
    resources: &BTreeMap<String, Resource>,
    event: &Value,
    delivery_id: Option<String>,
) -> Vec<ChangeEvent> {
    let kind = event
        .pointer(&config.kind)
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((name, resource)) = resource_of(config, resources, event, kind) else {
        return vec![];
    };
    let deleted_kind = config.deletes.iter().any(|d| is_type(kind, d));
    let event_id = config
        .event_id
        .as_deref()
        .and_then(|p| event.pointer(p))
        .and_then(record::id_text)
        .or(delivery_id)
        .or_else(|| event.pointer("/id").and_then(record::id_text));
    let change = |remote_id: String, deleted: bool, event_id: Option<String>| ChangeEvent {
        event_id,
        object: name.clone(),
        remote_id,
        deleted,
        raw: event.clone(),
    };
    match id_at(config, event).map(|(v, _)| v) {
        // several records: their ids alone (no record object to read an identity from; a
        // resource with reused ids leaves them to the poll)
        Some(Value::Array(ids)) if !resource.reused_ids => ids
            .iter()
            .filter_map(record::id_text)
            .map(|id| {
                let event_id = event_id.as_ref().map(|e| match ids.len() {
                    1 => e.clone(),
                    _ => format!("{e}#{id}"),
                });
                change(id, deleted_kind, event_id)
            })
            .collect(),
        Some(Value::Array(_)) => vec![],
        Some(v) => {
            let Some(remote_id) = record::id_text(v) else {
                return vec![];
            };
            let holder = holder(config, event);
            let remote_id = match holder {
                Some(r) => record::identity(resource, r, remote_id),
                None => remote_id,
            };
            let deleted = deleted_kind || holder.is_some_and(|r| record::tombstoned(resource, r));
            vec![change(remote_id, deleted, event_id)]
        }
        None => vec![],
    }
}

/// The first of the configured id pointers the event has a value at (one id, or an array of
/// them), and that pointer.
fn id_at<'e>(config: &Webhook, event: &'e Value) -> Option<(&'e Value, String)> {
    config.id_pointers().into_iter().find_map(|p| {
        event
            .pointer(p)
            .filter(|v| !v.is_null())
            .map(|v| (v, p.to_string()))
    })
}

/// The record in an event: the object holding a single id (`/data` for `/data/id`; the event
/// itself for `/id`); none when the id is an array.
fn holder<'e>(config: &Webhook, event: &'e Value) -> Option<&'e Value> {
    let (id, pointer) = id_at(config, event)?;
    if id.is_array() {
        return None;
    }
    pointer
        .rsplit_once('/')
        .and_then(|(parent, _)| event.pointer(parent))
}

/// The whole record a stored event carries, under `carries = "records"`: read as a listing's
/// record is (its id, identity, update time and tombstone from the resource's settings).
pub fn carried_record(
    config: &Webhook,
    resource: &Resource,
    event: &Value,
    properties: &[String],
) -> Option<RemoteRecord> {
    if config.carries != Carries::Records {
        return None;
    }
    let record = holder(config, event).filter(|r| r.is_object())?;
    record::read(resource, record, properties).ok()
}

/// The configured resource an event is about, if any.
fn resource_of<'r>(
    config: &Webhook,
    resources: &'r BTreeMap<String, Resource>,
    event: &Value,
    kind: &str,
) -> Option<(&'r String, &'r Resource)> {
    let named = config
        .resource_from
        .as_deref()
        .and_then(|p| event.pointer(p))
        .and_then(Value::as_str)
        .or(config.resource.as_deref());
    if let Some(name) = named {
        return resources.get_key_value(name);
    }
    let prefix = kind.split('.').next().unwrap_or_default();
    if let Some(found) = resources.get_key_value(prefix) {
        return Some(found);
    }
    match resources.len() {
        1 => resources.iter().next(),
        _ => None,
    }
}

/// Whether `kind` is the event type `delete` or ends in `.<delete>`.
fn is_type(kind: &str, delete: &str) -> bool {
    kind == delete
        || kind
            .strip_suffix(delete)
            .is_some_and(|head| head.ends_with('.'))
}
