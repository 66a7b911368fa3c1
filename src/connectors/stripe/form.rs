//! Stripe connector, outbound: the engine's typed values as Stripe's form parameters —
//! property paths become bracket names (`address.city` → `address[city]`, `metadata.plan`
//! → `metadata[plan]`, the rest of a metadata path being one key even with dots in it),
//! nulls the empty value that clears (a metadata key's empty value removes the key), lists
//! indexed (`preferred_locales[0]`) and objects spread into their keys.

use serde_json::Value;

use crate::connectors::Properties;

/// The bracket name of a property path.
pub fn param_name(path: &str) -> String {
    if let Some(key) = path.strip_prefix("metadata.") {
        return format!("metadata[{key}]");
    }
    let mut segments = path.split('.');
    let mut out = segments.next().unwrap_or_default().to_string();
    for s in segments {
        out.push('[');
        out.push_str(s);
        out.push(']');
    }
    out
}

/// The text of a scalar as Stripe reads it.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Appends the pairs of `value` under `name`.
fn push(name: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                push(format!("{name}[{i}]"), v, out);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                push(format!("{name}[{k}]"), v, out);
            }
        }
        // an empty list or object clears, like null
        Value::Array(_) | Value::Object(_) => out.push((name, String::new())),
        scalar_value => out.push((name, scalar(scalar_value))),
    }
}

/// The form parameters of a write of `props`.
pub fn params(props: &Properties) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(props.len());
    for (path, value) in props {
        push(param_name(path), value, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_become_bracket_parameters() {
        let props: Properties = [
            ("address.city", json!("Oslo")),
            ("address.line2", Value::Null),
            ("metadata.plan", json!("gold")),
            ("metadata.old", Value::Null),
            ("metadata.v1.2", json!(3)),
            ("preferred_locales", json!(["en", "nb"])),
            ("tax_exempt", json!("none")),
            ("balance", json!(-150)),
            (
                "shipping",
                json!({"name": "Ann", "address": {"city": "Bergen"}}),
            ),
            ("description", json!([])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let got: Vec<String> = params(&props)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            got,
            [
                "address[city]=Oslo",
                "address[line2]=",
                "balance=-150",
                "description=",
                "metadata[old]=",
                "metadata[plan]=gold",
                "metadata[v1.2]=3",
                "preferred_locales[0]=en",
                "preferred_locales[1]=nb",
                "shipping[address][city]=Bergen",
                "shipping[name]=Ann",
                "tax_exempt=none",
            ]
        );
    }
}
