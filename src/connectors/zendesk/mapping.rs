//! Zendesk record shapes ↔ ferry's remote records: the objects served, listing and export
//! envelopes, a record's id, version and typed values (by property path), and whether it is
//! gone (a soft-deleted user, a deleted organization).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connectors::{path, ConnectorError, Properties, RemoteRecord};

/// The objects this connector serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Users,
    Organizations,
}

impl Object {
    pub fn parse(name: &str) -> Result<Object, ConnectorError> {
        match name {
            "users" => Ok(Object::Users),
            "organizations" => Ok(Object::Organizations),
            other => Err(ConnectorError::Rejected {
                status: 400,
                message: format!(
                    "the zendesk connector serves users and organizations, not `{other}`"
                ),
            }),
        }
    }

    /// Plural: URL segment and list key.
    pub fn plural(self) -> &'static str {
        match self {
            Object::Users => "users",
            Object::Organizations => "organizations",
        }
    }

    /// `/api/v2/users` and so on, plus `rest`.
    pub fn path(self, rest: &str) -> String {
        format!("/api/v2/{}{rest}", self.plural())
    }
}

/// A list, `show_many` or search body: `{"users": [..], "meta": {..}}` or
/// `{"organizations": [..], ..}`.
#[derive(Deserialize, Default)]
pub struct Listing {
    #[serde(default, rename = "users", alias = "organizations")]
    pub records: Vec<Value>,
    #[serde(default)]
    pub meta: Option<Meta>,
    /// Offset paging (search): the next page's URL.
    #[serde(default)]
    pub next_page: Option<String>,
}

/// Cursor paging's `meta`.
#[derive(Deserialize, Default)]
pub struct Meta {
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub after_cursor: Option<String>,
}

/// An incremental export page: the cursor export (users) has `after_cursor`, the time-based
/// one (organizations) `end_time`; both say `end_of_stream`.
#[derive(Deserialize, Default)]
pub struct ExportPage {
    #[serde(default, rename = "users", alias = "organizations")]
    pub records: Vec<Value>,
    #[serde(default)]
    pub after_cursor: Option<String>,
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub end_of_stream: bool,
}

/// A Zendesk id (an integer; a string of digits tolerated) as ferry's text.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `2012-04-04T09:14:57Z`.
pub fn timestamp(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Gone: a soft-deleted user (`active: false`) or a deleted organization (`deleted_at`).
pub fn is_gone(record: &Value) -> bool {
    record.get("active") == Some(&Value::Bool(false))
        || record.get("deleted_at").is_some_and(|d| !d.is_null())
}

/// One record as ferry reads it: the values of `properties` (typed JSON, by path); None for a
/// record without an id.
pub fn remote_record(record: &Value, properties: &[String]) -> Option<RemoteRecord> {
    Some(RemoteRecord {
        id: id_text(record.get("id")?)?,
        updated_at: timestamp(record.get("updated_at")),
        properties: path::pluck(record, properties),
        archived: is_gone(record),
    })
}

pub fn remote_records(records: &[Value], properties: &[String]) -> Vec<RemoteRecord> {
    records
        .iter()
        .filter_map(|r| remote_record(r, properties))
        .collect()
}

/// The body item of a write: the changed paths nested (`user_fields.plan` →
/// `{"user_fields": {"plan": ..}}`), so Zendesk merges only them; null clears.
pub fn write_item(props: &Properties, id: Option<u64>) -> Value {
    let mut body: Map<String, Value> = path::nest(props);
    if let Some(id) = id {
        body.insert("id".into(), Value::from(id));
    }
    Value::Object(body)
}

/// Whether `record`'s `property` equals `value` (text compared without case, as Zendesk's
/// unique keys are); numbers compare by their text.
pub fn has_value(record: &Value, property: &str, value: &str) -> bool {
    match path::get(record, property) {
        Some(Value::String(s)) => s.eq_ignore_ascii_case(value),
        Some(Value::Number(n)) => n.to_string() == value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_read_typed_values_and_deletion() {
        let user = json!({"id": 10000000001u64, "updated_at": "2012-04-04T09:14:57Z",
            "name": "Ann", "tags": ["vip"], "user_fields": {"plan": "gold"}, "active": true});
        let props = ["name".into(), "tags".into(), "user_fields.plan".into()];
        let r = remote_record(&user, &props).unwrap();
        assert_eq!(r.id, "10000000001");
        assert_eq!(r.updated_at.unwrap().timestamp(), 1_333_530_897);
        assert_eq!(r.properties["tags"], json!(["vip"]));
        assert_eq!(r.properties["user_fields.plan"], "gold");
        assert!(!r.archived);
        assert!(is_gone(&json!({"id": 1, "active": false})));
        assert!(is_gone(
            &json!({"id": 1, "deleted_at": "2024-01-01T00:00:00Z"})
        ));
        assert!(!is_gone(&json!({"id": 1, "deleted_at": null})));
        assert!(remote_record(&json!({"name": "no id"}), &props).is_none());
    }

    #[test]
    fn envelopes_take_either_object() {
        let l: Listing = serde_json::from_value(json!({"organizations": [{"id": 1}],
            "meta": {"has_more": true, "after_cursor": "abc"}}))
        .unwrap();
        assert_eq!(l.records.len(), 1);
        assert_eq!(l.meta.unwrap().after_cursor.as_deref(), Some("abc"));
        let e: ExportPage = serde_json::from_value(
            json!({"organizations": [], "end_time": 5, "end_of_stream": true}),
        )
        .unwrap();
        assert_eq!((e.end_time, e.end_of_stream), (Some(5), true));
    }

    #[test]
    fn write_items_nest_paths() {
        let props: Properties = [
            ("user_fields.plan".to_string(), json!("gold")),
            ("phone".to_string(), Value::Null),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            write_item(&props, Some(7)),
            json!({"id": 7, "user_fields": {"plan": "gold"}, "phone": null})
        );
        assert!(has_value(&json!({"email": "a@x.com"}), "email", "A@X.com"));
        assert!(has_value(&json!({"external_id": 42}), "external_id", "42"));
        assert!(!has_value(&json!({"email": null}), "email", "a@x.com"));
    }
}
