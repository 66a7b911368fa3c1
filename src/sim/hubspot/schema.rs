//! HubSpot simulator: object types and their property schemas (names, read-only flags, value
//! checks and normalisation).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// The CRM object types the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ObjectKind {
    Contacts,
    Companies,
    Deals,
}

/// How a property's values are checked (and normalised) on write.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PropType {
    Text,
    Email,
    Number,
    Integer,
    Date,
    Options(&'static [&'static str]),
}

use PropType::*;

const LIFECYCLE: &[&str] = &[
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];
const LEAD_STATUS: &[&str] = &[
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
];
const DEAL_STAGES: &[&str] = &[
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];
const PIPELINES: &[&str] = &["default"];
const DEAL_TYPES: &[&str] = &["newbusiness", "existingbusiness"];

const CONTACT_PROPS: &[(&str, PropType)] = &[
    ("email", Email),
    ("firstname", Text),
    ("lastname", Text),
    ("phone", Text),
    ("mobilephone", Text),
    ("company", Text),
    ("jobtitle", Text),
    ("website", Text),
    ("address", Text),
    ("city", Text),
    ("state", Text),
    ("zip", Text),
    ("country", Text),
    ("lifecyclestage", Options(LIFECYCLE)),
    ("hs_lead_status", Options(LEAD_STATUS)),
    ("notes", Text),
];
const COMPANY_PROPS: &[(&str, PropType)] = &[
    ("name", Text),
    ("domain", Text),
    ("website", Text),
    ("industry", Text),
    ("phone", Text),
    ("address", Text),
    ("city", Text),
    ("state", Text),
    ("zip", Text),
    ("country", Text),
    ("numberofemployees", Integer),
    ("annualrevenue", Number),
    ("description", Text),
];
const DEAL_PROPS: &[(&str, PropType)] = &[
    ("dealname", Text),
    ("amount", Number),
    ("dealstage", Options(DEAL_STAGES)),
    ("pipeline", Options(PIPELINES)),
    ("closedate", Date),
    ("hubspot_owner_id", Integer),
    ("dealtype", Options(DEAL_TYPES)),
    ("description", Text),
];

impl ObjectKind {
    /// Accepts the plural name or the `0-N` object type id.
    pub(crate) fn parse(s: &str) -> Option<ObjectKind> {
        match s {
            "contacts" | "contact" | "0-1" => Some(ObjectKind::Contacts),
            "companies" | "company" | "0-2" => Some(ObjectKind::Companies),
            "deals" | "deal" | "0-3" => Some(ObjectKind::Deals),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "contacts",
            ObjectKind::Companies => "companies",
            ObjectKind::Deals => "deals",
        }
    }

