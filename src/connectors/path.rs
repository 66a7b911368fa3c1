//! Connector edge, both directions: property paths (`email`, `address.city`,
//! `user_fields.plan`) — how a connector reads typed values out of an app's nested record, and
//! builds the nested body of a write from the engine's flat path → value map.

use serde_json::{Map, Value};

use super::Properties;

/// The value at `path` (segments split on `.`) inside `record`, if every segment is there.
pub fn get<'v>(record: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(record, |node, segment| node.as_object()?.get(segment))
}

/// The values of `paths` in `record`; a path the record lacks is left out (unknown, not
/// cleared), a JSON null kept (the app says: unset).
pub fn pluck(record: &Value, paths: &[String]) -> Properties {
    paths
        .iter()
        .filter_map(|p| Some((p.clone(), get(record, p)?.clone())))
        .collect()
}

/// The nested body of a write: `{"address.city": "Oslo", "name": "Ann"}` →
/// `{"address": {"city": "Oslo"}, "name": "Ann"}`. Only the given paths appear, so an API
/// that merges nested objects changes only them.
pub fn nest(props: &Properties) -> Map<String, Value> {
    let mut body = Map::new();
    for (path, value) in props {
        let mut segments: Vec<&str> = path.split('.').collect();
        let last = segments.pop().unwrap_or_default();
        let mut node = &mut body;
        for segment in segments {
            let slot = node
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            node = slot.as_object_mut().expect("made an object above");
        }
        node.insert(last.to_string(), value.clone());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_builds_nested_values() {
        let record = json!({"name": "Ann", "user_fields": {"plan": "gold", "seats": 3},
                            "tags": ["vip"], "phone": null});
        let got = pluck(
            &record,
            &[
                "name".into(),
                "user_fields.plan".into(),
                "user_fields.missing".into(),
                "tags".into(),
                "phone".into(),
            ],
        );
        assert_eq!(got["user_fields.plan"], "gold");
        assert_eq!(got["tags"], json!(["vip"]));
        assert_eq!(
            got["phone"],
            Value::Null,
            "null is kept: the app says unset"
        );
        assert!(
            !got.contains_key("user_fields.missing"),
            "absent is unknown"
        );
        let body = nest(&got);
        assert_eq!(
            Value::Object(body),
            json!({"name": "Ann", "user_fields": {"plan": "gold"}, "tags": ["vip"], "phone": null})
        );
    }
}
