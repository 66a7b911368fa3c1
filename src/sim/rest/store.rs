//! REST simulator: the records of each resource — ids (integers, reusable after a hard delete
//! when the profile says so, or random 20-character strings), the maintained timestamps at the
//! profile's precision, tombstones, required and unique fields, the rendering clients see (the
//! id under the profile's `id_field`) and the orders lists walk.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::profile::{DeleteKind, IdKind, ResourceProfile, TimeFormat};
use super::wire::random_alnum;

/// A record id, of the resource's id type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    pub(crate) fn json(&self) -> Value {
        match self {
            Id::Int(i) => json!(i),
            Id::Str(s) => json!(s),
        }
    }

    pub(crate) fn text(&self) -> String {
        match self {
            Id::Int(i) => i.to_string(),
            Id::Str(s) => s.clone(),
        }
    }

    /// An id from a path segment; None if it cannot be one of this type.
    pub(crate) fn parse(raw: &str, kind: IdKind) -> Option<Id> {
        match kind {
            IdKind::Integer => raw.parse().ok().map(Id::Int),
            IdKind::String => (!raw.is_empty()).then(|| Id::Str(raw.to_string())),
        }
    }

    /// An id from JSON: a number, or a string of the id's text.
    pub(crate) fn from_json(v: &Value, kind: IdKind) -> Option<Id> {
        match v {
            Value::Number(n) if kind == IdKind::Integer => n.as_i64().map(Id::Int),
            Value::String(s) => Id::parse(s, kind),
            _ => None,
        }
    }
}

/// One stored record.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: Id,
    /// Creation order.
    pub seq: u64,
    /// What clients sent (maintained fields left out).
    pub fields: Map<String, Value>,
    pub created: DateTime<Utc>,
    /// None until the first update with `null_updated_on_insert`.
    pub updated: Option<DateTime<Utc>>,
    /// The tombstone's time.
    pub deleted: Option<DateTime<Utc>>,
}

impl Record {
    /// When it last changed: `updated_at`, or `created_at` while that is null.
    pub(crate) fn changed_at(&self) -> DateTime<Utc> {
        self.updated.unwrap_or(self.created)
    }
}

/// The orders a list can be asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sort {
    /// By id (creation order for string ids).
    Id,
    /// Oldest change first, ties by id.
    UpdatedAsc,
    /// Newest change first, ties by id.
    UpdatedDesc,
}

/// A time truncated to the format's precision.
pub(crate) fn truncate(t: DateTime<Utc>, fmt: TimeFormat) -> DateTime<Utc> {
    let cut = match fmt {
        TimeFormat::Rfc3339 | TimeFormat::UnixMs => {
            DateTime::from_timestamp_millis(t.timestamp_millis())
        }
        TimeFormat::Rfc3339Seconds | TimeFormat::Unix => DateTime::from_timestamp(t.timestamp(), 0),
    };
    cut.unwrap_or(t)
}

