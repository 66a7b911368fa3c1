//! REST connector, inbound edge: paging through a listing — offset, page number, cursor (from
//! the body or a header, sent in the query or a JSON body), next-page URL or `Link` header —
//! and the stop rules: an empty page, a has-more flag, a total reached, no next cursor, a
//! cursor that repeats, the page cap. The position between pages is opaque text the engine
//! stores and hands back.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::Client;
use super::config::{PageStyle, Resource};
use super::record;
use crate::connectors::ConnectorError;

/// Where a listing stands between two pages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Pages read so far.
    pub pages: u64,
    /// Records read so far.
    pub seen: u64,
    /// What the next request sends: an offset, a page number, a cursor or a URL.
    pub next: Option<Next>,
    /// The cursor or URL of the page before, to notice a loop of two.
    pub before: Option<String>,
    /// A digest of the ids on the page before: a page that repeats it (a next cursor or URL
    /// leading back to the first page, which had none to compare) is not read twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Next {
    Offset(u64),
    Page(u64),
    Cursor(String),
    Url(String),
}

impl Position {
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("a position serializes")
    }

    pub fn parse(text: Option<&str>) -> Result<Position, ConnectorError> {
        match text {
            None => Ok(Position::default()),
            Some(t) => serde_json::from_str(t).map_err(|e| ConnectorError::Rejected {
                status: 0,
                message: format!("a stored listing position is not ferry's: {e}"),
            }),
        }
    }
}

/// One page's records and the position after it (None: the listing ended).
pub struct Read {
    pub records: Vec<Value>,
    pub after: Option<Position>,
}

