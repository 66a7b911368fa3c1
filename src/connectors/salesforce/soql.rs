//! Salesforce connector, inbound: the SOQL ferry sends — names checked before they enter a
//! query (an object or field is letters, digits and underscores), string literals quoted with
//! `\` and `'` escaped, datetime literals unquoted in UTC, and the select lists of listings,
//! lookups and the change feed.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::connectors::ConnectorError;

/// Fields every read selects: the id and the version.
pub const SYSTEM_FIELDS: [&str; 2] = ["Id", "SystemModstamp"];

/// Whether `name` can be an sObject or field API name (`Contact`, `Ext_Id__c`,
/// `Account.Name` for a parent's field).
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|seg| {
            seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// `name` checked as an API name; anything else is refused before a query is built.
pub fn name(name: &str, what: &str) -> Result<String, ConnectorError> {
    if is_name(name) {
        Ok(name.to_string())
    } else {
        Err(ConnectorError::Rejected {
            status: 400,
            message: format!(
                "`{name}` is not a Salesforce {what} name (letters, digits and underscores)"
            ),
        })
    }
}

/// A SOQL string literal: quoted, with backslashes and quotes escaped (and the control
/// characters SOQL spells as escapes), so a value can never end the literal.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A datetime literal (unquoted, UTC, milliseconds): `2024-01-01T00:00:00.000Z`.
pub fn datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `Id`, `SystemModstamp` and the properties (checked, each once; case is ignored as
/// Salesforce ignores it).
pub fn fields(properties: &[String]) -> Result<Vec<String>, ConnectorError> {
    let mut out: Vec<String> = SYSTEM_FIELDS.iter().map(|s| s.to_string()).collect();
    for p in properties {
        let p = name(p, "field")?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&p)) {
            out.push(p);
        }
    }
    Ok(out)
}

fn select_list(properties: &[String]) -> Result<String, ConnectorError> {
    Ok(fields(properties)?.join(", "))
}

/// Whether `id` can be a Salesforce record id (15 or 18 letters and digits).
pub fn is_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// One listing page: the records after `after_id` in id order.
pub fn list(
    object: &str,
    properties: &[String],
    after_id: Option<&str>,
    limit: usize,
) -> Result<String, ConnectorError> {
    let filter = match after_id {
        Some(id) => format!(" WHERE Id > {}", quote(id)),
        None => String::new(),
    };
    Ok(format!(
        "SELECT {} FROM {}{filter} ORDER BY Id LIMIT {limit}",
        select_list(properties)?,
        name(object, "object")?
    ))
}

/// Live records whose `property` is one of `values`.
pub fn find(
    object: &str,
    property: &str,
    values: &[String],
    properties: &[String],
) -> Result<String, ConnectorError> {
    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
    Ok(format!(
        "SELECT {} FROM {} WHERE {} IN ({}) ORDER BY Id",
        select_list(properties)?,
        name(object, "object")?,
        name(property, "field")?,
        list.join(", ")
    ))
}

/// Records changed at or after `since`, oldest change first.
pub fn changed_since(
    object: &str,
    properties: &[String],
    since: DateTime<Utc>,
) -> Result<String, ConnectorError> {
    Ok(format!(
        "SELECT {} FROM {} WHERE SystemModstamp >= {} ORDER BY SystemModstamp, Id",
        select_list(properties)?,
        name(object, "object")?,
        datetime(since)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_escape_their_quotes() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote(r"a\' OR Name != '"), r"'a\\\' OR Name != \''");
        assert_eq!(quote("x\ny"), r"'x\ny'");
        let q = find(
            "Contact",
            "Email",
            &["a@x.co".into(), "o'b@x.co".into()],
            &["Email".into(), "id".into()],
        )
        .unwrap();
        assert_eq!(
            q,
            r"SELECT Id, SystemModstamp, Email FROM Contact WHERE Email IN ('a@x.co', 'o\'b@x.co') ORDER BY Id"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(is_name("Ext_Id__c") && is_name("Account.Name"));
        assert!(!is_name("Name FROM User") && !is_name("") && !is_name("1x") && !is_name("a."));
        assert!(matches!(
            list("Contact; DELETE", &[], None, 10),
            Err(ConnectorError::Rejected { status: 400, .. })
        ));
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            changed_since("Contact", &["LastName".into()], t).unwrap(),
            "SELECT Id, SystemModstamp, LastName FROM Contact WHERE SystemModstamp >= 2024-01-02T03:04:05.678Z ORDER BY SystemModstamp, Id"
        );
        assert_eq!(
            list("Contact", &[], Some("003x"), 200).unwrap(),
            "SELECT Id, SystemModstamp FROM Contact WHERE Id > '003x' ORDER BY Id LIMIT 200"
        );
    }
}
