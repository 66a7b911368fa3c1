//! Inbound path, last hop: remote records → one `ferry.apply` call per batch. The SQL function
//! decides field by field under the row lock (see sql/functions/apply.sql).
//!
//! Contract: applying the same record twice changes nothing the second time; a record older
//! than the one last applied is ignored; per-record failures (a value the column type rejects)
//! are returned, not raised, so one bad record never blocks a batch.

use bytes::{BufMut, BytesMut};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{accepts, to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{GenericClient, Transaction};

use super::screen;
use crate::connectors::RemoteRecord;
use crate::hub::catalog::Mapping;
use crate::hub::HubError;

/// What one apply call did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApplyOutcome {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub conflicts: i64,
    /// Unknown remote ids held back while creates are in flight.
    pub deferred: Vec<String>,
    /// `(remote id, error)` per record the hub refused whole.
    pub errors: Vec<(String, String)>,
    /// `(remote id, column)` per single value refused; the record's other fields applied.
    pub faults: Vec<(String, String)>,
    /// Deletions held by the mass-delete fuse.
    pub held: i64,
    /// This call tripped the fuse.
    pub tripped: bool,
}

/// One record as ferry.apply takes it: inbound fields only, transformed, keyed by hub column.
/// A value PostgreSQL cannot store is left out of `values` and listed in `faults` instead
/// (see [`screen`]).
pub fn record_json(mapping: &Mapping, r: &RemoteRecord) -> Value {
    if let Some(reason) = screen::id_refusal(&r.id) {
        // refuses only itself: one dead letter under the id shown escaped
        return json!({"id": screen::printable(&r.id), "refused": reason});
    }
    if r.archived {
        return json!({"id": r.id, "deleted": true});
    }
    let mut values = Map::new();
    let mut faults = vec![];
    for f in mapping.fields.iter().filter(|f| f.direction.inbound()) {
        if let Some(v) = r.properties.get(&f.property) {
            if let Some(reason) = screen::value_refusal(v) {
                faults.push(screen::fault(f, v, reason));
                continue;
            }
            match f.to_hub(v.clone()) {
                Ok(hub) => {
                    values.insert(f.column.clone(), hub);
                }
                Err(reason) => faults.push(screen::fault(f, v, reason)),
            }
        }
    }
    let mut record = json!({
        "id": r.id,
        "updated_at": r.updated_at.map(|t| t.to_rfc3339()),
        "deleted": false,
        "values": values,
    });
    if !faults.is_empty() {
        record["faults"] = Value::Array(faults);
    }
    record
}

/// The hub's clock now, as ferry.apply reads a record's `read_at`: taken just before a read of
/// the app begins, so a write of a record recorded after it marks the read as possibly older
/// than that write (see [`stamp_read`]).
pub async fn read_clock(client: &tokio_postgres::Client) -> Result<String, HubError> {
    let row = client
        .query_one("select to_json(clock_timestamp()) #>> '{}'", &[])
        .await?;
    Ok(row.get(0))
}

/// Marks records read from the app with when the read began ([`read_clock`]): ferry.apply
/// holds back those whose write to the app was recorded after it, and they are read again.
pub fn stamp_read(records: &mut [Value], read_at: &str) {
    for r in records {
        if r.get("deleted") == Some(&Value::Bool(false)) {
            r["read_at"] = Value::String(read_at.to_string());
        }
    }
}

/// How much earlier than a snapshot's own time it counts as read: the app's clock and the
/// hub's may disagree, and apps give their times in whole seconds.
pub const SNAPSHOT_CLOCKS: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Marks records that are states as of their update time (a feed of event snapshots, see
/// `FeedPage::snapshots`) as read then, less [`SNAPSHOT_CLOCKS`], instead of when the page was
/// read: a snapshot from before a write ferry recorded is read again rather than applied over
/// that write. `records` are `page`'s, in order, already [`stamp_read`].
pub fn stamp_snapshots(records: &mut [Value], page: &[RemoteRecord]) {
    for (r, remote) in records.iter_mut().zip(page) {
        if let (Some(at), Some(read_at)) = (remote.updated_at, r.get_mut("read_at")) {
            *read_at = Value::String((at - SNAPSHOT_CLOCKS).to_rfc3339());
        }
    }
}

/// Whether one of the record's inbound values is refused before SQL.
fn has_refusals(mapping: &Mapping, r: &RemoteRecord) -> bool {
    mapping
        .fields
        .iter()
        .filter(|f| f.direction.inbound())
        .filter_map(|f| Some((f, r.properties.get(&f.property)?)))
        .any(|(f, v)| {
            screen::value_refusal(v).is_some()
                || (f.value_map.is_some() && f.to_hub(v.clone()).is_err())
        })
}

/// [`record_json`] written straight into a `COPY` row as jsonb, without building the JSON tree
/// first (that tree was a sixth of ferry's CPU in a backfill).
#[derive(Debug)]
struct StagedRecord<'a> {
    mapping: &'a Mapping,
    record: &'a RemoteRecord,
}

