//! HubSpot simulator: the record store (ids, timestamps, contact email uniqueness, archive) and
//! the change list each write produces for webhooks.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use super::schema::{ObjectKind, PropError, Props};

/// One stored record. Read-only properties (`hs_object_id`, `createdate`, last-modified) are
/// derived from the fields, never stored in `props`.
#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub id: u64,
    pub props: BTreeMap<&'static str, String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

impl Rec {
    pub(crate) fn live(&self) -> bool {
        self.archived_at.is_none()
    }

    /// Value of any property, read-only ones included.
    pub(crate) fn value(&self, kind: ObjectKind, name: &str) -> Option<String> {
        match name {
            "hs_object_id" => Some(self.id.to_string()),
            "createdate" => Some(super::http::iso(self.created)),
            n if n == kind.lastmod() => Some(super::http::iso(self.updated)),
            n => self.props.get(n).cloned(),
        }
    }

    /// Epoch-ms / numeric value of a sortable read-only property.
    pub(crate) fn numeric(&self, kind: ObjectKind, name: &str) -> Option<i64> {
        match name {
            "hs_object_id" => i64::try_from(self.id).ok(),
            "createdate" => Some(self.created.timestamp_millis()),
            n if n == kind.lastmod() => Some(self.updated.timestamp_millis()),
            _ => None,
        }
    }
}

/// What happened to a record, for webhook events.
#[derive(Clone, Debug)]
pub(crate) enum ChangeKind {
    Created,
    Property(&'static str, String),
    Deleted,
}

#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub kind: ObjectKind,
    pub id: u64,
    pub at_ms: i64,
    pub what: ChangeKind,
}

/// Why a write was refused.
#[derive(Clone, Debug)]
pub(crate) enum WriteError {
    NotFound,
    Invalid(Vec<PropError>),
    Duplicate(u64),
}

#[derive(Default)]
pub(crate) struct Table {
    pub recs: BTreeMap<u64, Rec>,
    next_id: u64,
    /// Lower-cased email -> id of the live contact holding it.
    emails: HashMap<String, u64>,
}

#[derive(Default)]
pub(crate) struct Store {
    tables: [Table; 3],
}

fn email_key(props: &Props) -> Option<Option<String>> {
    props
        .iter()
        .rev()
        .find(|(n, _)| *n == "email")
        .map(|(_, v)| {
            v.as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| s.to_lowercase())
        })
}

impl Store {
    pub(crate) fn table(&self, kind: ObjectKind) -> &Table {
        &self.tables[kind.index()]
    }

    pub(crate) fn get(&self, kind: ObjectKind, id: u64) -> Option<&Rec> {
        self.table(kind).recs.get(&id)
    }

    /// Live contact owning `email` (case-insensitive).
    pub(crate) fn contact_by_email(&self, email: &str) -> Option<u64> {
        self.table(ObjectKind::Contacts)
            .emails
            .get(&email.to_lowercase())
            .copied()
    }

    /// Checks that the write would not duplicate a live contact's email. `id` is the record being
    /// updated (None on create).
    pub(crate) fn check_unique(
        &self,
        kind: ObjectKind,
        id: Option<u64>,
        props: &Props,
    ) -> Result<(), WriteError> {
        if kind != ObjectKind::Contacts {
            return Ok(());
        }
        if let Some(Some(key)) = email_key(props) {
            if let Some(&owner) = self.table(kind).emails.get(&key) {
                if Some(owner) != id {
                    return Err(WriteError::Duplicate(owner));
                }
            }
        }
        Ok(())
    }

    /// Creates a record at `now` (the simulator clock, whole milliseconds).
    pub(crate) fn create(
        &mut self,
        kind: ObjectKind,
        props: Props,
        now: DateTime<Utc>,
        out: &mut Vec<Change>,
    ) -> Result<u64, WriteError> {
        self.check_unique(kind, None, &props)?;
        let email = email_key(&props).flatten();
        let t = &mut self.tables[kind.index()];
        t.next_id += 1;
        let id = t.next_id;
        let mut rec = Rec {
            id,
            props: BTreeMap::new(),
            created: now,
            updated: now,
            archived_at: None,
        };
        for (name, value) in props {
            match value {
                Some(v) => rec.props.insert(name, v),
                None => rec.props.remove(name),
            };
        }
        if let Some(e) = email {
            t.emails.insert(e, id);
        }
        t.recs.insert(id, rec);
        out.push(Change {
            kind,
            id,
            at_ms: now.timestamp_millis(),
            what: ChangeKind::Created,
        });
        Ok(id)
    }

