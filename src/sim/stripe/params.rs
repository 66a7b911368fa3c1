//! Stripe simulator: parameter checks shared by the endpoints — unknown parameters, strings,
//! integers, booleans, enums, metadata (with Stripe's limits and empty-string deletion),
//! `expand[]` and `created[gt|gte|lt|lte]` filters.

use serde_json::{Map, Value};

use super::form::as_list;
use super::wire::StripeError;

pub(crate) type Params = Map<String, Value>;

/// Refuses any parameter not in `allowed` (`prefix` names the enclosing hash, e.g. `address`).
pub(crate) fn only(params: &Params, allowed: &[&str], prefix: &str) -> Result<(), StripeError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) if prefix.is_empty() => Err(StripeError::unknown_param(k)),
        Some(k) => Err(StripeError::unknown_param(&format!("{prefix}[{k}]"))),
    }
}

/// A scalar as text: form values are strings; app-side edits may pass numbers and booleans.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn not_a_string(param: &str) -> StripeError {
    StripeError::invalid(param, format!("Invalid string: {param} must be a string"))
}

/// A string parameter; None when absent.
pub(crate) fn string(params: &Params, key: &str) -> Result<Option<String>, StripeError> {
    params
        .get(key)
        .map(|v| text(v).ok_or_else(|| not_a_string(key)))
        .transpose()
}

/// A nullable string field: absent → None, `""` → Some(Null), else Some(String).
pub(crate) fn nullable(
    params: &Params,
    key: &str,
    max: usize,
) -> Result<Option<Value>, StripeError> {
    Ok(match string(params, key)? {
        None => None,
        Some(s) if s.is_empty() => Some(Value::Null),
        Some(s) if s.chars().count() > max => {
            return Err(StripeError::invalid(
                key,
                format!("Invalid string: {key} must be at most {max} characters"),
            ))
        }
        Some(s) => Some(Value::String(s)),
    })
}

pub(crate) fn integer(params: &Params, key: &str) -> Result<Option<i64>, StripeError> {
    match string(params, key)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| StripeError::bad_integer(key, &s)),
    }
}

pub(crate) fn boolean(params: &Params, key: &str) -> Result<Option<bool>, StripeError> {
    match string(params, key)?.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(
            StripeError::invalid(key, format!("Invalid boolean: {other}"))
                .code("parameter_invalid_boolean"),
        ),
    }
}

/// One of `choices`; the message lists them as Stripe does.
pub(crate) fn one_of(
    params: &Params,
    key: &str,
    choices: &[&str],
) -> Result<Option<String>, StripeError> {
    match string(params, key)? {
        None => Ok(None),
        Some(s) if choices.contains(&s.as_str()) => Ok(Some(s)),
        Some(_) => {
            let (last, init) = choices.split_last().unwrap_or((&"", &[]));
            Err(StripeError::invalid(
                key,
                format!(
                    "Invalid {key}: must be one of {}, or {last}",
                    init.join(", ")
                ),
            ))
        }
    }
}

/// Applies `metadata` to `current`: `metadata[k]=v` sets, `metadata[k]=` deletes,
/// `metadata=` clears everything. Keys ≤ 40 characters, values ≤ 500, at most 50 keys.
pub(crate) fn apply_metadata(
    params: &Params,
    current: &Map<String, Value>,
) -> Result<Option<Map<String, Value>>, StripeError> {
    let Some(raw) = params.get("metadata") else {
        return Ok(None);
    };
    let mut out = current.clone();
    match raw {
        Value::String(s) if s.is_empty() => return Ok(Some(Map::new())),
        Value::Object(m) => {
            for (k, v) in m {
                let param = format!("metadata[{k}]");
                let Some(v) = text(v) else {
                    return Err(StripeError::invalid(
                        &param,
                        "Metadata values must be strings.".into(),
                    ));
                };
                if k.chars().count() > 40 {
                    return Err(StripeError::invalid(
                        &param,
                        format!("Metadata keys can have up to 40 characters, but you passed in a key that is {} characters.", k.chars().count()),
                    ));
                }
                if v.chars().count() > 500 {
                    return Err(StripeError::invalid(
                        &param,
                        format!("Metadata values can have up to 500 characters, but you passed in a value that is {} characters.", v.chars().count()),
                    ));
                }
                if v.is_empty() {
                    out.remove(k);
                } else {
                    out.insert(k.clone(), Value::String(v));
                }
            }
        }
        _ => {
            return Err(StripeError::invalid(
                "metadata",
                "Invalid metadata: must be a hash of string keys to string values".into(),
            ))
        }
    }
    if out.len() > 50 {
        return Err(StripeError::invalid(
            "metadata",
            format!(
                "You can have at most 50 metadata keys, but this object would have {}.",
                out.len()
            ),
        ));
    }
    Ok(Some(out))
}

