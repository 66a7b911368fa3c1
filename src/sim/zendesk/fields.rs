//! Zendesk simulator: the objects served and the writable fields of users and organizations —
//! turning a request's JSON object into a typed change set, with Zendesk's field errors.

use serde::Serialize;
use serde_json::{Map, Value};

/// The objects the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    Users,
    Organizations,
}

impl Object {
    pub fn parse(name: &str) -> Option<Object> {
        match name {
            "users" | "user" => Some(Object::Users),
            "organizations" | "organization" => Some(Object::Organizations),
            _ => None,
        }
    }

    /// Plural, as in URLs and list keys.
    pub fn plural(self) -> &'static str {
        match self {
            Object::Users => "users",
            Object::Organizations => "organizations",
        }
    }

    /// Singular, as in request and response wrappers.
    pub fn singular(self) -> &'static str {
        match self {
            Object::Users => "user",
            Object::Organizations => "organization",
        }
    }
}

/// One validation failure, rendered under `details.<field>` of a `RecordInvalid` error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip)]
    pub field: &'static str,
    pub description: String,
    pub error: &'static str,
}

impl FieldError {
    pub fn new(field: &'static str, error: &'static str, description: String) -> FieldError {
        FieldError {
            field,
            description,
            error,
        }
    }

    pub(crate) fn blank_name() -> FieldError {
        FieldError::new("name", "BlankValue", "Name: cannot be blank".into())
    }

    fn invalid(field: &'static str, label: &str) -> FieldError {
        FieldError::new(field, "InvalidValue", format!("{label}: is invalid"))
    }
}

pub(crate) const ROLES: [&str; 3] = ["end-user", "agent", "admin"];

/// A user change set; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub(crate) struct UserPatch {
    /// `Some("")` for a null or blank name (refused when validated).
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub role: Option<&'static str>,
    pub external_id: Option<Option<String>>,
    pub organization_id: Option<Option<u64>>,
    pub phone: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// Merged key by key into the stored map.
    pub user_fields: Option<Map<String, Value>>,
    pub suspended: Option<bool>,
    pub verified: Option<bool>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
}

/// An organization change set.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrgPatch {
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub domain_names: Option<Vec<String>>,
    pub details: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub organization_fields: Option<Map<String, Value>>,
    pub shared_tickets: Option<bool>,
    pub shared_comments: Option<bool>,
}

/// Text of a string or number; `Err` for other JSON types.
fn text(v: &Value) -> Result<String, ()> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(()),
    }
}

/// Text or null; a blank string counts as null.
fn opt_text(v: &Value) -> Result<Option<String>, ()> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(|s| Some(s).filter(|s| !s.trim().is_empty())),
    }
}

fn flag(v: &Value) -> Result<bool, ()> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err(()),
    }
}

/// An id given as a number or a string of digits; null clears it.
fn opt_id(v: &Value) -> Result<Option<u64>, ()> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or(()),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| ()),
        _ => Err(()),
    }
}

/// Tags as an array of strings or one space-separated string; lower-cased, deduplicated
/// (Zendesk normalises tags the same way).
fn tags(v: &Value) -> Result<Vec<String>, ()> {
    let raw: Vec<String> = match v {
        Value::Null => Vec::new(),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items.iter().map(text).collect::<Result<_, _>>()?,
        _ => return Err(()),
    };
    let mut out: Vec<String> = Vec::new();
    for t in raw.iter().flat_map(|t| t.split_whitespace()) {
        let t = t.to_lowercase();
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn strings(v: &Value) -> Result<Vec<String>, ()> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(text).collect(),
        Value::String(s) => Ok(s
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        _ => Err(()),
    }
}

fn object(v: &Value) -> Result<Map<String, Value>, ()> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(()),
    }
}

