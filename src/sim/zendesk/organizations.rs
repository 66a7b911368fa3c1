//! Zendesk simulator: the organization record — stored fields, applying a change set, its
//! JSON in the API and the `detail` object of organization webhook events.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::fields::OrgPatch;
use super::users::{assign, merge_custom, FieldChange};
use super::wire::iso;

#[derive(Clone, Debug)]
pub(crate) struct Org {
    pub id: u64,
    pub name: String,
    pub external_id: Option<String>,
    pub domain_names: Vec<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub organization_fields: Map<String, Value>,
    pub shared_tickets: bool,
    pub shared_comments: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when deleted; deleted organizations are kept for the incremental export only.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Org {
    pub(crate) fn new(id: u64, now: DateTime<Utc>) -> Org {
        Org {
            id,
            name: String::new(),
            external_id: None,
            domain_names: Vec::new(),
            details: None,
            notes: None,
            tags: Vec::new(),
            organization_fields: Map::new(),
            shared_tickets: false,
            shared_comments: false,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        }
    }

    pub(crate) fn live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// Applies a (validated) change set; returns what changed. Does not touch `updated_at`.
    pub(crate) fn apply(&mut self, p: &OrgPatch) -> Vec<FieldChange> {
        let mut out = Vec::new();
        if let Some(v) = &p.name {
            assign(&mut out, "name", &mut self.name, v.clone());
        }
        if let Some(v) = &p.external_id {
            assign(&mut out, "external_id", &mut self.external_id, v.clone());
        }
        if let Some(v) = &p.domain_names {
            assign(&mut out, "domain_names", &mut self.domain_names, v.clone());
        }
        if let Some(v) = &p.details {
            assign(&mut out, "details", &mut self.details, v.clone());
        }
        if let Some(v) = &p.notes {
            assign(&mut out, "notes", &mut self.notes, v.clone());
        }
        if let Some(v) = &p.tags {
            assign(&mut out, "tags", &mut self.tags, v.clone());
        }
        if let Some(v) = &p.organization_fields {
            merge_custom(
                &mut out,
                "organization_fields",
                &mut self.organization_fields,
                v,
            );
        }
        if let Some(v) = p.shared_tickets {
            assign(&mut out, "shared_tickets", &mut self.shared_tickets, v);
        }
        if let Some(v) = p.shared_comments {
            assign(&mut out, "shared_comments", &mut self.shared_comments, v);
        }
        out
    }

    /// The organization as the API shows it; `deleted_at` only appears on deleted ones (the
    /// incremental export is the only place they are served).
    pub(crate) fn render(&self, base_url: &str) -> Value {
        let mut v = json!({
            "id": self.id,
            "url": format!("{base_url}/api/v2/organizations/{}.json", self.id),
            "name": self.name,
            "shared_tickets": self.shared_tickets,
            "shared_comments": self.shared_comments,
            "external_id": self.external_id,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "domain_names": self.domain_names,
            "details": self.details,
            "notes": self.notes,
            "group_id": Value::Null,
            "tags": self.tags,
            "organization_fields": self.organization_fields,
        });
        if let (Some(at), Some(obj)) = (self.deleted_at, v.as_object_mut()) {
            obj.insert("deleted_at".into(), json!(iso(at)));
        }
        v
    }

    /// The `detail` object of organization events, as documented.
    pub(crate) fn detail(&self) -> Value {
        json!({
            "created_at": iso(self.created_at),
            "external_id": self.external_id,
            "group_id": Value::Null,
            "id": self.id.to_string(),
            "name": self.name,
            "shared_comments": self.shared_comments,
            "shared_tickets": self.shared_tickets,
            "updated_at": iso(self.updated_at),
        })
    }
}
