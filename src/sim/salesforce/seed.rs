//! Salesforce simulator: seeding — Accounts, Contacts spread over them and Opportunities,
//! created by the app user an hour before start, one millisecond apart.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::errors::SimError;
use super::rules::parse_record;
use super::schema::{ObjectDef, ACCOUNT, CONTACT, OPPORTUNITY};
use super::store::{Actor, Store};
use super::SimConfig;

fn add(
    store: &mut Store,
    def: &'static ObjectDef,
    body: Value,
    at: DateTime<Utc>,
) -> Result<String, SimError> {
    let map: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
    let parsed = parse_record(def, &map).map_err(|e| SimError::Invalid(vec![e]))?;
    store
        .insert(def, &parsed.patch, at, Actor::App)
        .map_err(SimError::Invalid)
}

pub fn seed(store: &mut Store, cfg: &SimConfig, now: DateTime<Utc>) -> Result<(), SimError> {
    let mut at = now - TimeDelta::hours(1);
    let mut tick = || {
        at += TimeDelta::milliseconds(1);
        at
    };
    let mut accounts = Vec::with_capacity(cfg.seed_accounts);
    for n in 1..=cfg.seed_accounts {
        let body = json!({
            "Name": format!("Account {n}"),
            "BillingCity": "Springfield",
            "Phone": format!("+1 555 01{:02}", n % 100),
        });
        accounts.push(add(store, &ACCOUNT, body, tick())?);
    }
    for n in 1..=cfg.seed_contacts {
        let account = accounts.get(n % accounts.len().max(1)).cloned();
        let body = json!({
            "FirstName": format!("First{n}"),
            "LastName": format!("Contact{n}"),
            "Email": format!("contact{n}@example.com"),
            "Phone": format!("+1 555 02{:02}", n % 100),
            "AccountId": account,
        });
        add(store, &CONTACT, body, tick())?;
    }
    for n in 1..=cfg.seed_opportunities {
        let account = accounts.get(n % accounts.len().max(1)).cloned();
        let body = json!({
            "Name": format!("Opportunity {n}"),
            "StageName": "Prospecting",
            "CloseDate": "2030-01-01",
            "Amount": (n * 1000) as f64,
            "AccountId": account,
        });
        add(store, &OPPORTUNITY, body, tick())?;
    }
    Ok(())
}
