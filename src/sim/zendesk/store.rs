//! Zendesk simulator: the record store — users and organizations with their unique indexes
//! (email, external id, organization name), validation against them, soft-deleted users,
//! the update-time index the incremental exports walk, and the changes each write produces.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::fields::{FieldError, Object, OrgPatch, UserPatch};
use super::organizations::Org;
use super::users::{FieldChange, User};
use super::SimError;

/// Ids are large like Zendesk's (beyond 32 bits), users and organizations in distinct ranges.
const FIRST_USER_ID: u64 = 10_000_000_001;
const FIRST_ORG_ID: u64 = 20_000_000_001;

#[derive(Clone, Debug)]
pub(crate) enum ChangeKind {
    Created,
    Updated(Vec<FieldChange>),
    Deleted,
}

/// One change to one record, with the record's event `detail` right after it.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub object: Object,
    pub id: u64,
    pub at: DateTime<Utc>,
    pub kind: ChangeKind,
    pub detail: Value,
}

/// Update time (Unix seconds) and id: the order of the incremental exports.
pub(crate) type Position = (i64, u64);

pub(crate) struct Store {
    pub users: BTreeMap<u64, User>,
    pub orgs: BTreeMap<u64, Org>,
    next_user: u64,
    next_org: u64,
    /// Email of active users -> id.
    emails: HashMap<String, u64>,
    /// Lower-cased external id of active users -> id.
    user_external: HashMap<String, u64>,
    /// Lower-cased name of live organizations -> id.
    org_names: HashMap<String, u64>,
    org_external: HashMap<String, u64>,
    pub user_log: BTreeSet<Position>,
    pub org_log: BTreeSet<Position>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            users: BTreeMap::new(),
            orgs: BTreeMap::new(),
            next_user: FIRST_USER_ID,
            next_org: FIRST_ORG_ID,
            emails: HashMap::new(),
            user_external: HashMap::new(),
            org_names: HashMap::new(),
            org_external: HashMap::new(),
            user_log: BTreeSet::new(),
            org_log: BTreeSet::new(),
        }
    }
}

fn dup(field: &'static str, description: String) -> FieldError {
    FieldError::new(field, "DuplicateValue", description)
}

fn or_invalid(errs: Vec<FieldError>) -> Result<(), SimError> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(SimError::Invalid(errs))
    }
}

const FIRST_NAMES: [&str; 12] = [
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena",
];
const LAST_NAMES: [&str; 10] = [
    "Alvarez", "Brown", "Chen", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
];

impl Store {
    pub(crate) fn user_by_email(&self, email: &str) -> Option<u64> {
        self.emails.get(&email.to_lowercase()).copied()
    }

    pub(crate) fn user_by_external_id(&self, external_id: &str) -> Option<u64> {
        self.user_external.get(&external_id.to_lowercase()).copied()
    }

    pub(crate) fn org_by_external_id(&self, external_id: &str) -> Option<u64> {
        self.org_external.get(&external_id.to_lowercase()).copied()
    }

    pub(crate) fn active_user(&self, id: u64) -> Option<&User> {
        self.users.get(&id).filter(|u| u.active)
    }

    pub(crate) fn live_org(&self, id: u64) -> Option<&Org> {
        self.orgs.get(&id).filter(|o| o.live())
    }

