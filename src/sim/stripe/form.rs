//! Stripe simulator: the form decoder — `application/x-www-form-urlencoded` pairs (and query
//! strings) with Stripe's bracket nesting, `metadata[plan]=gold`, `expand[]=a`,
//! `items[0][price]=p`, into nested JSON objects and arrays of strings.

use serde_json::{Map, Value};

use super::wire::StripeError;
use crate::sim::core::query::decode;

/// One path step of a parameter name.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    /// `[]`: append to an array.
    Push,
}

/// Splits `a[b][]` into `a`, `[Key(b), Push]`; None if the brackets are malformed.
fn split_name(name: &str) -> Option<(String, Vec<Step>)> {
    let (root, mut rest) = match name.find('[') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    if root.is_empty() || root.contains(']') {
        return None;
    }
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let key = &inner[..close];
        if key.contains('[') {
            return None;
        }
        steps.push(if key.is_empty() {
            Step::Push
        } else {
            Step::Key(key.to_string())
        });
        rest = &inner[close + 1..];
    }
    Some((root.to_string(), steps))
}

fn malformed(name: &str) -> StripeError {
    StripeError::invalid(
        name,
        format!("Invalid parameter name: {name} (unbalanced or misplaced brackets)"),
    )
}

fn conflict(name: &str) -> StripeError {
    StripeError::invalid(
        name,
        format!("Invalid parameter: {name} mixes a value, a hash and an array"),
    )
}

/// Puts `value` at `steps` under `slot`.
fn insert(slot: &mut Value, steps: &[Step], value: String, name: &str) -> Result<(), StripeError> {
    let Some((first, rest)) = steps.split_first() else {
        *slot = Value::String(value);
        return Ok(());
    };
    match first {
        Step::Key(k) => {
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(map) = slot else {
                return Err(conflict(name));
            };
            let child = map.entry(k.clone()).or_insert(Value::Null);
            if rest.is_empty() && !child.is_null() && !child.is_string() {
                return Err(conflict(name));
            }
            insert(child, rest, value, name)
        }
        Step::Push => {
            if slot.is_null() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else {
                return Err(conflict(name));
            };
            match rest.first() {
                None => {
                    items.push(Value::String(value));
                    Ok(())
                }
                // `a[][k]=v`: a new element starts when the last one already has `k` (Rails)
                Some(Step::Key(k)) => {
                    let reuse =
                        matches!(items.last(), Some(Value::Object(m)) if !m.contains_key(k));
                    if !reuse {
                        items.push(Value::Object(Map::new()));
                    }
                    match items.last_mut() {
                        Some(last) => insert(last, rest, value, name),
                        None => Err(conflict(name)),
                    }
                }
                Some(Step::Push) => Err(malformed(name)),
            }
        }
    }
}

/// Decodes a form body or query string into nested parameters. Repeated plain keys keep the
/// last value; a name that mixes shapes (`a=1&a[b]=2`) or has malformed brackets is a 400.
pub(crate) fn parse(raw: &str) -> Result<Map<String, Value>, StripeError> {
    let mut root = Value::Object(Map::new());
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(k);
        let value = decode(v);
        let (first, steps) = split_name(&name).ok_or_else(|| malformed(&name))?;
        let mut all = vec![Step::Key(first)];
        all.extend(steps);
        insert(&mut root, &all, value, &name)?;
    }
    match root {
        Value::Object(m) => Ok(m),
        _ => Ok(Map::new()),
    }
}

/// A list parameter as an array: `a[]=x` arrives as an array, `a[0]=x&a[1]=y` as an object
/// with index keys (ordered by index). None for anything else.
pub(crate) fn as_list(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(items) => Some(items.clone()),
        Value::Object(m) => {
            let mut indexed: Vec<(usize, &Value)> = Vec::with_capacity(m.len());
            for (k, v) in m {
                indexed.push((k.parse().ok()?, v));
            }
            indexed.sort_by_key(|(i, _)| *i);
            Some(indexed.into_iter().map(|(_, v)| v.clone()).collect())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(raw: &str) -> Value {
        Value::Object(parse(raw).expect("parses"))
    }

    #[test]
    fn nests_brackets() {
        assert_eq!(
            p(
                "email=a%40b.com&name=Ann+Lee&address[line1]=1+Main&address%5Bcity%5D=Paris\
               &metadata[plan]=gold&metadata[old]=&expand[]=customer&expand[]=x.y\
               &created[gte]=17&items[0][price]=p1&items[1][price]=p2&a[][k]=1&a[][k]=2"
            ),
            json!({
                "email": "a@b.com",
                "name": "Ann Lee",
                "address": {"line1": "1 Main", "city": "Paris"},
                "metadata": {"plan": "gold", "old": ""},
                "expand": ["customer", "x.y"],
                "created": {"gte": "17"},
                "items": {"0": {"price": "p1"}, "1": {"price": "p2"}},
                "a": [{"k": "1"}, {"k": "2"}],
            })
        );
        assert_eq!(p("x=1&x=2&flag"), json!({"x": "2", "flag": ""}));
        assert_eq!(
            as_list(&json!({"1": "b", "0": "a", "10": "c"})),
            Some(vec![json!("a"), json!("b"), json!("c")])
        );
        assert_eq!(as_list(&json!({"k": "v"})), None);
        assert_eq!(as_list(&json!("s")), None);
    }

    #[test]
    fn refuses_malformed_names_and_shape_conflicts() {
        for raw in [
            "a[b=1", "a]=1", "[a]=1", "a[b]c=1", "a[[b]]=1", "=1", "a[][]=1",
        ] {
            assert!(parse(raw).is_err(), "{raw}");
        }
        for raw in ["a=1&a[b]=2", "a[b]=1&a=2", "a[]=1&a[b]=2", "a[b]=1&a[]=2"] {
            let e = parse(raw).expect_err(raw);
            assert_eq!(e.status.as_u16(), 400);
            assert!(e.before_execution);
        }
    }
}
