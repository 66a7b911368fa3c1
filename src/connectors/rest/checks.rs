//! REST connector, configuration edge: the checks `ferry apply` and the start run on a
//! `kind = "rest"` connection — one sentence per mistake, naming the key to fix.

use super::config::{AuthKind, ChangeStyle, PageStyle, Resource, Webhook, WebhookScheme};
use crate::config::ConnectionConfig;

/// Checks connection `name`; `Err` is the first mistake found.
pub fn validate(name: &str, c: &ConnectionConfig) -> Result<(), String> {
    let at = |key: &str| format!("connection `{name}`: {key}");
    if c.resources.is_empty() {
        return Err(format!(
            "connection `{name}`: a rest connection needs at least one [connections.{name}.resources.<object>] with its path"
        ));
    }
    if let Some(a) = &c.auth {
        let need = |what: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                let kind = match a.kind {
                    AuthKind::ClientCredentials => "client_credentials",
                    AuthKind::Login => "login",
                    _ => "basic",
                };
                Err(at(&format!("auth kind `{kind}` needs auth.{what}")))
            }
        };
        match a.kind {
            AuthKind::Basic => need("username", a.username.is_some())?,
            AuthKind::ClientCredentials => {
                need("username (the client id)", a.username.is_some())?;
                need("url (the token endpoint)", a.url.is_some())?;
            }
            AuthKind::Login => need("url (the login call's path)", a.url.is_some())?,
            _ => {}
        }
        if let Some(p) = &a.token {
            pointer(&at("auth.token"), p)?;
        }
        if let Some(p) = &a.expires {
            pointer(&at("auth.expires"), p)?;
        }
        if let Some(t) = &a.ttl {
            crate::config::parse_duration(t).map_err(|e| at(&format!("auth.ttl: {e}")))?;
        }
    }
    for (k, v) in &c.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(v).is_err()
        {
            return Err(at(&format!(
                "headers: `{k}` is not a valid HTTP header name and value"
            )));
        }
    }
    for (object, r) in &c.resources {
        resource(&format!("connection `{name}`, resource `{object}`"), r)?;
    }
    if let Some(w) = &c.webhook {
        webhook(&at("webhook"), w, c)?;
    }
    Ok(())
}

fn resource(at: &str, r: &Resource) -> Result<(), String> {
    let bad = |m: String| Err(format!("{at}: {m}"));
    if !r.path.starts_with('/') {
        return bad(format!("path `{}` must start with /", r.path));
    }
    if let Some(t) = &r.item_path {
        if !t.contains("{id}") {
            return bad(format!("item_path `{t}` must contain {{id}}"));
        }
    }
    for (key, p) in [("records", &r.records), ("record", &r.record)] {
        if !p.is_empty() {
            pointer(&format!("{at}: {key}"), p)?;
        }
    }
    let pages = &r.pages;
    for (key, p) in [
        ("pages.cursor", &pages.cursor),
        ("pages.next", &pages.next),
        ("pages.has_more", &pages.has_more),
        ("pages.total", &pages.total),
    ] {
        if let Some(p) = p {
            pointer(&format!("{at}: {key}"), p)?;
        }
    }
    if pages.size == 0 {
        return bad("pages.size must be at least 1".into());
    }
    if pages.max_pages == 0 {
        return bad("pages.max_pages must be at least 1".into());
    }
    if pages.cursor_in_body && r.list_path.is_none() {
        return bad(
            "pages.cursor_in_body sends a POST, which to the collection would create a record: set list_path (the search endpoint)".into(),
        );
    }
    if pages.cursor_header.is_some() && pages.style != PageStyle::Cursor {
        return bad("pages.cursor_header is only for style = \"cursor\"".into());
    }
    if r.changes.style == ChangeStyle::Filter
        && r.changes.param.is_none()
        && !r
            .changes
            .query
            .values()
            .any(|v| v.contains(super::feed::SINCE))
    {
        return bad(
            "changes.style = \"filter\" needs changes.param (the query parameter taking the updated-since time) or a changes.query value holding {since}".into(),
        );
    }
    if let Some(d) = &r.deletions {
        if !d.path.starts_with('/') {
            return bad(format!("deletions.path `{}` must start with /", d.path));
        }
        if let Some(p) = &d.records {
            if !p.is_empty() {
                pointer(&format!("{at}: deletions.records"), p)?;
            }
        }
        if r.changes.style == ChangeStyle::None {
            return bad("deletions are read by the change polls: set changes.style too".into());
        }
        if r.reused_ids {
            return bad("deletions cannot be told apart under reused_ids (an entry names an id, not which record had it): use a tombstone (`deleted`) or the reconcile's sweep".into());
        }
    }
    if !["PATCH", "PUT", "POST"].contains(&r.update.method.to_ascii_uppercase().as_str()) {
        return bad(format!(
            "update.method `{}` must be PATCH, PUT or POST",
            r.update.method
        ));
    }
    if let Some(s) = r.gone.iter().find(|s| !(400..=599).contains(*s)) {
        return bad(format!("gone = {s} is not an HTTP error status"));
    }
    if let Some(f) = &r.find {
        if f.property.is_empty() {
            return bad("find.property must name a property".into());
        }
    }
    Ok(())
}

