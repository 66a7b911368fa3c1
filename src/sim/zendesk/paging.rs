//! Zendesk simulator: list paging — cursor pagination (`page[size]`, `page[after]`,
//! `page[before]` → `meta` + `links`) and offset pagination (`page`, `per_page` →
//! `next_page`, `previous_page`, `count`, refused past the first 10,000 records).

use std::collections::BTreeMap;

use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::wire::bad_request;
use crate::sim::core::query::{encode, Query};

pub(crate) const MAX_PAGE: usize = 100;
/// Offset pagination serves only the first 10,000 records.
const OFFSET_LIMIT: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Paging {
    Cursor {
        size: usize,
        after: Option<u64>,
        before: Option<u64>,
    },
    Offset {
        page: usize,
        per_page: usize,
    },
}

/// An opaque cursor (base64 JSON, like Zendesk's) for a position in id order.
pub(crate) fn encode_cursor(id: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"o\":\"id\",\"v\":{id}}}"))
}

pub(crate) fn decode_cursor(raw: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    (v["o"] == "id").then(|| v["v"].as_u64()).flatten()
}

fn invalid_paging(description: &str) -> Response {
    bad_request("InvalidPaginationParameter", description)
}

/// The paging a list request asks for: cursor paging as soon as a `page[...]` parameter is
/// present, offset paging (100 per page by default) otherwise.
pub(crate) fn paging(q: &Query) -> Result<Paging, Response> {
    let cursor = ["page[size]", "page[after]", "page[before]"]
        .iter()
        .any(|k| q.has(k));
    if cursor {
        let size = match q.get("page[size]").map(str::parse::<usize>) {
            None => MAX_PAGE,
            Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
            Some(_) => return Err(invalid_paging("page[size] must be between 1 and 100")),
        };
        let decode = |key: &str| -> Result<Option<u64>, Response> {
            match q.get(key).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(raw) => decode_cursor(raw)
                    .map(Some)
                    .ok_or_else(|| invalid_paging(&format!("{key} is not a valid cursor"))),
            }
        };
        return Ok(Paging::Cursor {
            size,
            after: decode("page[after]")?,
            before: decode("page[before]")?,
        });
    }
    let number = |key: &str, default: usize| -> Result<usize, Response> {
        match q.get(key).map(str::parse::<usize>) {
            None => Ok(default),
            Some(Ok(n)) if n >= 1 => Ok(n),
            Some(_) => Err(invalid_paging(&format!("{key} must be a positive integer"))),
        }
    };
    let page = number("page", 1)?;
    // Zendesk caps per_page at 100 rather than refusing more
    let per_page = number("per_page", MAX_PAGE)?.min(MAX_PAGE);
    if (page - 1).saturating_mul(per_page) >= OFFSET_LIMIT {
        return Err(invalid_paging(
            "Offset pagination is limited to the first 10000 records; use cursor pagination",
        ));
    }
    Ok(Paging::Offset { page, per_page })
}

/// A list body over `map` (id order), keeping the records `keep` accepts. `path` is the
/// endpoint without `.json` (links add it); `filters` are extra query pairs kept in links.
pub(crate) fn list_body<T>(
    map: &BTreeMap<u64, T>,
    keep: impl Fn(&T) -> bool,
    id_of: impl Fn(&T) -> u64,
    paging: &Paging,
    link_base: &str,
    key: &str,
    render: impl Fn(&T) -> Value,
) -> Value {
    let mut body = Map::new();
    match *paging {
        Paging::Cursor {
            size,
            after,
            before,
        } => {
            let (items, has_more): (Vec<&T>, bool) = match (before, after) {
                (Some(b), _) => {
                    let mut v: Vec<&T> = map
                        .range(..b)
                        .rev()
                        .map(|(_, r)| r)
                        .filter(|r| keep(r))
                        .take(size + 1)
                        .collect();
                    let more = v.len() > size;
                    v.truncate(size);
                    v.reverse();
                    (v, more)
                }
                (None, a) => {
                    let start = a.map_or(0, |a| a.saturating_add(1));
                    let mut v: Vec<&T> = map
                        .range(start..)
                        .map(|(_, r)| r)
                        .filter(|r| keep(r))
                        .take(size + 1)
                        .collect();
                    let more = v.len() > size;
                    v.truncate(size);
                    (v, more)
                }
            };
            let first = items.first().map(|r| encode_cursor(id_of(r)));
            let last = items.last().map(|r| encode_cursor(id_of(r)));
            let link = |param: &str, c: &Option<String>| {
                c.as_ref().map(|c| {
                    format!(
                        "{link_base}{}page%5B{param}%5D={}&page%5Bsize%5D={size}",
                        sep(link_base),
                        encode(c)
                    )
                })
            };
            body.insert(
                key.into(),
                Value::Array(items.iter().map(|r| render(r)).collect()),
            );
            body.insert(
                "meta".into(),
                json!({"has_more": has_more, "after_cursor": last, "before_cursor": first}),
            );
            body.insert(
                "links".into(),
                json!({"prev": link("before", &first), "next": link("after", &last)}),
            );
        }
        Paging::Offset { page, per_page } => {
            let count = map.values().filter(|r| keep(r)).count();
            let items: Vec<Value> = map
                .values()
                .filter(|r| keep(r))
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(render)
                .collect();
            let link =
                |p: usize| format!("{link_base}{}page={p}&per_page={per_page}", sep(link_base));
            body.insert(key.into(), Value::Array(items));
            let next = (page * per_page < count).then(|| link(page + 1));
            let prev = (page > 1).then(|| link(page - 1));
            body.insert("next_page".into(), json!(next));
            body.insert("previous_page".into(), json!(prev));
            body.insert("count".into(), json!(count));
        }
    }
    Value::Object(body)
}

