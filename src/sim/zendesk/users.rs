//! Zendesk simulator: the user record — its stored fields, how a change set applies to it
//! (with the field-level differences webhooks report), and its JSON as the API shows it.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::fields::UserPatch;
use super::wire::iso;

/// One field that changed: `key` names the custom field for `user_fields` /
/// `organization_fields` changes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldChange {
    pub field: &'static str,
    pub key: Option<String>,
    pub previous: Value,
    pub current: Value,
}

impl FieldChange {
    pub(crate) fn new(field: &'static str, previous: Value, current: Value) -> FieldChange {
        FieldChange {
            field,
            key: None,
            previous,
            current,
        }
    }
}

/// Sets `slot` to `value` and records the change when they differ.
pub(crate) fn assign<T: Clone + PartialEq + Into<Value>>(
    out: &mut Vec<FieldChange>,
    field: &'static str,
    slot: &mut T,
    value: T,
) {
    if *slot != value {
        out.push(FieldChange::new(
            field,
            slot.clone().into(),
            value.clone().into(),
        ));
        *slot = value;
    }
}

/// Merges `patch` into a custom-field map key by key, recording each changed key.
pub(crate) fn merge_custom(
    out: &mut Vec<FieldChange>,
    field: &'static str,
    stored: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) {
    for (k, v) in patch {
        let previous = stored.get(k).cloned().unwrap_or(Value::Null);
        if previous != *v {
            out.push(FieldChange {
                field,
                key: Some(k.clone()),
                previous,
                current: v.clone(),
            });
            stored.insert(k.clone(), v.clone());
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct User {
    pub id: u64,
    pub name: String,
    pub email: Option<String>,
    pub role: &'static str,
    pub external_id: Option<String>,
    pub organization_id: Option<u64>,
    pub phone: Option<String>,
    pub tags: Vec<String>,
    pub user_fields: Map<String, Value>,
    pub active: bool,
    pub suspended: bool,
    pub verified: bool,
    pub time_zone: String,
    pub locale: String,
    pub details: String,
    pub notes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// A new active end-user with Zendesk's defaults.
    pub(crate) fn new(id: u64, now: DateTime<Utc>) -> User {
        User {
            id,
            name: String::new(),
            email: None,
            role: "end-user",
            external_id: None,
            organization_id: None,
            phone: None,
            tags: Vec::new(),
            user_fields: Map::new(),
            active: true,
            suspended: false,
            verified: false,
            time_zone: "UTC".into(),
            locale: "en-US".into(),
            details: String::new(),
            notes: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies a (validated) change set; returns what changed. Does not touch `updated_at`.
    pub(crate) fn apply(&mut self, p: &UserPatch) -> Vec<FieldChange> {
        let mut out = Vec::new();
        if let Some(v) = &p.name {
            assign(&mut out, "name", &mut self.name, v.clone());
        }
        if let Some(v) = &p.email {
            assign(&mut out, "email", &mut self.email, v.clone());
        }
        if let Some(v) = p.role {
            let mut role = self.role.to_string();
            assign(&mut out, "role", &mut role, v.to_string());
            self.role = v;
        }
        if let Some(v) = &p.external_id {
            assign(&mut out, "external_id", &mut self.external_id, v.clone());
        }
        if let Some(v) = p.organization_id {
            assign(&mut out, "organization_id", &mut self.organization_id, v);
        }
        if let Some(v) = &p.phone {
            assign(&mut out, "phone", &mut self.phone, v.clone());
        }
        if let Some(v) = &p.tags {
            assign(&mut out, "tags", &mut self.tags, v.clone());
        }
        if let Some(v) = &p.user_fields {
            merge_custom(&mut out, "user_fields", &mut self.user_fields, v);
        }
        if let Some(v) = p.suspended {
            assign(&mut out, "suspended", &mut self.suspended, v);
        }
        if let Some(v) = p.verified {
            assign(&mut out, "verified", &mut self.verified, v);
        }
        if let Some(v) = &p.time_zone {
            assign(&mut out, "time_zone", &mut self.time_zone, v.clone());
        }
        if let Some(v) = &p.locale {
            assign(&mut out, "locale", &mut self.locale, v.clone());
        }
        if let Some(v) = &p.details {
            assign(&mut out, "details", &mut self.details, v.clone());
        }
        if let Some(v) = &p.notes {
            assign(&mut out, "notes", &mut self.notes, v.clone());
        }
        out
    }

    /// Zendesk's `role_type`: 4 for admins, null for plain agents and end-users.
    fn role_type(&self) -> Value {
        if self.role == "admin" {
            json!(4)
        } else {
            Value::Null
        }
    }

    /// The user as the API shows it.
    pub(crate) fn render(&self, base_url: &str) -> Value {
        let end_user = self.role == "end-user";
        json!({
            "id": self.id,
            "url": format!("{base_url}/api/v2/users/{}.json", self.id),
            "name": self.name,
            "email": self.email,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "time_zone": self.time_zone,
            "iana_time_zone": if self.time_zone == "UTC" { "Etc/UTC" } else { self.time_zone.as_str() },
            "phone": self.phone,
            "shared_phone_number": Value::Null,
            "photo": Value::Null,
            "locale_id": 1,
            "locale": self.locale,
            "organization_id": self.organization_id,
            "role": self.role,
            "verified": self.verified,
            "external_id": self.external_id,
            "tags": self.tags,
            "alias": "",
            "active": self.active,
            "shared": false,
            "shared_agent": false,
            "last_login_at": Value::Null,
            "two_factor_auth_enabled": false,
            "signature": Value::Null,
            "details": self.details,
            "notes": self.notes,
            "role_type": self.role_type(),
            "custom_role_id": Value::Null,
            "moderator": !end_user,
            "ticket_restriction": if end_user { json!("requested") } else { Value::Null },
            "only_private_comments": false,
            "restricted_agent": end_user,
            "suspended": self.suspended,
            "default_group_id": Value::Null,
            "report_csv": false,
            "user_fields": self.user_fields,
        })
    }

    /// The `detail` object of user webhook events: ids as strings. Absent values are null (the
    /// organization events' documented example uses null; a user example shows "0" / "" for
    /// an end-user without organization — unconfirmed which one user events really send).
    pub(crate) fn detail(&self) -> Value {
        json!({
            "created_at": iso(self.created_at),
            "email": self.email,
            "external_id": self.external_id,
            "default_group_id": Value::Null,
            "id": self.id.to_string(),
            "organization_id": self.organization_id.map(|o| o.to_string()),
            "role": self.role,
            "updated_at": iso(self.updated_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_reports_only_real_changes() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).expect("t");
        let mut u = User::new(5, t);
        let p = UserPatch {
            name: Some("Ann".into()),
            email: Some(Some("ann@x.com".into())),
            role: Some("end-user"),
            user_fields: Some(
                json!({"plan": "pro"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            ..UserPatch::default()
        };
        let changes = u.apply(&p);
        let names: Vec<&str> = changes.iter().map(|c| c.field).collect();
        assert_eq!(names, ["name", "email", "user_fields"]);
        assert_eq!(changes[1].previous, Value::Null);
        assert_eq!(changes[2].key.as_deref(), Some("plan"));
        assert!(u.apply(&p).is_empty(), "same values change nothing");
        let r = u.render("http://h");
        assert_eq!(r["url"], "http://h/api/v2/users/5.json");
        assert_eq!(r["created_at"], "2023-11-14T22:13:20Z");
        assert_eq!(
            (r["role_type"].clone(), r["active"].clone()),
            (Value::Null, json!(true))
        );
        assert_eq!(u.detail()["id"], "5");
    }
}
