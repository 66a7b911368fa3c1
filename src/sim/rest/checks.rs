//! REST simulator: profile checks — everything a profile must get right before a sim starts
//! (paths, pointers, page shapes a body can carry, names, durations, secrets, the login body,
//! the id field, filters, the webhook body's shape and headers), each refused with a message
//! naming the key.

use std::collections::BTreeSet;

use axum::http::{HeaderName, HeaderValue};
use base64::Engine as _;
use serde_json::Value;

use super::profile::{
    AuthKind, AuthProfile, PageStyle, Profile, ResourceProfile, Scheme, WebhookProfile,
};

fn pointer(key: &str, p: &str, may_be_empty: bool) -> Result<(), String> {
    if p.is_empty() && !may_be_empty {
        return Err(format!("{key}: a JSON pointer must not be empty"));
    }
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!("{key}: JSON pointer `{p}` must start with `/`"));
    }
    Ok(())
}

fn path(key: &str, p: &str) -> Result<(), String> {
    if !p.starts_with('/') || p.trim_end_matches('/').is_empty() {
        return Err(format!("{key}: `{p}` must be a path like `/contacts`"));
    }
    if p.contains(['?', '#', '{', '}', ' ']) {
        return Err(format!("{key}: `{p}` must be a plain path"));
    }
    Ok(())
}

fn header(key: &str, name: &str) -> Result<(), String> {
    HeaderName::from_bytes(name.as_bytes())
        .map(|_| ())
        .map_err(|_| format!("{key}: `{name}` is not a valid header name"))
}

/// Whether one pointer is the other or inside it (both would write the same place).
fn overlaps(a: &str, b: &str) -> bool {
    a == b || b.starts_with(&format!("{a}/")) || a.starts_with(&format!("{b}/"))
}

/// The base64 key of a Standard Webhooks secret (`whsec_` prefix optional).
pub(crate) fn standard_key(secret: &str) -> Result<Vec<u8>, String> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| {
            "webhooks.secret: a `standard` secret must be `whsec_<base64 key>`".to_string()
        })
}

impl Profile {
    /// Checks the whole profile (done by `parse`/`load` and again at start).
    pub fn check(&self) -> Result<(), String> {
        if self.resources.is_empty() {
            return Err("profile: at least one [resources.<name>] with a `path` is needed".into());
        }
        let mut paths = BTreeSet::new();
        if let Some(url) = self.auth.endpoint() {
            path("auth.url", url)?;
            paths.insert(url.trim_end_matches('/').to_string());
        }
        check_auth(&self.auth)?;
        self.rate_limit().map_err(|e| format!("rate_limit: {e}"))?;
        for (name, r) in &self.resources {
            check_resource(name, r)?;
            if let Some(log) = &r.deleted_log {
                if log == name || !self.resources.contains_key(log) {
                    return Err(format!(
                        "resources.{name}.deleted_log: `{log}` must name another resource of the profile"
                    ));
                }
            }
            for p in std::iter::once(&r.path).chain(r.search_path.iter()) {
                if !paths.insert(p.trim_end_matches('/').to_string()) {
                    return Err(format!("resources.{name}: path `{p}` is used twice"));
                }
            }
        }
        check_webhooks(&self.webhooks)
    }
}

/// Whether a string in `v` mentions `{secret}`.
fn mentions_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{secret}"),
        Value::Array(a) => a.iter().any(mentions_secret),
        Value::Object(o) => o.values().any(mentions_secret),
        _ => false,
    }
}

fn check_auth(a: &AuthProfile) -> Result<(), String> {
    if let Some(p) = &a.token {
        pointer("auth.token", p, false)?;
    }
    if let Some(t) = &a.ttl {
        crate::config::parse_duration(t).map_err(|e| format!("auth.ttl: {e}"))?;
    }
    if let Some(n) = &a.name {
        if n.is_empty() {
            return Err("auth.name must not be empty".into());
        }
    }
    if a.secret().is_empty() {
        return Err("auth.secret must not be empty".into());
    }
    let login = a.kind == AuthKind::Login;
    if let Some(body) = &a.body {
        if !login {
            return Err("auth.body: only `kind = \"login\"` takes a login body".into());
        }
        if !body.is_object() || !mentions_secret(body) {
            return Err(
                "auth.body: a table whose values name `{secret}` (and `{username}`)".into(),
            );
        }
    }
    if let Some(p) = &a.expires {
        if !login {
            return Err("auth.expires: only `kind = \"login\"` answers a lifetime".into());
        }
        pointer("auth.expires", p, false)?;
        if overlaps(p, a.token_pointer()) {
            return Err("auth.expires and auth.token write the same place".into());
        }
    }
    Ok(())
}

