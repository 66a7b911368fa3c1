//! Stripe simulator: customers — parameter validation (address, shipping, email, metadata,
//! tax_exempt...), create / retrieve / partial update / delete with Stripe's deletion stub,
//! and the `customer.*` events each write emits.

use serde_json::{json, Map, Value};

use super::params::{self, apply_metadata, nullable, only, Params};
use super::store::{Ctx, Customer, Store};
use super::wire::{random_id, random_upper, StripeError};

const WRITABLE: &[&str] = &[
    "address",
    "balance",
    "description",
    "email",
    "invoice_prefix",
    "metadata",
    "name",
    "next_invoice_sequence",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
    "expand",
];

const ADDRESS: &[&str] = &["city", "country", "line1", "line2", "postal_code", "state"];

/// An address hash (`""` unsets it), rendered with all six keys.
fn address(v: &Value, param: &str) -> Result<Value, StripeError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Value::Null),
        Value::Object(m) => {
            only(m, ADDRESS, param)?;
            let mut out = Map::new();
            for k in ADDRESS {
                let value = nullable(m, k, 200)
                    .map_err(|e| e.param(&format!("{param}[{k}]")))?
                    .unwrap_or(Value::Null);
                out.insert((*k).to_string(), value);
            }
            Ok(Value::Object(out))
        }
        _ => Err(StripeError::invalid(
            param,
            format!("Invalid object: {param} must be a hash"),
        )),
    }
}

