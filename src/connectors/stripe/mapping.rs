//! Stripe connector, both directions: the objects ferry maps (customers both ways, invoices
//! inbound only) and their paths — a Stripe object read into typed values by property path
//! (Unix-second times as RFC 3339 text, which a `timestamptz` column takes), deletion stubs
//! as archived records, and the check of a mapping's fields.

use serde_json::Value;

use crate::connectors::path::pluck;
use crate::connectors::{ConnectorError, FieldUse, Properties, RemoteRecord};

/// The objects a stripe connection maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Customers,
    Invoices,
}

const INBOUND_ONLY: &str =
    "ferry syncs Stripe invoices inbound only (they are billing records Stripe computes)";

impl Object {
    pub fn parse(object: &str) -> Result<Object, ConnectorError> {
        match object {
            "customers" => Ok(Object::Customers),
            "invoices" => Ok(Object::Invoices),
            other => Err(ConnectorError::Rejected {
                status: 400,
                message: format!(
                    "stripe has no object `{other}` in ferry (known: customers, invoices)"
                ),
            }),
        }
    }

    /// An object ferry writes to: invoices are refused with one sentence.
    pub fn writable(object: &str) -> Result<Object, ConnectorError> {
        match Object::parse(object)? {
            Object::Invoices => Err(ConnectorError::Rejected {
                status: 400,
                message: format!("{INBOUND_ONLY}: writes are refused"),
            }),
            o => Ok(o),
        }
    }

    /// The API path of the collection (`/customers`).
    pub fn path(self) -> &'static str {
        match self {
            Object::Customers => "/customers",
            Object::Invoices => "/invoices",
        }
    }

    /// Stripe's `object` value of a record.
    pub fn wire_name(self) -> &'static str {
        match self {
            Object::Customers => "customer",
            Object::Invoices => "invoice",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Object::Customers => "customers",
            Object::Invoices => "invoices",
        }
    }
}

/// Last segments of paths Stripe sends as Unix seconds.
const TIMES: &[&str] = &[
    "created",
    "paid_at",
    "finalized_at",
    "voided_at",
    "marked_uncollectible_at",
    "due_date",
    "period_start",
    "period_end",
    "effective_at",
    "next_payment_attempt",
    "webhooks_delivered_at",
];

/// A Unix-seconds time as RFC 3339 text.
pub fn unix_time(secs: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(secs, 0)
}

/// The values of `paths` in a Stripe object (see [`pluck`]), times as RFC 3339 text. A path
/// under a field the object has but that lacks the rest (`address.city` of a null address, a
/// metadata key Stripe removed) is null: Stripe leaves unset parts out.
pub fn values(object: &Value, paths: &[String]) -> Properties {
    let mut props = pluck(object, paths);
    for p in paths {
        let top = p.split('.').next().unwrap_or(p);
        if !props.contains_key(p) && object.get(top).is_some() {
            props.insert(p.clone(), Value::Null);
        }
    }
    for (path, v) in props.iter_mut() {
        let last = path.rsplit('.').next().unwrap_or(path);
        if TIMES.contains(&last) {
            if let Some(t) = v.as_i64().and_then(unix_time) {
                *v = Value::String(t.to_rfc3339());
            }
        }
    }
    props
}

/// One record as the engine takes it; `version`: when this state was Stripe's (an event's
/// `created`), None for a current read. A `deleted: true` stub is archived.
pub fn record(
    object: &Value,
    paths: &[String],
    version: Option<i64>,
) -> Result<RemoteRecord, ConnectorError> {
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::Transient("a Stripe object without an id".into()))?;
    let archived = object.get("deleted").and_then(Value::as_bool) == Some(true);
    Ok(RemoteRecord {
        id: id.to_string(),
        updated_at: version.and_then(unix_time),
        properties: if archived {
            Properties::new()
        } else {
            values(object, paths)
        },
        archived,
    })
}

/// Customer paths ferry writes.
const WRITABLE: &[&str] = &[
    "name",
    "email",
    "phone",
    "description",
    "balance",
    "invoice_prefix",
    "next_invoice_sequence",
    "preferred_locales",
    "tax_exempt",
];
const ADDRESS: &[&str] = &["line1", "line2", "city", "state", "postal_code", "country"];

/// Why a customer path cannot be written, if it cannot.
fn unwritable(path: &str) -> Option<String> {
    if WRITABLE.contains(&path) {
        return None;
    }
    if let Some(k) = path.strip_prefix("address.") {
        return (!ADDRESS.contains(&k)).then(|| {
            format!(
                "`{path}` is not a part of a Stripe address ({})",
                ADDRESS.join(", ")
            )
        });
    }
    if let Some(k) = path.strip_prefix("metadata.") {
        let n = k.chars().count();
        return (n == 0 || n > 40)
            .then(|| format!("`{path}`: a metadata key has 1 to 40 characters"));
    }
    Some(match path {
        "metadata" | "address" => {
            format!("`{path}` is written one key at a time: map `{path}.<key>` fields instead")
        }
        _ => format!("`{path}` is not a customer field ferry writes to Stripe"),
    })
}

/// The mapping check (`Connector::check_fields`): one sentence per field that cannot be
/// written in its direction.
pub fn check_fields(object: &str, fields: &[FieldUse]) -> Result<(), String> {
    let object = Object::parse(object).map_err(|e| e.to_string())?;
    let problems: Vec<String> = fields
        .iter()
        .filter(|f| f.writes)
        .filter_map(|f| match object {
            Object::Invoices => Some(format!(
                "field `{}` is written to Stripe, but {INBOUND_ONLY}: set direction = \"inbound\"",
                f.property
            )),
            Object::Customers => unwritable(&f.property),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_read_with_times_and_stubs() {
        let paths: Vec<String> = [
            "status",
            "amount_due",
            "status_transitions.paid_at",
            "customer",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let inv = json!({"id": "in_1", "object": "invoice", "status": "paid", "amount_due": 1500,
            "customer": "cus_1", "status_transitions": {"paid_at": 1700000000, "voided_at": null}});
        let r = record(&inv, &paths, Some(1700000001)).unwrap();
        assert_eq!(
            r.properties["status_transitions.paid_at"],
            "2023-11-14T22:13:20+00:00"
        );
        assert_eq!(r.properties["amount_due"], 1500);
        assert_eq!(r.updated_at.unwrap().timestamp(), 1700000001);
        let stub = json!({"id": "cus_1", "object": "customer", "deleted": true});
        let r = record(&stub, &paths, None).unwrap();
        assert!(r.archived && r.properties.is_empty() && r.updated_at.is_none());
    }

    #[test]
    fn fields_are_checked_per_direction() {
        let f = |p: &str, writes: bool| FieldUse {
            property: p.into(),
            writes,
        };
        assert_eq!(
            check_fields("invoices", &[f("status", true), f("amount_due", false)]),
            Err("field `status` is written to Stripe, but ferry syncs Stripe invoices inbound only (they are billing records Stripe computes): set direction = \"inbound\"".into())
        );
        assert_eq!(
            check_fields(
                "customers",
                &[
                    f("address.city", true),
                    f("metadata.plan", true),
                    f("created", false),
                    f("email", true)
                ]
            ),
            Ok(())
        );
        let err = check_fields(
            "customers",
            &[f("address.street", true), f("metadata", true)],
        )
        .unwrap_err();
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(err.contains("map `metadata.<key>`"), "{err}");
        assert!(check_fields("charges", &[]).is_err());
    }
}