fn check_resource(name: &str, r: &ResourceProfile) -> Result<(), String> {
    let key = |k: &str| format!("resources.{name}.{k}");
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "resources.{name}: names may hold letters, digits, `_` and `-` only"
        ));
    }
    if r.path.is_empty() {
        return Err(format!("resources.{name}: `path` is required"));
    }
    path(&key("path"), &r.path)?;
    if let Some(s) = &r.search_path {
        path(&key("search_path"), s)?;
        if matches!(r.pages.style, PageStyle::NextUrl | PageStyle::Link) {
            return Err(format!(
                "{}: a search endpoint pages with `cursor`, `offset`, `page` or `none`",
                key("search_path")
            ));
        }
    }
    pointer(&key("records"), &r.records, true)?;
    pointer(&key("record"), &r.record, true)?;
    if r.wrap.as_deref() == Some("") {
        return Err(format!(
            "{}: must not be empty (unset it instead)",
            key("wrap")
        ));
    }
    if r.id_field.is_empty() {
        return Err(format!("{}: must not be empty", key("id_field")));
    }
    if r.also_numeric_id && r.id_field == "id" {
        return Err(format!(
            "{}: needs an id_field other than `id`",
            key("also_numeric_id")
        ));
    }
    for (k, v) in [
        ("updated_at", &r.updated_at),
        ("created_at", &r.created_at),
        ("tombstone", &r.tombstone),
    ] {
        if v.is_empty() || *v == r.id_field || (r.also_numeric_id && v == "id") {
            return Err(format!("{}: `{v}` cannot name a maintained field", key(k)));
        }
    }
    if let Some(f) = r.filters.iter().flatten().find(|f| f.is_empty()) {
        return Err(format!("{}: `{f}` is not a field name", key("filters")));
    }
    if r.updated_at == r.created_at || r.tombstone == r.updated_at || r.tombstone == r.created_at {
        return Err(format!(
            "resources.{name}: updated_at, created_at and tombstone must differ"
        ));
    }
    if !(400..=599).contains(&r.missing_status) {
        return Err(format!(
            "{}: must be a 4xx or 5xx status",
            key("missing_status")
        ));
    }
    if r.reuse_ids && r.ids != super::profile::IdKind::Integer {
        return Err(format!("{}: needs ids = \"integer\"", key("reuse_ids")));
    }
    let maintained = r.maintained();
    for (k, fields) in [("required", &r.required), ("unique", &r.unique)] {
        if let Some(f) = fields.iter().find(|f| maintained.contains(&f.as_str())) {
            return Err(format!("{}: `{f}` is maintained by the sim", key(k)));
        }
    }
    check_pages(name, r)
}

fn check_pages(name: &str, r: &ResourceProfile) -> Result<(), String> {
    let p = &r.pages;
    let key = |k: &str| format!("resources.{name}.pages.{k}");
    if p.default_size == 0 || p.max_size == 0 || p.default_size > p.max_size {
        return Err(format!(
            "{}: default_size and max_size must be positive, default_size <= max_size",
            key("default_size")
        ));
    }
    let mut params = vec![("size_param", p.size_param.as_str())];
    params.extend(p.param().map(|x| ("param", x)));
    params.extend(r.since_param.as_deref().map(|x| ("since_param", x)));
    params.extend(r.sort_param.as_deref().map(|x| ("sort_param", x)));
    let mut seen = BTreeSet::new();
    for (k, v) in &params {
        if v.is_empty() {
            return Err(format!("resources.{name}: {k} must not be empty"));
        }
        if !seen.insert(*v) {
            return Err(format!("resources.{name}: parameter `{v}` is used twice"));
        }
    }
    if let Some(h) = &p.cursor_header {
        header(&key("cursor_header"), h)?;
    }
    let mut pointers: Vec<(&str, &str)> = Vec::new();
    pointers.extend(p.cursor_pointer().map(|x| ("cursor", x)));
    pointers.extend(p.next_pointer().map(|x| ("next", x)));
    pointers.extend(p.has_more.as_deref().map(|x| ("has_more", x)));
    pointers.extend(p.total.as_deref().map(|x| ("total", x)));
    for (k, v) in &pointers {
        pointer(&key(k), v, false)?;
    }
    if r.records.is_empty() {
        if let Some((k, _)) = pointers.first() {
            return Err(format!(
                "{}: a bare-array list answer (records = \"\") has nowhere to put it; \
                 use cursor_header for cursors",
                key(k)
            ));
        }
    } else {
        pointers.push(("records", r.records.as_str()));
    }
    for (i, (ka, a)) in pointers.iter().enumerate() {
        if let Some((kb, _)) = pointers[i + 1..].iter().find(|(_, b)| overlaps(a, b)) {
            return Err(format!(
                "resources.{name}: pointers `{ka}` and `{kb}` write the same place"
            ));
        }
    }
    Ok(())
}

