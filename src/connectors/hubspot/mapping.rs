//! HubSpot record shapes ↔ ferry's remote records: responses are parsed straight into
//! ferry's types (no JSON tree in between; a write's response skips the echoed properties).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::connectors::{Properties, RemoteRecord, Written};

/// A listing, search or batch-read response: `{"results":[..],"paging":{"next":{"after":..}}}`.
#[derive(Deserialize, Default)]
pub struct RecordsResponse {
    #[serde(default)]
    results: Vec<WireRecord>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    next: Option<Next>,
}

#[derive(Deserialize)]
struct Next {
    #[serde(default)]
    after: Text,
}

impl RecordsResponse {
    /// The records (those without an id are dropped) and the next page's cursor.
    pub fn into_parts(self) -> (Vec<RemoteRecord>, Option<String>) {
        let after = self.paging.and_then(|p| p.next).and_then(|n| n.after.0);
        (
            self.results
                .into_iter()
                .filter_map(WireRecord::into_record)
                .collect(),
            after,
        )
    }
}

/// `{"id":..,"properties":{..},"updatedAt":..,"archived":..}` as HubSpot sends a record.
#[derive(Deserialize)]
struct WireRecord {
    #[serde(default)]
    id: Text,
    #[serde(default, deserialize_with = "properties")]
    properties: Properties,
    #[serde(default, rename = "updatedAt")]
    updated_at: Text,
    #[serde(default)]
    archived: Flag,
}

impl WireRecord {
    fn into_record(self) -> Option<RemoteRecord> {
        Some(RemoteRecord {
            id: self.id.0?,
            updated_at: timestamp(self.updated_at),
            properties: self.properties,
            archived: self.archived.0,
        })
    }
}

/// A batch create/update response: per input its id, version and trace id; the 207 errors.
#[derive(Deserialize, Default)]
pub struct WriteResponse {
    #[serde(default)]
    pub results: Vec<WireWritten>,
    #[serde(default)]
    pub errors: Vec<Value>,
}

#[derive(Deserialize)]
pub struct WireWritten {
    #[serde(default)]
    id: Text,
    #[serde(default, rename = "updatedAt")]
    updated_at: Text,
    #[serde(default, rename = "objectWriteTraceId")]
    pub trace: Text,
}

impl WireWritten {
    pub fn into_written(self) -> Option<Written> {
        Some(Written {
            id: self.id.0?,
            updated_at: timestamp(self.updated_at),
        })
    }
}

fn timestamp(t: Text) -> Option<chrono::DateTime<chrono::Utc>> {
    t.0.and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// Any JSON value read as text: strings as they are, numbers in their JSON form, anything else
/// absent. (Ids and cursors are strings; tolerated as numbers.)
#[derive(Default)]
pub struct Text(pub Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        Ok(match PropertyValue::deserialize(d)?.0 {
            Some(WireText::Text(s)) => Text(Some(s)),
            _ => Text(None),
        })
    }
}

/// `true` only for JSON `true`.
#[derive(Default)]
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        Ok(Flag(matches!(
            PropertyValue::deserialize(d)?.0,
            Some(WireText::Bool(true))
        )))
    }
}

/// A property map: values are strings on the wire (HubSpot's properties are all text there),
/// kept as JSON strings; null and "" are unset (JSON null), other scalars their text, objects
/// and arrays their JSON.
fn properties<'de, D: Deserializer<'de>>(d: D) -> Result<Properties, D::Error> {
    let wire = Option::<std::collections::BTreeMap<String, PropertyValue>>::deserialize(d)?
        .unwrap_or_default();
    Ok(wire
        .into_iter()
        .map(|(k, v)| {
            let text = match v.0 {
                None => None,
                Some(WireText::Text(s)) if s.is_empty() => None,
                Some(WireText::Text(s) | WireText::Other(s)) => Some(s),
                Some(WireText::Bool(b)) => Some(b.to_string()),
            };
            (k, text.map_or(Value::Null, Value::String))
        })
        .collect())
}

