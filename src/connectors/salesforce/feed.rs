//! Salesforce connector, inbound: the change feed — SOQL on `SystemModstamp` (from the newest
//! change seen minus the overlap, ordered by `SystemModstamp, Id`, paged by `nextRecordsUrl`)
//! and, once a query is read to its end, the deletions since the last poll through getDeleted
//! (`/sobjects/{Object}/deleted/?start=&end=`) as archived records. The cursor is this
//! module's own JSON: the watermark, the running query's next page, and where the next
//! getDeleted window starts (Salesforce's `latestDateCovered`).

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::client::encode;
use super::mapping::{deleted_record, parse_time, remote_records, QueryPage};
use super::soql;
use super::Salesforce;
use crate::connectors::{ConnectorError, FeedPage, FeedStart, RemoteRecord};

/// How long Salesforce keeps deletions for getDeleted (used when its refusal names no date).
const DELETE_LOG_DAYS: i64 = 15;

/// Where the feed stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FeedCursor {
    /// The newest `SystemModstamp` seen; a query starts there minus the overlap.
    since: DateTime<Utc>,
    /// The running query's next page (`nextRecordsUrl`) while it has more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Where the next getDeleted window starts.
    deleted: DateTime<Utc>,
}

impl FeedCursor {
    /// The stored cursor, or (none, or not one of ours) where a feed with none begins.
    fn resume(stored: Option<&str>, start: FeedStart) -> FeedCursor {
        stored
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(FeedCursor {
                since: start.at,
                next: None,
                deleted: start.at,
            })
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }
}

#[derive(Deserialize)]
struct DeletedAnswer {
    #[serde(default, rename = "deletedRecords")]
    records: Vec<Deleted>,
    #[serde(default, rename = "latestDateCovered")]
    latest: Option<String>,
}

#[derive(Deserialize)]
struct Deleted {
    id: String,
    #[serde(default, rename = "deletedDate")]
    date: Option<String>,
}

fn floor_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

/// The earliest date a getDeleted refusal names (`...earliest date available: <date>`).
fn earliest_available(e: &ConnectorError) -> Option<Option<DateTime<Utc>>> {
    match e {
        ConnectorError::Rejected { message, .. }
            if message.starts_with("INVALID_REPLICATION_DATE")
                && message.to_lowercase().contains("earliest") =>
        {
            Some(
                message
                    .rsplit(": ")
                    .next()
                    .and_then(|d| parse_time(d.trim())),
            )
        }
        _ => None,
    }
}

impl Salesforce {
    /// The feed's next page after `cursor` (see the module's comment).
    pub(super) async fn feed_page(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        let mut at = FeedCursor::resume(cursor, start);
        let overlap = TimeDelta::from_std(start.overlap).unwrap_or(TimeDelta::seconds(60));
        let fresh = soql::changed_since(object, properties, at.since - overlap)?;
        let page: QueryPage = match at.next.take() {
            Some(next) => match self.client.call(Method::GET, &next, None).await {
                Ok(resp) => resp.parse()?,
                // the locator expired (15 minutes idle) or was closed: ask again
                Err(ConnectorError::Rejected { message, .. })
                    if message.starts_with("INVALID_QUERY_LOCATOR") =>
                {
                    tracing::debug!(connection = %self.client.name(), object, "query locator expired; the feed queries again from its watermark");
                    self.query(&fresh).await?
                }
                Err(e) => return Err(e),
            },
            None => self.query(&fresh).await?,
        };
        let mut records = remote_records(&page.records, properties);
        if let Some(newest) = records.iter().filter_map(|r| r.updated_at).max() {
            at.since = at.since.max(newest);
        }
        if let (false, Some(next)) = (page.done, page.next) {
            at.next = Some(next);
            return Ok(FeedPage {
                records,
                cursor: at.text(),
                more: true,
                snapshots: false,
            });
        }
        let (gone, covered) = self.deletions(object, at.deleted - overlap).await?;
        records.extend(gone);
        at.deleted = at.deleted.max(covered);
        Ok(FeedPage {
            records,
            cursor: at.text(),
            more: false,
            snapshots: false,
        })
    }

