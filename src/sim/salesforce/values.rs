//! Salesforce simulator: field values — the typed value of one field, reading it from a JSON
//! body by the field's type (Salesforce's parser errors when the JSON type does not fit),
//! rendering it back, and ordering values the way SOQL compares them.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use super::errors::SfError;
use super::ids;
use super::schema::{FieldDef, FieldType};
use super::wire::{parse_date, parse_datetime, sf_datetime, token_name};

/// One stored field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Null,
    Str(String),
    Num(f64),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Date(NaiveDate),
}

impl Val {
    pub fn render(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Str(s) => Value::String(s.clone()),
            Val::Num(n) => json!(n),
            Val::Bool(b) => Value::Bool(*b),
            Val::DateTime(t) => Value::String(sf_datetime(*t)),
            Val::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// SOQL ordering of two values of one field (text case-insensitively); None when the
    /// kinds differ. Nulls are handled by the caller.
    pub fn compare(&self, other: &Val) -> Option<Ordering> {
        match (self, other) {
            (Val::Str(a), Val::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
            (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
            (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Val::DateTime(a), Val::DateTime(b)) => Some(a.cmp(b)),
            (Val::Date(a), Val::Date(b)) => Some(a.cmp(b)),
            (Val::Null, Val::Null) => Some(Ordering::Equal),
            _ => None,
        }
    }
}

/// Jackson's "cannot deserialize" answer for a JSON value that does not fit the field.
fn parser_error(def: &FieldDef, v: &Value) -> SfError {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    SfError::new(
        "JSON_PARSER_ERROR",
        format!(
            "Cannot deserialize instance of {} from {} value {shown} or request may be missing a required field",
            def.ty.name(),
            token_name(v)
        ),
    )
}

/// The value of `def` in a request body. Type mismatches are parse errors (the whole request
/// fails); an id of the wrong shape in a reference field is a record error (`MALFORMED_ID`).
pub fn from_json(def: &FieldDef, v: &Value) -> Result<Val, SfError> {
    if v.is_null() {
        return Ok(Val::Null);
    }
    let bad = || parser_error(def, v);
    match def.ty {
        FieldType::Boolean => v.as_bool().map(Val::Bool).ok_or_else(bad),
        FieldType::Currency => match v {
            Value::Number(n) => n.as_f64().map(Val::Num).ok_or_else(bad),
            Value::String(s) => s.trim().parse::<f64>().map(Val::Num).map_err(|_| bad()),
            _ => Err(bad()),
        },
        FieldType::DateTime => v
            .as_str()
            .and_then(parse_datetime)
            .map(Val::DateTime)
            .ok_or_else(bad),
        FieldType::Date => v
            .as_str()
            .and_then(|s| parse_date(s).or_else(|| parse_datetime(s).map(|t| t.date_naive())))
            .map(Val::Date)
            .ok_or_else(bad),
        FieldType::Id | FieldType::Reference => match v.as_str() {
            Some("") => Ok(Val::Null),
            Some(s) => Ok(Val::Str(s.to_string())),
            None => Err(bad()),
        },
        // text: scalars are read as their text, as Salesforce's parser does
        _ => match v {
            Value::String(s) if s.is_empty() => Ok(Val::Null),
            Value::String(s) => Ok(Val::Str(s.clone())),
            Value::Number(n) => Ok(Val::Str(n.to_string())),
            Value::Bool(b) => Ok(Val::Str(b.to_string())),
            _ => Err(bad()),
        },
    }
}

/// Record-level checks of one value: length, email format, restricted picklist, id shape of
/// references (the referenced record itself is checked by the store).
pub fn check(def: &FieldDef, v: &Val) -> Result<Val, SfError> {
    let Val::Str(s) = v else {
        return Ok(v.clone());
    };
    if def.ty == FieldType::Reference {
        return match ids::normalize(s) {
            Some(id) => Ok(Val::Str(id)),
            None => Err(SfError::on(
                "MALFORMED_ID",
                format!("{}: id value of incorrect type: {s}", def.label),
                &[def.name],
            )),
        };
    }
    if def.ty.is_text() && def.length > 0 && s.chars().count() > def.length as usize {
        return Err(SfError::on(
            "STRING_TOO_LONG",
            format!(
                "{}: data value too large: {s} (max length={})",
                def.label, def.length
            ),
            &[def.name],
        ));
    }
    if def.ty == FieldType::Email && !valid_email(s) {
        return Err(SfError::on(
            "INVALID_EMAIL_ADDRESS",
            format!("{}: invalid email address: {s}", def.label),
            &[def.name],
        ));
    }
    if def.ty == FieldType::Picklist && !def.picklist.contains(&s.as_str()) {
        return Err(SfError::on(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            format!(
                "{}: bad value for restricted picklist field: {s}",
                def.label
            ),
            &[def.name],
        ));
    }
    Ok(v.clone())
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::salesforce::schema::{CONTACT, OPPORTUNITY};

    fn f(obj: &crate::sim::salesforce::schema::ObjectDef, name: &str) -> &'static FieldDef {
        obj.field(name).expect("field")
    }

    #[test]
    fn reads_by_type() {
        let amount = f(&OPPORTUNITY, "Amount");
        assert_eq!(from_json(amount, &json!(12.5)), Ok(Val::Num(12.5)));
        assert_eq!(from_json(amount, &json!("7")), Ok(Val::Num(7.0)));
        let err = from_json(amount, &json!("abc")).expect_err("not a number");
        assert_eq!(err.code, "JSON_PARSER_ERROR");
        assert!(err.message.contains("currency from VALUE_STRING value abc"));
        let last = f(&CONTACT, "LastName");
        assert_eq!(from_json(last, &json!(5)), Ok(Val::Str("5".into())));
        assert_eq!(from_json(last, &json!("")), Ok(Val::Null));
        assert!(from_json(last, &json!(["x"])).is_err());
        let close = f(&OPPORTUNITY, "CloseDate");
        assert_eq!(
            from_json(close, &json!("2024-03-01")).map(|v| v.render()),
            Ok(json!("2024-03-01"))
        );
    }

    #[test]
    fn record_checks() {
        let email = f(&CONTACT, "Email");
        assert_eq!(check(email, &Val::Str("a@b.co".into())).map(|_| ()), Ok(()));
        let err = check(email, &Val::Str("nope".into())).expect_err("bad email");
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                "INVALID_EMAIL_ADDRESS",
                "Email: invalid email address: nope"
            )
        );
        let first = f(&CONTACT, "FirstName");
        let err = check(first, &Val::Str("x".repeat(41))).expect_err("too long");
        assert_eq!(err.code, "STRING_TOO_LONG");
        assert_eq!(err.fields, Some(vec!["FirstName".to_string()]));
        let stage = f(&OPPORTUNITY, "StageName");
        assert!(check(stage, &Val::Str("Closed Won".into())).is_ok());
        assert!(check(stage, &Val::Str("Won-ish".into())).is_err());
        let account = f(&CONTACT, "AccountId");
        let err = check(account, &Val::Str("xyz".into())).expect_err("bad id");
        assert_eq!(err.code, "MALFORMED_ID");
    }

    #[test]
    fn ordering() {
        let a = Val::Str("apple".into());
        let b = Val::Str("Banana".into());
        assert_eq!(a.compare(&b), Some(Ordering::Less));
        assert_eq!(
            Val::Str("X".into()).compare(&Val::Str("x".into())),
            Some(Ordering::Equal)
        );
        assert_eq!(a.compare(&Val::Num(1.0)), None);
    }
}
