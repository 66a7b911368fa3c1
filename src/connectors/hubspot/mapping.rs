//! HubSpot record shapes ↔ ferry's remote records.

use serde_json::{json, Map, Value};

use crate::connectors::{Properties, RemoteRecord};

/// `{"id":..,"properties":{..},"updatedAt":..,"archived":..}` → RemoteRecord.
pub fn record(v: &Value) -> Option<RemoteRecord> {
    let id = v.get("id")?.as_str()?.to_string();
    let properties = v
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::Null => None,
                        Value::String(s) if s.is_empty() => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default();
    let updated_at = v
        .get("updatedAt")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&chrono::Utc));
    Some(RemoteRecord { id, updated_at, properties, archived: v.get("archived").and_then(Value::as_bool).unwrap_or(false) })
}

/// Properties for a write: `None` clears (HubSpot takes the empty string).
pub fn properties(p: &Properties) -> Value {
    let map: Map<String, Value> = p
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.clone().unwrap_or_default())))
        .collect();
    Value::Object(map)
}

/// Webhook subscription prefix (`contact.creation`) → object type (`contacts`).
pub fn object_of_subscription(prefix: &str) -> Option<&'static str> {
    match prefix {
        "contact" => Some("contacts"),
        "company" => Some("companies"),
        "deal" => Some("deals"),
        "ticket" => Some("tickets"),
        _ => None,
    }
}