fn webhook(at: &str, w: &Webhook, c: &ConnectionConfig) -> Result<(), String> {
    let bad = |m: String| Err(format!("{at}: {m}"));
    if w.scheme != WebhookScheme::None && c.webhook_secret_env.is_none() {
        return bad(
            "a signed scheme needs webhook_secret_env (the environment variable holding the secret); scheme = \"none\" accepts unsigned deliveries".into(),
        );
    }
    if w.scheme == WebhookScheme::Hmac
        && w.signed.contains("{timestamp}")
        && w.timestamp_header.is_none()
    {
        return bad("signed names {timestamp} but timestamp_header is not set".into());
    }
    if let Some(t) = &w.tolerance {
        crate::config::parse_duration(t).map_err(|e| format!("{at}: tolerance: {e}"))?;
    }
    if let Some(r) = w
        .resource
        .as_ref()
        .filter(|r| !c.resources.contains_key(*r))
    {
        return bad(format!(
            "resource `{r}` is not one of the connection's resources"
        ));
    }
    for (key, p) in [
        ("resource_from", &w.resource_from),
        ("event_id", &w.event_id),
    ] {
        if let Some(p) = p {
            pointer(&format!("{at}.{key}"), p)?;
        }
    }
    for p in w.id.iter().flatten() {
        pointer(&format!("{at}.id"), p)?;
    }
    if w.id.as_ref().is_some_and(Vec::is_empty) {
        return bad("id must name at least one JSON pointer".into());
    }
    if !w.events.is_empty() {
        pointer(&format!("{at}.events"), &w.events)?;
    }
    pointer(&format!("{at}.kind"), &w.kind)
}

