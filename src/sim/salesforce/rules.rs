//! Salesforce simulator: the rules of a write — reading a JSON record into field values
//! (unknown fields and ill-typed values fail the whole request), which fields a create or an
//! update may set, required fields, and the formula fields recomputed after each write.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::errors::SfError;
use super::schema::{FieldDef, ObjectDef};
use super::store::Patch;
use super::values::{self, Val};

/// A JSON record read against `def`: its `Id` (if it names one) and its other fields.
#[derive(Debug, Default)]
pub struct Parsed {
    pub id: Option<String>,
    pub patch: Patch,
}

/// Reads a record body. `attributes` is ignored; field names match case-insensitively.
pub fn parse_record(def: &ObjectDef, body: &Map<String, Value>) -> Result<Parsed, SfError> {
    let mut out = Parsed::default();
    for (key, v) in body {
        if key == "attributes" {
            continue;
        }
        let Some(f) = def.field(key) else {
            return Err(SfError::new(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", def.name),
            ));
        };
        if f.name == "Id" {
            out.id = match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            };
            continue;
        }
        out.patch.push((f, values::from_json(f, v)?));
    }
    Ok(out)
}

/// The `Id` a create must not carry.
pub fn id_in_insert() -> SfError {
    SfError::new(
        "INVALID_FIELD",
        "The Id field should not be specified in the sobject data.",
    )
}

/// Every field of `patch` must be createable (insert) or updateable (update).
pub fn writable(patch: &Patch, insert: bool) -> Result<(), Vec<SfError>> {
    let refused: Vec<&str> = patch
        .iter()
        .filter(|(f, _)| if insert { !f.createable } else { !f.updateable })
        .map(|(f, _)| f.name)
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(vec![SfError::on(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!(
            "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
            refused.join(", ")
        ),
        &refused,
    )])
}

/// Required (non-nillable, writable) fields missing from an insert or cleared by an update.
pub fn required(def: &ObjectDef, patch: &Patch, insert: bool) -> Option<SfError> {
    let given = |f: &FieldDef| patch.iter().find(|(p, _)| p.name == f.name).map(|(_, v)| v);
    let missing: Vec<&str> = def
        .fields
        .iter()
        .filter(|f| !f.nillable && !f.system)
        .filter(|f| match given(f) {
            Some(v) => v.is_null(),
            None => insert,
        })
        .map(|f| f.name)
        .collect();
    (!missing.is_empty()).then(|| {
        SfError::on(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            &missing,
        )
    })
}

/// Recomputes formula fields: Contact `Name`, Opportunity `IsWon` and `IsClosed`.
pub fn derive(def: &ObjectDef, values: &mut BTreeMap<&'static str, Val>) {
    let text = |v: Option<&Val>| v.and_then(Val::as_str).unwrap_or("").to_string();
    match def.name {
        "Contact" => {
            let first = text(values.get("FirstName"));
            let last = text(values.get("LastName"));
            let name = format!("{first} {last}").trim().to_string();
            values.insert("Name", Val::Str(name));
        }
        "Opportunity" => {
            let stage = text(values.get("StageName"));
            values.insert("IsWon", Val::Bool(stage == "Closed Won"));
            values.insert("IsClosed", Val::Bool(stage.starts_with("Closed")));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::salesforce::schema::{CONTACT, OPPORTUNITY};
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_case_insensitively_and_refuses_unknown_fields() {
        let p = parse_record(
            &CONTACT,
            &obj(json!({"attributes": {"type": "Contact"}, "lastname": "X", "ID": "003"})),
        )
        .expect("parsed");
        assert_eq!(p.id.as_deref(), Some("003"));
        assert_eq!(p.patch.len(), 1);
        assert_eq!(p.patch[0].0.name, "LastName");
        let err = parse_record(&CONTACT, &obj(json!({"Foo": 1}))).expect_err("unknown");
        assert_eq!(
            err.message,
            "No such column 'Foo' on sobject of type Contact"
        );
    }

    #[test]
    fn writable_and_required() {
        let p =
            parse_record(&OPPORTUNITY, &obj(json!({"IsWon": true, "Name": "D"}))).expect("parsed");
        let errs = writable(&p.patch, false).expect_err("IsWon");
        assert_eq!(errs[0].code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        assert_eq!(errs[0].fields, Some(vec!["IsWon".to_string()]));
        let p = parse_record(&OPPORTUNITY, &obj(json!({"Name": "D"}))).expect("parsed");
        let err = required(&OPPORTUNITY, &p.patch, true).expect("missing");
        assert_eq!(
            err.message,
            "Required fields are missing: [StageName, CloseDate]"
        );
        assert_eq!(required(&OPPORTUNITY, &p.patch, false), None);
        let p = parse_record(&CONTACT, &obj(json!({"LastName": null}))).expect("parsed");
        assert!(required(&CONTACT, &p.patch, false).is_some());
    }
}
