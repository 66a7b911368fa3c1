//! REST simulator: lists — `GET {path}` and the optional search endpoint (the same parameters
//! in a JSON body), with the since filter, the sort, equality filters on record fields (bare,
//! or in Strapi's `filters[f][$eq]` and Directus's `filter[f][_eq]` forms, whose `$gte`/`_gte`
//! on the maintained times filter by time), and every pagination style (offset, page, cursor, next_url, link, none) with its stop signals
//! and the lies a profile can ask for (`has_more_lies`, `repeat_cursor`).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::profile::{AuthKind, PageStyle, ResourceProfile};
use super::store::{parse_time, Sort, Table};
use super::wire::{first, json_response, put, ApiError};
use super::Inner;
use crate::sim::core::lock;
use crate::sim::core::query::encode;

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Offset(usize),
    /// After this sort key (a cursor).
    After((i64, i64)),
}

/// One list request, read from the query or a search body.
struct Ask {
    size: usize,
    at: At,
    /// The cursor the request came with (repeated by `repeat_cursor`).
    token: Option<String>,
    /// Changed at or after this.
    since: Option<DateTime<Utc>>,
    /// Created at or after this.
    created_since: Option<DateTime<Utc>>,
    /// A bracket-form `>=` on the update time (a null one never passes).
    updated_since: Option<DateTime<Utc>>,
    /// An "any of" group of `>=` comparisons: (on the update time — null before the first
    /// update never passes — else on the creation time, the bound).
    any_since: Vec<(bool, DateTime<Utc>)>,
    sort: Sort,
    /// Equality filters.
    equal: Vec<Equal>,
}

/// One equality filter: `field` rendered as text is `value`.
struct Equal {
    field: String,
    value: String,
    /// Applies even if no listed record has the field (else a parameter naming no field of a
    /// listed record is not a filter).
    strict: bool,
}

/// What a bracket-form filter parameter compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Gte,
}

/// The field and comparison of `filters[<field>][$eq|$gte]` or `filter[<field>][_eq|_gte]`.
fn bracket(name: &str) -> Option<(&str, Op)> {
    member(
        name.strip_prefix("filters[")
            .or_else(|| name.strip_prefix("filter["))?,
    )
}

/// One member of an "any of" group: `filter[_or][<i>][<field>][_gte]` (Directus) or
/// `filters[$or][<i>][<field>][$gte]` (Strapi).
fn any_of(name: &str) -> Option<(&str, Op)> {
    let rest = name
        .strip_prefix("filter[_or][")
        .or_else(|| name.strip_prefix("filters[$or]["))?;
    let (index, rest) = rest.split_once("][")?;
    index.parse::<u32>().ok()?;
    member(rest)
}

/// `<field>][<op>]`, what follows a filter's opening bracket.
fn member(rest: &str) -> Option<(&str, Op)> {
    let (field, op) = rest.split_once("][")?;
    let op = match op.strip_suffix(']')? {
        "$eq" | "_eq" => Op::Eq,
        "$gte" | "_gte" => Op::Gte,
        _ => return None,
    };
    (!field.is_empty() && !field.contains(['[', ']'])).then_some((field, op))
}

/// A record under its listing key.
type Keyed<'r, R> = ((i64, i64), &'r R);

/// The rows at places `start..start + size` of `rows` sorted by their (distinct) keys, in
/// order, and whether any come after them; `rows` is left partly reordered.
fn window<'r, R>(
    rows: &mut [Keyed<'r, R>],
    start: usize,
    size: usize,
) -> (Vec<Keyed<'r, R>>, bool) {
    let n = rows.len();
    if start >= n || size == 0 {
        return (Vec::new(), start < n);
    }
    let end = start.saturating_add(size).min(n);
    if start > 0 {
        rows.select_nth_unstable_by_key(start, |(k, _)| *k);
    }
    let rest = &mut rows[start..];
    let len = end - start;
    if len < rest.len() {
        rest.select_nth_unstable_by_key(len, |(k, _)| *k);
    }
    let mut page = rest[..len].to_vec();
    page.sort_unstable_by_key(|(k, _)| *k);
    (page, end < n)
}