fn check_webhooks(w: &WebhookProfile) -> Result<(), String> {
    if let Some(h) = w.header() {
        header("webhooks.header", h)?;
    }
    if let Some(h) = &w.timestamp_header {
        header("webhooks.timestamp_header", h)?;
    }
    if w.scheme == Scheme::Hmac && w.signed.contains("{timestamp}") && w.timestamp_header.is_none()
    {
        return Err("webhooks.signed uses {timestamp}: set webhooks.timestamp_header".into());
    }
    if w.secret().is_empty() && w.scheme != Scheme::None {
        return Err("webhooks.secret must not be empty".into());
    }
    if w.scheme == Scheme::Standard {
        standard_key(w.secret())?;
    }
    if !(1..=1000).contains(&w.batch) {
        return Err(format!(
            "webhooks.batch must be 1 to 1000 events a delivery (got {})",
            w.batch
        ));
    }
    check_event_shape(w)
}

/// `[webhooks.event]`, `[webhooks.kinds]`, `resource_value`, `headers` and `id_header`.
fn check_event_shape(w: &WebhookProfile) -> Result<(), String> {
    let parts = w.event.pointers();
    for (k, p) in &parts {
        pointer(&format!("webhooks.event.{k}"), p, false)?;
    }
    for (i, (ka, a)) in parts.iter().enumerate() {
        if let Some((kb, _)) = parts[i + 1..].iter().find(|(_, b)| overlaps(a, b)) {
            return Err(format!(
                "webhooks.event: `{ka}` and `{kb}` write the same place"
            ));
        }
    }
    let k = &w.kinds;
    for (name, word) in [
        ("created", &k.created),
        ("updated", &k.updated),
        ("deleted", &k.deleted),
    ] {
        if word.is_empty() {
            return Err(format!("webhooks.kinds.{name} must not be empty"));
        }
    }
    if w.resource_value.is_empty() {
        return Err("webhooks.resource_value must not be empty".into());
    }
    for (name, value) in &w.headers {
        let key = format!("webhooks.headers.{name}");
        header(&key, name)?;
        for (placeholder, part) in [("{kind}", "kind"), ("{resource}", "resource")] {
            let absent = parts.iter().all(|(k, _)| *k != part);
            if value.contains(placeholder) && absent {
                return Err(format!("{key}: {placeholder} needs webhooks.event.{part}"));
            }
        }
        if HeaderValue::from_str(value).is_err() {
            return Err(format!("{key}: `{value}` is not a valid header value"));
        }
    }
    if let Some(h) = &w.id_header {
        header("webhooks.id_header", h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Profile::parse(text).expect_err("refused")
    }

    #[test]
    fn minimal_profile_takes_defaults() {
        let p = Profile::parse("[resources.contacts]\npath = \"/contacts\"\n").expect("parses");
        let r = p.resource("contacts").expect("resource");
        assert_eq!((r.records.as_str(), r.record.as_str()), ("/data", ""));
        assert_eq!(r.pages.param(), Some("cursor"));
        assert_eq!(r.pages.cursor_pointer(), Some("/next_cursor"));
        assert_eq!(p.auth.secret(), "sim-secret");
        assert_eq!(p.webhooks.header(), Some("X-Signature"));
    }

    #[test]
    fn mistakes_are_named() {
        assert!(err("[resources.a]\npath = \"/a\"\nbogus = 1\n").contains("bogus"));
        assert!(err("[resources.a]\nids = \"integer\"\n").contains("`path` is required"));
        assert!(err("").contains("at least one"));
        let bare = "[resources.a]\npath = \"/a\"\nrecords = \"\"\n";
        assert!(err(bare).contains("cursor_header"));
        let e = err("[resources.a]\npath = \"/a\"\n[resources.b]\npath = \"/a/\"\n");
        assert!(e.contains("used twice"), "{e}");
        let e = err("rate_limit = \"lots\"\n[resources.a]\npath = \"/a\"\n");
        assert!(e.contains("rate_limit"), "{e}");
        let e = err("[auth]\nttl = \"soon\"\n[resources.a]\npath = \"/a\"\n");
        assert!(e.contains("auth.ttl"), "{e}");
        let e = err("[resources.a]\npath = \"/a\"\nrecords = \"/data\"\n[resources.a.pages]\nhas_more = \"/data/more\"\n");
        assert!(e.contains("same place"), "{e}");
        let e = err("[webhooks]\nscheme = \"standard\"\nsecret = \"whsec_%%%\"\n[resources.a]\npath = \"/a\"\n");
        assert!(e.contains("whsec_"), "{e}");
        let e = err("[webhooks]\nsigned = \"{timestamp}.{body}\"\n[resources.a]\npath = \"/a\"\n");
        assert!(e.contains("timestamp_header"), "{e}");
        let e = err("[webhooks]\nbatch = 0\n[resources.a]\npath = \"/a\"\n");
        assert!(e.contains("webhooks.batch"), "{e}");
        let e = err("[resources.a]\npath = \"/a\"\nids = \"string\"\nreuse_ids = true\n");
        assert!(e.contains("reuse_ids"), "{e}");
    }

    #[test]
    fn new_keys_are_checked() {
        let r = |extra: &str| format!("[resources.a]\npath = \"/a\"\n{extra}");
        let e = err(&r("id_field = \"\"\n"));
        assert!(e.contains("id_field"), "{e}");
        let e = err(&r("id_field = \"number\"\nupdated_at = \"number\"\n"));
        assert!(e.contains("maintained"), "{e}");
        let e = err(&r("also_numeric_id = true\n"));
        assert!(e.contains("also_numeric_id"), "{e}");
        let e = err(&r("filters = [\"\"]\n"));
        assert!(e.contains("filters"), "{e}");
        let e = err(&r("[auth]\nbody = { user = \"{username}\" }\n"));
        assert!(e.contains("auth.body"), "{e}");
        let e = err(&r(
            "[auth]\nkind = \"login\"\nbody = { user = \"{username}\" }\n",
        ));
        assert!(e.contains("{secret}"), "{e}");
        let e = err(&r("[auth]\nkind = \"login\"\nexpires = \"/token\"\n"));
        assert!(e.contains("same place"), "{e}");
        let e = err(&r("[webhooks.event]\nrecord = \"/type/x\"\n"));
        assert!(e.contains("same place"), "{e}");
        let e = err(&r("[webhooks.event]\nkeys = \"keys\"\n"));
        assert!(e.contains("webhooks.event.keys"), "{e}");
        let e = err(&r(
            "[webhooks.event]\nkind = \"\"\n[webhooks.headers]\nX-Event = \"{kind}\"\n",
        ));
        assert!(e.contains("needs webhooks.event.kind"), "{e}");
        let e = err(&r("[webhooks.kinds]\ncreated = \"\"\n"));
        assert!(e.contains("kinds.created"), "{e}");
        let e = err(&r("[webhooks]\nid_header = \"bad header\"\n"));
        assert!(e.contains("id_header"), "{e}");
        let ok = r(
            "id_field = \"documentId\"\nids = \"string\"\nalso_numeric_id = true\n\
                    filters = [\"slug\"]\nupdate = \"put_partial\"\n\
                    [auth]\nkind = \"login\"\nexpires = \"/data/expires\"\nexpires_unit = \"ms\"\n\
                    body = { email = \"{username}\", password = \"{secret}\" }\n\
                    [webhooks]\nheaders = { X-Event = \"{kind}\" }\nid_header = \"X-Delivery\"\n\
                    event = { kind = \"/event\", record = \"/entry\", id = \"\" }\n",
        );
        Profile::parse(&ok).expect("a profile using every new key parses");
    }

    #[test]
    fn load_names_the_file() {
        let e = Profile::load("/nonexistent/profile.toml").expect_err("missing");
        assert!(e.contains("/nonexistent/profile.toml"), "{e}");
    }
}
