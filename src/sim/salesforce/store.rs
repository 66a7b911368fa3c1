//! Salesforce simulator: the record store — Contacts, Accounts and Opportunities with their
//! audit fields, record-level validation (writable fields, required fields, lengths, lookups,
//! unique external ids), soft deletes into the recycle bin (an Account takes its Contacts and
//! Opportunities with it), undelete and the purge of the bin after its retention.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::errors::{SfError, SimError};
use super::schema::{self, FieldDef, FieldType, ObjectDef};
use super::values::{self, Val};
use super::{ids, rules};

/// Who makes a change: the API user (the integration) or someone in the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Api,
    App,
}

/// The user ids behind [`Actor`]s (`CreatedById`, `LastModifiedById`).
pub const API_USER: &str = "0058d000001SiMAAA2";
pub const APP_USER: &str = "0058d000002SiMAAA2";

impl Actor {
    fn user(self) -> &'static str {
        match self {
            Actor::Api => API_USER,
            Actor::App => APP_USER,
        }
    }
}

/// The external id an upsert matches on, and whether it may create.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    pub field: &'static FieldDef,
    pub value: &'a str,
    pub update_only: bool,
}

/// Field values of one write, already read from JSON.
pub type Patch = Vec<(&'static FieldDef, Val)>;

#[derive(Clone, Debug)]
pub struct Rec {
    pub values: BTreeMap<&'static str, Val>,
    /// When it went to the recycle bin.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The record whose delete took this one along (undeleting that one restores it).
    pub deleted_with: Option<String>,
}

static NULL: Val = Val::Null;

impl Rec {
    pub fn get(&self, field: &str) -> &Val {
        self.values.get(field).unwrap_or(&NULL)
    }

    pub fn id(&self) -> &str {
        self.get("Id").as_str().unwrap_or("")
    }

    /// `{"attributes":{"type","url"}, field: value...}` with `fields` (all when None).
    pub fn render(&self, def: &ObjectDef, fields: Option<&[&FieldDef]>, version: &str) -> Value {
        let mut out = Map::new();
        out.insert(
            "attributes".into(),
            json!({
                "type": def.name,
                "url": format!("/services/data/v{version}/sobjects/{}/{}", def.name, self.id()),
            }),
        );
        let all: Vec<&FieldDef> = def.fields.iter().collect();
        for f in fields.unwrap_or(&all) {
            out.insert(f.name.to_string(), self.get(f.name).render());
        }
        Value::Object(out)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Store {
    tables: BTreeMap<&'static str, BTreeMap<String, Rec>>,
    /// Live records by (object, unique field, lower-cased value).
    unique: HashMap<(&'static str, &'static str, String), String>,
    next: u64,
    /// The latest delete time of a record purged from the recycle bin.
    pub purged_through: Option<DateTime<Utc>>,
}

fn unique_key(def: &ObjectDef, f: &FieldDef, v: &str) -> (&'static str, &'static str, String) {
    (def.name, f.name, v.to_lowercase())
}

impl Store {
    /// Every record of `def`, deleted ones included, in id (= creation) order.
    pub fn rows(&self, def: &ObjectDef) -> impl Iterator<Item = &Rec> {
        self.tables
            .get(def.name)
            .into_iter()
            .flat_map(|t| t.values())
    }

    /// A record by id in any form; deleted ones too.
    pub fn find(&self, raw_id: &str) -> Option<(&'static ObjectDef, &Rec)> {
        let id = ids::normalize(raw_id)?;
        let def = schema::object_of_id(&id)?;
        self.tables.get(def.name)?.get(&id).map(|r| (def, r))
    }

    /// A live record of `def`.
    pub fn live(&self, def: &ObjectDef, raw_id: &str) -> Result<&Rec, SimError> {
        match self.find(raw_id) {
            Some((d, r)) if d.name == def.name && r.deleted_at.is_none() => Ok(r),
            _ => Err(SimError::NotFound),
        }
    }

    /// The live record of `def` whose unique field `f` equals `value` (case-insensitively).
    pub fn by_unique(&self, def: &ObjectDef, f: &FieldDef, value: &str) -> Option<&Rec> {
        let id = self.unique.get(&unique_key(def, f, value))?;
        self.tables.get(def.name)?.get(id)
    }

    fn rec_mut(&mut self, def: &ObjectDef, id: &str) -> Option<&mut Rec> {
        self.tables.get_mut(def.name)?.get_mut(id)
    }

    fn index(&mut self, def: &ObjectDef, rec: &Rec, on: bool) {
        for f in def.fields.iter().filter(|f| f.unique) {
            if let Val::Str(v) = rec.get(f.name) {
                let key = unique_key(def, f, v);
                if on {
                    self.unique.insert(key, rec.id().to_string());
                } else {
                    self.unique.remove(&key);
                }
            }
        }
    }

    /// Record-level validation of a write to `def` (`self_id`: the record updated, if any).
    fn validate(
        &self,
        def: &ObjectDef,
        patch: &Patch,
        self_id: Option<&str>,
    ) -> Result<Patch, Vec<SfError>> {
        rules::writable(patch, self_id.is_none())?;
        let mut errs = Vec::new();
        let mut out = Patch::with_capacity(patch.len());
        for (f, v) in patch {
            match values::check(f, v).and_then(|v| self.check_link(def, f, v, self_id)) {
                Ok(v) => out.push((*f, v)),
                Err(e) => errs.push(e),
            }
        }
        if let Some(e) = rules::required(def, patch, self_id.is_none()) {
            errs.insert(0, e);
        }
        if errs.is_empty() {
            Ok(out)
        } else {
            Err(errs)
        }
    }

    /// Lookups must name a live record of the right object; unique values must be free.
    fn check_link(
        &self,
        def: &ObjectDef,
        f: &FieldDef,
        v: Val,
        self_id: Option<&str>,
    ) -> Result<Val, SfError> {
        let Val::Str(s) = &v else {
            return Ok(v);
        };
        if f.ty == FieldType::Reference {
            let target = f.reference_to.and_then(schema::object);
            if target.is_some_and(|t| !s.starts_with(t.prefix)) {
                return Err(SfError::on(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", f.label),
                    &[f.name],
                ));
            }
            return match self.find(s) {
                Some((_, r)) if r.deleted_at.is_some() => Err(SfError::on(
                    "ENTITY_IS_DELETED",
                    "entity is deleted",
                    &[f.name],
                )),
                Some(_) => Ok(v),
                None => Err(SfError::on(
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("invalid cross reference id: {s}"),
                    &[f.name],
                )),
            };
        }
        if f.unique {
            if let Some(other) = self.by_unique(def, f, s) {
                if Some(other.id()) != self_id {
                    return Err(SfError::on(
                        "DUPLICATE_VALUE",
                        format!(
                            "duplicate value found: {} duplicates value on record with id: {}",
                            f.name,
                            other.id()
                        ),
                        &[],
                    ));
                }
            }
        }
        Ok(v)
    }

    pub fn insert(
        &mut self,
        def: &'static ObjectDef,
        patch: &Patch,
        now: DateTime<Utc>,
        by: Actor,
    ) -> Result<String, Vec<SfError>> {
        let patch = self.validate(def, patch, None)?;
        self.next += 1;
        let id = ids::make(def.prefix, "8d", self.next);
        let mut values: BTreeMap<&'static str, Val> =
            def.fields.iter().map(|f| (f.name, Val::Null)).collect();
        values.insert("Id", Val::Str(id.clone()));
        values.insert("IsDeleted", Val::Bool(false));
        values.insert("CreatedDate", Val::DateTime(now));
        values.insert("CreatedById", Val::Str(by.user().into()));
        let mut rec = Rec {
            values,
            deleted_at: None,
            deleted_with: None,
        };
        apply(def, &mut rec, patch, now, by);
        self.index(def, &rec, true);
        self.tables
            .entry(def.name)
            .or_default()
            .insert(id.clone(), rec);
        Ok(id)
    }

    pub fn update(
        &mut self,
        def: &'static ObjectDef,
        raw_id: &str,
        patch: &Patch,
        now: DateTime<Utc>,
        by: Actor,
    ) -> Result<String, SimError> {
        let id = match self.find(raw_id) {
            Some((d, r)) if d.name == def.name => {
                if r.deleted_at.is_some() {
                    return Err(SimError::Deleted);
                }
                r.id().to_string()
            }
            _ => return Err(SimError::NotFound),
        };
        let patch = self
            .validate(def, patch, Some(&id))
            .map_err(SimError::Invalid)?;
        let Some(rec) = self.rec_mut(def, &id) else {
            return Err(SimError::NotFound);
        };
        let mut rec = std::mem::replace(
            rec,
            Rec {
                values: BTreeMap::new(),
                deleted_at: None,
                deleted_with: None,
            },
        );
        self.index(def, &rec, false);
        apply(def, &mut rec, patch, now, by);
        self.index(def, &rec, true);
        if let Some(slot) = self.rec_mut(def, &id) {
            *slot = rec;
        }
        Ok(id)
    }

    /// Upsert on external id `f` = `value`: updates the live match or creates a record
    /// (unless `update_only`). Returns the id and whether it was created.
    pub fn upsert(
        &mut self,
        def: &'static ObjectDef,
        key: Key<'_>,
        patch: &Patch,
        now: DateTime<Utc>,
        by: Actor,
    ) -> Result<(String, bool), SimError> {
        let Key {
            field: f,
            value,
            update_only,
        } = key;
        let mut patch: Patch = patch
            .iter()
            .filter(|(p, _)| p.name != f.name)
            .cloned()
            .collect();
        let existing = if f.name == "Id" {
            self.live(def, value).ok().map(|r| r.id().to_string())
        } else {
            self.by_unique(def, f, value).map(|r| r.id().to_string())
        };
        match existing {
            Some(id) => self.update(def, &id, &patch, now, by).map(|id| (id, false)),
            None if update_only || f.name == "Id" => Err(SimError::NotFound),
            None => {
                patch.push((f, Val::Str(value.to_string())));
                self.insert(def, &patch, now, by)
                    .map(|id| (id, true))
                    .map_err(SimError::Invalid)
            }
        }
    }

    /// Moves a record (of `def`, when given) to the recycle bin; an Account takes its
    /// Contacts and Opportunities along. Returns its object.
    pub fn delete(
        &mut self,
        def: Option<&ObjectDef>,
        raw_id: &str,
        now: DateTime<Utc>,
        by: Actor,
    ) -> Result<&'static ObjectDef, SimError> {
        let (obj, id) = match self.find(raw_id) {
            Some((d, _)) if def.is_some_and(|x| x.name != d.name) => {
                return Err(SimError::NotFound)
            }
            Some((_, r)) if r.deleted_at.is_some() => return Err(SimError::Deleted),
            Some((d, r)) => (d, r.id().to_string()),
            None => return Err(SimError::NotFound),
        };
        let mut doomed = vec![(obj, id.clone(), None)];
        if obj.name == schema::ACCOUNT.name {
            for child in [&schema::CONTACT, &schema::OPPORTUNITY] {
                for r in self.rows(child) {
                    if r.deleted_at.is_none() && r.get("AccountId").as_str() == Some(id.as_str()) {
                        doomed.push((child, r.id().to_string(), Some(id.clone())));
                    }
                }
            }
        }
        for (d, rid, with) in doomed {
            let Some(rec) = self.rec_mut(d, &rid) else {
                continue;
            };
            rec.deleted_at = Some(now);
            rec.deleted_with = with;
            rec.values.insert("IsDeleted", Val::Bool(true));
            stamp(rec, now, by);
            let rec = rec.clone();
            self.index(d, &rec, false);
        }
        Ok(obj)
    }

    /// Restores a record from the recycle bin (with what its delete took along).
    pub fn undelete(
        &mut self,
        def: &ObjectDef,
        raw_id: &str,
        now: DateTime<Utc>,
        by: Actor,
    ) -> Result<(), SimError> {
        let id = match self.find(raw_id) {
            Some((d, r)) if d.name == def.name && r.deleted_at.is_some() => r.id().to_string(),
            _ => return Err(SimError::NotFound),
        };
        let mut back = vec![(schema::object_of_id(&id), id.clone())];
        for child in [&schema::CONTACT, &schema::OPPORTUNITY] {
            for r in self.rows(child) {
                if r.deleted_with.as_deref() == Some(id.as_str()) {
                    back.push((Some(child), r.id().to_string()));
                }
            }
        }
        for (d, rid) in back {
            let Some(d) = d else { continue };
            let Some(rec) = self.rec_mut(d, &rid) else {
                continue;
            };
            let mut rec = rec.clone();
            for f in d.fields.iter().filter(|f| f.unique) {
                if let Some(other) = rec
                    .get(f.name)
                    .as_str()
                    .and_then(|v| self.by_unique(d, f, v))
                {
                    let msg = format!(
                        "duplicate value found: {} duplicates value on record with id: {}",
                        f.name,
                        other.id()
                    );
                    return Err(SimError::Invalid(vec![SfError::on(
                        "DUPLICATE_VALUE",
                        msg,
                        &[],
                    )]));
                }
            }
            rec.deleted_at = None;
            rec.deleted_with = None;
            rec.values.insert("IsDeleted", Val::Bool(false));
            stamp(&mut rec, now, by);
            self.index(d, &rec, true);
            if let Some(slot) = self.rec_mut(d, &rid) {
                *slot = rec;
            }
        }
        Ok(())
    }

    /// Empties the recycle bin of what was deleted `retention` or longer before `now`.
    pub fn purge(&mut self, now: DateTime<Utc>, retention: TimeDelta) {
        let cutoff = now - retention;
        for table in self.tables.values_mut() {
            table.retain(|_, r| match r.deleted_at {
                Some(t) if t <= cutoff => {
                    self.purged_through = Some(self.purged_through.map_or(t, |p| p.max(t)));
                    false
                }
                _ => true,
            });
        }
    }
}

/// Writes `patch` into `rec` with fresh audit fields and recomputed formula fields.
fn apply(def: &ObjectDef, rec: &mut Rec, patch: Patch, now: DateTime<Utc>, by: Actor) {
    for (f, v) in patch {
        rec.values.insert(f.name, v);
    }
    rules::derive(def, &mut rec.values);
    stamp(rec, now, by);
}

fn stamp(rec: &mut Rec, now: DateTime<Utc>, by: Actor) {
    rec.values.insert("LastModifiedDate", Val::DateTime(now));
    rec.values
        .insert("LastModifiedById", Val::Str(by.user().into()));
    rec.values.insert("SystemModstamp", Val::DateTime(now));
}