/// Reads the page at `at`, with `extra` query parameters (a change filter).
pub async fn read(
    client: &Client,
    connection: &str,
    res: &Resource,
    extra: &[(String, String)],
    at: &Position,
) -> Result<Read, ConnectorError> {
    let p = &res.pages;
    let mut params: Vec<(String, String)> = res
        .query
        .iter()
        .chain(extra.iter().map(|(k, v)| (k, v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !p.size_param.is_empty() && p.style != PageStyle::None {
        params.push((p.size_param.clone(), p.size.to_string()));
    }
    let param = |default: &str| p.param.clone().unwrap_or_else(|| default.to_string());
    let mut target = res.list_path.clone().unwrap_or_else(|| res.path.clone());
    match (&at.next, p.style) {
        (Some(Next::Url(u)), _) => {
            target = u.clone();
            params.clear();
        }
        (Some(Next::Offset(o)), _) => params.push((param("offset"), o.to_string())),
        (None, PageStyle::Offset) => params.push((param("offset"), "0".into())),
        (Some(Next::Page(n)), _) => params.push((param("page"), n.to_string())),
        (None, PageStyle::Page) => params.push((param("page"), p.first_page.to_string())),
        (Some(Next::Cursor(c)), _) => params.push((param("cursor"), c.clone())),
        (None, _) => {}
    }
    let answer = if p.cursor_in_body && !matches!(at.next, Some(Next::Url(_))) {
        // the page size, offset and page number are numbers; filters and cursors stay text
        // (a find value `0150` is not the number 150)
        let position = match p.style {
            PageStyle::Offset => Some(param("offset")),
            PageStyle::Page => Some(param("page")),
            _ => None,
        };
        let numeric = |k: &str| k == p.size_param || position.as_deref() == Some(k);
        let body: Map<String, Value> = params
            .into_iter()
            .map(|(k, v)| {
                let v = match v.parse::<i64>() {
                    Ok(n) if numeric(&k) => Value::from(n),
                    _ => Value::String(v),
                };
                (k, v)
            })
            .collect();
        client
            .call_classified(Method::POST, &target, &[], Some(&Value::Object(body)))
            .await?
    } else {
        client
            .call_classified(Method::GET, &target, &params, None)
            .await?
    };
    let mut records = record::many(res, &answer.body)?.to_vec();
    let count = records.len();
    let digest = digest(res, &records);
    if digest.is_some() && digest == at.last {
        tracing::warn!(connection, resource = %res.path, "a listing page repeats the page before; its records are not read again");
        records.clear();
    }
    // the position moves over the repeated page all the same: the stop rules decide the end
    let after = next(connection, res, at, &answer.body, &answer.headers, count)
        .map(|p| Position { last: digest, ..p });
    Ok(Read { records, after })
}

/// A digest of a page's record ids (of the whole record where one has none); None when empty.
fn digest(res: &Resource, records: &[Value]) -> Option<String> {
    use sha2::{Digest, Sha256};
    if records.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    for r in records {
        match crate::connectors::path::get(r, &res.id).and_then(record::id_text) {
            Some(id) => h.update(id.as_bytes()),
            None => h.update(r.to_string().as_bytes()),
        }
        h.update(b"\n");
    }
    Some(hex::encode(&h.finalize()[..8]))
}

/// The position after a page of `count` records, or None when a stop rule says it was the
/// last.
fn next(
    connection: &str,
    res: &Resource,
    at: &Position,
    body: &Value,
    headers: &HeaderMap,
    count: usize,
) -> Option<Position> {
    let p = &res.pages;
    let seen = at.seen + count as u64;
    if count == 0 || p.style == PageStyle::None {
        return None;
    }
    if let Some(ptr) = &p.has_more {
        if body.pointer(ptr).and_then(Value::as_bool) == Some(false) {
            return None;
        }
    }
    if let Some(ptr) = &p.total {
        let total = body
            .pointer(ptr)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
        if total.is_some_and(|t| seen >= t) {
            return None;
        }
    }
    if at.pages + 1 >= p.max_pages {
        tracing::warn!(connection, resource = %res.path, pages = at.pages + 1, "a listing reached its page cap (pages.max_pages); the rest is left for the next pass");
        return None;
    }
    let current = match &at.next {
        Some(Next::Cursor(c)) | Some(Next::Url(c)) => Some(c.clone()),
        _ => None,
    };
    let following = match p.style {
        PageStyle::Offset => Next::Offset(match at.next {
            Some(Next::Offset(o)) => o + count as u64,
            _ => count as u64,
        }),
        PageStyle::Page => Next::Page(match at.next {
            Some(Next::Page(n)) => n + 1,
            _ => p.first_page + 1,
        }),
        PageStyle::Cursor => {
            let cursor = match &p.cursor_header {
                Some(h) => headers
                    .get(h.as_str())
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                None => body
                    .pointer(p.cursor.as_deref().unwrap_or("/next_cursor"))
                    .and_then(record::id_text),
            };
            Next::Cursor(cursor.filter(|c| !c.is_empty())?)
        }
        PageStyle::NextUrl => Next::Url(
            body.pointer(p.next.as_deref().unwrap_or("/next"))
                .and_then(Value::as_str)
                .filter(|u| !u.is_empty())?
                .to_string(),
        ),
        PageStyle::Link => Next::Url(link_next(headers)?),
        PageStyle::None => return None,
    };
    if let Next::Cursor(c) | Next::Url(c) = &following {
        if Some(c) == current.as_ref() || Some(c) == at.before.as_ref() {
            tracing::warn!(connection, resource = %res.path, "a listing's next cursor repeats one already read; the listing ends there");
            return None;
        }
    }
    Some(Position {
        pages: at.pages + 1,
        seen,
        next: Some(following),
        before: current,
        last: None,
    })
}

/// The `rel="next"` target of RFC 8288 `Link` headers.
fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all("link") {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let is_next = pieces.any(|param| {
                let param = param.trim().to_ascii_lowercase();
                let Some(rel) = param.strip_prefix("rel=") else {
                    return false;
                };
                rel.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r == "next")
            });
            if is_next {
                return Some(
                    target
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string(),
                );
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(pages: &str) -> Resource {
        toml::from_str(&format!("path = \"/x\"\n[pages]\n{pages}")).unwrap()
    }

    #[test]
    fn stop_rules() {
        let h = HeaderMap::new();
        let at = Position::default();
        let cur = res("style = \"cursor\"\nhas_more = \"/more\"");
        // no records ends whatever the flag says
        assert!(next(
            "c",
            &cur,
            &at,
            &json!({"more": true, "next_cursor": "b"}),
            &h,
            0
        )
        .is_none());
        assert!(next(
            "c",
            &cur,
            &at,
            &json!({"more": false, "next_cursor": "b"}),
            &h,
            3
        )
        .is_none());
        let after = next(
            "c",
            &cur,
            &at,
            &json!({"more": true, "next_cursor": "b"}),
            &h,
            3,
        )
        .unwrap();
        assert_eq!(after.next, Some(Next::Cursor("b".into())));
        // the same cursor again is a loop
        assert!(next("c", &cur, &after, &json!({"next_cursor": "b"}), &h, 3).is_none());
        let total = res("style = \"offset\"\ntotal = \"/meta/total\"");
        let p = next("c", &total, &at, &json!({"meta": {"total": 5}}), &h, 3).unwrap();
        assert_eq!(p.next, Some(Next::Offset(3)));
        assert!(next("c", &total, &p, &json!({"meta": {"total": 5}}), &h, 2).is_none());
        let capped = res("style = \"page\"\nmax_pages = 2");
        let p = next("c", &capped, &at, &json!({}), &h, 1).unwrap();
        assert_eq!(p.next, Some(Next::Page(2)));
        assert!(next("c", &capped, &p, &json!({}), &h, 1).is_none());
    }

    #[test]
    fn link_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            "<https://a/x?page=1>; rel=\"first\", <https://a/x?page=3>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(link_next(&h).as_deref(), Some("https://a/x?page=3"));
        assert_eq!(link_next(&HeaderMap::new()), None);
    }
}