enum WireText {
    /// A string or a number.
    Text(String),
    Bool(bool),
    /// An object or array, as JSON.
    Other(String),
}

struct PropertyValue(Option<WireText>);

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PropertyValue, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PropertyValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Text(s.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Text(s))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PropertyValue, E> {
                Ok(PropertyValue(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<PropertyValue, E> {
                Ok(PropertyValue(None))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Bool(b))))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Text(n.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Text(n.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<PropertyValue, E> {
                Ok(PropertyValue(Some(WireText::Text(
                    Value::from(n).to_string(),
                ))))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<PropertyValue, A::Error> {
                let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(PropertyValue(Some(WireText::Other(v.to_string()))))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<PropertyValue, A::Error> {
                let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PropertyValue(Some(WireText::Other(v.to_string()))))
            }
        }
        d.deserialize_any(V)
    }
}

/// Properties for a write, every value as HubSpot's text: null clears (HubSpot takes the empty
/// string), numbers and booleans their JSON text, an array of options the `;`-joined list
/// HubSpot's multi-select properties take, an object its JSON.
pub fn properties_json(p: &Properties) -> Value {
    let map: Map<String, Value> = p
        .iter()
        .map(|(k, v)| (k.clone(), json!(wire_text(v))))
        .collect();
    Value::Object(map)
}

/// One typed value as HubSpot's wire text.
pub fn wire_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(";"),
        other => other.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_parses_into_records_and_its_cursor() {
        let body = br#"{"results":[
            {"id":"7","properties":{"email":"a@b.com","n":17,"x":1.5,"flag":true,"empty":"","gone":null,"obj":{"a":[1]}},
             "updatedAt":"2026-01-02T03:04:05.678Z","archived":false,"createdAt":"2026-01-01T00:00:00Z"},
            {"properties":{"email":"no-id@b.com"}},
            {"id":8,"archived":true}
        ],"paging":{"next":{"after":"200","link":"x"}}}"#;
        let (records, after) = serde_json::from_slice::<RecordsResponse>(body)
            .unwrap()
            .into_parts();
        assert_eq!(after.as_deref(), Some("200"));
        assert_eq!(records.len(), 2, "the record without an id is dropped");
        let r = &records[0];
        assert_eq!(r.id, "7");
        assert_eq!(r.properties["email"], "a@b.com");
        assert_eq!(r.properties["n"], "17");
        assert_eq!(r.properties["x"], "1.5");
        assert_eq!(r.properties["flag"], "true");
        assert_eq!(r.properties["empty"], Value::Null);
        assert_eq!(r.properties["gone"], Value::Null);
        assert_eq!(r.properties["obj"], r#"{"a":[1]}"#);
        assert_eq!(r.updated_at.unwrap().timestamp_millis(), 1767323045678);
        assert!(!r.archived);
        assert_eq!((records[1].id.as_str(), records[1].archived), ("8", true));
        let last = serde_json::from_slice::<RecordsResponse>(br#"{"results":[]}"#)
            .unwrap()
            .into_parts();
        assert_eq!(last, (vec![], None));
    }

    #[test]
    fn a_write_response_keeps_ids_versions_and_errors() {
        let body = br#"{"status":"COMPLETE","results":[
            {"id":"9","properties":{"email":"a@b.com"},"updatedAt":"2026-01-02T03:04:05Z","objectWriteTraceId":"0"}],
            "errors":[{"status":"error","category":"VALIDATION_ERROR","message":"bad","context":{"id":["10"]}}]}"#;
        let mut w: WriteResponse = serde_json::from_slice(body).unwrap();
        assert_eq!(w.errors.len(), 1);
        let first = w.results.remove(0);
        assert_eq!(first.trace.0.as_deref(), Some("0"));
        let written = first.into_written().unwrap();
        assert_eq!(written.id, "9");
        assert_eq!(written.updated_at.unwrap().timestamp(), 1767323045);
    }
}
