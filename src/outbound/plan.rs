//! Outbound path: turning a claimed mark into an API operation by diffing the current hub row
//! against the link's base. An empty diff is how echoes of inbound writes die.

use serde_json::{Map, Value};

use super::references::{References, Waiting};
use crate::connectors::Properties;
use crate::hub::catalog::{Field, Mapping};

/// What the link of a row says.
#[derive(Debug, Clone)]
pub struct Link {
    pub remote_id: Option<String>,
    pub base: Map<String, Value>,
    /// Columns in an open `manual` conflict: their pushes wait until it is resolved.
    pub held: Vec<String>,
}

/// What to do for one marked row.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// No link yet (or an unfinished create intent): create with every outbound value.
    Create {
        props: Properties,
        base: Map<String, Value>,
    },
    /// Changed fields only; `changed` holds their hub values for the new base.
    Update {
        remote_id: String,
        props: Properties,
        changed: Map<String, Value>,
    },
    /// An interrupted create did make the record: link it and write every value (idempotent).
    Adopt {
        remote_id: String,
        props: Properties,
        base: Map<String, Value>,
    },
    /// Row gone, remote record linked: archive it.
    Archive { remote_id: String },
    /// Row gone, and the mapping keeps the app's record (`on_hub_delete = "ignore"`): the link
    /// goes, the record stays.
    Release { remote_id: String },
    /// Row gone and never created remotely: drop the intent link.
    ForgetLink,
    /// Nothing differs from the base.
    Nothing,
    /// The row references a record the app does not have yet: it waits (held, tried again).
    Wait { reason: String },
    /// The row cannot be written as the mapping says (a value its field's map does not name):
    /// a dead letter for `operation`, without calling the app.
    Refuse {
        operation: &'static str,
        reason: String,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Update { .. } => "update",
            Op::Adopt { .. } => "adopt",
            Op::Archive { .. } => "archive",
            Op::Release { .. } => "release",
            Op::ForgetLink => "forget",
            Op::Nothing => "nothing",
            Op::Refuse { operation, .. } => operation,
            Op::Wait { .. } => "wait",
        }
    }
}

/// A hub value as the app takes it: a reference translated (or a reason to wait), any other
/// value transformed and mapped (or refused).
fn app_value(f: &Field, v: &Value, refs: &References) -> Result<Value, Result<Waiting, String>> {
    if f.references.is_some() {
        refs.to_app(f, v).map_err(Ok)
    } else {
        f.to_app(v.clone()).map_err(Err)
    }
}

fn refuse(operation: &'static str, field: &Field, reason: String) -> Op {
    Op::Refuse {
        operation,
        reason: format!("column {}: {reason}", field.column),
    }
}

