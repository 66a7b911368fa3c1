//! HubSpot connector, inbound: the change feed — CRM search on the last-modified property,
//! oldest change first, from a watermark that reaches back an overlap window (the search index
//! lags behind writes). The feed's cursor is this module's own JSON: between polls the newest
//! change seen; inside a query the query's start and the next page. A query that reaches
//! HubSpot's 10,000-result cap goes on with a new query from its newest change. Search does not
//! return deleted records: deletions are the reconcile's job.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{path, whole_request, HubSpot, SEARCH_CAP};
use crate::connectors::{ConnectorError, FeedPage, FeedStart, RemoteRecord};

/// Records one search page holds.
const SEARCH_PAGE: usize = 100;

/// Where the feed stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum SearchCursor {
    /// Between polls: the next poll searches from `mark` minus the overlap.
    Idle {
        mark: DateTime<Utc>,
    },
    Query(Query),
}

/// Inside a query from `since`: `after` is its next page (none: its first), `seen` how many
/// results it has paged through, `mark` the newest change seen so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Query {
    since: DateTime<Utc>,
    after: Option<String>,
    seen: usize,
    mark: DateTime<Utc>,
}

impl SearchCursor {
    /// The query to run next: the stored cursor's, or where a feed with none begins. A bare
    /// timestamp (what earlier versions stored) is a watermark.
    fn resume(stored: Option<&str>, start: FeedStart) -> Query {
        let overlap = chrono::Duration::from_std(start.overlap)
            .unwrap_or_else(|_| chrono::Duration::seconds(60));
        let idle = |mark: DateTime<Utc>| Query {
            since: mark - overlap,
            after: None,
            seen: 0,
            mark,
        };
        match stored {
            None => idle(start.at),
            Some(text) => match serde_json::from_str::<SearchCursor>(text) {
                Ok(SearchCursor::Idle { mark }) => idle(mark),
                Ok(SearchCursor::Query(query)) => query,
                Err(_) => DateTime::parse_from_rfc3339(text)
                    .map(|t| idle(t.with_timezone(&Utc)))
                    .unwrap_or_else(|_| idle(start.at)),
            },
        }
    }
}

/// The last-modified property search filters and sorts on.
fn modified_property(object: &str) -> &'static str {
    // contacts name their modification time differently from every other object
    if object == "contacts" {
        "lastmodifieddate"
    } else {
        "hs_lastmodifieddate"
    }
}

impl HubSpot {
    /// One search page of the records changed at or after `since`.
    async fn search_changed(
        &self,
        object: &str,
        properties: &[String],
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<(Vec<RemoteRecord>, Option<String>), ConnectorError> {
        let modified = modified_property(object);
        let mut body = json!({
            "filterGroups": [{"filters": [{"propertyName": modified, "operator": "GTE",
                                           "value": since.timestamp_millis().to_string()}]}],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_PAGE,
        });
        if let Some(a) = after {
            body["after"] = json!(a);
        }
        let resp = self
            .client
            .call(Method::POST, &path(object, "/search"), Some(&body))
            .await
            .map_err(whole_request)?;
        let (records, after) = resp.records()?;
        // paging past the search cap is refused (400): a new query starts from the newest change
        let after = after.filter(|a| a.parse::<usize>().map_or(true, |n| n < SEARCH_CAP));
        Ok((records, after))
    }

    /// The feed's next page after `cursor` (see the module's comment).
    pub(super) async fn feed_page(
        &self,
        object: &str,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        let Query {
            since,
            after,
            seen,
            mark,
        } = SearchCursor::resume(cursor, start);
        let (records, next) = self
            .search_changed(object, properties, since, after.as_deref())
            .await?;
        let newest = records.iter().filter_map(|r| r.updated_at).max();
        let mark = newest.map_or(mark, |n| mark.max(n));
        let seen = seen + records.len();
        let (state, more) = match next {
            Some(after) => (
                SearchCursor::Query(Query {
                    since,
                    after: Some(after),
                    seen,
                    mark,
                }),
                true,
            ),
            None => match newest {
                // the query stopped at the result cap: a new one from its newest change
                Some(n) if seen + SEARCH_PAGE >= SEARCH_CAP && n > since => (
                    SearchCursor::Query(Query {
                        since: n,
                        after: None,
                        seen: 0,
                        mark,
                    }),
                    true,
                ),
                _ => (SearchCursor::Idle { mark }, false),
            },
        };
        Ok(FeedPage {
            records,
            cursor: serde_json::to_string(&state).expect("a cursor serializes"),
            more,
            snapshots: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_resume_where_they_stood() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let start = FeedStart {
            at,
            overlap: std::time::Duration::from_secs(60),
        };
        let fresh = SearchCursor::resume(None, start);
        assert_eq!(
            fresh,
            Query {
                since: at - chrono::Duration::seconds(60),
                after: None,
                seen: 0,
                mark: at
            }
        );
        // what earlier versions stored: a bare timestamp
        assert_eq!(
            SearchCursor::resume(Some("2026-01-02T03:04:05+00:00"), start),
            fresh
        );
        let idle = serde_json::to_string(&SearchCursor::Idle { mark: at }).unwrap();
        assert_eq!(SearchCursor::resume(Some(&idle), start), fresh);
        let mid = Query {
            since: at,
            after: Some("200".into()),
            seen: 200,
            mark: at,
        };
        let text = serde_json::to_string(&SearchCursor::Query(mid.clone())).unwrap();
        assert_eq!(SearchCursor::resume(Some(&text), start), mid);
    }
}
