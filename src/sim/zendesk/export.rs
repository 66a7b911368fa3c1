//! Zendesk simulator: incremental exports — the cursor-based user export and the time-based
//! organization export, ordered by update time then id, soft-deleted users and deleted
//! organizations included, and blind to anything changed in the minute before the request.

use std::ops::Bound;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use serde_json::{json, Value};

use super::store::Position;
use super::wire::{bad_request, error, ok};
use super::Inner;
use crate::sim::core::lock;
use crate::sim::core::query::{encode, Query};

const MAX_PER_PAGE: usize = 1000;
/// Items changed this recently (seconds) are left out of every export page.
const LAG_SECS: i64 = 60;

/// An opaque export cursor for a position, shaped like Zendesk's (`base64("<time>.0||<id>|")`).
pub(crate) fn encode_cursor(pos: Position) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}.0||{}|", pos.0, pos.1))
}

pub(crate) fn decode_cursor(raw: &str) -> Option<Position> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (time, rest) = text.split_once(".0||")?;
    Some((time.parse().ok()?, rest.strip_suffix('|')?.parse().ok()?))
}

fn per_page(q: &Query) -> Result<usize, Response> {
    match q.get("per_page").map(str::parse::<usize>) {
        None => Ok(MAX_PER_PAGE),
        Some(Ok(n)) if n >= 1 => Ok(n.min(MAX_PER_PAGE)),
        Some(_) => Err(bad_request(
            "InvalidValue",
            "per_page must be a positive integer",
        )),
    }
}

/// `start_time` (Unix seconds), refused when missing, malformed or within the last minute
/// (Zendesk's 422 `Too recent start_time`).
fn start_time(q: &Query, now: i64) -> Result<Option<i64>, Response> {
    let Some(raw) = q.get("start_time") else {
        return Ok(None);
    };
    let Ok(t) = raw.parse::<i64>() else {
        return Err(bad_request(
            "InvalidValue",
            "start_time must be a Unix timestamp",
        ));
    };
    if t < 0 {
        return Err(bad_request(
            "InvalidValue",
            "start_time must be a Unix timestamp",
        ));
    }
    if t > now - LAG_SECS {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidValue",
            "Too recent start_time. Use a start_time older than 1 minute",
        ));
    }
    Ok(Some(t))
}

fn per_page_param(q: &Query) -> String {
    q.get("per_page")
        .map(|n| format!("&per_page={}", encode(n)))
        .unwrap_or_default()
}

/// `GET /api/v2/incremental/users/cursor?start_time=..|cursor=..`.
pub(crate) async fn users(State(inner): State<Arc<Inner>>, RawQuery(q): RawQuery) -> Response {
    let q = Query::parse(q.as_deref());
    let limit = match per_page(&q) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let now = inner.clock.now().timestamp();
    let from: Position = if let Some(raw) = q.get("cursor") {
        match decode_cursor(raw) {
            Some(p) => p,
            None => return bad_request("InvalidValue", "cursor is invalid"),
        }
    } else {
        match start_time(&q, now) {
            Ok(Some(t)) => (t, 0),
            Ok(None) => return bad_request("InvalidValue", "start_time or cursor is required"),
            Err(resp) => return resp,
        }
    };
    let store = lock(&inner.store);
    let mut positions: Vec<Position> = store
        .user_log
        .range((Bound::Excluded(from), Bound::Unbounded))
        .copied()
        .take_while(|(t, _)| *t < now - LAG_SECS)
        .take(limit + 1)
        .collect();
    let end_of_stream = positions.len() <= limit;
    positions.truncate(limit);
    let users: Vec<Value> = positions
        .iter()
        .filter_map(|(_, id)| store.users.get(id))
        .map(|u| u.render(&inner.base_url))
        .collect();
    let after = encode_cursor(positions.last().copied().unwrap_or(from));
    let after_url = format!(
        "{}/api/v2/incremental/users/cursor.json?cursor={}{}",
        inner.base_url,
        encode(&after),
        per_page_param(&q)
    );
    ok(json!({
        "users": users,
        "after_url": after_url,
        "after_cursor": after,
        "before_url": null,
        "before_cursor": null,
        "end_of_stream": end_of_stream,
    }))
}

/// `GET /api/v2/incremental/organizations?start_time=..`: items updated at or after
/// `start_time`; a page is extended past `per_page` to hold every item sharing its last
/// second; `end_time` is that second (so the next page may repeat items, as Zendesk warns),
/// or the second after it when the whole page shares it (to guarantee progress).
pub(crate) async fn organizations(
    State(inner): State<Arc<Inner>>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let limit = match per_page(&q) {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    let now = inner.clock.now().timestamp();
    let start = match start_time(&q, now) {
        Ok(Some(t)) => t,
        Ok(None) => return bad_request("InvalidValue", "start_time is required"),
        Err(resp) => return resp,
    };
    let store = lock(&inner.store);
    let mut visible = store
        .org_log
        .range((start, 0)..)
        .copied()
        .take_while(|(t, _)| *t < now - LAG_SECS)
        .peekable();
    let mut positions: Vec<Position> = Vec::new();
    while let Some(p) = visible
        .next_if(|p| positions.len() < limit || positions.last().is_some_and(|last| last.0 == p.0))
    {
        positions.push(p);
    }
    let end_of_stream = visible.peek().is_none();
    let end_time = match (positions.first(), positions.last()) {
        (Some(first), Some(last)) if first.0 == last.0 && !end_of_stream => last.0 + 1,
        (_, Some(last)) => last.0,
        _ => start,
    };
    let orgs: Vec<Value> = positions
        .iter()
        .filter_map(|(_, id)| store.orgs.get(id))
        .map(|o| o.render(&inner.base_url))
        .collect();
    let next_page = format!(
        "{}/api/v2/incremental/organizations.json?start_time={end_time}{}",
        inner.base_url,
        per_page_param(&q)
    );
    ok(json!({
        "organizations": orgs,
        "count": orgs.len(),
        "end_time": end_time,
        "next_page": next_page,
        "end_of_stream": end_of_stream,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor((1_576_613_539, 467));
        assert_eq!(c, "MTU3NjYxMzUzOS4wfHw0Njd8");
        assert_eq!(decode_cursor(&c), Some((1_576_613_539, 467)));
        assert_eq!(decode_cursor("nonsense"), None);
    }
}