    /// Upper-case singular, as HubSpot uses in some error messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "CONTACT",
            ObjectKind::Companies => "COMPANY",
            ObjectKind::Deals => "DEAL",
        }
    }

    /// Name of the last-modified timestamp property.
    pub(crate) fn lastmod(self) -> &'static str {
        match self {
            ObjectKind::Contacts => "lastmodifieddate",
            _ => "hs_lastmodifieddate",
        }
    }

    pub(crate) fn writable(self) -> &'static [(&'static str, PropType)] {
        match self {
            ObjectKind::Contacts => CONTACT_PROPS,
            ObjectKind::Companies => COMPANY_PROPS,
            ObjectKind::Deals => DEAL_PROPS,
        }
    }

    /// The read-only properties every record has (always returned).
    pub(crate) fn read_only(self) -> [&'static str; 3] {
        ["createdate", "hs_object_id", self.lastmod()]
    }

    /// Properties returned when the request names none.
    pub(crate) fn defaults(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Contacts => &[
                "createdate",
                "email",
                "firstname",
                "hs_object_id",
                "lastmodifieddate",
                "lastname",
            ],
            ObjectKind::Companies => &[
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
            ],
            ObjectKind::Deals => &[
                "amount",
                "closedate",
                "createdate",
                "dealname",
                "dealstage",
                "hs_lastmodifieddate",
                "hs_object_id",
                "pipeline",
            ],
        }
    }

    /// The static spelling of a known property (writable or read-only).
    pub(crate) fn canonical(self, name: &str) -> Option<&'static str> {
        if let Some(p) = self.read_only().into_iter().find(|p| *p == name) {
            return Some(p);
        }
        self.writable()
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(p, _)| *p)
    }

    pub(crate) fn writable_type(self, name: &str) -> Option<(&'static str, PropType)> {
        self.writable().iter().find(|(p, _)| *p == name).copied()
    }

    /// Webhook subscription type for an event class (`creation`, `propertyChange`, `deletion`).
    pub(crate) fn subscription(self, class: EventClass) -> (&'static str, u64) {
        let (names, base): ([&'static str; 3], u64) = match self {
            ObjectKind::Contacts => (
                [
                    "contact.creation",
                    "contact.propertyChange",
                    "contact.deletion",
                ],
                1001,
            ),
            ObjectKind::Companies => (
                [
                    "company.creation",
                    "company.propertyChange",
                    "company.deletion",
                ],
                2001,
            ),
            ObjectKind::Deals => (
                ["deal.creation", "deal.propertyChange", "deal.deletion"],
                3001,
            ),
        };
        let i = class as usize;
        (names[i], base + i as u64)
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum EventClass {
    Creation = 0,
    PropertyChange = 1,
    Deletion = 2,
}

/// One rejected property in a write.
#[derive(Clone, Debug)]
pub(crate) struct PropError {
    pub name: String,
    pub code: &'static str,
    pub message: String,
}

/// A validated write: property name and new value (`None` clears).
pub(crate) type Props = Vec<(&'static str, Option<String>)>;

/// Validates a `properties` object of a create/update request.
pub(crate) fn parse_props(
    kind: ObjectKind,
    map: &serde_json::Map<String, Value>,
) -> Result<Props, Vec<PropError>> {
    let mut out = Vec::with_capacity(map.len());
    let mut errors = Vec::new();
    for (name, value) in map {
        match convert(kind, name, value) {
            Ok(p) => out.push(p),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn convert(
    kind: ObjectKind,
    name: &str,
    value: &Value,
) -> Result<(&'static str, Option<String>), PropError> {
    let err = |code, message: String| PropError {
        name: name.to_string(),
        code,
        message,
    };
    let Some((canon, ty)) = kind.writable_type(name) else {
        if kind.read_only().contains(&name) {
            return Err(err(
                "READ_ONLY_VALUE",
                format!("\"{name}\" is a read only property; its value cannot be set."),
            ));
        }
        return Err(err(
            "PROPERTY_DOESNT_EXIST",
            format!("Property \"{name}\" does not exist"),
        ));
    };
    let raw = match value {
        Value::Null => return Ok((canon, None)),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(err(
                "INVALID_PROPERTY_VALUE",
                format!("Property \"{name}\" must be a string, number or boolean"),
            ))
        }
    };
    if raw.is_empty() {
        return Ok((canon, Some(raw)));
    }
    let checked = match ty {
        Text => Ok(raw),
        Email if valid_email(&raw) => Ok(raw),
        Email => Err(err(
            "INVALID_EMAIL",
            format!("Email address {raw} is invalid"),
        )),
        Number => match raw.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(raw),
            _ => Err(err(
                "INVALID_DOUBLE",
                format!("{raw} was not a valid number."),
            )),
        },
        Integer => match raw.trim().parse::<i64>() {
            Ok(_) => Ok(raw),
            Err(_) => Err(err("INVALID_LONG", format!("{raw} was not a valid long."))),
        },
        Date => match parse_time_ms(&raw).and_then(DateTime::<Utc>::from_timestamp_millis) {
            Some(t) => Ok(crate::sim::hubspot::http::iso(t)),
            None => Err(err(
                "INVALID_DATE",
                format!("{raw} was not a valid date (epoch milliseconds or ISO-8601)."),
            )),
        },
        Options(allowed) if allowed.contains(&raw.as_str()) => Ok(raw),
        Options(allowed) => Err(err(
            "INVALID_OPTION",
            format!(
                "{raw} was not one of the allowed options: [{}]",
                allowed.join(", ")
            ),
        )),
    };
    checked.map(|v| (canon, Some(v)))
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace())
}

/// Epoch milliseconds from an epoch-ms string, an RFC 3339 timestamp or a `YYYY-MM-DD` date.
pub(crate) fn parse_time_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_and_rejects() {
        let m = json!({"email": "a@b.com", "phone": 5551234, "notes": true, "city": null});
        let p = parse_props(
            ObjectKind::Contacts,
            m.as_object().unwrap_or(&Default::default()),
        )
        .unwrap_or_default();
        assert_eq!(p.len(), 4);
        assert!(p.contains(&("phone", Some("5551234".into()))));
        assert!(p.contains(&("city", None)));
        let bad = json!({"foo": 1, "createdate": "x", "email": "nope", "company": [1], "lifecyclestage": "x"});
        let errs = parse_props(
            ObjectKind::Contacts,
            bad.as_object().unwrap_or(&Default::default()),
        )
        .err()
        .unwrap_or_default();
        let mut codes: Vec<_> = errs.iter().map(|e| e.code).collect();
        codes.sort();
        assert_eq!(
            codes,
            [
                "INVALID_EMAIL",
                "INVALID_OPTION",
                "INVALID_PROPERTY_VALUE",
                "PROPERTY_DOESNT_EXIST",
                "READ_ONLY_VALUE"
            ]
        );
        let d = parse_props(
            ObjectKind::Deals,
            json!({"closedate": "2024-01-15"})
                .as_object()
                .unwrap_or(&Default::default()),
        )
        .unwrap_or_default();
        assert_eq!(
            d,
            vec![("closedate", Some("2024-01-15T00:00:00.000Z".to_string()))]
        );
        assert_eq!(parse_time_ms("1700000000000"), Some(1_700_000_000_000));
    }
}