/// A JSON pointer (RFC 6901) starts with `/`.
fn pointer(at: &str, p: &str) -> Result<(), String> {
    if p.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{at} = `{p}` must be a JSON pointer starting with / (e.g. /{p})"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(extra: &str) -> Result<(), String> {
        let toml = format!(
            "kind = \"rest\"\nbase_url = \"http://127.0.0.1:9\"\ntoken_env = \"T\"\n{extra}"
        );
        let c: ConnectionConfig = toml::from_str(&toml).map_err(|e| e.to_string())?;
        validate("crm", &c)
    }

    #[test]
    fn every_other_mistake_in_one_sentence() {
        let people = "[resources.people]\npath = \"/p\"\n";
        let cases: &[(String, &str)] = &[
            (
                format!("{people}item_path = \"/p/one\""),
                "resource `people`: item_path `/p/one` must contain {id}",
            ),
            (
                format!("{people}[resources.people.pages]\nsize = 0"),
                "resource `people`: pages.size must be at least 1",
            ),
            (
                format!("{people}[resources.people.pages]\nmax_pages = 0"),
                "resource `people`: pages.max_pages must be at least 1",
            ),
            (
                format!("{people}[resources.people.pages]\nstyle = \"cursor\"\ncursor_in_body = true"),
                "resource `people`: pages.cursor_in_body sends a POST, which to the collection would create a record: set list_path (the search endpoint)",
            ),
            (
                format!("{people}[resources.people.pages]\nstyle = \"offset\"\ncursor_header = \"X-Next\""),
                "resource `people`: pages.cursor_header is only for style = \"cursor\"",
            ),
            (
                format!("{people}[resources.people.pages]\nhas_more = \"more\""),
                "resource `people`: pages.has_more = `more` must be a JSON pointer starting with / (e.g. /more)",
            ),
            (
                format!("{people}[resources.people.update]\nmethod = \"DELETE\""),
                "resource `people`: update.method `DELETE` must be PATCH, PUT or POST",
            ),
            (
                format!("{people}gone = [200]"),
                "resource `people`: gone = 200 is not an HTTP error status",
            ),
            (
                format!("{people}find = {{ property = \"\" }}"),
                "resource `people`: find.property must name a property",
            ),
            (
                format!("[auth]\nkind = \"client_credentials\"\nusername = \"id\"\n{people}"),
                "connection `crm`: auth kind `client_credentials` needs auth.url (the token endpoint)",
            ),
            (
                format!("[auth]\nkind = \"login\"\n{people}"),
                "connection `crm`: auth kind `login` needs auth.url (the login call's path)",
            ),
            (
                format!("[auth]\nkind = \"login\"\nurl = \"/login\"\ntoken = \"token\"\n{people}"),
                "connection `crm`: auth.token = `token` must be a JSON pointer starting with / (e.g. /token)",
            ),
            (
                format!("webhook_secret_env = \"S\"\n{people}[webhook]\nscheme = \"hmac\"\nheader = \"X-Sig\"\nsigned = \"{{timestamp}}.{{body}}\""),
                "connection `crm`: webhook: signed names {timestamp} but timestamp_header is not set",
            ),
            (
                format!("webhook_secret_env = \"S\"\n{people}[webhook]\nscheme = \"secret\"\nheader = \"X-Token\"\nresource = \"tickets\""),
                "connection `crm`: webhook: resource `tickets` is not one of the connection's resources",
            ),
            (
                format!("webhook_secret_env = \"S\"\n{people}[webhook]\nscheme = \"secret\"\nheader = \"X-Token\"\nid = []"),
                "connection `crm`: webhook: id must name at least one JSON pointer",
            ),
        ];
        for (toml, want) in cases {
            let got = check(toml).expect_err(toml);
            assert!(
                got.ends_with(want),
                "{toml}\n  said: {got}\n  want: …{want}"
            );
        }
    }

    #[test]
    fn deletions_feeds_are_checked() {
        let feed = "[resources.people]\npath = \"/p\"\n[resources.people.changes]\nstyle = \"filter\"\nparam = \"since\"\n";
        assert!(check(&format!(
            "{feed}[resources.people.deletions]\npath = \"/deleted\""
        ))
        .is_ok());
        assert_eq!(
            check(&format!(
                "{feed}[resources.people.deletions]\npath = \"deleted\""
            ))
            .unwrap_err(),
            "connection `crm`, resource `people`: deletions.path `deleted` must start with /"
        );
        assert_eq!(
            check("[resources.people]\npath = \"/p\"\n[resources.people.deletions]\npath = \"/deleted\"").unwrap_err(),
            "connection `crm`, resource `people`: deletions are read by the change polls: set changes.style too"
        );
        assert!(check(&format!(
            "{}[resources.people.deletions]\npath = \"/deleted\"",
            feed.replace("path = \"/p\"\n", "path = \"/p\"\nreused_ids = true\n")
        ))
        .unwrap_err()
        .contains("cannot be told apart under reused_ids"));
    }

    #[test]
    fn one_sentence_per_mistake() {
        assert!(check("[resources.people]\npath = \"/people\"").is_ok());
        assert_eq!(
            check("").unwrap_err(),
            "connection `crm`: a rest connection needs at least one [connections.crm.resources.<object>] with its path"
        );
        assert_eq!(
            check("[resources.people]\npath = \"people\"").unwrap_err(),
            "connection `crm`, resource `people`: path `people` must start with /"
        );
        assert_eq!(
            check("[resources.people]\npath = \"/p\"\nrecords = \"data\"").unwrap_err(),
            "connection `crm`, resource `people`: records = `data` must be a JSON pointer starting with / (e.g. /data)"
        );
        assert_eq!(
            check("[resources.people]\npath = \"/p\"\n[resources.people.changes]\nstyle = \"filter\"").unwrap_err(),
            "connection `crm`, resource `people`: changes.style = \"filter\" needs changes.param (the query parameter taking the updated-since time) or a changes.query value holding {since}"
        );
        assert!(check(
            "[resources.people]\npath = \"/p\"\n[resources.people.changes]\nstyle = \"filter\"\nquery = { \"filter[_or][0][a][_gte]\" = \"{since}\" }"
        )
        .is_ok());
        assert_eq!(
            check("[auth]\nkind = \"basic\"\n[resources.people]\npath = \"/p\"").unwrap_err(),
            "connection `crm`: auth kind `basic` needs auth.username"
        );
        assert_eq!(
            check("[resources.people]\npath = \"/p\"\n[webhook]\nscheme = \"hmac\"").unwrap_err(),
            "connection `crm`: webhook: a signed scheme needs webhook_secret_env (the environment variable holding the secret); scheme = \"none\" accepts unsigned deliveries"
        );
        assert!(check(
            "[resources.people]\npath = \"/p\"\n[resources.people.pages]\nstyle = \"sideways\""
        )
        .unwrap_err()
        .contains("unknown variant `sideways`"));
        assert_eq!(
            check("headers = { \"Bad Name\" = \"x\" }\n[resources.people]\npath = \"/p\"")
                .unwrap_err(),
            "connection `crm`: headers: `Bad Name` is not a valid HTTP header name and value"
        );
        assert!(check(
            "headers = { \"X-Api-Version\" = \"2024-01\" }\n[resources.people]\npath = \"/p\""
        )
        .is_ok());
    }
}
