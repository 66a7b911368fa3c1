//! Stripe connector, inbound: the change feed from `/v1/events` — `customer.created|updated|
//! deleted` for customers, `invoice.*` for invoices — each event's `data.object` applied as
//! the record's state (a `*.deleted` event as its deletion).
//!
//! Direction: Stripe lists newest first, and `ending_before=<id>` answers the `limit` events
//! just newer than `<id>` (still newest first, `has_more` when even newer ones wait). So the
//! feed asks `ending_before=<the last event seen>`, applies the page oldest first, and moves
//! its cursor to the page's newest event: a crash repeats at most that page.
//!
//! Versions: Stripe's customers and invoices carry no updated time, so a record's version is
//! the `created` second of the event whose snapshot it is. The engine skips a state older than
//! the one it applied, so duplicates (same version, same values) and late events (older
//! version) do no harm; two events of one second within a page collapse to the later one.
//! Pages say their records are snapshots (`FeedPage::snapshots`): one older than a write
//! ferry recorded since is read again by id rather than applied over that write (ferry's
//! writes claim no version, since an update that changes nothing makes no event).
//!
//! The cursor is this module's JSON: `{"event": id}` (the last event seen), `{"since": t}`
//! (no event yet: those created from `t` on), or `{"relist": ..}` while a full listing stands
//! in for events Stripe no longer keeps (30 days) after which the events resume.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::mapping::{record, Object};
use super::reads::List;
use super::Stripe;
use crate::connectors::{ConnectorError, FeedPage, FeedStart, RemoteRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cursor {
    Event(String),
    Since(i64),
    Relist {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
        /// Where the events resume once the listing is read: the newest event when it began.
        resume: Box<Cursor>,
    },
}

impl Cursor {
    fn resume(stored: Option<&str>, start: FeedStart) -> Cursor {
        stored
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_else(|| {
                let overlap = i64::try_from(start.overlap.as_secs()).unwrap_or(0);
                Cursor::Since(start.at.timestamp() - overlap)
            })
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serializes")
    }
}

/// The event filter of an object: customers' own three types (`customer.*` also names
/// subscriptions, sources, tax ids...), all of `invoice.*`.
fn type_params(object: Object) -> Vec<(String, String)> {
    match object {
        Object::Customers => ["customer.created", "customer.updated", "customer.deleted"]
            .iter()
            .map(|t| ("types[]".to_string(), t.to_string()))
            .collect(),
        Object::Invoices => vec![("type".into(), "invoice.*".into())],
    }
}

/// The record an event carries, if it is one of `object`'s.
pub fn event_record(
    object: Object,
    event: &Value,
    properties: &[String],
) -> Result<Option<RemoteRecord>, ConnectorError> {
    let data = &event["data"]["object"];
    let kind = event["type"].as_str().unwrap_or("");
    if data["object"].as_str() != Some(object.wire_name()) || !data["id"].is_string() {
        return Ok(None);
    }
    let created = event["created"].as_i64();
    let mut r = record(data, properties, created)?;
    if kind.ends_with(".deleted") {
        r.archived = true;
        r.properties.clear();
    }
    Ok(Some(r))
}

/// A page's records, oldest event first, one per record (its latest state).
fn records_of(
    object: Object,
    newest_first: &[Value],
    properties: &[String],
) -> Result<Vec<RemoteRecord>, ConnectorError> {
    let mut out: Vec<RemoteRecord> = vec![];
    let mut at: HashMap<String, usize> = HashMap::new();
    for e in newest_first.iter().rev() {
        if let Some(r) = event_record(object, e, properties)? {
            match at.get(&r.id) {
                Some(i) => out[*i] = r,
                None => {
                    at.insert(r.id.clone(), out.len());
                    out.push(r);
                }
            }
        }
    }
    Ok(out)
}

fn event_id(e: &Value) -> Option<String> {
    e.get("id").and_then(Value::as_str).map(str::to_string)
}

/// Whether a refusal says the cursor's event is gone (older than Stripe keeps).
fn cursor_gone(e: &ConnectorError) -> bool {
    matches!(e, ConnectorError::Rejected { status: 400, message }
        if message.contains("resource_missing") && message.contains("(param: ending_before)"))
}

impl Stripe {
    async fn events(
        &self,
        object: Object,
        extra: Vec<(String, String)>,
    ) -> Result<List, ConnectorError> {
        let mut params = type_params(object);
        params.push(("limit".into(), self.page_limit.to_string()));
        params.extend(extra);
        self.list_call("/events", params).await
    }

    pub(super) async fn feed_page(
        &self,
        object: Object,
        properties: &[String],
        cursor: Option<&str>,
        start: FeedStart,
    ) -> Result<FeedPage, ConnectorError> {
        match Cursor::resume(cursor, start) {
            Cursor::Relist { after, resume } => {
                self.relist(object, properties, after, *resume).await
            }
            Cursor::Event(id) => {
                let list = match self
                    .events(object, vec![("ending_before".into(), id.clone())])
                    .await
                {
                    Ok(l) => l,
                    Err(e) if cursor_gone(&e) => {
                        let newest = self.events(object, vec![]).await?;
                        let resume = match newest.data.first().and_then(event_id) {
                            Some(id) => Cursor::Event(id),
                            None => Cursor::Since(chrono::Utc::now().timestamp()),
                        };
                        tracing::warn!(connection = %self.client.name(), object = object.name(),
                            "stripe no longer has the feed's last event (events are kept 30 days): the feed reads the whole listing once and then follows the events from the newest one; deletions in between are not seen here (a reconcile finds them)");
                        return self.relist(object, properties, None, resume).await;
                    }
                    Err(e) => return Err(e),
                };
                let next = list.data.first().and_then(event_id).unwrap_or(id);
                Ok(FeedPage {
                    records: records_of(object, &list.data, properties)?,
                    cursor: Cursor::Event(next).text(),
                    more: list.has_more,
                    snapshots: true,
                })
            }
            Cursor::Since(t) => {
                let since = vec![("created[gte]".to_string(), t.to_string())];
                let mut list = self.events(object, since.clone()).await?;
                let more = list.has_more;
                // newest first: the oldest page is the last one
                while list.has_more {
                    let Some(last) = list.data.last().and_then(event_id) else {
                        break;
                    };
                    let mut p = since.clone();
                    p.push(("starting_after".into(), last));
                    list = self.events(object, p).await?;
                }
                let next = match list.data.first().and_then(event_id) {
                    Some(id) => Cursor::Event(id),
                    None => Cursor::Since(t),
                };
                Ok(FeedPage {
                    records: records_of(object, &list.data, properties)?,
                    cursor: next.text(),
                    more,
                    snapshots: true,
                })
            }
        }
    }

    /// One page of the listing that stands in for lost events; after its last page the feed
    /// resumes at `resume`.
    async fn relist(
        &self,
        object: Object,
        properties: &[String],
        after: Option<String>,
        resume: Cursor,
    ) -> Result<FeedPage, ConnectorError> {
        let page = self
            .list_page(object, properties, after.as_deref(), self.page_limit)
            .await?;
        let cursor = match page.after {
            Some(a) => Cursor::Relist {
                after: Some(a),
                resume: Box::new(resume),
            },
            None => resume,
        };
        Ok(FeedPage {
            records: page.records,
            cursor: cursor.text(),
            more: true,
            snapshots: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_read_back() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let start = FeedStart {
            at,
            overlap: std::time::Duration::from_secs(60),
        };
        assert_eq!(Cursor::resume(None, start), Cursor::Since(1_699_999_940));
        assert_eq!(
            Cursor::resume(Some("junk"), start),
            Cursor::Since(1_699_999_940)
        );
        let e = Cursor::Event("evt_1".into());
        assert_eq!(e.text(), r#"{"event":"evt_1"}"#);
        let r = Cursor::Relist {
            after: Some("cus_9".into()),
            resume: Box::new(e.clone()),
        };
        assert_eq!(
            r.text(),
            r#"{"relist":{"after":"cus_9","resume":{"event":"evt_1"}}}"#
        );
        assert_eq!(Cursor::resume(Some(&r.text()), start), r);
        let gone = ConnectorError::Rejected {
            status: 400,
            message: "HTTP 400: resource_missing: No such event: 'evt_1' (param: ending_before)"
                .into(),
        };
        assert!(cursor_gone(&gone));
        assert!(!cursor_gone(&ConnectorError::NotFound));
    }
}
