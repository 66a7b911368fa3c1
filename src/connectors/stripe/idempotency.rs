//! Stripe connector, outbound: the `Idempotency-Key` of a create, derived from the create
//! itself so that the same create sent again (a lost answer, a crash between the call and its
//! commit) carries the same key and Stripe answers it with the first result.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::mapping::Object;
use crate::connectors::Properties;

/// `value` with every object's keys sorted, as one line of JSON.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `Idempotency-Key` of a create: a hash of the connection, the object and every value
/// the create sends. The engine hands a connector no id of its create intent, so the values
/// stand for it: the same create sent again (a lost answer, a crash between the call and
/// its commit) carries the same key, and Stripe answers with the first result for 24 hours.
/// Two different hub rows with exactly the same values created within those 24 hours get
/// one customer (and a create whose values changed before its retry gets a new one; the
/// engine's lookup by the match key covers that case).
pub fn idempotency_key(connection: &str, object: Object, props: &Properties) -> String {
    let mut text = String::new();
    canonical(
        &Value::Object(props.clone().into_iter().collect()),
        &mut text,
    );
    let mut h = Sha256::new();
    for part in [connection, object.name(), &text] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("ferry-{}", &hex::encode(h.finalize())[..48])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn idempotency_keys_follow_the_values() {
        let p = |v: Value| -> Properties { v.as_object().unwrap().clone().into_iter().collect() };
        let a = idempotency_key(
            "billing",
            Object::Customers,
            &p(json!({"email": "a@x.co", "metadata.plan": "gold"})),
        );
        assert!(a.starts_with("ferry-") && a.len() == 54, "{a}");
        assert_eq!(
            a,
            idempotency_key(
                "billing",
                Object::Customers,
                &p(json!({"metadata.plan": "gold", "email": "a@x.co"}))
            )
        );
        assert_ne!(
            a,
            idempotency_key(
                "other",
                Object::Customers,
                &p(json!({"email": "a@x.co", "metadata.plan": "gold"}))
            )
        );
        assert_ne!(
            a,
            idempotency_key(
                "billing",
                Object::Customers,
                &p(json!({"email": "a@x.co", "metadata.plan": "silver"}))
            )
        );
    }
}