/// A time as the format writes it.
pub(crate) fn render_time(t: DateTime<Utc>, fmt: TimeFormat) -> Value {
    match fmt {
        TimeFormat::Rfc3339 => json!(t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        TimeFormat::Rfc3339Seconds => json!(t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        TimeFormat::Unix => json!(t.timestamp()),
        TimeFormat::UnixMs => json!(t.timestamp_millis()),
    }
}

/// A time as a client wrote it in a filter (an unescaped `+` in a query reads as a space).
pub(crate) fn parse_time(text: &str, fmt: TimeFormat) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let parsed = match fmt {
        TimeFormat::Rfc3339 | TimeFormat::Rfc3339Seconds => DateTime::parse_from_rfc3339(t)
            .or_else(|_| DateTime::parse_from_rfc3339(&t.replace(' ', "+")))
            .ok()
            .map(|d| d.with_timezone(&Utc)),
        TimeFormat::Unix => t.parse().ok().and_then(|s| DateTime::from_timestamp(s, 0)),
        TimeFormat::UnixMs => t.parse().ok().and_then(DateTime::from_timestamp_millis),
    };
    parsed.ok_or_else(|| {
        let want = match fmt {
            TimeFormat::Rfc3339 | TimeFormat::Rfc3339Seconds => "an RFC 3339 time",
            TimeFormat::Unix => "Unix seconds",
            TimeFormat::UnixMs => "Unix milliseconds",
        };
        format!("`{text}` is not {want}")
    })
}

/// Merges a PATCH: top-level fields replace, nested objects merge one level.
fn merge(into: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// One resource's records.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: String,
    pub spec: ResourceProfile,
    records: BTreeMap<Id, Record>,
    next_int: i64,
    free: BTreeSet<i64>,
    seq: u64,
}

impl Table {
    pub(crate) fn new(name: &str, spec: &ResourceProfile) -> Table {
        Table {
            name: name.to_string(),
            spec: spec.clone(),
            records: BTreeMap::new(),
            next_int: 1,
            free: BTreeSet::new(),
            seq: 0,
        }
    }

    pub(crate) fn get(&self, id: &Id) -> Option<&Record> {
        self.records.get(id)
    }

    /// A record that is not tombstoned.
    pub(crate) fn live(&self, id: &Id) -> Option<&Record> {
        self.get(id).filter(|r| r.deleted.is_none())
    }

    /// Every record (tombstones included), in id order.
    /// Every record, in no particular order.
    pub(crate) fn each(&self) -> impl Iterator<Item = &Record> {
        self.records.values()
    }

    pub(crate) fn all(&self) -> Vec<&Record> {
        let mut out: Vec<&Record> = self.records.values().collect();
        out.sort_by_key(|r| self.key(r, Sort::Id));
        out
    }

    /// `at` at the resource's precision.
    pub(crate) fn stamp(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        truncate(at, self.spec.timestamps)
    }

    /// A time as this resource writes it.
    pub(crate) fn time(&self, t: DateTime<Utc>) -> Value {
        render_time(t, self.spec.timestamps)
    }

    /// The record as clients see it: its fields, id (under `id_field`, with the numeric `id`
    /// beside it when asked) and maintained times.
    pub(crate) fn render(&self, r: &Record) -> Value {
        let mut m = r.fields.clone();
        if self.spec.also_numeric_id {
            m.insert("id".into(), json!(r.seq));
        }
        m.insert(self.spec.id_field.clone(), r.id.json());
        m.insert(self.spec.created_at.clone(), self.time(r.created));
        let updated = r.updated.map(|t| self.time(t)).unwrap_or(Value::Null);
        m.insert(self.spec.updated_at.clone(), updated);
        if self.spec.delete == DeleteKind::Tombstone {
            let deleted = r.deleted.map(|t| self.time(t)).unwrap_or(Value::Null);
            m.insert(self.spec.tombstone.clone(), deleted);
        }
        Value::Object(m)
    }

    /// Client fields without the maintained ones.
    pub(crate) fn clean(&self, mut fields: Map<String, Value>) -> Map<String, Value> {
        for f in self.spec.maintained() {
            fields.remove(f);
        }
        fields
    }

    /// The sort key of a record: ids order by number (strings by creation), changes by their
    /// time in milliseconds with the id as tiebreak.
    pub(crate) fn key(&self, r: &Record, sort: Sort) -> (i64, i64) {
        let tie = match &r.id {
            Id::Int(i) => *i,
            Id::Str(_) => i64::try_from(r.seq).unwrap_or(i64::MAX),
        };
        let ms = r.changed_at().timestamp_millis();
        match sort {
            Sort::Id => (tie, 0),
            Sort::UpdatedAsc => (ms, tie),
            Sort::UpdatedDesc => (-ms, tie),
        }
    }

    fn next_id(&mut self) -> Id {
        match self.spec.ids {
            IdKind::Integer => {
                if self.spec.reuse_ids {
                    if let Some(i) = self.free.pop_first() {
                        return Id::Int(i);
                    }
                }
                let i = self.next_int;
                self.next_int += 1;
                Id::Int(i)
            }
            IdKind::String => loop {
                let id = Id::Str(random_alnum(20));
                if !self.records.contains_key(&id) {
                    return id;
                }
            },
        }
    }

    /// Refuses fields a live record may not end up with: a required field missing or null,
    /// or a unique field's value held by another live record. The message names the field.
    pub(crate) fn validate(
        &self,
        fields: &Map<String, Value>,
        me: Option<&Id>,
    ) -> Result<(), String> {
        for f in &self.spec.required {
            if fields.get(f).is_none_or(Value::is_null) {
                return Err(format!("`{f}` is required"));
            }
        }
        for f in &self.spec.unique {
            let Some(v) = fields.get(f).filter(|v| !v.is_null()) else {
                continue;
            };
            let taken = self
                .records
                .values()
                .any(|r| r.deleted.is_none() && Some(&r.id) != me && r.fields.get(f) == Some(v));
            if taken {
                return Err(format!("`{f}` must be unique: {v} is already used"));
            }
        }
        Ok(())
    }

    /// The fields a write would leave on the live record `id` (None if it is not live).
    pub(crate) fn preview(
        &self,
        id: &Id,
        fields: &Map<String, Value>,
        replace: bool,
    ) -> Option<Map<String, Value>> {
        let r = self.live(id)?;
        if replace {
            return Some(fields.clone());
        }
        let mut out = r.fields.clone();
        merge(&mut out, fields.clone());
        Some(out)
    }

    /// Creates a record (fields already cleaned) at `at`; returns its id.
    pub(crate) fn create(&mut self, fields: Map<String, Value>, at: DateTime<Utc>) -> Id {
        let now = self.stamp(at);
        let id = self.next_id();
        self.seq += 1;
        let updated = (!self.spec.null_updated_on_insert).then_some(now);
        let record = Record {
            id: id.clone(),
            seq: self.seq,
            fields,
            created: now,
            updated,
            deleted: None,
        };
        self.records.insert(id.clone(), record);
        id
    }

    /// Merges (or with `replace`, replaces) the live record's fields, bumping `updated_at`;
    /// false if there is no such live record.
    pub(crate) fn write(
        &mut self,
        id: &Id,
        fields: Map<String, Value>,
        replace: bool,
        at: DateTime<Utc>,
    ) -> bool {
        let now = self.stamp(at);
        let Some(r) = self.records.get_mut(id).filter(|r| r.deleted.is_none()) else {
            return false;
        };
        if replace {
            r.fields = fields;
        } else {
            merge(&mut r.fields, fields);
        }
        r.updated = Some(now);
        true
    }

    /// Deletes the live record `id`: gone (its id freed for reuse), or tombstoned with its
    /// `updated_at` bumped. Returns the record as it was before (None if not live).
    pub(crate) fn delete(&mut self, id: &Id, at: DateTime<Utc>) -> Option<Record> {
        let now = self.stamp(at);
        let before = self.live(id)?.clone();
        match self.spec.delete {
            DeleteKind::Hard => {
                self.records.remove(id);
                if let (Id::Int(i), true) = (id, self.spec.reuse_ids) {
                    self.free.insert(*i);
                }
            }
            DeleteKind::Tombstone => {
                if let Some(r) = self.records.get_mut(id) {
                    r.deleted = Some(now);
                    r.updated = Some(now);
                }
            }
        }
        Some(before)
    }
}

/// Every resource's table, and the event counter.
#[derive(Debug, Default)]
pub(crate) struct Data {
    pub tables: BTreeMap<String, Table>,
    /// Events made so far (`evt_<n>` numbers).
    pub events: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ResourceProfile {
        let p = super::super::Profile::parse(&format!("[resources.r]\npath = \"/r\"\n{text}"))
            .expect("profile");
        p.resources["r"].clone()
    }

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn ids_are_reused_lowest_first_when_asked() {
        let mut t = Table::new("r", &spec("reuse_ids = true"));
        let now = Utc::now();
        for _ in 0..4 {
            t.create(Map::new(), now);
        }
        t.delete(&Id::Int(3), now).expect("deleted");
        t.delete(&Id::Int(2), now).expect("deleted");
        assert_eq!(t.create(Map::new(), now), Id::Int(2));
        assert_eq!(t.create(Map::new(), now), Id::Int(3));
        assert_eq!(t.create(Map::new(), now), Id::Int(5));
        let mut plain = Table::new("r", &spec(""));
        plain.create(Map::new(), now);
        plain.delete(&Id::Int(1), now);
        assert_eq!(plain.create(Map::new(), now), Id::Int(2));
    }

    #[test]
    fn patch_merges_one_level_and_times_truncate() {
        let mut t = Table::new("r", &spec("timestamps = \"rfc3339_seconds\""));
        let at = DateTime::parse_from_rfc3339("2024-05-01T12:00:00.987Z")
            .expect("time")
            .with_timezone(&Utc);
        let id = t.create(fields(json!({"a": 1, "o": {"x": 1, "y": 2}})), at);
        t.write(&id, fields(json!({"o": {"y": 3}, "b": 2})), false, at);
        let r = t.render(t.get(&id).expect("record"));
        assert_eq!(r["o"], json!({"x": 1, "y": 3}));
        assert_eq!((r["a"].clone(), r["b"].clone()), (json!(1), json!(2)));
        assert_eq!(r["updated_at"], json!("2024-05-01T12:00:00Z"));
        assert_eq!(
            parse_time("2024-05-01T12:00:00 00:00", TimeFormat::Rfc3339).map(|t| t.timestamp()),
            Ok(1_714_564_800)
        );
        assert!(parse_time("yesterday", TimeFormat::Unix).is_err());
    }

    #[test]
    fn ids_render_under_their_field_with_a_numeric_id_beside() {
        let mut t = Table::new(
            "r",
            &spec("ids = \"string\"\nid_field = \"documentId\"\nalso_numeric_id = true"),
        );
        let now = Utc::now();
        t.create(Map::new(), now);
        let sent = fields(json!({"documentId": "mine", "id": 99, "title": "T"}));
        let id = t.create(t.clean(sent), now);
        let r = t.render(t.get(&id).expect("record"));
        assert_eq!(r["documentId"], id.json());
        assert_eq!(
            (r["id"].clone(), r["title"].clone()),
            (json!(2), json!("T"))
        );
        let mut plain = Table::new("r", &spec("id_field = \"number\""));
        let n = plain.create(Map::new(), now);
        let r = plain.render(plain.get(&n).expect("record"));
        assert_eq!((r["number"].clone(), r.get("id")), (json!(1), None));
    }

    #[test]
    fn string_ids_order_by_creation() {
        let mut t = Table::new("r", &spec("ids = \"string\""));
        let now = Utc::now();
        let ids: Vec<Id> = (0..5).map(|_| t.create(Map::new(), now)).collect();
        let listed: Vec<Id> = t.all().into_iter().map(|r| r.id.clone()).collect();
        assert_eq!(listed, ids);
        assert!(matches!(&ids[0], Id::Str(s) if s.len() == 20));
    }
}