/// The later of two optional times.
fn later(a: Option<DateTime<Utc>>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// The cursor for "after `key`", or for the start.
fn token(key: Option<(i64, i64)>) -> String {
    let raw = match key {
        Some((a, b)) => format!("v1:{a}:{b}"),
        None => "v1:start".to_string(),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

fn read_token(t: &str) -> Result<At, ApiError> {
    let bad = || ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "unknown cursor");
    let raw = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    if raw == "v1:start" {
        return Ok(At::Offset(0));
    }
    let mut parts = raw.strip_prefix("v1:").ok_or_else(bad)?.split(':');
    let mut num = || {
        parts
            .next()
            .and_then(|p| p.parse::<i64>().ok())
            .ok_or_else(bad)
    };
    Ok(At::After((num()?, num()?)))
}

fn number(name: &str, v: &str) -> Result<u64, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{name}` must be a whole number, not `{v}`")))
}

fn ask(
    spec: &ResourceProfile,
    params: Vec<(String, String)>,
    auth_param: Option<&str>,
) -> Result<Ask, ApiError> {
    let p = &spec.pages;
    let mut size = p.default_size;
    if let Some(v) = first(&params, &p.size_param) {
        let n = number(&p.size_param, v)?;
        if n == 0 {
            return Err(ApiError::bad_request(format!(
                "`{}` must be at least 1",
                p.size_param
            )));
        }
        size = usize::try_from(n).unwrap_or(usize::MAX).min(p.max_size);
    }
    let param = p.param();
    let raw = param
        .and_then(|name| first(&params, name))
        .filter(|v| !v.is_empty());
    let (at, token) = match (p.style, raw) {
        (PageStyle::None, _) => {
            size = usize::MAX;
            (At::Offset(0), None)
        }
        (_, None) => (At::Offset(0), None),
        (PageStyle::Offset, Some(v)) => {
            let n = number(param.unwrap_or_default(), v)?;
            (At::Offset(usize::try_from(n).unwrap_or(usize::MAX)), None)
        }
        (PageStyle::Page, Some(v)) => {
            let n = number(param.unwrap_or_default(), v)?;
            let Some(k) = n.checked_sub(p.first_page) else {
                let msg = format!("pages start at {}", p.first_page);
                return Err(ApiError::bad_request(msg));
            };
            let offset = usize::try_from(k)
                .unwrap_or(usize::MAX)
                .saturating_mul(size);
            (At::Offset(offset), None)
        }
        (_, Some(v)) => (read_token(v)?, Some(v.to_string())),
    };
    let time = |name: &str, v: &str| {
        parse_time(v, spec.timestamps).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
    };
    let since = match spec.since_param.as_deref() {
        Some(n) => first(&params, n).map(|v| time(n, v)).transpose()?,
        None => None,
    };
    let sort = match spec.sort_param.as_deref().and_then(|n| first(&params, n)) {
        None | Some("id") => Sort::Id,
        Some(v) if v == "updated_at" || v == spec.updated_at => Sort::UpdatedAsc,
        Some(v) if v == "-updated_at" || v.strip_prefix('-') == Some(&spec.updated_at) => {
            Sort::UpdatedDesc
        }
        Some(v) => {
            let msg = format!("sort `{v}`: use updated_at or -updated_at");
            return Err(ApiError::bad_request(msg));
        }
    };
    let reserved: Vec<&str> = [Some(p.size_param.as_str()), param]
        .into_iter()
        .chain([
            spec.since_param.as_deref(),
            spec.sort_param.as_deref(),
            auth_param,
        ])
        .flatten()
        .collect();
    let allowed = |f: &str| {
        spec.filters
            .as_ref()
            .is_none_or(|l| l.iter().any(|x| x == f))
    };
    let (mut created_since, mut updated_since) = (None, None);
    let (mut equal, mut any_since) = (Vec::new(), Vec::new());
    for (k, v) in params {
        if reserved.contains(&k.as_str()) {
            continue;
        }
        if let Some((f, op)) = any_of(&k) {
            // a `>=` on the update or creation time joins the group; others are not simulated
            if op == Op::Gte && (f == spec.updated_at || f == spec.created_at) {
                any_since.push((f == spec.updated_at, time(&k, &v)?));
            }
            continue;
        }
        match bracket(&k) {
            // as the apps compare: a null update time (never updated) never passes
            Some((f, Op::Gte)) if f == spec.updated_at => {
                updated_since = later(updated_since, time(&k, &v)?)
            }
            Some((f, Op::Gte)) if f == spec.created_at => {
                created_since = later(created_since, time(&k, &v)?)
            }
            // other comparisons are not simulated: ignored
            Some((_, Op::Gte)) => {}
            Some((f, Op::Eq)) if allowed(f) => equal.push(Equal {
                field: f.to_string(),
                value: v,
                strict: true,
            }),
            None if allowed(&k) => equal.push(Equal {
                field: k,
                value: v,
                strict: spec.filters.is_some(),
            }),
            _ => {}
        }
    }
    Ok(Ask {
        size,
        at,
        token,
        since,
        created_since,
        updated_since,
        any_since,
        sort,
        equal,
    })
}

/// One page's records and where the walk goes next.
struct Page {
    items: Vec<Value>,
    total: usize,
    more: bool,
    /// The next cursor (token styles).
    next: Option<String>,
}

fn select(inner: &Inner, t: &Table, ask: &Ask) -> Page {
    if inner.faults.empty_listings() {
        return Page {
            items: Vec::new(),
            total: 0,
            more: false,
            next: None,
        };
    }
    // keys first, values rendered only where a filter needs them and for the page itself
    let records: Vec<_> = t
        .each()
        .filter(|r| ask.since.is_none_or(|s| r.changed_at() >= s))
        .filter(|r| ask.created_since.is_none_or(|s| r.created >= s))
        .filter(|r| {
            ask.updated_since
                .is_none_or(|s| r.updated.is_some_and(|u| u >= s))
        })
        .filter(|r| {
            ask.any_since.is_empty()
                || ask.any_since.iter().any(|(updated, s)| match updated {
                    true => r.updated.is_some_and(|u| u >= *s),
                    false => r.created >= *s,
                })
        })
        .collect();
    let names_field = |k: &str| records.iter().any(|r| r.fields.contains_key(k));
    let filters: Vec<&Equal> = ask
        .equal
        .iter()
        .filter(|e| e.strict || names_field(&e.field))
        .collect();
    let mut rows: Vec<((i64, i64), &super::store::Record)> = records
        .into_iter()
        .filter(|r| {
            filters.is_empty() || {
                let v = t.render(r);
                filters.iter().all(|e| {
                    v.get(&e.field)
                        .is_some_and(|x| super::wire::text(x) == e.value)
                })
            }
        })
        .map(|r| (t.key(r, ask.sort), r))
        .collect();
    let total = rows.len();
    // the page alone put in order (a listing walked page by page would sort every record
    // for each page: quadratic in the collection)
    let (page, more) = match ask.at {
        At::Offset(o) => window(&mut rows, o, ask.size),
        At::After(key) => {
            rows.retain(|(k, _)| *k > key);
            window(&mut rows, 0, ask.size)
        }
    };
    let pages = &t.spec.pages;
    let last_key = page.last().map(|(k, _)| *k);
    let mut next = if more && pages.tokens() {
        Some(token(last_key))
    } else {
        None
    };
    let mut claims_more = more;
    if !more && pages.repeat_cursor && pages.tokens() {
        // a loop: the last page points back at itself
        next = Some(ask.token.clone().unwrap_or_else(|| token(None)));
        claims_more = true;
    } else if !more && pages.has_more_lies && !page.is_empty() {
        // one page too many: the next one is empty and tells the truth
        claims_more = true;
        if pages.tokens() {
            next = Some(token(last_key));
        }
    }
    Page {
        items: page.iter().map(|(_, r)| t.render(r)).collect(),
        total,
        more: claims_more,
        next,
    }
}

/// The absolute URL of the same list with the position parameter set to `token` (None: the
/// first page). The auth query parameter is not echoed.
fn page_url(
    inner: &Inner,
    path: &str,
    spec: &ResourceProfile,
    query: &[(String, String)],
    token: Option<&str>,
) -> String {
    let param = spec.pages.param().unwrap_or("cursor");
    let auth_param =
        (inner.profile.auth.kind == AuthKind::Query).then(|| inner.profile.auth.name());
    let mut parts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != param && Some(k.as_str()) != auth_param)
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if let Some(t) = token {
        parts.push(format!("{}={}", encode(param), encode(t)));
    }
    let q = if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    };
    format!("{}{path}{q}", inner.base_url)
}

/// Answers one list request; `path` and `query` are the request's (None for a search, which
/// has no URL to repeat).
fn answer(
    inner: &Inner,
    resource: &str,
    params: Vec<(String, String)>,
    url: Option<&str>,
) -> Response {
    let Some(spec) = inner.profile.resource(resource) else {
        return ApiError::bad_request(format!("no resource `{resource}`")).into_response();
    };
    let query = params.clone();
    let auth = &inner.profile.auth;
    let auth_param = (auth.kind == AuthKind::Query).then(|| auth.name());
    let ask = match ask(spec, params, auth_param) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let page = {
        let data = lock(&inner.data);
        match data.tables.get(resource) {
            Some(t) => select(inner, t, &ask),
            None => return ApiError::bad_request("no such resource").into_response(),
        }
    };
    let p = &spec.pages;
    let mut body = if spec.records.is_empty() {
        Value::Array(Vec::new())
    } else {
        json!({})
    };
    put(&mut body, &spec.records, Value::Array(page.items));
    if let Some(ptr) = &p.has_more {
        put(&mut body, ptr, json!(page.more));
    }
    if let Some(ptr) = &p.total {
        put(&mut body, ptr, json!(page.total));
    }
    if let Some(ptr) = p.cursor_pointer() {
        put(&mut body, ptr, json!(page.next));
    }
    let next_url = match (url, &page.next) {
        (Some(path), Some(t)) => Some(page_url(inner, path, spec, &query, Some(t))),
        _ => None,
    };
    if let Some(ptr) = p.next_pointer() {
        put(&mut body, ptr, json!(next_url));
    }
    let mut resp = json_response(StatusCode::OK, &body);
    let headers = resp.headers_mut();
    if let (Some(name), Some(t), PageStyle::Cursor) = (&p.cursor_header, &page.next, p.style) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(t),
        ) {
            headers.insert(n, v);
        }
    }
    if let (PageStyle::Link, Some(path)) = (p.style, url) {
        let mut links = Vec::new();
        if let Some(next) = &next_url {
            links.push(format!("<{next}>; rel=\"next\""));
        }
        links.push(format!(
            "<{}>; rel=\"first\"",
            page_url(inner, path, spec, &query, None)
        ));
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            headers.insert(header::LINK, v);
        }
    }
    resp
}

/// `GET {path}?…`.
pub(crate) fn list(
    inner: &Inner,
    resource: &str,
    path: &str,
    query: Vec<(String, String)>,
) -> Response {
    answer(inner, resource, query, Some(path))
}

/// `POST {search_path}` with the list parameters and filters in a JSON object.
pub(crate) fn search(inner: &Inner, resource: &str, body: &[u8]) -> Response {
    let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("the search body must be a JSON object: {e}");
                return ApiError::bad_request(msg).into_response();
            }
        }
    };
    let Value::Object(m) = v else {
        return ApiError::bad_request("the search body must be a JSON object").into_response();
    };
    let params = m
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, super::wire::text(&v)))
        .collect();
    answer(inner, resource, params, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_filters_name_a_field_and_a_comparison() {
        assert_eq!(bracket("filters[slug][$eq]"), Some(("slug", Op::Eq)));
        assert_eq!(
            bracket("filter[ticket_key][_eq]"),
            Some(("ticket_key", Op::Eq))
        );
        assert_eq!(
            bracket("filters[updatedAt][$gte]"),
            Some(("updatedAt", Op::Gte))
        );
        assert_eq!(
            bracket("filter[date_updated][_gte]"),
            Some(("date_updated", Op::Gte))
        );
        for other in [
            "filters[slug][$contains]",
            "filter[_or][0][date_updated][_gte]",
            "filters[][$eq]",
            "slug",
            "filters[slug]",
        ] {
            assert_eq!(bracket(other), None, "{other}");
        }
        assert_eq!(
            any_of("filter[_or][0][date_updated][_gte]"),
            Some(("date_updated", Op::Gte))
        );
        assert_eq!(
            any_of("filters[$or][1][createdAt][$gte]"),
            Some(("createdAt", Op::Gte))
        );
        assert_eq!(any_of("filter[_or][x][date_updated][_gte]"), None);
        assert_eq!(any_of("filter[date_updated][_gte]"), None);
    }

    #[test]
    fn a_window_is_that_slice_of_the_sorted_rows() {
        let keys: Vec<(i64, i64)> = (0..57).map(|i| ((i * 37) % 57, -i)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        for (start, size) in [
            (0, 10),
            (5, 10),
            (50, 10),
            (56, 1),
            (57, 3),
            (80, 5),
            (0, 100),
            (3, 0),
        ] {
            let mut rows: Vec<((i64, i64), &())> = keys.iter().map(|k| (*k, &())).collect();
            let (page, more) = window(&mut rows, start, size);
            let got: Vec<(i64, i64)> = page.iter().map(|(k, _)| *k).collect();
            let end = (start + size).min(57);
            let want = if start < 57 {
                sorted[start..end].to_vec()
            } else {
                vec![]
            };
            assert_eq!(got, want, "{start}+{size}");
            assert_eq!(more, start < 57 && end < 57, "{start}+{size}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            read_token(&token(Some((5, -3)))).ok(),
            Some(At::After((5, -3)))
        );
        assert_eq!(read_token(&token(None)).ok(), Some(At::Offset(0)));
        assert!(read_token("nonsense!").is_err());
    }
}