/// A plausible email: one `@`, a non-empty local part, a dotted domain, no spaces.
pub(crate) fn email_ok(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

/// Parses a user object of a request. Unknown and read-only keys (`id`, `url`,
/// `created_at`...) are ignored, as Zendesk does.
pub(crate) fn user_patch(m: &Map<String, Value>) -> Result<UserPatch, Vec<FieldError>> {
    let mut p = UserPatch::default();
    let mut errs = Vec::new();
    for (key, v) in m {
        match key.as_str() {
            "name" => match v {
                Value::Null => p.name = Some(String::new()),
                v => match text(v) {
                    Ok(s) => p.name = Some(s.trim().to_string()),
                    Err(()) => errs.push(FieldError::invalid("name", "Name")),
                },
            },
            "email" => match opt_text(v) {
                // Zendesk keeps email identities lower-cased
                Ok(Some(e)) if email_ok(e.trim()) => p.email = Some(Some(e.trim().to_lowercase())),
                Ok(Some(e)) => errs.push(FieldError::new(
                    "email",
                    "InvalidFormat",
                    format!("Email: {e} is not properly formatted"),
                )),
                Ok(None) => p.email = Some(None),
                Err(()) => errs.push(FieldError::new(
                    "email",
                    "InvalidFormat",
                    format!("Email: {v} is not properly formatted"),
                )),
            },
            "role" => match v.as_str().and_then(|r| ROLES.iter().find(|x| **x == r)) {
                Some(r) => p.role = Some(r),
                None => errs.push(FieldError::new(
                    "role",
                    "InvalidValue",
                    format!(
                        "Role: {} is not included in the list",
                        text(v).unwrap_or_default()
                    ),
                )),
            },
            "external_id" => match opt_text(v) {
                Ok(x) => p.external_id = Some(x),
                Err(()) => errs.push(FieldError::invalid("external_id", "External")),
            },
            "organization_id" => match opt_id(v) {
                Ok(x) => p.organization_id = Some(x),
                Err(()) => errs.push(FieldError::invalid("organization_id", "Organization")),
            },
            "phone" => match opt_text(v) {
                Ok(x) => p.phone = Some(x),
                Err(()) => errs.push(FieldError::invalid("phone", "Phone")),
            },
            "tags" => match tags(v) {
                Ok(t) => p.tags = Some(t),
                Err(()) => errs.push(FieldError::invalid("tags", "Tags")),
            },
            "user_fields" => match object(v) {
                Ok(o) => p.user_fields = Some(o),
                Err(()) => errs.push(FieldError::invalid("user_fields", "User fields")),
            },
            "suspended" => match flag(v) {
                Ok(b) => p.suspended = Some(b),
                Err(()) => errs.push(FieldError::invalid("suspended", "Suspended")),
            },
            "verified" => match flag(v) {
                Ok(b) => p.verified = Some(b),
                Err(()) => errs.push(FieldError::invalid("verified", "Verified")),
            },
            "time_zone" => match text(v) {
                Ok(s) => p.time_zone = Some(s),
                Err(()) => errs.push(FieldError::invalid("time_zone", "Time zone")),
            },
            "locale" => match text(v) {
                Ok(s) => p.locale = Some(s),
                Err(()) => errs.push(FieldError::invalid("locale", "Locale")),
            },
            "details" => p.details = Some(opt_text(v).ok().flatten().unwrap_or_default()),
            "notes" => p.notes = Some(opt_text(v).ok().flatten().unwrap_or_default()),
            _ => {}
        }
    }
    if errs.is_empty() {
        Ok(p)
    } else {
        Err(errs)
    }
}

/// Parses an organization object of a request (unknown and read-only keys ignored).
pub(crate) fn org_patch(m: &Map<String, Value>) -> Result<OrgPatch, Vec<FieldError>> {
    let mut p = OrgPatch::default();
    let mut errs = Vec::new();
    for (key, v) in m {
        match key.as_str() {
            "name" => match v {
                Value::Null => p.name = Some(String::new()),
                v => match text(v) {
                    Ok(s) => p.name = Some(s.trim().to_string()),
                    Err(()) => errs.push(FieldError::invalid("name", "Name")),
                },
            },
            "external_id" => match opt_text(v) {
                Ok(x) => p.external_id = Some(x),
                Err(()) => errs.push(FieldError::invalid("external_id", "External")),
            },
            "domain_names" => match strings(v) {
                Ok(d) => p.domain_names = Some(d.into_iter().map(|d| d.to_lowercase()).collect()),
                Err(()) => errs.push(FieldError::invalid("domain_names", "Domain names")),
            },
            "details" => match opt_text(v) {
                Ok(x) => p.details = Some(x),
                Err(()) => errs.push(FieldError::invalid("details", "Details")),
            },
            "notes" => match opt_text(v) {
                Ok(x) => p.notes = Some(x),
                Err(()) => errs.push(FieldError::invalid("notes", "Notes")),
            },
            "tags" => match tags(v) {
                Ok(t) => p.tags = Some(t),
                Err(()) => errs.push(FieldError::invalid("tags", "Tags")),
            },
            "organization_fields" => match object(v) {
                Ok(o) => p.organization_fields = Some(o),
                Err(()) => errs.push(FieldError::invalid(
                    "organization_fields",
                    "Organization fields",
                )),
            },
            "shared_tickets" => match flag(v) {
                Ok(b) => p.shared_tickets = Some(b),
                Err(()) => errs.push(FieldError::invalid("shared_tickets", "Shared tickets")),
            },
            "shared_comments" => match flag(v) {
                Ok(b) => p.shared_comments = Some(b),
                Err(()) => errs.push(FieldError::invalid("shared_comments", "Shared comments")),
            },
            _ => {}
        }
    }
    if errs.is_empty() {
        Ok(p)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn user_fields_parse_and_normalise() {
        let p = user_patch(&map(json!({
            "name": " Ann ", "email": "Ann@Example.COM", "role": "agent", "external_id": 42,
            "organization_id": "7", "tags": "VIP  vip gold", "id": 99, "url": "x", "bogus": 1,
            "phone": null, "suspended": "true", "user_fields": {"plan": "pro"}
        })))
        .expect("valid");
        assert_eq!(p.name.as_deref(), Some("Ann"));
        assert_eq!(p.email, Some(Some("ann@example.com".into())));
        assert_eq!(p.role, Some("agent"));
        assert_eq!(p.external_id, Some(Some("42".into())));
        assert_eq!(p.organization_id, Some(Some(7)));
        assert_eq!(p.tags, Some(vec!["vip".to_string(), "gold".to_string()]));
        assert_eq!(p.phone, Some(None));
        assert_eq!(p.suspended, Some(true));
        assert_eq!(p.user_fields.map(|m| m.len()), Some(1));
    }

    #[test]
    fn user_field_errors_are_all_reported() {
        let errs = user_patch(&map(json!({
            "email": "not-an-email", "role": "boss", "organization_id": "x", "verified": 3
        })))
        .expect_err("invalid");
        let mut fields: Vec<(&str, &str)> = errs.iter().map(|e| (e.field, e.error)).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                ("email", "InvalidFormat"),
                ("organization_id", "InvalidValue"),
                ("role", "InvalidValue"),
                ("verified", "InvalidValue")
            ]
        );
        assert!(errs
            .iter()
            .any(|e| e.description == "Email: not-an-email is not properly formatted"));
        assert!(
            user_patch(&map(json!({"name": null}))).is_ok_and(|p| p.name.as_deref() == Some(""))
        );
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(email_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@b@c.com",
            "a b@c.com",
            "a@.com",
            "a@com.",
        ] {
            assert!(!email_ok(bad), "{bad}");
        }
    }

    #[test]
    fn org_fields_parse() {
        let p = org_patch(&map(json!({
            "name": "Acme", "domain_names": ["Acme.com", "acme.org"], "details": "",
            "shared_tickets": true, "organization_fields": {"tier": 1}
        })))
        .expect("valid");
        assert_eq!(p.name.as_deref(), Some("Acme"));
        assert_eq!(
            p.domain_names,
            Some(vec!["acme.com".to_string(), "acme.org".to_string()])
        );
        assert_eq!(p.details, Some(None));
        assert_eq!(p.shared_tickets, Some(true));
        let errs =
            org_patch(&map(json!({"tags": 5, "shared_comments": "maybe"}))).expect_err("bad");
        assert_eq!(errs.len(), 2);
        assert_eq!(Object::parse("organizations"), Some(Object::Organizations));
        assert_eq!(Object::parse("tickets"), None);
        assert_eq!(Object::Users.singular(), "user");
    }
}
