//! Salesforce simulator: query locators — a query's rows beyond the first page kept for
//! `GET /query/{locator}-{offset}`, the page size (`Sforce-Query-Options: batchSize=N`,
//! 200–2,000), and the locators' limits: 10 open per user (the oldest is closed) and 15
//! minutes of inactivity on the simulator clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::gate::Ctx;
use super::wire::ok;
use super::{ids, Inner};
use crate::sim::core::lock;

/// Open locators per user before the oldest is closed.
pub const MAX_OPEN: usize = 10;
const IDLE_MINUTES: i64 = 15;

struct Cursor {
    rows: Arc<Vec<Value>>,
    page: usize,
    last_used: DateTime<Utc>,
}

#[derive(Default)]
pub struct Cursors {
    map: Mutex<HashMap<String, Cursor>>,
    next: AtomicU64,
}

/// The page size of a request: a valid `batchSize` header (clamped to 200–2,000), else
/// `default`, else the configured one.
pub fn page_size(inner: &Inner, ctx: &Ctx, default: Option<usize>) -> usize {
    let asked = ctx
        .headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',').find_map(|kv| {
                let (k, n) = kv.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("batchSize")
                    .then(|| n.trim().parse::<usize>().ok())?
            })
        });
    match asked {
        Some(n) => n.clamp(200, 2000),
        None => default.unwrap_or(inner.cfg.query_page_size).max(1),
    }
}

fn body(total: usize, rows: &[Value], next: Option<String>) -> Response {
    let mut out = json!({"totalSize": total, "done": next.is_none(), "records": rows});
    if let (Some(url), Value::Object(m)) = (next, &mut out) {
        m.insert("nextRecordsUrl".into(), Value::String(url));
    }
    ok(out)
}

impl Cursors {
    /// The first page of a query's result; keeps a locator when more rows remain.
    pub fn first_page(
        &self,
        now: DateTime<Utc>,
        total: usize,
        rows: Vec<Value>,
        size: usize,
        version: &str,
    ) -> Response {
        if rows.len() <= size {
            return body(total, &rows, None);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let locator = ids::make("01g", "8d", n);
        let next = format!("/services/data/v{version}/query/{locator}-{size}");
        let resp = body(total, &rows[..size], Some(next));
        let mut map = lock(&self.map);
        map.retain(|_, c| now - c.last_used < TimeDelta::minutes(IDLE_MINUTES));
        while map.len() >= MAX_OPEN {
            let oldest = map
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let cursor = Cursor {
            rows: Arc::new(rows),
            page: size,
            last_used: now,
        };
        map.insert(locator, cursor);
        resp
    }

    /// The page at `{locator}-{offset}`; None for an unknown, expired or closed locator.
    pub fn next_page(&self, inner: &Inner, ctx: &Ctx, raw: &str) -> Option<Response> {
        let (locator, offset) = raw.rsplit_once('-')?;
        let offset: usize = offset.parse().ok()?;
        let now = inner.now();
        let mut map = lock(&self.map);
        let cursor = map.get_mut(locator)?;
        if now - cursor.last_used >= TimeDelta::minutes(IDLE_MINUTES) {
            map.remove(locator);
            return None;
        }
        if offset > cursor.rows.len() {
            return None;
        }
        cursor.last_used = now;
        let size = page_size(inner, ctx, Some(cursor.page));
        let rows = cursor.rows.clone();
        let end = (offset + size).min(rows.len());
        let next = (end < rows.len())
            .then(|| format!("/services/data/v{}/query/{locator}-{end}", ctx.version));
        if next.is_none() {
            // all rows were read: the locator is closed
            map.remove(locator);
        }
        drop(map);
        Some(body(rows.len(), &rows[offset..end], next))
    }

    pub fn open(&self) -> usize {
        lock(&self.map).len()
    }
}
