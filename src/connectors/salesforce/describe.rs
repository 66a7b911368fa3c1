//! Salesforce connector, configuration edge: a mapping's fields checked against the object's
//! describe (`GET /sobjects/{Object}/describe`) — a field the object does not have, and a
//! field ferry writes (`both` / `outbound`) that Salesforce will not let it create or update,
//! each reported in one sentence before any record is sent.

use reqwest::Method;
use serde::Deserialize;

use super::soql;
use super::Salesforce;
use crate::connectors::{ConnectorError, FieldUse};

#[derive(Deserialize)]
pub struct Describe {
    #[serde(default)]
    pub fields: Vec<FieldInfo>,
}

#[derive(Deserialize)]
pub struct FieldInfo {
    pub name: String,
    #[serde(default)]
    pub createable: bool,
    #[serde(default)]
    pub updateable: bool,
    /// The parent's relationship of a lookup (`Account` for `AccountId`).
    #[serde(default, rename = "relationshipName")]
    pub relationship: Option<String>,
}

/// One sentence per mapped field Salesforce's describe of `object` refuses.
pub fn problems(object: &str, describe: &Describe, fields: &[FieldUse]) -> Vec<String> {
    let mut out = vec![];
    for f in fields {
        let property = f.property.as_str();
        if let Some((parent, _)) = property.split_once('.') {
            // a parent's field: the lookup's relationship must exist; what lies beyond it is
            // the parent object's to describe
            let known = describe.fields.iter().any(|d| {
                d.relationship
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(parent))
            });
            if !known {
                out.push(format!(
                    "Salesforce's {object} has no relationship `{parent}` (in `{property}`): name a lookup's relationship, e.g. `Account.Name`."
                ));
            }
            continue;
        }
        let Some(d) = describe
            .fields
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(property))
        else {
            out.push(format!(
                "Salesforce's {object} has no field `{property}` (check its API name: custom fields end in __c)."
            ));
            continue;
        };
        if !f.writes {
            continue;
        }
        let name = &d.name;
        match (d.createable, d.updateable) {
            (false, false) => out.push(format!(
                "`{name}` on Salesforce's {object} is read-only (neither createable nor updateable): map it with direction = \"inbound\"."
            )),
            (true, false) => out.push(format!(
                "`{name}` on Salesforce's {object} can be set when a record is created but never updated: map it with direction = \"inbound\", or its changes will be refused."
            )),
            (false, true) => out.push(format!(
                "`{name}` on Salesforce's {object} can be updated but not set when a record is created: creates carrying it will be refused."
            )),
            (true, true) => {}
        }
    }
    out
}

impl Salesforce {
    /// Reads the describe of `object` and reports its problems with `fields` (newline
    /// separated). A describe that cannot be read now (network, throttle, sign-in) is logged
    /// and passes: the writes themselves will say what is wrong.
    pub(super) async fn check(&self, object: &str, fields: &[FieldUse]) -> Result<(), String> {
        let object = soql::name(object, "object").map_err(|e| e.to_string())?;
        let path = format!("/sobjects/{object}/describe");
        let describe: Describe = match self.client.call(Method::GET, &path, None).await {
            Ok(resp) => resp.parse().map_err(|e| e.to_string())?,
            Err(ConnectorError::NotFound) => {
                return Err(format!(
                    "Salesforce has no object `{object}` (check its API name: custom objects end in __c)."
                ))
            }
            Err(ConnectorError::Rejected { message, .. }) => {
                return Err(format!(
                    "Salesforce refused to describe `{object}`: {message}"
                ))
            }
            Err(e) => {
                tracing::warn!(connection = %self.client.name(), object = %object, error = %e, "cannot read the salesforce describe now; the mapping's fields are not checked");
                return Ok(());
            }
        };
        let found = problems(&object, &describe, fields);
        if found.is_empty() {
            Ok(())
        } else {
            Err(found.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_writable_one_way_get_their_own_sentence() {
        let describe: Describe = serde_json::from_value(serde_json::json!({"fields": [
            {"name": "Ext_Key__c", "createable": true, "updateable": false},
            {"name": "Score__c", "createable": false, "updateable": true},
        ]}))
        .unwrap();
        let uses = |writes| {
            vec![
                FieldUse {
                    property: "Ext_Key__c".into(),
                    writes,
                },
                FieldUse {
                    property: "score__c".into(),
                    writes,
                },
            ]
        };
        assert_eq!(
            problems("Lead__c", &describe, &uses(true)),
            [
                "`Ext_Key__c` on Salesforce's Lead__c can be set when a record is created but never updated: map it with direction = \"inbound\", or its changes will be refused.",
                "`Score__c` on Salesforce's Lead__c can be updated but not set when a record is created: creates carrying it will be refused.",
            ]
        );
        assert!(problems("Lead__c", &describe, &uses(false)).is_empty());
    }
}
