//! Salesforce record shapes ↔ ferry's remote records: a record's id, version
//! (`SystemModstamp`) and typed values by property path (Salesforce's JSON is already typed:
//! strings, numbers, booleans, null), a query page, and the body of a write
//! (`attributes.type`, the values, the id of an update).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connectors::{path, ConnectorError, Properties, RemoteRecord};

/// A `/query` page.
#[derive(Deserialize)]
pub struct QueryPage {
    #[serde(default)]
    pub records: Vec<Value>,
    #[serde(default)]
    pub done: bool,
    #[serde(default, rename = "nextRecordsUrl")]
    pub next: Option<String>,
}

/// A Salesforce datetime (`2024-01-01T00:00:00.000+0000`, or RFC 3339).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The value at `path` in `record`, each segment matched without case as Salesforce
/// matches API names (`email` finds `Email`).
fn get<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    if let Some(v) = path::get(record, path) {
        return Some(v);
    }
    path.split('.').try_fold(record, |node, segment| {
        node.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(segment))
            .map(|(_, v)| v)
    })
}

/// One record of a query or retrieve answer; None when it has no id (not a record).
pub fn remote_record(rec: &Value, properties: &[String]) -> Option<RemoteRecord> {
    let id = rec.get("Id")?.as_str()?.to_string();
    let updated_at = rec
        .get("SystemModstamp")
        .and_then(Value::as_str)
        .and_then(parse_time);
    let props: Properties = properties
        .iter()
        .filter_map(|p| {
            // a parent record that is not there (`"Account": null`) leaves its fields unset
            let v = get(rec, p).cloned().or_else(|| {
                let (parent, _) = p.split_once('.')?;
                get(rec, parent)
                    .filter(|v| v.is_null())
                    .map(|_| Value::Null)
            })?;
            Some((p.clone(), v))
        })
        .collect();
    Some(RemoteRecord {
        id,
        updated_at,
        properties: props,
        archived: rec.get("IsDeleted").and_then(Value::as_bool) == Some(true),
    })
}

pub fn remote_records(records: &[Value], properties: &[String]) -> Vec<RemoteRecord> {
    records
        .iter()
        .filter_map(|r| remote_record(r, properties))
        .collect()
}

/// A deletion from getDeleted: the id, when, and no values.
pub fn deleted_record(id: String, at: Option<DateTime<Utc>>) -> RemoteRecord {
    RemoteRecord {
        id,
        updated_at: at,
        properties: Properties::new(),
        archived: true,
    }
}

/// One record of a Collections write: `{"attributes": {"type": object}, ..values, "id"}`.
/// A nested path is a parent's field (`Account.Ext_Id__c`: a lookup by external id). `Id`
/// among the values is left out: the record's id is `id`, and creates must carry none.
pub fn write_record(object: &str, props: &Properties, id: Option<&str>) -> Value {
    let values: Properties = props
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("Id"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut body = Map::new();
    body.insert("attributes".into(), serde_json::json!({"type": object}));
    body.extend(path::nest(&values));
    if let Some(id) = id {
        body.insert("id".into(), Value::String(id.to_string()));
    }
    Value::Object(body)
}

/// A property's value as the text of an external id (a string or a number), if set.
pub fn key_text(props: &Properties, field: &str) -> Option<String> {
    let (_, v) = props.iter().find(|(k, _)| k.eq_ignore_ascii_case(field))?;
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Collections result: `{"id", "success", "errors": [{"statusCode", "message", "fields"}]}`.
#[derive(Deserialize, Debug, Clone)]
pub struct ItemResult {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<ItemError>,
}

#[derive(Deserialize, Debug, Clone)]
pub struct ItemError {
    #[serde(default, rename = "statusCode")]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl ItemResult {
    /// The first error's code.
    pub fn code(&self) -> &str {
        self.errors.first().map_or("", |e| e.status_code.as_str())
    }

    /// A failed item as a [`ConnectorError`]: a record that is not there (anymore) is
    /// `NotFound`; anything else Salesforce refused for this record alone (validation, a
    /// duplicate, a field it may not write) is permanent, with `statusCode: message`.
    pub fn error(&self) -> ConnectorError {
        match self.code() {
            "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" if self.fields_empty() => {
                ConnectorError::NotFound
            }
            // a record rolled back with another one's failure, or locked by another
            // transaction: it may well succeed when sent again
            "ALL_OR_NONE_OPERATION_ROLLED_BACK" | "UNABLE_TO_LOCK_ROW" => {
                ConnectorError::Transient(self.text())
            }
            _ => ConnectorError::Rejected {
                status: 400,
                message: self.text(),
            },
        }
    }

    /// A cross-reference error on a field (a bad lookup value) is the value's fault, not a
    /// missing record.
    fn fields_empty(&self) -> bool {
        self.errors.iter().all(|e| e.fields.is_empty())
    }

    /// `statusCode: message (fields: A, B)`, each error, joined with `; `.
    pub fn text(&self) -> String {
        if self.errors.is_empty() {
            return "Salesforce reported a failure without an error".into();
        }
        self.errors
            .iter()
            .map(|e| {
                let mut t = format!("{}: {}", e.status_code, e.message);
                if !e.fields.is_empty() {
                    t.push_str(&format!(" (fields: {})", e.fields.join(", ")));
                }
                t
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_and_writes() {
        let rec = json!({"attributes": {"type": "Contact"}, "Id": "003A", "LastName": "Ng",
            "SystemModstamp": "2024-01-02T03:04:05.678+0000", "Account": null, "Email": null});
        let props: Vec<String> = ["lastname", "Email", "Account.Name", "Phone"]
            .map(String::from)
            .to_vec();
        let r = remote_record(&rec, &props).unwrap();
        assert_eq!(r.id, "003A");
        assert_eq!(
            r.updated_at.unwrap().to_rfc3339(),
            "2024-01-02T03:04:05.678+00:00"
        );
        assert_eq!(r.properties["lastname"], "Ng");
        assert_eq!(r.properties["Email"], Value::Null);
        assert_eq!(r.properties["Account.Name"], Value::Null);
        assert!(!r.properties.contains_key("Phone") && !r.archived);
        let p: Properties = [
            ("LastName".to_string(), json!("Ng")),
            ("Id".into(), json!("x")),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            write_record("Contact", &p, Some("003A")),
            json!({"attributes": {"type": "Contact"}, "LastName": "Ng", "id": "003A"})
        );
        let item: ItemResult = serde_json::from_value(json!({"success": false, "errors": [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]})).unwrap();
        assert!(
            matches!(item.error(), ConnectorError::Rejected { message, .. }
            if message == "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)")
        );
    }
}
