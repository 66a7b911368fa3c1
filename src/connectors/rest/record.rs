//! REST connector, both directions: one app record as configured — its id (a number or a
//! string, as text), its last-modified time (the creation time while that is null), its
//! tombstone, its typed values, and the body a write sends (nested, wrapped).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::config::{Resource, TimeFormat};
use crate::connectors::{path, ConnectorError, Properties, RemoteRecord};

/// The record's id as text (`12`, `"k3x9"`); None when missing or not a scalar.
pub fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time as apps write it: RFC 3339 text, or Unix seconds / milliseconds as a number
/// (or numeric text); numbers above 10^11 are taken as milliseconds.
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let n = match v {
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
                return Some(t.with_timezone(&Utc));
            }
            // `2024-05-01 10:00:00` (SQL style, no zone: UTC)
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f") {
                return Some(t.and_utc());
            }
            s.trim().parse::<f64>().ok()?
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n > 1e11 { n } else { n * 1000.0 };
    Utc.timestamp_millis_opt(ms as i64).single()
}

/// A time in the query format of a change filter.
pub fn format_time(t: DateTime<Utc>, format: TimeFormat) -> String {
    match format {
        TimeFormat::Rfc3339 => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        TimeFormat::Rfc3339Seconds => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        TimeFormat::Unix => t.timestamp().to_string(),
        TimeFormat::UnixMs => t.timestamp_millis().to_string(),
    }
}

/// Whether the record's tombstone property (the resource's `deleted`) says deleted.
pub fn tombstoned(res: &Resource, record: &Value) -> bool {
    res.deleted
        .as_deref()
        .is_some_and(|p| deleted_value(path::get(record, p)))
}

/// Whether a tombstone value says deleted: true, or any time / text; false, null, "" not.
fn deleted_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(_) => true,
    }
}

/// The record's last-modified time, falling back to its creation time.
pub fn modified(res: &Resource, record: &Value) -> Option<DateTime<Utc>> {
    path::get(record, &res.updated_at)
        .and_then(parse_time)
        .or_else(|| path::get(record, &res.created_at).and_then(parse_time))
}

/// One app record as ferry sees it; `Err` when it has no id (the page's other records go on).
pub fn read(
    res: &Resource,
    record: &Value,
    properties: &[String],
) -> Result<RemoteRecord, ConnectorError> {
    let id = path::get(record, &res.id)
        .and_then(id_text)
        .ok_or_else(|| ConnectorError::Rejected {
            status: 0,
            message: format!("a record has no id at `{}`", res.id),
        })?;
    Ok(RemoteRecord {
        updated_at: modified(res, record),
        properties: path::pluck(record, properties),
        archived: tombstoned(res, record),
        id: identity(res, record, id),
    })
}

/// Separates an app id from the creation time in a record's key under `reused_ids`.
const BORN: char = '@';

/// The record's key in ferry: its id, and under `reused_ids` its creation time too
/// (`5@1714557600000`), so a new record given an old id is a new record to ferry.
pub fn identity(res: &Resource, record: &Value, id: String) -> String {
    if !res.reused_ids {
        return id;
    }
    match path::get(record, &res.created_at).and_then(parse_time) {
        Some(t) => format!("{id}{BORN}{}", t.timestamp_millis()),
        None => id,
    }
}

/// The app's own id in a key [`identity`] made.
pub fn app_id<'a>(res: &Resource, key: &'a str) -> &'a str {
    if !res.reused_ids {
        return key;
    }
    match key.rsplit_once(BORN) {
        Some((id, ms)) if !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => key,
    }
}

/// The record in a single answer (at the resource's `record` pointer).
pub fn single<'a>(res: &Resource, body: &'a Value) -> Option<&'a Value> {
    if res.record.is_empty() {
        Some(body)
    } else {
        body.pointer(&res.record)
    }
}

/// The records of a list answer (at the resource's `records` pointer).
pub fn many<'a>(res: &Resource, body: &'a Value) -> Result<&'a [Value], ConnectorError> {
    let at = if res.records.is_empty() {
        Some(body)
    } else {
        body.pointer(&res.records)
    };
    match at {
        Some(Value::Array(a)) => Ok(a),
        // an empty result some apps write as null or leave out
        None | Some(Value::Null) => Ok(&[]),
        Some(_) => Err(ConnectorError::Transient(format!(
            "the list answer has no array at `{}`",
            if res.records.is_empty() {
                "(the body)"
            } else {
                &res.records
            }
        ))),
    }
}

/// The body of a write: the values nested by path, wrapped when the resource says.
pub fn body(res: &Resource, props: &Properties) -> Value {
    wrap(res, path::nest(props))
}

/// `fields` wrapped in the resource's key, if any.
pub fn wrap(res: &Resource, fields: Map<String, Value>) -> Value {
    match &res.wrap {
        Some(key) => {
            let mut outer = Map::new();
            outer.insert(key.clone(), Value::Object(fields));
            Value::Object(outer)
        }
        None => Value::Object(fields),
    }
}

/// `changes` merged into `record` by path (the whole record a `PUT` sends).
pub fn merged(record: &Value, changes: &Properties) -> Map<String, Value> {
    let mut out = record.as_object().cloned().unwrap_or_default();
    merge(&mut out, path::nest(changes));
    out
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res() -> Resource {
        toml::from_str("path = \"/x\"\ndeleted = \"deleted_at\"").unwrap()
    }

    #[test]
    fn reads_ids_times_and_tombstones() {
        let r = read(
            &res(),
            &json!({"id": 12, "updated_at": null, "created_at": 1714557600,
                    "deleted_at": "2024-05-01T10:00:00Z", "name": "A"}),
            &["name".into()],
        )
        .unwrap();
        assert_eq!(r.id, "12");
        assert_eq!(
            r.updated_at.unwrap().to_rfc3339(),
            "2024-05-01T10:00:00+00:00"
        );
        assert!(r.archived);
        assert_eq!(r.properties["name"], json!("A"));
        assert!(read(&res(), &json!({"name": "no id"}), &[]).is_err());
        let mut reused = res();
        reused.reused_ids = true;
        let r = read(
            &reused,
            &json!({"id": 5, "created_at": "2024-05-01T10:00:00Z"}),
            &[],
        )
        .unwrap();
        assert_eq!(r.id, "5@1714557600000");
        assert_eq!(app_id(&reused, &r.id), "5");
        assert_eq!(app_id(&reused, "a@b.c"), "a@b.c");
        assert_eq!(app_id(&res(), "5@1714557600000"), "5@1714557600000");
        assert_eq!(
            parse_time(&json!(1714557600123u64))
                .unwrap()
                .timestamp_millis(),
            1714557600123
        );
        assert_eq!(
            parse_time(&json!("2024-05-01 10:00:00"))
                .unwrap()
                .timestamp(),
            1714557600
        );
    }

    #[test]
    fn merges_changes_into_the_whole_record() {
        let rec = json!({"id": 1, "name": "A", "address": {"city": "Oslo", "zip": "1"}});
        let mut ch = Properties::new();
        ch.insert("address.city".into(), json!("Bergen"));
        let m = merged(&rec, &ch);
        assert_eq!(
            Value::Object(m),
            json!({"id": 1, "name": "A", "address": {"city": "Bergen", "zip": "1"}})
        );
    }
}
