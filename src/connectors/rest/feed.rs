//! REST connector, inbound edge: the change feed — a listing filtered on updated-at `>=` a
//! watermark less the overlap window, or a newest-first listing read until it reaches records
//! older than that — then the resource's deleted-records feed when it has one, with the
//! watermark and the page position in one opaque cursor that moves past a pass only when its
//! last page is applied.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::{ChangeStyle, Deletions, Resource};
use super::pages::{self, Position};
use super::{record, Rest};
use crate::connectors::{path, ConnectorError, FeedPage, FeedStart, RemoteRecord};

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
    /// The pass is reading the deleted-records feed (`page` is a position in it).
    #[serde(default)]
    deletions: bool,
}

impl Cursor {
    /// A pass from `since`, nothing read yet.
    fn starting(since: DateTime<Utc>) -> Cursor {
        Cursor {
            since,
            newest: None,
            page: None,
            began: None,
            deletions: false,
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
        if at.deletions {
            if let Some(d) = &res.deletions {
                return self.deletions_page(res, d, at, began, &since).await;
            }
        }
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
                deletions: false,
            }
        } else if res.deletions.is_some() {
            // the changed records are read: the deleted ones next, from the same bound
            Cursor {
                since: at.since,
                newest,
                page: None,
                began: Some(began),
                deletions: true,
            }
        } else {
            pass_over(&at, newest, began)
        };
        Ok(FeedPage {
            records,
            more: more || cursor.deletions,
            cursor: cursor.text(),
            snapshots: false,
        })
    }

    /// One page of the deleted-records feed: each entry a deletion of the record it names.
    async fn deletions_page(
        &self,
        res: &Resource,
        d: &Deletions,
        at: Cursor,
        began: DateTime<Utc>,
        since: &str,
    ) -> Result<FeedPage, ConnectorError> {
        // the resource's paging, on the feed's path and pointers
        let mut log = res.clone();
        log.path = d.path.clone();
        log.list_path = None;
        log.query.clear();
        if let Some(p) = &d.records {
            log.records = p.clone();
        }
        let extra: Vec<(String, String)> = d
            .param
            .as_ref()
            .or(res.changes.param.as_ref())
            .map(|p| vec![(p.clone(), since.to_string())])
            .unwrap_or_default();
        let position = at.page.clone().unwrap_or_default();
        let read = pages::read(&self.client, &self.name, &log, &extra, &position).await?;
        let mut newest = at.newest;
        let mut records = Vec::with_capacity(read.records.len());
        for entry in &read.records {
            let Some(id) = path::get(entry, &d.id).and_then(record::id_text) else {
                tracing::warn!(connection = %self.name, resource = %res.path, "a deleted-records entry without an id was skipped");
                continue;
            };
            let when = path::get(entry, &d.at).and_then(record::parse_time);
            newest = newest.max(when);
            records.push(RemoteRecord {
                id,
                updated_at: when,
                properties: Default::default(),
                archived: true,
            });
        }
        let more = read.after.is_some();
        let cursor = if more {
            Cursor {
                page: read.after,
                newest,
                began: Some(began),
                ..at
            }
        } else {
            pass_over(&at, newest, began)
        };
        Ok(FeedPage {
            records,
            cursor: cursor.text(),
            more,
            snapshots: false,
        })
    }
}

/// The next pass, once this one is over: it starts at the newest change it saw, less the
/// pass's own length — a record edited after its page was read carries a time at least that
/// far before the newest one, so the next pass reads it whatever the overlap window.
fn pass_over(at: &Cursor, newest: Option<DateTime<Utc>>, began: DateTime<Utc>) -> Cursor {
    let took = (Utc::now() - began).max(chrono::TimeDelta::zero());
    Cursor::starting(newest.map_or(at.since, |n| (n - took).max(at.since)))
}
