//! Zendesk connector against the simulator, reads: listing pages with typed values, fetch in
//! chunks (soft-deleted users archived), find by email, external id and name, both auth
//! modes, and how throttling, server errors and refusals are classified.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::{Options, Zendesk};
use crate::connectors::{Connector, ConnectorError, RemoteRecord};
use crate::sim::zendesk::{SimConfig, ZendeskSim};

pub(super) async fn sim(cfg: SimConfig) -> ZendeskSim {
    ZendeskSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

/// A connector with the simulator's API token (Basic `{email}/token`).
pub(super) fn connector(sim: &ZendeskSim) -> Zendesk {
    connector_with(sim, Options::default())
}

pub(super) fn connector_with(sim: &ZendeskSim, options: Options) -> Zendesk {
    Zendesk::new(
        "zendesk",
        &sim.base_url(),
        Some(&sim.email()),
        &sim.token(),
        options,
    )
}

pub(super) fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(super) fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every page of a listing.
async fn list_all(z: &Zendesk, object: &str, properties: &[String]) -> Vec<Vec<RemoteRecord>> {
    let mut pages = vec![];
    let mut after = None;
    loop {
        let page = z.list(object, properties, after).await.expect("page");
        pages.push(page.records);
        match page.after {
            Some(a) => after = Some(a),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn lists_every_record_in_pages_of_100_with_typed_values() {
    let sim = sim(SimConfig {
        seed_users: 250,
        seed_orgs: 3,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let users = sim.records("users");
    let ann = users[5].id;
    sim.app_update(
        "users",
        ann,
        map(json!({"tags": ["vip", "beta"], "user_fields": {"plan": "gold", "seats": 3}})),
    )
    .unwrap();
    let props = paths(&[
        "name",
        "email",
        "tags",
        "user_fields.plan",
        "user_fields",
        "role",
    ]);
    let pages = list_all(&z, "users", &props).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [100, 100, 51],
        "250 seeded users and the account owner"
    );
    let all: Vec<&RemoteRecord> = pages.iter().flatten().collect();
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 251, "no record twice");
    assert!(all
        .iter()
        .any(|r| r.properties["email"] == "agent@example.com" && r.properties["role"] == "admin"));
    let rec = all.iter().find(|r| r.id == ann.to_string()).unwrap();
    assert_eq!(rec.properties["tags"], json!(["vip", "beta"]));
    assert_eq!(rec.properties["user_fields.plan"], json!("gold"));
    assert_eq!(
        rec.properties["user_fields"],
        json!({"plan": "gold", "seats": 3})
    );
    assert!(rec.updated_at.is_some() && !rec.archived);

    let orgs = sim.records("organizations");
    sim.app_delete("organizations", orgs[0].id).unwrap();
    let pages = list_all(&z, "organizations", &paths(&["name", "domain_names"])).await;
    let listed: Vec<&RemoteRecord> = pages.iter().flatten().collect();
    assert_eq!(listed.len(), 2, "a deleted organization is not listed");
    assert_eq!(
        listed[0].properties["domain_names"],
        json!(["org2.example.com"])
    );
}

#[tokio::test]
async fn fetch_reads_in_chunks_and_reports_deleted_users_archived() {
    let sim = sim(SimConfig {
        seed_users: 150,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let users = sim.records("users");
    let gone = users[10].id;
    sim.app_delete("users", gone).unwrap();
    let mut ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    ids.push("99999999999".into());
    ids.push("not-a-number".into());
    sim.reset_stats();
    let got = z
        .fetch("users", &ids, &paths(&["email", "phone"]))
        .await
        .expect("fetched");
    assert_eq!(
        got.len(),
        151,
        "every existing user, the missing ones absent"
    );
    let deleted = got.iter().find(|r| r.id == gone.to_string()).unwrap();
    assert!(deleted.archived, "a soft-deleted user is archived");
    let live = got
        .iter()
        .find(|r| r.id == users[3].id.to_string())
        .unwrap();
    assert_eq!(live.properties["phone"], json!("+15550000003"));
    assert_eq!(
        sim.stats().by_route.get("GET /api/v2/users/show_many"),
        Some(&2),
        "152 ids in two calls"
    );
}

#[tokio::test]
async fn find_by_email_external_id_and_name() {
    let sim = sim(SimConfig {
        seed_users: 3,
        seed_orgs: 2,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let plus = sim
        .app_create(
            "users",
            map(json!({"name": "Pat", "email": "pat+eu@example.com", "external_id": "crm-7"})),
        )
        .unwrap();
    let old = sim
        .app_create(
            "users",
            map(json!({"name": "Old", "email": "old@example.com"})),
        )
        .unwrap();
    sim.app_delete("users", old).unwrap();
    let found = z
        .find(
            "users",
            "email",
            &paths(&[
                "PAT+EU@example.com",
                "user2@example.com",
                "old@example.com",
                "x@y.com",
            ]),
            &[],
        )
        .await
        .expect("found");
    let mut emails: Vec<&str> = found
        .iter()
        .filter_map(|r| r.properties["email"].as_str())
        .collect();
    emails.sort_unstable();
    assert_eq!(
        emails,
        ["pat+eu@example.com", "user2@example.com"],
        "case-insensitive, soft-deleted users left out, the property returned"
    );
    let by_external = z
        .find(
            "users",
            "external_id",
            &paths(&["CRM-7", "nope"]),
            &paths(&["name"]),
        )
        .await
        .expect("found");
    assert_eq!(by_external.len(), 1);
    assert_eq!(by_external[0].id, plus.to_string());
    assert_eq!(by_external[0].properties["name"], "Pat");

    let orgs = z
        .find("organizations", "name", &paths(&["organization 2"]), &[])
        .await
        .expect("found");
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].properties["name"], "Organization 2");
    let orgs = z
        .find("organizations", "external_id", &paths(&["org-1"]), &[])
        .await
        .expect("found");
    assert_eq!(orgs[0].properties["external_id"], "org-1");
}

#[tokio::test]
async fn api_token_and_oauth_both_authenticate() {
    let sim = sim(SimConfig {
        oauth_token: Some("oauth-xyz".into()),
        seed_users: 2,
        ..SimConfig::default()
    })
    .await;
    let basic = connector(&sim);
    let bearer = Zendesk::new(
        "zendesk",
        &sim.base_url(),
        None,
        "oauth-xyz",
        Options::default(),
    );
    for z in [&basic, &bearer] {
        let page = z
            .list("users", &paths(&["email"]), None)
            .await
            .expect("page");
        assert_eq!(page.records.len(), 3);
    }
    // the base URL may name the API root too
    let rooted = Zendesk::new(
        "zendesk",
        &format!("{}/api/v2/", sim.base_url()),
        Some(&sim.email()),
        &sim.token(),
        Options::default(),
    );
    assert!(rooted.list("users", &[], None).await.is_ok());
    let wrong = Zendesk::new(
        "zendesk",
        &sim.base_url(),
        Some(&sim.email()),
        "bad",
        Options::default(),
    );
    assert!(matches!(
        wrong.list("users", &[], None).await,
        Err(ConnectorError::Auth(m)) if m.contains("Couldn't authenticate you")
    ));
    let token_as_bearer = Zendesk::new(
        "zendesk",
        &sim.base_url(),
        None,
        &sim.token(),
        Options::default(),
    );
    assert!(matches!(
        token_as_bearer.fetch("users", &paths(&["1"]), &[]).await,
        Err(ConnectorError::Auth(_))
    ));
}

#[tokio::test]
async fn throttles_server_errors_and_refusals_are_classified() {
    let sim = sim(SimConfig {
        rate_limit: Some((3, Duration::from_secs(60))),
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    for _ in 0..3 {
        z.list("users", &[], None).await.expect("within the budget");
    }
    match z.list("users", &[], None).await {
        Err(ConnectorError::RateLimited {
            retry_after,
            policy,
        }) => {
            // the simulator's Retry-After: the seconds until its window frees a slot
            assert!(
                retry_after >= Duration::from_secs(50) && retry_after <= Duration::from_secs(60),
                "{retry_after:?}"
            );
            assert_eq!(policy, "account");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    sim.set_rate_limit_enabled(false);
    sim.set_faults(0.0, 1.0, 0.0);
    assert!(matches!(
        z.list("users", &[], None).await,
        Err(ConnectorError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(1)
    ));
    sim.set_faults(1.0, 0.0, 0.0);
    assert!(matches!(
        z.fetch("users", &paths(&["1"]), &[]).await,
        Err(ConnectorError::Transient(m)) if m.starts_with("HTTP 5")
    ));
    sim.set_faults(0.0, 0.0, 0.0);
    assert!(matches!(
        z.list("tickets", &[], None).await,
        Err(ConnectorError::Rejected { status: 400, .. })
    ));
    // a base URL that is not Zendesk's API: the whole request is refused, not "record gone"
    let lost = Zendesk::new(
        "zendesk",
        &format!("{}/elsewhere", sim.base_url()),
        Some(&sim.email()),
        &sim.token(),
        Options::default(),
    );
    assert!(matches!(
        lost.fetch("users", &paths(&["1"]), &[]).await,
        Err(ConnectorError::Rejected { status: 404, .. })
    ));
    // the connection's own budget spaces calls instead of meeting the 429
    let budgeted = connector_with(
        &sim,
        Options {
            budget: Some("2/1s".parse().unwrap()),
            ..Options::default()
        },
    );
    let started = std::time::Instant::now();
    for _ in 0..3 {
        budgeted.list("users", &[], None).await.expect("listed");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}