fn is_null(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// Decides the operation for one row (`row` = `to_jsonb` of the current hub row, if any).
pub fn plan(
    mapping: &Mapping,
    row: Option<&Map<String, Value>>,
    link: Option<&Link>,
    refs: &References,
) -> Op {
    let remote_id = link.and_then(|l| l.remote_id.clone());
    match (row, remote_id) {
        (None, Some(remote_id)) if mapping.deletes_in_app => Op::Archive { remote_id },
        (None, Some(remote_id)) => Op::Release { remote_id },
        (None, None) => {
            if link.is_some() {
                Op::ForgetLink
            } else {
                Op::Nothing
            }
        }
        (Some(row), None) => {
            let mut props = Properties::new();
            let mut base = Map::new();
            for f in mapping.fields.iter().filter(|f| f.direction.outbound()) {
                let v = row.get(&f.column).cloned().unwrap_or(Value::Null);
                if !v.is_null() {
                    match app_value(f, &v, refs) {
                        Ok(app) => props.insert(f.property.clone(), app),
                        Err(Err(reason)) => return refuse("create", f, reason),
                        Err(Ok(Waiting(reason))) => return Op::Wait { reason },
                    };
                }
                base.insert(f.column.clone(), v);
            }
            Op::Create { props, base }
        }
        (Some(row), Some(remote_id)) => {
            let base = link.map(|l| &l.base);
            let mut props = Properties::new();
            let mut changed = Map::new();
            let held = link.map_or(&[][..], |l| l.held.as_slice());
            for f in mapping
                .fields
                .iter()
                .filter(|f| f.direction.outbound() && !held.contains(&f.column))
            {
                let h = row.get(&f.column);
                let b = base.and_then(|b| b.get(&f.column));
                let same = match (h, b) {
                    (Some(h), Some(b)) => h == b,
                    (h, b) => is_null(h) && is_null(b),
                };
                if !same {
                    let v = h.cloned().unwrap_or(Value::Null);
                    match app_value(f, &v, refs) {
                        Ok(app) => props.insert(f.property.clone(), app),
                        Err(Err(reason)) => return refuse("update", f, reason),
                        Err(Ok(Waiting(reason))) => return Op::Wait { reason },
                    };
                    changed.insert(f.column.clone(), v);
                }
            }
            if props.is_empty() {
                Op::Nothing
            } else {
                Op::Update {
                    remote_id,
                    props,
                    changed,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::catalog::{Direction, Field};
    use serde_json::json;

    fn mapping() -> Mapping {
        let field = |c: &str, d| Field {
            column: c.into(),
            property: c.into(),
            ty: "text".into(),
            direction: d,
            transform: None,
            value_map: None,
            references: None,
        };
        Mapping::for_tests(vec![
            field("email", Direction::Both),
            field("phone", Direction::Both),
            field("stage", Direction::Inbound),
        ])
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn echo_is_nothing_and_change_is_only_the_field() {
        let m = mapping();
        let link = Link {
            remote_id: Some("7".into()),
            base: obj(json!({"email": "a@x", "phone": null, "stage": "lead"})),
            held: vec![],
        };
        let row = obj(json!({"id": 1, "email": "a@x", "phone": null, "stage": "customer"}));
        assert_eq!(
            plan(&m, Some(&row), Some(&link), &References::default()),
            Op::Nothing,
            "inbound-only and unchanged fields never go out"
        );
        let row = obj(json!({"id": 1, "email": "a@x", "phone": "+1", "stage": "lead"}));
        match plan(&m, Some(&row), Some(&link), &References::default()) {
            Op::Update { props, .. } => assert_eq!(
                props.into_iter().collect::<Vec<_>>(),
                vec![("phone".into(), json!("+1"))]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn held_fields_wait() {
        let m = mapping();
        let link = Link {
            remote_id: Some("7".into()),
            base: obj(json!({"email": "a@x", "phone": "+2"})),
            held: vec!["phone".into()],
        };
        let row = obj(json!({"id": 1, "email": "a@x", "phone": "+1"}));
        assert_eq!(
            plan(&m, Some(&row), Some(&link), &References::default()),
            Op::Nothing,
            "a field in a manual conflict is not pushed"
        );
        let row = obj(json!({"id": 1, "email": "b@x", "phone": "+1"}));
        match plan(&m, Some(&row), Some(&link), &References::default()) {
            Op::Update { props, .. } => assert_eq!(
                props.into_iter().collect::<Vec<_>>(),
                vec![("email".into(), json!("b@x"))]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_archive_forget() {
        let m = mapping();
        let row = obj(json!({"id": 1, "email": "a@x", "phone": null}));
        assert!(matches!(
            plan(&m, Some(&row), None, &References::default()),
            Op::Create { .. }
        ));
        let link = Link {
            remote_id: Some("7".into()),
            base: Map::new(),
            held: vec![],
        };
        assert_eq!(
            plan(&m, None, Some(&link), &References::default()),
            Op::Archive {
                remote_id: "7".into()
            }
        );
        let intent = Link {
            remote_id: None,
            base: Map::new(),
            held: vec![],
        };
        assert_eq!(
            plan(&m, None, Some(&intent), &References::default()),
            Op::ForgetLink
        );
        assert_eq!(plan(&m, None, None, &References::default()), Op::Nothing);
    }
}
