//! Zendesk connector, inbound: the change feed — Zendesk's incremental exports, deletions
//! included. Users come through the cursor-based export (`/incremental/users/cursor`,
//! `start_time` once, then `cursor`), organizations through the time-based one
//! (`/incremental/organizations?start_time=`, resumed from each page's `end_time`). The feed's
//! cursor is this module's own JSON: the export's next `start_time` or `cursor`.
//!
//! Zendesk leaves out what changed in the minute before a request and refuses a `start_time`
//! inside that minute, so a start is never later than now minus [`MINUTE_RULE`]; an export
//! position only ever moves over records a page returned, so what the minute hid comes on a
//! later poll. A `start_time` Zendesk still finds too recent (clocks differ) is an empty page
//! that keeps its position.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::client::encode;
use super::mapping::{remote_records, ExportPage, Object};
use super::Zendesk;
use crate::connectors::{ConnectorError, FeedPage, FeedStart};

/// How far behind now a `start_time` must be (Zendesk: more than a minute).
pub const MINUTE_RULE: i64 = 61;

/// Where an export stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum ExportCursor {
    /// The next request starts at `start_time` (Unix seconds).
    Since { start_time: i64 },
    /// The cursor export's `after_cursor` (users).
    After { cursor: String },
}

impl ExportCursor {
    /// The stored cursor, or (none, or not one of ours) where a feed with none begins: the
    /// start minus the overlap.
    fn resume(stored: Option<&str>, start: FeedStart) -> ExportCursor {
        match stored.and_then(|text| serde_json::from_str(text).ok()) {
            Some(c) => c,
            None => {
                let overlap = chrono::Duration::from_std(start.overlap)
                    .unwrap_or_else(|_| chrono::Duration::seconds(60));
                ExportCursor::Since {
                    start_time: (start.at - overlap).timestamp(),
                }
            }
        }
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }
}

/// `start_time` moved back out of the minute Zendesk refuses (never before the epoch).
fn settled(start_time: i64, now: i64) -> i64 {
    start_time.min(now - MINUTE_RULE).max(0)
}

/// Zendesk's answer to a `start_time` inside the last minute.
fn too_recent(e: &ConnectorError) -> bool {
    matches!(e, ConnectorError::Rejected { status: 422, message }
        if message.to_lowercase().contains("too recent"))
}

impl Zendesk {
    /// The feed's next page after `cursor` (see the module's comment).
    pub(super) async fn feed_page(
        &self,
        object: Object,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        let now = Utc::now().timestamp();
        let at = match ExportCursor::resume(cursor, start) {
            ExportCursor::Since { start_time } => ExportCursor::Since {
                start_time: settled(start_time, now),
            },
            // the time-based export has no cursor: not one of ours, begin again
            ExportCursor::After { .. } if object == Object::Organizations => {
                ExportCursor::resume(None, start)
            }
            after => after,
        };
        let path = match (&at, object) {
            (ExportCursor::Since { start_time }, Object::Users) => {
                format!("/api/v2/incremental/users/cursor?start_time={start_time}")
            }
            (ExportCursor::After { cursor }, _) => {
                format!("/api/v2/incremental/users/cursor?cursor={}", encode(cursor))
            }
            (ExportCursor::Since { start_time }, Object::Organizations) => {
                format!("/api/v2/incremental/organizations?start_time={start_time}")
            }
        };
        let page: ExportPage = match self.client.export(&path).await {
            Ok(resp) => resp.parse()?,
            Err(e) if too_recent(&e) => {
                tracing::debug!(connection = %self.client.name(), object = object.plural(), "export start still inside Zendesk's last minute; nothing to read yet");
                return Ok(FeedPage {
                    records: vec![],
                    cursor: at.text(),
                    more: false,
                    snapshots: false,
                });
            }
            Err(e) => return Err(e),
        };
        let records = remote_records(&page.records, properties);
        let (next, more) = match (&at, page.after_cursor) {
            (ExportCursor::Since { start_time }, _) if object == Object::Organizations => {
                let end = page.end_time.unwrap_or(*start_time).max(*start_time);
                // a page that does not move the start would be asked for again and again
                (
                    ExportCursor::Since { start_time: end },
                    !page.end_of_stream && end > *start_time,
                )
            }
            (_, Some(cursor)) if !cursor.is_empty() => {
                (ExportCursor::After { cursor }, !page.end_of_stream)
            }
            // no position to go on from: stay, and ask again at the next poll
            _ => (at.clone(), false),
        };
        Ok(FeedPage {
            records,
            cursor: next.text(),
            more,
            snapshots: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn cursors_resume_where_they_stood() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let start = FeedStart {
            at,
            overlap: std::time::Duration::from_secs(60),
        };
        let fresh = ExportCursor::resume(None, start);
        assert_eq!(
            fresh,
            ExportCursor::Since {
                start_time: at.timestamp() - 60
            }
        );
        // a bare timestamp or foreign text: where a feed with none begins
        assert_eq!(
            ExportCursor::resume(Some("2026-01-02T03:04:05+00:00"), start),
            fresh
        );
        let after = ExportCursor::After {
            cursor: "MTU3NjYxMzUzOS4wfHw0Njd8".into(),
        };
        assert_eq!(ExportCursor::resume(Some(&after.text()), start), after);
        assert_eq!(
            after.text(),
            r#"{"state":"after","cursor":"MTU3NjYxMzUzOS4wfHw0Njd8"}"#
        );
    }

    #[test]
    fn starts_stay_out_of_the_last_minute() {
        assert_eq!(settled(1_000, 2_000), 1_000);
        assert_eq!(settled(1_990, 2_000), 2_000 - MINUTE_RULE);
        assert_eq!(settled(-5, 2_000), 0);
        assert!(too_recent(&ConnectorError::Rejected {
            status: 422,
            message: "InvalidValue: Too recent start_time. Use a start_time older than 1 minute"
                .into()
        }));
        assert!(!too_recent(&ConnectorError::Rejected {
            status: 400,
            message: "Too recent".into()
        }));
    }
}