impl Serialize for StagedRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        if screen::id_refusal(&r.id).is_some() || (!r.archived && has_refusals(self.mapping, r)) {
            // rare: the record with its faults, through the JSON tree
            return record_json(self.mapping, r).serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &r.id)?;
        if r.archived {
            map.serialize_entry("deleted", &true)?;
            return map.end();
        }
        map.serialize_entry("updated_at", &r.updated_at.map(|t| t.to_rfc3339()))?;
        map.serialize_entry("deleted", &false)?;
        map.serialize_entry("values", &StagedValues(self))?;
        map.end()
    }
}

struct StagedValues<'s, 'a>(&'s StagedRecord<'a>);

impl Serialize for StagedValues<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let StagedRecord { mapping, record } = self.0;
        let mut map = serializer.serialize_map(None)?;
        for f in mapping.fields.iter().filter(|f| f.direction.inbound()) {
            match record.properties.get(&f.property) {
                Some(Value::String(s)) if f.value_map.is_none() => {
                    map.serialize_entry(&f.column, &f.transform_str(s))?
                }
                // mapped and typed values (a mapped value that does not translate sends the
                // record through record_json instead)
                Some(v) => {
                    map.serialize_entry(&f.column, &f.to_hub(v.clone()).unwrap_or(Value::Null))?
                }
                None => {}
            }
        }
        map.end()
    }
}

impl ToSql for StagedRecord<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1); // jsonb's binary format: version 1, then the JSON text
        serde_json::to_writer(out.writer(), self)?;
        Ok(IsNull::No)
    }

    accepts!(JSONB);
    to_sql_checked!();
}

/// A deletion of one remote record.
pub fn deletion_json(remote_id: &str) -> Value {
    json!({"id": remote_id, "deleted": true})
}

/// Applies a batch; `origin` is the path the records came by (`webhook`, `poll`,
/// `reconcile`), ferry.history's origin of the changes with the app's own word on the source.
pub async fn apply(
    client: &impl GenericClient,
    mapping_id: i32,
    records: Vec<Value>,
    defer_unknown: bool,
    origin: &str,
) -> Result<ApplyOutcome, HubError> {
    if records.is_empty() {
        return Ok(ApplyOutcome::default());
    }
    let row = client
        .query_one(
            "select ferry.apply($1, $2, $3) from (select set_config('ferry.origin', $4, true)) o",
            &[&mapping_id, &Value::Array(records), &defer_unknown, &origin],
        )
        .await?;
    Ok(outcome_of(&row.get(0)))
}

/// One page of a backfill: staged with a binary `COPY`, merged by `ferry.backfill_merge`
/// (set-based for records the hub has never seen, `ferry.apply` for the rest). Same contract
/// as [`apply`] with `defer_unknown`.
pub async fn merge_page(
    tx: &Transaction<'_>,
    mapping: &Mapping,
    records: &[&RemoteRecord],
) -> Result<ApplyOutcome, HubError> {
    if records.is_empty() {
        return Ok(ApplyOutcome::default());
    }
    // asynchronous commit: a crash that loses the transaction loses its cursor with it, and the
    // pages are read again; any later commit that is kept flushes this one before it
    tx.batch_execute(
        "set local synchronous_commit = off;
         create temp table if not exists ferry_stage (remote_id text, updated_at timestamptz, rec jsonb) on commit delete rows",
    )
    .await?;
    let sink = tx
        .copy_in("copy pg_temp.ferry_stage (remote_id, updated_at, rec) from stdin (format binary)")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TIMESTAMPTZ, Type::JSONB]);
    futures_util::pin_mut!(writer);
    for r in records {
        writer
            .as_mut()
            .write(&[
                &screen::printable(&r.id).as_ref(),
                &r.updated_at,
                &StagedRecord { mapping, record: r },
            ])
            .await?;
    }
    writer.finish().await?;
    let row = tx
        .query_one(
            "select ferry.backfill_merge($1) from (select set_config('ferry.origin', 'backfill', true)) o",
            &[&mapping.id],
        )
        .await?;
    Ok(outcome_of(&row.get(0)))
}

fn outcome_of(v: &Value) -> ApplyOutcome {
    let n = |k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let pairs = |k: &str, second: &str| -> Vec<(String, String)> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let s = |key: &str| {
                            e.get(key).and_then(Value::as_str).unwrap_or("").to_string()
                        };
                        (s("id"), s(second))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    ApplyOutcome {
        inserted: n("inserted"),
        updated: n("updated"),
        deleted: n("deleted"),
        unchanged: n("unchanged"),
        conflicts: n("conflicts"),
        deferred: v
            .get("deferred")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        held: n("held"),
        tripped: v.get("tripped") == Some(&Value::Bool(true)),
        errors: pairs("errors", "error"),
        faults: pairs("faults", "field"),
    }
}

