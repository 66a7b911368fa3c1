//! Inbound edge: Stripe webhook deliveries (one signed event per POST, an array tolerated) →
//! change events. `customer.created|updated|deleted` name customers, `invoice.*` invoices
//! (the record is the event's `data.object`); a `*.deleted` type is a deletion, and the
//! event's `evt_` id lets the engine drop replays. Other events (subscriptions, charges,
//! `customer.subscription.*`...) are not ferry's and are ignored.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::mapping::Object;
use super::signature::{verify, SIGNATURE_HEADER};
use crate::connectors::{ChangeEvent, WebhookError, WebhookRequest};

/// Verifies the delivery with the `current` secret (or the `previous` one during a rotation)
/// and returns its events.
pub fn parse(
    request: &WebhookRequest<'_>,
    current: Option<&str>,
    previous: Option<&str>,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<Vec<ChangeEvent>, WebhookError> {
    let current = current.ok_or(WebhookError::NoSecret)?;
    let mut secrets = vec![current];
    secrets.extend(previous);
    let header = request
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    verify(&secrets, request.body, header, now, tolerance)
        .map_err(|e| WebhookError::Signature(e.to_string()))?;
    let body: Value = serde_json::from_slice(request.body)
        .map_err(|e| WebhookError::Malformed(format!("expected a JSON event: {e}")))?;
    let events = match body {
        Value::Array(events) => events,
        one => vec![one],
    };
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if let Some(event) = change_event(e)? {
            out.push(event);
        }
    }
    Ok(out)
}

/// One event as a change; None for events of records ferry does not map.
fn change_event(e: Value) -> Result<Option<ChangeEvent>, WebhookError> {
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
    let object = match kind.split_once('.') {
        Some(("customer", "created" | "updated" | "deleted")) => Object::Customers,
        Some(("invoice", _)) => Object::Invoices,
        _ => return Ok(None),
    };
    let data = e.pointer("/data/object");
    // `invoice.upcoming` previews an invoice that does not exist yet (no id)
    if data.and_then(|d| d.get("object")).and_then(Value::as_str) != Some(object.wire_name()) {
        return Ok(None);
    }
    let Some(remote_id) = data
        .and_then(|d| d.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        if kind == "invoice.upcoming" {
            return Ok(None);
        }
        return Err(WebhookError::Malformed(format!(
            "{kind} event without a record id"
        )));
    };
    Ok(Some(ChangeEvent {
        event_id: e.get("id").and_then(Value::as_str).map(str::to_string),
        object: object.name().to_string(),
        remote_id: remote_id.to_string(),
        deleted: kind.ends_with(".deleted"),
        raw: e,
    }))
}