/// `expand[]` paths, each one of `allowed`.
pub(crate) fn expand(params: &Params, allowed: &[&str]) -> Result<Vec<String>, StripeError> {
    let Some(raw) = params.get("expand") else {
        return Ok(Vec::new());
    };
    let list = as_list(raw).ok_or_else(|| {
        StripeError::invalid("expand", "Invalid array: expand must be an array".into())
    })?;
    let mut out = Vec::new();
    for v in list {
        let path = text(&v).unwrap_or_default();
        if !allowed.contains(&path.as_str()) {
            return Err(StripeError::invalid(
                "expand",
                format!("This property cannot be expanded ({path})."),
            ));
        }
        out.push(path);
    }
    Ok(out)
}

/// A `created` filter: `created=T` or `created[gt|gte|lt|lte]=T`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Range {
    pub(crate) fn parse(params: &Params, key: &str) -> Result<Range, StripeError> {
        let mut r = Range::default();
        match params.get(key) {
            None => {}
            Some(Value::Object(m)) => {
                only(m, &["gt", "gte", "lt", "lte"], key)?;
                let int = |k: &str| {
                    integer(m, k).map_err(|_| {
                        let raw = m.get(k).and_then(text).unwrap_or_default();
                        StripeError::bad_integer(&format!("{key}[{k}]"), &raw)
                    })
                };
                r.gt = int("gt")?;
                r.gte = int("gte")?;
                r.lt = int("lt")?;
                r.lte = int("lte")?;
            }
            Some(_) => {
                let t = integer(params, key)?;
                r.gte = t;
                r.lte = t;
            }
        }
        Ok(r)
    }

    pub(crate) fn contains(&self, t: i64) -> bool {
        self.gt.is_none_or(|x| t > x)
            && self.gte.is_none_or(|x| t >= x)
            && self.lt.is_none_or(|x| t < x)
            && self.lte.is_none_or(|x| t <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Params {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn metadata_rules() {
        let cur = map(json!({"a": "1", "b": "2"}));
        let p = map(json!({"metadata": {"a": "", "c": "3"}}));
        assert_eq!(
            apply_metadata(&p, &cur).expect("ok"),
            Some(map(json!({"b": "2", "c": "3"})))
        );
        let p = map(json!({"metadata": ""}));
        assert_eq!(apply_metadata(&p, &cur).expect("ok"), Some(Map::new()));
        let long = "k".repeat(41);
        let e = apply_metadata(&map(json!({"metadata": {long.clone(): "v"}})), &cur)
            .expect_err("long key");
        assert_eq!(e.param, Some(format!("metadata[{long}]")));
        let e = apply_metadata(&map(json!({"metadata": {"k": "v".repeat(501)}})), &cur)
            .expect_err("long value");
        assert!(e.message.contains("501"), "{}", e.message);
        let many: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
        let e = apply_metadata(&map(json!({ "metadata": many })), &Map::new()).expect_err("51");
        assert_eq!(e.param.as_deref(), Some("metadata"));
        let e =
            apply_metadata(&map(json!({"metadata": {"k": {"x": "y"}}})), &cur).expect_err("nested");
        assert_eq!(e.param.as_deref(), Some("metadata[k]"));
    }

    #[test]
    fn ranges_and_enums() {
        let r = Range::parse(
            &map(json!({"created": {"gte": "10", "lt": "20"}})),
            "created",
        )
        .expect("range");
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        let r = Range::parse(&map(json!({"created": "15"})), "created").expect("exact");
        assert!(r.contains(15) && !r.contains(16));
        let e = Range::parse(&map(json!({"created": {"gte": "x"}})), "created").expect_err("int");
        assert_eq!(e.param.as_deref(), Some("created[gte]"));
        let e =
            Range::parse(&map(json!({"created": {"since": "1"}})), "created").expect_err("unknown");
        assert_eq!(e.message, "Received unknown parameter: created[since]");
        let e =
            one_of(&map(json!({"t": "x"})), "t", &["none", "exempt", "reverse"]).expect_err("enum");
        assert_eq!(
            e.message,
            "Invalid t: must be one of none, exempt, or reverse"
        );
    }
}