fn shipping(v: &Value) -> Result<Value, StripeError> {
    match v {
        Value::String(s) if s.is_empty() => Ok(Value::Null),
        Value::Object(m) => {
            only(m, &["address", "name", "phone"], "shipping")?;
            let addr = m
                .get("address")
                .ok_or_else(|| StripeError::missing_param("shipping[address]"))?;
            let name = match nullable(m, "name", 256)? {
                Some(Value::String(s)) => s,
                _ => return Err(StripeError::missing_param("shipping[name]")),
            };
            Ok(json!({
                "address": address(addr, "shipping[address]")?,
                "name": name,
                "phone": nullable(m, "phone", 20)?.unwrap_or(Value::Null),
            }))
        }
        _ => Err(StripeError::invalid(
            "shipping",
            "Invalid object: shipping must be a hash".into(),
        )),
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// Validates the writable parameters and returns the fields to set.
fn patch(p: &Params, current: &Map<String, Value>) -> Result<Map<String, Value>, StripeError> {
    only(p, WRITABLE, "")?;
    let mut out = Map::new();
    for (key, max) in [("description", 350), ("name", 256), ("phone", 20)] {
        if let Some(v) = nullable(p, key, max)? {
            out.insert(key.into(), v);
        }
    }
    if let Some(v) = nullable(p, "email", 512)? {
        if let Value::String(s) = &v {
            if !valid_email(s) {
                return Err(
                    StripeError::invalid("email", format!("Invalid email address: {s}"))
                        .code("email_invalid"),
                );
            }
        }
        out.insert("email".into(), v);
    }
    if let Some(b) = params::integer(p, "balance")? {
        out.insert("balance".into(), json!(b));
    }
    if let Some(n) = params::integer(p, "next_invoice_sequence")? {
        if n < 1 {
            return Err(StripeError::invalid(
                "next_invoice_sequence",
                "This value must be greater than or equal to 1.".into(),
            ));
        }
        out.insert("next_invoice_sequence".into(), json!(n));
    }
    if let Some(t) = params::one_of(p, "tax_exempt", &["none", "exempt", "reverse"])? {
        out.insert("tax_exempt".into(), json!(t));
    }
    if let Some(prefix) = params::string(p, "invoice_prefix")? {
        let ok = (3..=12).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !ok {
            return Err(StripeError::invalid(
                "invoice_prefix",
                format!(
                    "Invalid invoice_prefix: {prefix} must be 3 to 12 uppercase letters or digits"
                ),
            ));
        }
        out.insert("invoice_prefix".into(), json!(prefix));
    }
    if let Some(v) = p.get("address") {
        out.insert("address".into(), address(v, "address")?);
    }
    if let Some(v) = p.get("shipping") {
        out.insert("shipping".into(), shipping(v)?);
    }
    if let Some(v) = p.get("preferred_locales") {
        let list = match v {
            Value::String(s) if s.is_empty() => Vec::new(),
            other => super::form::as_list(other).ok_or_else(|| {
                StripeError::invalid(
                    "preferred_locales",
                    "Invalid array: preferred_locales must be an array".into(),
                )
            })?,
        };
        out.insert("preferred_locales".into(), Value::Array(list));
    }
    let meta = current
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(m) = apply_metadata(p, &meta)? {
        out.insert("metadata".into(), Value::Object(m));
    }
    Ok(out)
}

fn defaults() -> Map<String, Value> {
    let v = json!({
        "address": null, "balance": 0, "currency": null, "default_source": null,
        "delinquent": false, "description": null, "discount": null, "email": null,
        "invoice_prefix": random_upper(8),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null,
                             "footer": null, "rendering_options": null},
        "metadata": {}, "name": null, "next_invoice_sequence": 1, "phone": null,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A live (not deleted) customer, or 404.
pub(crate) fn live<'a>(store: &'a mut Store, id: &str) -> Result<&'a mut Customer, StripeError> {
    match store.customers.get_mut(id) {
        Some(c) if !c.deleted => Ok(c),
        _ => Err(StripeError::no_such("customer", id)),
    }
}

/// Creates a customer at `created` without an event (seeding) or, via [`create`], with one.
pub(crate) fn insert(store: &mut Store, p: &Params, created: i64) -> Result<Value, StripeError> {
    let mut fields = defaults();
    fields.extend(patch(p, &Map::new())?);
    let c = Customer {
        id: random_id("cus_", 14),
        seq: store.next_seq(),
        created,
        deleted: false,
        fields,
    };
    let out = c.render(store.mode);
    store.customers.insert(c.id.clone(), c);
    Ok(out)
}

pub(crate) fn create(store: &mut Store, ctx: &Ctx, p: &Params) -> Result<Value, StripeError> {
    let out = insert(store, p, ctx.now)?;
    store.emit(ctx, "customer.created", out.clone(), None);
    store.writes += 1;
    Ok(out)
}

pub(crate) fn retrieve(store: &Store, id: &str) -> Result<Value, StripeError> {
    store
        .customers
        .get(id)
        .map(|c| c.render(store.mode))
        .ok_or_else(|| StripeError::no_such("customer", id))
}

pub(crate) fn update(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    let mode = store.mode;
    let c = live(store, id)?;
    let changes = patch(p, &c.fields)?;
    let before = c.render(mode);
    c.fields.extend(changes);
    let after = c.render(mode);
    if store.emit_updated(ctx, "customer.updated", &before, &after) {
        store.writes += 1;
    }
    Ok(after)
}

pub(crate) fn delete(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &[], "")?;
    let mode = store.mode;
    let c = live(store, id)?;
    let snapshot = c.render(mode);
    c.deleted = true;
    let stub = c.render(mode);
    store.emit(ctx, "customer.deleted", snapshot, None);
    store.writes += 1;
    Ok(stub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(valid_email(ok), "{ok}");
        }
        for bad in ["ab.co", "@b.co", "a@b", "a@.co", "a b@c.co", "a@b.co."] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn patch_validates_nested_hashes() {
        let p = |v: Value| v.as_object().cloned().unwrap_or_default();
        let out = patch(
            &p(json!({"address": {"line1": "1 Main", "city": ""}})),
            &Map::new(),
        )
        .expect("patch");
        assert_eq!(
            out["address"],
            json!({"line1": "1 Main", "line2": null, "city": null, "state": null,
                   "postal_code": null, "country": null})
        );
        let e = patch(&p(json!({"address": {"street": "x"}})), &Map::new()).expect_err("unknown");
        assert_eq!(e.param.as_deref(), Some("address[street]"));
        let e = patch(
            &p(json!({"shipping": {"address": {"city": "P"}}})),
            &Map::new(),
        )
        .expect_err("name");
        assert_eq!(
            (e.code, e.param.as_deref()),
            (Some("parameter_missing"), Some("shipping[name]"))
        );
        let e = patch(&p(json!({"balance": "1.5"})), &Map::new()).expect_err("int");
        assert_eq!(e.message, "Invalid integer: 1.5");
        let e = patch(&p(json!({"invoice_prefix": "ab"})), &Map::new()).expect_err("prefix");
        assert_eq!(e.param.as_deref(), Some("invoice_prefix"));
    }
}