    /// The first page of a query.
    pub(super) async fn query(&self, q: &str) -> Result<QueryPage, ConnectorError> {
        self.client
            .call(Method::GET, &format!("/query?q={}", encode(q)), None)
            .await
            .map_err(super::whole_request)?
            .parse()
    }

    /// Deletions from `from` on, and how far Salesforce's answer covers. A start older than
    /// Salesforce's delete log reaches (15 days) is said once, clearly, and the window starts
    /// at the earliest date it still has.
    async fn deletions(
        &self,
        object: &str,
        from: DateTime<Utc>,
    ) -> Result<(Vec<RemoteRecord>, DateTime<Utc>), ConnectorError> {
        let object = soql::name(object, "object")?;
        let start = floor_minute(from);
        // the window's end reaches a little past now: Salesforce covers up to its own
        // present minute, whatever the clocks
        let end = floor_minute(Utc::now().max(from)) + TimeDelta::minutes(2);
        let answer = match self.deleted_window(&object, start, end).await {
            Err(e) => match earliest_available(&e) {
                Some(earliest) => {
                    let earliest = earliest.unwrap_or_else(|| {
                        Utc::now() - TimeDelta::days(DELETE_LOG_DAYS) + TimeDelta::minutes(5)
                    });
                    tracing::warn!(connection = %self.client.name(), object = %object, position = %start, earliest_available = %earliest,
                        "salesforce's delete log no longer reaches back to the feed's position (it keeps 15 days): deletions before earliest_available are not seen here (a reconcile or ferry.resync finds them); deletions are read from earliest_available on");
                    self.deleted_window(
                        &object,
                        earliest,
                        end.max(earliest + TimeDelta::minutes(2)),
                    )
                    .await?
                }
                None => return Err(e),
            },
            Ok(a) => a,
        };
        let covered = answer
            .latest
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(start);
        let gone = answer
            .records
            .into_iter()
            .map(|d| deleted_record(d.id, d.date.as_deref().and_then(parse_time)))
            .collect();
        Ok((gone, covered))
    }

    async fn deleted_window(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedAnswer, ConnectorError> {
        let path = format!(
            "/sobjects/{object}/deleted/?start={}&end={}",
            encode(&soql::datetime(start)),
            encode(&soql::datetime(end))
        );
        self.client
            .call(Method::GET, &path, None)
            .await
            .map_err(super::whole_request)?
            .parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_resume_where_they_stood() {
        let at = parse_time("2026-01-02T03:04:05.000+0000").unwrap();
        let start = FeedStart {
            at,
            overlap: std::time::Duration::from_secs(60),
        };
        let fresh = FeedCursor::resume(None, start);
        assert_eq!(
            fresh.text(),
            r#"{"since":"2026-01-02T03:04:05Z","deleted":"2026-01-02T03:04:05Z"}"#
        );
        assert_eq!(
            FeedCursor::resume(Some("2026-01-02T03:04:05Z"), start),
            fresh
        );
        let mid = FeedCursor {
            next: Some("/services/data/v62.0/query/01g-2000".into()),
            ..fresh.clone()
        };
        assert_eq!(FeedCursor::resume(Some(&mid.text()), start), mid);
        let refused = ConnectorError::Rejected {
            status: 400,
            message: "INVALID_REPLICATION_DATE: startDate is before the earliest date available: 2026-01-01T00:01:00.000+0000".into(),
        };
        assert_eq!(
            earliest_available(&refused),
            Some(parse_time("2026-01-01T00:01:00.000+0000"))
        );
        assert_eq!(earliest_available(&ConnectorError::NotFound), None);
    }
}