/// Logs what one apply refused, and a trip of the mass-delete fuse. The dead letters themselves are written by ferry.apply
/// (`ferry.note_refusals`: one per record and field, deduplicated); the log names records and
/// columns, never values.
pub fn log_refusals(mapping: &Mapping, outcome: &ApplyOutcome) {
    let mapping_id = mapping.id;
    if outcome.tripped {
        crate::hub::fuse::tripped(&mapping.name, crate::hub::fuse::Side::App, outcome.held);
    }
    for (remote_id, _) in &outcome.errors {
        tracing::warn!(mapping_id, remote_id = %remote_id, "inbound record refused by the hub; see ferry.dead_letters");
    }
    for (remote_id, column) in &outcome.faults {
        tracing::warn!(mapping_id, remote_id = %remote_id, column = %column, "inbound value refused (the record's other fields applied); see ferry.dead_letters");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::catalog::{Direction, Field};

    fn mapping() -> Mapping {
        let field = |c: &str, d, t: Option<&str>| Field {
            column: c.into(),
            property: format!("p_{c}"),
            ty: "text".into(),
            direction: d,
            transform: t.map(str::to_string),
            value_map: None,
            references: None,
        };
        Mapping::for_tests(vec![
            field("email", Direction::Both, Some("lowercase")),
            field("phone", Direction::Inbound, None),
            field("note", Direction::Outbound, None),
            field("city", Direction::Both, None),
        ])
    }

    /// The staged jsonb is exactly the JSON ferry.apply takes: transforms applied, outbound-only
    /// fields and properties the record lacks left out, nulls kept, deletions reduced to the id.
    #[test]
    fn staged_records_serialize_as_record_json() {
        let m = mapping();
        let props = |pairs: &[(&str, Option<&str>)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map_or(Value::Null, Value::from)))
                .collect()
        };
        let records = [
            RemoteRecord {
                id: "1".into(),
                updated_at: Some(chrono::Utc::now()),
                properties: props(&[
                    ("p_email", Some("Ann@Example.COM")),
                    ("p_phone", None),
                    ("p_note", Some("x")),
                ]),
                archived: false,
            },
            RemoteRecord {
                id: "2".into(),
                updated_at: None,
                properties: props(&[("p_city", Some("Lisbon"))]),
                archived: false,
            },
            RemoteRecord {
                id: "3".into(),
                updated_at: None,
                properties: props(&[("p_city", Some("Oslo"))]),
                archived: true,
            },
            // an id PostgreSQL cannot hold: refused whole, shown escaped, live or deleted
            RemoteRecord {
                id: "4\u{0}x".into(),
                updated_at: None,
                properties: props(&[("p_city", Some("Oslo"))]),
                archived: false,
            },
            RemoteRecord {
                id: "5\u{0}".into(),
                updated_at: None,
                properties: props(&[]),
                archived: true,
            },
        ];
        assert_eq!(
            record_json(&m, &records[3]),
            json!({"id": "4\\u0000x", "refused": screen::id_refusal("\0").unwrap()})
        );
        assert!(!screen::holds_nul(&record_json(&m, &records[4])));
        for r in &records {
            let staged = serde_json::to_value(StagedRecord {
                mapping: &m,
                record: r,
            })
            .unwrap();
            assert_eq!(staged, record_json(&m, r), "record {}", r.id);
        }
        let first = serde_json::to_value(StagedRecord {
            mapping: &m,
            record: &records[0],
        })
        .unwrap();
        assert_eq!(
            first["values"],
            json!({"email": "ann@example.com", "phone": null})
        );
    }

    /// Typed values cross as they are (the column's type casts them in ferry.apply); a
    /// transform applies to strings only; an array or object holding a NUL is refused alone.
    #[test]
    fn typed_values_stage_as_they_are() {
        let mut m = mapping();
        // a text column takes a number as its text; a text[] or jsonb column the value itself
        m.fields[1].ty = "text[]".into();
        m.fields[3].ty = "jsonb".into();
        let record = RemoteRecord {
            id: "4".into(),
            updated_at: None,
            properties: [
                ("p_email".to_string(), json!(17)),
                ("p_phone".to_string(), json!(["+1", "+2"])),
                ("p_city".to_string(), json!({"name": "Oslo", "zip": 150})),
            ]
            .into_iter()
            .collect(),
            archived: false,
        };
        let staged = serde_json::to_value(StagedRecord {
            mapping: &m,
            record: &record,
        })
        .unwrap();
        assert_eq!(staged, record_json(&m, &record));
        assert_eq!(
            staged["values"],
            json!({"email": "17", "phone": ["+1", "+2"], "city": {"name": "Oslo", "zip": 150}})
        );
        let mut bad = record.clone();
        bad.properties
            .insert("p_city".into(), json!({"name": "Os\u{0}lo"}));
        let staged = serde_json::to_value(StagedRecord {
            mapping: &m,
            record: &bad,
        })
        .unwrap();
        assert_eq!(
            staged["values"],
            json!({"email": "17", "phone": ["+1", "+2"]})
        );
        assert_eq!(staged["faults"][0]["field"], "city");
    }
}
