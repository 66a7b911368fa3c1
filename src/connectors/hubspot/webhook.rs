//! Inbound edge: HubSpot webhook deliveries (v3-signed JSON arrays of events) → change events.

use serde_json::Value;

use super::mapping::object_of_subscription;
use super::signature::{verify_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::connectors::{ChangeEvent, WebhookError, WebhookRequest};

pub fn parse(
    request: &WebhookRequest<'_>,
    secret: Option<&str>,
    now_ms: i64,
) -> Result<Vec<ChangeEvent>, WebhookError> {
    let secret = secret.ok_or(WebhookError::NoSecret)?;
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    verify_v3(
        secret.as_bytes(),
        request.method,
        request.url,
        request.body,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        now_ms,
    )
    .map_err(|e| WebhookError::Signature(e.to_string()))?;
    let events: Vec<Value> = serde_json::from_slice(request.body)
        .map_err(|e| WebhookError::Malformed(format!("expected a JSON array of events: {e}")))?;
    let mut out = Vec::with_capacity(events.len());
    for e in &events {
        let kind = e
            .get("subscriptionType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (prefix, change) = kind.split_once('.').unwrap_or((kind, ""));
        let object = match (prefix, e.get("objectName").and_then(Value::as_str)) {
            ("object", Some(name)) => object_of_subscription(name)
                .map(str::to_string)
                .unwrap_or_else(|| name.to_string()),
            _ => match object_of_subscription(prefix) {
                Some(o) => o.to_string(),
                None => continue, // subscriptions ferry does not map
            },
        };
        let remote_id = match e.get("objectId") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(WebhookError::Malformed(format!(
                    "event without objectId: {kind}"
                )))
            }
        };
        let event_id = e.get("eventId").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        out.push(ChangeEvent {
            event_id,
            object,
            remote_id,
            deleted: matches!(change, "deletion" | "privacyDeletion"),
            raw: e.clone(),
        });
    }
    Ok(out)
}