/// `?` or `&` to append a query pair to `url`.
pub(crate) fn sep(url: &str) -> &'static str {
    if url.contains('?') {
        "&"
    } else {
        "?"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::parse(Some(s))
    }

    #[test]
    fn parses_paging() {
        assert_eq!(
            paging(&q("")).ok(),
            Some(Paging::Offset {
                page: 1,
                per_page: 100
            })
        );
        assert_eq!(
            paging(&q("per_page=500&page=3")).ok(),
            Some(Paging::Offset {
                page: 3,
                per_page: 100
            })
        );
        assert!(paging(&q("page=101&per_page=100")).is_err());
        assert!(paging(&q("page=100&per_page=100")).is_ok());
        assert!(paging(&q("page=0")).is_err());
        let c = encode_cursor(42);
        assert_eq!(decode_cursor(&c), Some(42));
        assert_eq!(
            paging(&q(&format!("page[size]=5&page[after]={}", encode(&c)))).ok(),
            Some(Paging::Cursor {
                size: 5,
                after: Some(42),
                before: None
            })
        );
        assert!(paging(&q("page[size]=101")).is_err());
        assert!(paging(&q("page[after]=garbage")).is_err());
    }

    #[test]
    fn cursor_pages_walk_both_ways() {
        let map: BTreeMap<u64, u64> = (1..=7).map(|i| (i, i)).collect();
        let keep = |r: &u64| *r != 4;
        let page =
            |p: &Paging| list_body(&map, keep, |r| *r, p, "http://h/x.json", "xs", |r| json!(r));
        let first = page(&Paging::Cursor {
            size: 3,
            after: None,
            before: None,
        });
        assert_eq!(first["xs"], json!([1, 2, 3]));
        assert_eq!(first["meta"]["has_more"], true);
        let after = decode_cursor(first["meta"]["after_cursor"].as_str().unwrap_or(""));
        let second = page(&Paging::Cursor {
            size: 3,
            after,
            before: None,
        });
        assert_eq!(second["xs"], json!([5, 6, 7]));
        assert_eq!(second["meta"]["has_more"], false);
        let next = second["links"]["next"].as_str().unwrap_or("");
        assert!(
            next.starts_with("http://h/x.json?page%5Bafter%5D="),
            "{next}"
        );
        let before = decode_cursor(second["meta"]["before_cursor"].as_str().unwrap_or(""));
        let back = page(&Paging::Cursor {
            size: 2,
            after: None,
            before,
        });
        assert_eq!(back["xs"], json!([2, 3]));
        assert_eq!(back["meta"]["has_more"], true);
    }

    #[test]
    fn offset_pages_count() {
        let map: BTreeMap<u64, u64> = (1..=5).map(|i| (i, i)).collect();
        let body = list_body(
            &map,
            |_| true,
            |r| *r,
            &Paging::Offset {
                page: 2,
                per_page: 2,
            },
            "http://h/x.json?role=agent",
            "xs",
            |r| json!(r),
        );
        assert_eq!(body["xs"], json!([3, 4]));
        assert_eq!(body["count"], 5);
        assert_eq!(
            body["next_page"],
            "http://h/x.json?role=agent&page=3&per_page=2"
        );
        assert_eq!(
            body["previous_page"],
            "http://h/x.json?role=agent&page=1&per_page=2"
        );
    }
}