    fn check_user(&self, id: Option<u64>, p: &UserPatch) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match &p.name {
            Some(n) if n.is_empty() => errs.push(FieldError::blank_name()),
            None if id.is_none() => errs.push(FieldError::blank_name()),
            _ => {}
        }
        if let Some(Some(email)) = &p.email {
            if self
                .user_by_email(email)
                .is_some_and(|owner| Some(owner) != id)
            {
                errs.push(dup(
                    "email",
                    format!("Email: {email} is already being used by another user"),
                ));
            }
        }
        if let Some(Some(x)) = &p.external_id {
            if self
                .user_by_external_id(x)
                .is_some_and(|owner| Some(owner) != id)
            {
                errs.push(dup(
                    "external_id",
                    format!("External: {x} has already been taken"),
                ));
            }
        }
        if let Some(Some(org)) = p.organization_id {
            if self.live_org(org).is_none() {
                errs.push(FieldError::new(
                    "organization_id",
                    "InvalidValue",
                    format!("Organization: {org} does not exist"),
                ));
            }
        }
        errs
    }

    fn index_user(&mut self, u: &User, on: bool) {
        if let Some(e) = &u.email {
            if on {
                self.emails.insert(e.clone(), u.id);
            } else {
                self.emails.remove(e);
            }
        }
        if let Some(x) = &u.external_id {
            if on {
                self.user_external.insert(x.to_lowercase(), u.id);
            } else {
                self.user_external.remove(&x.to_lowercase());
            }
        }
    }

    /// Stores `u` (replacing its previous version and its indexes).
    fn put_user(&mut self, u: User) {
        if let Some(old) = self.users.remove(&u.id) {
            self.index_user(&old, false);
            self.user_log.remove(&(old.updated_at.timestamp(), old.id));
        }
        if u.active {
            self.index_user(&u, true);
        }
        self.user_log.insert((u.updated_at.timestamp(), u.id));
        self.users.insert(u.id, u);
    }

    pub(crate) fn create_user(
        &mut self,
        p: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Change>), SimError> {
        or_invalid(self.check_user(None, p))?;
        let id = self.next_user;
        self.next_user += 1;
        let mut u = User::new(id, now);
        u.apply(p);
        let change = Change {
            object: Object::Users,
            id,
            at: now,
            kind: ChangeKind::Created,
            detail: u.detail(),
        };
        self.put_user(u);
        Ok((id, vec![change]))
    }

    /// Applies `p` to an active user; no change at all leaves `updated_at` as it was.
    pub(crate) fn update_user(
        &mut self,
        id: u64,
        p: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SimError> {
        let mut u = self.active_user(id).cloned().ok_or(SimError::NotFound)?;
        or_invalid(self.check_user(Some(id), p))?;
        let fields = u.apply(p);
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        u.updated_at = now;
        let change = Change {
            object: Object::Users,
            id,
            at: now,
            kind: ChangeKind::Updated(fields),
            detail: u.detail(),
        };
        self.put_user(u);
        Ok(vec![change])
    }

    /// Soft delete: the user turns inactive, leaves the listings and frees its email and
    /// external id (reusable by a new user), but stays readable by id and in the export.
    pub(crate) fn delete_user(
        &mut self,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SimError> {
        let mut u = self.active_user(id).cloned().ok_or(SimError::NotFound)?;
        u.active = false;
        u.updated_at = now;
        let change = Change {
            object: Object::Users,
            id,
            at: now,
            kind: ChangeKind::Deleted,
            detail: u.detail(),
        };
        self.put_user(u);
        Ok(vec![change])
    }

    /// `create_or_update`: the active user matching the external id (case-insensitive), else
    /// the email, is updated; otherwise a user is created. `bool` is true when created.
    pub(crate) fn upsert_user(
        &mut self,
        p: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<(u64, bool, Vec<Change>), SimError> {
        let by_external = match &p.external_id {
            Some(Some(x)) => self.user_by_external_id(x),
            _ => None,
        };
        let by_email = match &p.email {
            Some(Some(e)) => self.user_by_email(e),
            _ => None,
        };
        match by_external.or(by_email) {
            Some(id) => Ok((id, false, self.update_user(id, p, now)?)),
            None => self.create_user(p, now).map(|(id, c)| (id, true, c)),
        }
    }

    fn check_org(&self, id: Option<u64>, p: &OrgPatch) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match &p.name {
            Some(n) if n.is_empty() => errs.push(FieldError::blank_name()),
            None if id.is_none() => errs.push(FieldError::blank_name()),
            Some(n) => {
                let owner = self.org_names.get(&n.to_lowercase()).copied();
                if owner.is_some_and(|o| Some(o) != id) {
                    errs.push(dup("name", "Name: has already been taken".into()));
                }
            }
            None => {}
        }
        if let Some(Some(x)) = &p.external_id {
            if self.org_by_external_id(x).is_some_and(|o| Some(o) != id) {
                errs.push(dup(
                    "external_id",
                    format!("External: {x} has already been taken"),
                ));
            }
        }
        errs
    }

    fn put_org(&mut self, o: Org) {
        if let Some(old) = self.orgs.remove(&o.id) {
            self.org_names.remove(&old.name.to_lowercase());
            if let Some(x) = &old.external_id {
                self.org_external.remove(&x.to_lowercase());
            }
            self.org_log.remove(&(old.updated_at.timestamp(), old.id));
        }
        if o.live() {
            self.org_names.insert(o.name.to_lowercase(), o.id);
            if let Some(x) = &o.external_id {
                self.org_external.insert(x.to_lowercase(), o.id);
            }
        }
        self.org_log.insert((o.updated_at.timestamp(), o.id));
        self.orgs.insert(o.id, o);
    }

    pub(crate) fn create_org(
        &mut self,
        p: &OrgPatch,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Change>), SimError> {
        or_invalid(self.check_org(None, p))?;
        let id = self.next_org;
        self.next_org += 1;
        let mut o = Org::new(id, now);
        o.apply(p);
        let change = Change {
            object: Object::Organizations,
            id,
            at: now,
            kind: ChangeKind::Created,
            detail: o.detail(),
        };
        self.put_org(o);
        Ok((id, vec![change]))
    }

    pub(crate) fn update_org(
        &mut self,
        id: u64,
        p: &OrgPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SimError> {
        let mut o = self.live_org(id).cloned().ok_or(SimError::NotFound)?;
        or_invalid(self.check_org(Some(id), p))?;
        let fields = o.apply(p);
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        o.updated_at = now;
        let change = Change {
            object: Object::Organizations,
            id,
            at: now,
            kind: ChangeKind::Updated(fields),
            detail: o.detail(),
        };
        self.put_org(o);
        Ok(vec![change])
    }

    /// Deletes an organization (kept as a tombstone for the export); its members lose their
    /// `organization_id`.
    pub(crate) fn delete_org(
        &mut self,
        id: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Change>, SimError> {
        let mut o = self.live_org(id).cloned().ok_or(SimError::NotFound)?;
        o.deleted_at = Some(now);
        o.updated_at = now;
        let mut changes = vec![Change {
            object: Object::Organizations,
            id,
            at: now,
            kind: ChangeKind::Deleted,
            detail: o.detail(),
        }];
        self.put_org(o);
        let members: Vec<u64> = self
            .users
            .values()
            .filter(|u| u.active && u.organization_id == Some(id))
            .map(|u| u.id)
            .collect();
        let leave = UserPatch {
            organization_id: Some(None),
            ..UserPatch::default()
        };
        for uid in members {
            changes.extend(self.update_user(uid, &leave, now)?);
        }
        Ok(changes)
    }

    /// The account owner: an admin with the API agent's email (every account has one).
    pub(crate) fn seed_owner(&mut self, email: &str, at: DateTime<Utc>) -> Result<u64, SimError> {
        let p = UserPatch {
            name: Some("Sim Admin".into()),
            email: Some(Some(email.to_lowercase())),
            role: Some("admin"),
            verified: Some(true),
            ..UserPatch::default()
        };
        self.create_user(&p, at).map(|(id, _)| id)
    }

    /// `Organization {n}` (external id `org-{n}`, domain `org{n}.example.com`), the n-th
    /// updated at `first + n` seconds.
    pub(crate) fn seed_orgs(&mut self, count: usize, first: DateTime<Utc>) -> Result<(), SimError> {
        for n in 1..=count {
            let p = OrgPatch {
                name: Some(format!("Organization {n}")),
                external_id: Some(Some(format!("org-{n}"))),
                domain_names: Some(vec![format!("org{n}.example.com")]),
                ..OrgPatch::default()
            };
            self.create_org(&p, first + TimeDelta::seconds(n as i64))?;
        }
        Ok(())
    }

    /// End-users `user{n}@example.com` with a name and a phone, members of the seeded
    /// organizations round-robin; the n-th updated at `first + n` seconds.
    pub(crate) fn seed_users(
        &mut self,
        count: usize,
        first: DateTime<Utc>,
    ) -> Result<(), SimError> {
        let orgs: Vec<u64> = self.orgs.keys().copied().collect();
        for n in 1..=count {
            let i = n - 1;
            let name = format!(
                "{} {}",
                FIRST_NAMES[i % FIRST_NAMES.len()],
                LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()]
            );
            let p = UserPatch {
                name: Some(name),
                email: Some(Some(format!("user{n}@example.com"))),
                phone: Some(Some(format!("+1555{:07}", n % 10_000_000))),
                organization_id: Some(orgs.get(i % orgs.len().max(1)).copied()),
                ..UserPatch::default()
            };
            self.create_user(&p, first + TimeDelta::seconds(n as i64))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("t")
    }

    fn user(name: &str, email: &str) -> UserPatch {
        UserPatch {
            name: Some(name.into()),
            email: Some(Some(email.into())),
            ..UserPatch::default()
        }
    }

    #[test]
    fn users_unique_email_and_soft_delete() {
        let mut s = Store::default();
        let (a, _) = s.create_user(&user("A", "a@x.com"), t(0)).expect("a");
        assert_eq!(a, FIRST_USER_ID);
        let err = s.create_user(&user("B", "a@x.com"), t(1)).expect_err("dup");
        assert!(matches!(&err, SimError::Invalid(e) if e[0].error == "DuplicateValue"));
        assert!(matches!(
            s.create_user(&UserPatch::default(), t(1)),
            Err(SimError::Invalid(e)) if e[0].error == "BlankValue"
        ));
        let changes = s.delete_user(a, t(5)).expect("deleted");
        assert!(matches!(changes[0].kind, ChangeKind::Deleted));
        assert!(s.active_user(a).is_none() && s.users.contains_key(&a));
        assert!(matches!(s.delete_user(a, t(6)), Err(SimError::NotFound)));
        // the email is free again
        let (b, _) = s.create_user(&user("B", "a@x.com"), t(7)).expect("b");
        assert_eq!(s.user_by_email("A@X.com"), Some(b));
        assert_eq!(
            s.user_log.iter().copied().collect::<Vec<_>>(),
            [(t(5).timestamp(), a), (t(7).timestamp(), b)]
        );
    }

    #[test]
    fn upsert_matches_external_id_then_email() {
        let mut s = Store::default();
        let mut p = user("A", "a@x.com");
        p.external_id = Some(Some("CRM-1".into()));
        let (a, created, _) = s.upsert_user(&p, t(0)).expect("created");
        assert!(created);
        let mut again = user("A2", "other@x.com");
        again.external_id = Some(Some("crm-1".into()));
        let (id, created, changes) = s.upsert_user(&again, t(1)).expect("updated");
        assert_eq!((id, created), (a, false));
        // name, email, and the external id's case
        assert!(matches!(&changes[0].kind, ChangeKind::Updated(f) if f.len() == 3));
        let (id, created, changes) = s
            .upsert_user(&user("A2", "other@x.com"), t(2))
            .expect("noop");
        assert_eq!((id, created, changes.len()), (a, false, 0));
        assert_eq!(s.users[&a].updated_at, t(1), "no change, no new updated_at");
    }

    #[test]
    fn orgs_unique_name_and_cascade() {
        let mut s = Store::default();
        let acme = OrgPatch {
            name: Some("Acme".into()),
            ..OrgPatch::default()
        };
        let (o, _) = s.create_org(&acme, t(0)).expect("org");
        let dup_name = OrgPatch {
            name: Some("ACME".into()),
            ..OrgPatch::default()
        };
        assert!(s.create_org(&dup_name, t(1)).is_err());
        let mut member = user("M", "m@x.com");
        member.organization_id = Some(Some(o));
        let (m, _) = s.create_user(&member, t(1)).expect("member");
        let mut stray = user("S", "s@x.com");
        stray.organization_id = Some(Some(o + 100));
        assert!(matches!(
            s.create_user(&stray, t(1)),
            Err(SimError::Invalid(e)) if e[0].field == "organization_id"
        ));
        let changes = s.delete_org(o, t(9)).expect("deleted");
        assert_eq!(changes.len(), 2);
        assert_eq!(s.users[&m].organization_id, None);
        assert!(s.live_org(o).is_none() && s.orgs[&o].deleted_at.is_some());
        assert!(s.create_org(&dup_name, t(10)).is_ok(), "name free again");
    }

    #[test]
    fn seeding_is_deterministic() {
        let mut s = Store::default();
        s.seed_owner("Agent@Example.com", t(0)).expect("owner");
        s.seed_orgs(2, t(0)).expect("orgs");
        s.seed_users(3, t(0)).expect("users");
        let users: Vec<&User> = s.users.values().collect();
        assert_eq!(users.len(), 4);
        assert_eq!(users[0].email.as_deref(), Some("agent@example.com"));
        assert_eq!(users[0].role, "admin");
        assert_eq!(users[1].email.as_deref(), Some("user1@example.com"));
        assert_eq!(users[1].name, "Ada Alvarez");
        assert_eq!(users[2].phone.as_deref(), Some("+15550000002"));
        assert_eq!(users[3].organization_id, Some(FIRST_ORG_ID));
        assert_eq!(users[3].updated_at, t(3));
    }
}
