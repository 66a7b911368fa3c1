//! REST connector, inbound edge: the change feed — a listing filtered on updated-at `>=` a
//! watermark less the overlap window, or a newest-first listing read until it reaches records
//! older than that — with the watermark and the page position in one opaque cursor that moves
//! past a pass only when its last page is applied.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::{ChangeStyle, Resource};
use super::pages::{self, Position};
use super::{record, Rest};
use crate::connectors::{ConnectorError, FeedPage, FeedStart};

/// In a `changes.query` value: the poll's lower bound, written as `changes.format` says.
pub const SINCE: &str = "{since}";

/// The feed's position: the watermark of the last finished pass, and within a pass the
/// newest time read so far and where the listing stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Cursor {
    since: DateTime<Utc>,
    #[serde(default)]
    newest: Option<DateTime<Utc>>,
    #[serde(default)]
    page: Option<Position>,
    /// When this pass read its first page (ferry's clock).
    #[serde(default)]
    began: Option<DateTime<Utc>>,
}

impl Cursor {
    /// A pass from `since`, nothing read yet.
    fn starting(since: DateTime<Utc>) -> Cursor {
        Cursor {
            since,
            newest: None,
            page: None,
            began: None,
        }
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }
}

impl Rest {
    pub(super) async fn feed_page(
        &self,
        res: &Resource,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        // no cursor, or one of an older shape: a pass from the feed's beginning
        let at = cursor
            .and_then(|t| serde_json::from_str::<Cursor>(t).ok())
            .unwrap_or_else(|| Cursor::starting(start.at));
        let began = at.began.unwrap_or_else(Utc::now);
        let bound = at.since
            - chrono::TimeDelta::from_std(start.overlap).unwrap_or(chrono::TimeDelta::zero());
        // whole seconds: an app keeping times to the second stamps a change made later in the
        // bound's own second with that second, which a finer bound would pass over
        let bound = DateTime::from_timestamp(bound.timestamp(), 0).unwrap_or(bound);
        let changes = &res.changes;
        let since = record::format_time(bound, changes.format);
        // `{since}` in a value is the bound too (an `_or` of two fields, each its own parameter)
        let mut extra: Vec<(String, String)> = changes
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.replace(SINCE, &since)))
            .collect();
        match changes.style {
            ChangeStyle::None => {
                return Ok(FeedPage {
                    records: Vec::new(),
                    cursor: at.text(),
                    more: false,
                    snapshots: false,
                })
            }
            ChangeStyle::Filter => {
                if let Some(param) = &changes.param {
                    extra.push((param.clone(), since));
                }
            }
            ChangeStyle::NewestFirst => {}
        }
        let position = at.page.clone().unwrap_or_default();
        let read = pages::read(&self.client, &self.name, res, &extra, &position).await?;
        let mut newest = at.newest;
        let mut reached_older = false;
        let mut records = Vec::with_capacity(read.records.len());
        for raw in &read.records {
            let when = record::modified(res, raw);
            if changes.style == ChangeStyle::NewestFirst && when.is_some_and(|t| t < bound) {
                reached_older = true;
                continue;
            }
            match record::read(res, raw, properties) {
                Ok(r) => {
                    newest = newest.max(when);
                    records.push(r);
                }
                Err(e) => {
                    tracing::warn!(connection = %self.name, resource = %res.path, error = %e, "a changed record was skipped")
                }
            }
        }
        let more = read.after.is_some() && !reached_older;
        let cursor = if more {
            Cursor {
                since: at.since,
                newest,
                page: read.after,
                began: Some(began),
            }
        } else {
            // the pass is over: the next one starts at the newest change it saw, less the
            // pass's own length — a record edited after its page was read carries a time at
            // least that far before the newest one, so the next pass reads it whatever the
            // overlap window
            let took = (Utc::now() - began).max(chrono::TimeDelta::zero());
            Cursor::starting(newest.map_or(at.since, |n| (n - took).max(at.since)))
        };
        Ok(FeedPage {
            records,
            cursor: cursor.text(),
            more,
            snapshots: false,
        })
    }
}