    /// Applies a partial update to a live record at `now`. Returns whether anything changed;
    /// the last-modified time only moves when something did (and always forward).
    pub(crate) fn update(
        &mut self,
        kind: ObjectKind,
        id: u64,
        props: Props,
        now: DateTime<Utc>,
        out: &mut Vec<Change>,
    ) -> Result<bool, WriteError> {
        match self.get(kind, id) {
            Some(r) if r.live() => {}
            _ => return Err(WriteError::NotFound),
        }
        self.check_unique(kind, Some(id), &props)?;
        let t = &mut self.tables[kind.index()];
        let Some(rec) = t.recs.get_mut(&id) else {
            return Err(WriteError::NotFound);
        };
        let old_email = rec.props.get("email").map(|e| e.to_lowercase());
        let mut changed: Vec<(&'static str, Option<String>)> = Vec::new();
        for (name, value) in props {
            if rec.props.get(name) != value.as_ref() {
                match &value {
                    Some(v) => rec.props.insert(name, v.clone()),
                    None => rec.props.remove(name),
                };
                changed.push((name, value));
            }
        }
        if changed.is_empty() {
            return Ok(false);
        }
        let at = now.max(rec.updated + Duration::milliseconds(1));
        rec.updated = at;
        for (name, value) in changed {
            if name == "email" {
                if let Some(old) = &old_email {
                    if t.emails.get(old) == Some(&id) {
                        t.emails.remove(old);
                    }
                }
                if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                    t.emails.insert(v.to_lowercase(), id);
                }
            }
            let v = value.unwrap_or_default();
            out.push(Change {
                kind,
                id,
                at_ms: at.timestamp_millis(),
                what: ChangeKind::Property(name, v),
            });
        }
        Ok(true)
    }

    /// Archives a record at `now`. `Ok(false)` if it was already archived; `NotFound` if it never
    /// existed.
    pub(crate) fn archive(
        &mut self,
        kind: ObjectKind,
        id: u64,
        now: DateTime<Utc>,
        out: &mut Vec<Change>,
    ) -> Result<bool, WriteError> {
        let t = &mut self.tables[kind.index()];
        let Some(rec) = t.recs.get_mut(&id) else {
            return Err(WriteError::NotFound);
        };
        if !rec.live() {
            return Ok(false);
        }
        let at = now.max(rec.updated + Duration::milliseconds(1));
        rec.updated = at;
        rec.archived_at = Some(at);
        if let Some(e) = rec.props.get("email") {
            let key = e.to_lowercase();
            if t.emails.get(&key) == Some(&id) {
                t.emails.remove(&key);
            }
        }
        out.push(Change {
            kind,
            id,
            at_ms: at.timestamp_millis(),
            what: ChangeKind::Deleted,
        });
        Ok(true)
    }
}

const FIRST: &[&str] = &[
    "Ada", "Alan", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "John",
];
const LAST: &[&str] = &[
    "Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie",
    "Allen", "Backus",
];
const COMPANY: &[&str] = &[
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
];

/// Deterministic fake properties of seeded contact number `n` (1-based).
pub(crate) fn seed_contact(n: usize) -> Props {
    vec![
        ("email", Some(format!("contact{n}@example.com"))),
        ("firstname", Some(FIRST[n % FIRST.len()].to_string())),
        (
            "lastname",
            Some(LAST[(n / FIRST.len()) % LAST.len()].to_string()),
        ),
        ("phone", Some(format!("+1555{:07}", n % 10_000_000))),
        ("company", Some(COMPANY[n % COMPANY.len()].to_string())),
    ]
}
