//! Zendesk connector against the simulator, writes through bulk jobs: creates that are safe
//! to send twice, per-item failures with Zendesk's message, updates of nested paths only,
//! archives that count the already gone as done, and a job that never finishes.

use std::time::Duration;

use serde_json::{json, Value};

use super::tests_reads::{connector, connector_with, map, sim};
use super::{Options, Zendesk};
use crate::connectors::{Connector, ConnectorError, Properties, Written};
use crate::sim::zendesk::SimConfig;

fn props(v: Value) -> Properties {
    map(v).into_iter().collect()
}

fn written(results: Vec<Result<Written, ConnectorError>>) -> Vec<Written> {
    results.into_iter().map(|r| r.expect("written")).collect()
}

#[tokio::test]
async fn creates_users_once_even_when_sent_twice() {
    let sim = sim(SimConfig::default()).await;
    let z = connector(&sim);
    let items = vec![
        props(json!({"name": "Ann", "email": "ann@example.com", "phone": "+15550001"})),
        props(
            json!({"name": "Bob", "email": "bob@example.com", "tags": ["vip"],
                     "user_fields.plan": "gold"}),
        ),
    ];
    let first = written(z.create("users", &items).await);
    assert_eq!(first.len(), 2);
    // no version claimed: the engine holds back reads begun before it records the write
    assert!(first.iter().all(|w| w.updated_at.is_none()), "{first:?}");
    let bob = sim.get("users", first[1].id.parse().unwrap()).unwrap();
    assert_eq!(bob.fields["user_fields"], json!({"plan": "gold"}));
    assert_eq!(bob.fields["tags"], json!(["vip"]));
    // the same create again (its answer was lost, say): the same records, no duplicates
    let again = written(z.create("users", &items).await);
    assert_eq!(
        again.iter().map(|w| &w.id).collect::<Vec<_>>(),
        first.iter().map(|w| &w.id).collect::<Vec<_>>()
    );
    assert_eq!(sim.records("users").len(), 3, "the owner and the two users");

    // more than 100 inputs: one bulk call per 100
    let many: Vec<Properties> = (0..150)
        .map(|i| props(json!({"name": format!("N{i}"), "email": format!("n{i}@example.com")})))
        .collect();
    sim.reset_stats();
    let made = written(z.create("users", &many).await);
    assert_eq!(made.len(), 150);
    assert_eq!(sim.records("users").len(), 153);
    assert_eq!(
        sim.stats()
            .by_route
            .get("POST /api/v2/users/create_or_update_many"),
        Some(&2)
    );
    let n7 = sim.get("users", made[7].id.parse().unwrap()).unwrap();
    assert_eq!(
        n7.fields["email"], "n7@example.com",
        "results in input order"
    );
}

#[tokio::test]
async fn a_failed_item_fails_alone_with_zendesks_message() {
    let sim = sim(SimConfig {
        seed_users: 2,
        seed_orgs: 1,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let out = z
        .create(
            "users",
            &[
                props(json!({"name": "Ok", "email": "ok@example.com"})),
                props(json!({"name": "Bad", "email": "not-an-email"})),
                props(json!({"email": "nameless@example.com"})),
            ],
        )
        .await;
    assert!(out[0].is_ok());
    match &out[1] {
        Err(ConnectorError::Rejected { status, message }) => {
            assert_eq!(*status, 422);
            assert_eq!(
                message,
                "Email: not-an-email is not properly formatted (InvalidFormat)"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(
        matches!(&out[2], Err(ConnectorError::Rejected { message, .. })
        if message == "Name: cannot be blank (BlankValue)")
    );

    let users = sim.records("users");
    let (u1, u2) = (users[1].id.to_string(), users[2].id.to_string());
    let out = z
        .update(
            "users",
            &[
                (u1.clone(), props(json!({"email": "user2@example.com"}))),
                (u2.clone(), props(json!({"phone": "+15559999"}))),
                ("12345".into(), props(json!({"phone": "+1"}))),
                ("x".into(), props(json!({"phone": "+1"}))),
            ],
        )
        .await;
    assert!(
        matches!(&out[0], Err(ConnectorError::Rejected { message, .. })
        if message == "Email: user2@example.com is already being used by another user (DuplicateValue)")
    );
    assert_eq!(out[1].as_ref().unwrap().id, u2);
    assert!(matches!(out[2], Err(ConnectorError::NotFound)));
    assert!(matches!(out[3], Err(ConnectorError::NotFound)));

    let out = z
        .create(
            "organizations",
            &[
                props(json!({"name": "Acme", "external_id": "acme"})),
                props(json!({"name": "organization 1"})),
            ],
        )
        .await;
    assert!(sim
        .get(
            "organizations",
            out[0].as_ref().unwrap().id.parse().unwrap()
        )
        .is_some());
    assert!(
        matches!(&out[1], Err(ConnectorError::Rejected { message, .. })
        if message == "Name: has already been taken (DuplicateValue)")
    );
}

#[tokio::test]
async fn updates_send_only_the_changed_paths() {
    let sim = sim(SimConfig {
        seed_users: 1,
        seed_orgs: 1,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let id = sim.records("users")[1].id;
    sim.app_update(
        "users",
        id,
        map(json!({"user_fields": {"plan": "silver", "seats": 3}, "tags": ["a"]})),
    )
    .unwrap();
    let before = sim.get("users", id).unwrap();
    sim.clock().advance(Duration::from_secs(2));
    let out = written(
        z.update(
            "users",
            &[(
                id.to_string(),
                props(json!({"user_fields.plan": "gold", "phone": null})),
            )],
        )
        .await,
    );
    let after = sim.get("users", id).unwrap();
    assert_eq!(
        after.fields["user_fields"],
        json!({"plan": "gold", "seats": 3}),
        "only the changed path was sent"
    );
    assert_eq!(after.fields["phone"], Value::Null, "null clears");
    assert_eq!(after.fields["name"], before.fields["name"]);
    assert_eq!(after.fields["tags"], json!(["a"]));
    // no call reads the record back, and no version is claimed for it (a write that changes
    // nothing keeps the record's old updated_at, so no time of the request bounds it)
    assert_eq!(out[0].updated_at, None);
    let org = sim.records("organizations")[0].id;
    written(
        z.update(
            "organizations",
            &[(
                org.to_string(),
                props(json!({"organization_fields.tier": "gold"})),
            )],
        )
        .await,
    );
    assert_eq!(
        sim.get("organizations", org).unwrap().fields["organization_fields"],
        json!({"tier": "gold"})
    );
}

#[tokio::test]
async fn archives_count_the_already_gone_as_done() {
    let sim = sim(SimConfig {
        seed_users: 3,
        seed_orgs: 2,
        ..SimConfig::default()
    })
    .await;
    let z = connector(&sim);
    let users: Vec<String> = sim.records("users")[1..3]
        .iter()
        .map(|u| u.id.to_string())
        .collect();
    let out = z.archive("users", &users).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    for id in &users {
        assert!(sim.get("users", id.parse().unwrap()).unwrap().deleted);
    }
    let mut again = users.clone();
    again.push("not-a-number".into());
    again.push("99999999999".into());
    let out = z.archive("users", &again).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(sim.records("users").len(), 2);
    let org = sim.records("organizations")[0].id.to_string();
    assert!(z.archive("organizations", std::slice::from_ref(&org)).await[0].is_ok());
    assert!(z.archive("organizations", &[org]).await[0].is_ok());
    assert_eq!(sim.records("organizations").len(), 1);
}

#[tokio::test]
async fn a_job_that_never_finishes_is_transient() {
    let sim = sim(SimConfig {
        seed_users: 1,
        job_delay: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let z: Zendesk = connector_with(
        &sim,
        Options {
            job_wait: Duration::from_millis(400),
            ..Options::default()
        },
    );
    let id = sim.records("users")[1].id.to_string();
    let started = std::time::Instant::now();
    let out = z
        .update("users", &[(id, props(json!({"phone": "+1"})))])
        .await;
    assert!(
        matches!(&out[0], Err(ConnectorError::Transient(m)) if m.contains("still queued")),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // a submission whose answer is lost is transient as well (the engine sends it again)
    sim.set_faults(0.0, 0.0, 1.0);
    let out = z
        .create(
            "users",
            &[props(json!({"name": "L", "email": "l@example.com"}))],
        )
        .await;
    assert!(matches!(&out[0], Err(ConnectorError::Transient(m)) if m.contains("504")));
}

#[tokio::test]
async fn jobs_in_flight_share_their_status_checks() {
    let sim = sim(SimConfig {
        seed_users: 12,
        job_delay: Duration::from_millis(150),
        ..SimConfig::default()
    })
    .await;
    let z = std::sync::Arc::new(connector(&sim));
    let ids: Vec<String> = sim
        .records("users")
        .iter()
        .filter(|r| r.fields["role"] == "end-user")
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(ids.len(), 12);
    sim.reset_stats();
    // twelve writers at once, as the engine's outbound workers send
    let writes = ids.iter().enumerate().map(|(n, id)| {
        let z = z.clone();
        let id = id.clone();
        async move {
            z.update(
                "users",
                &[(id, props(json!({"phone": format!("+1555{n:04}")})))],
            )
            .await
        }
    });
    let outcomes = futures_util::future::join_all(writes).await;
    assert!(
        outcomes.iter().all(|o| o.len() == 1 && o[0].is_ok()),
        "{outcomes:?}"
    );
    for (n, id) in ids.iter().enumerate() {
        let rec = sim.get("users", id.parse().unwrap()).unwrap();
        assert_eq!(rec.fields["phone"], json!(format!("+1555{n:04}")));
    }
    let s = sim.stats();
    let route = |r: &str| s.by_route.get(r).copied().unwrap_or(0);
    assert_eq!(route("PUT /api/v2/users/update_many"), 12);
    // the jobs ran together: a few shared checks, none per job, no read-back of the records
    let checks = route("GET /api/v2/job_statuses/show_many");
    assert!((1..=6).contains(&checks), "{:?}", s.by_route);
    assert_eq!(
        route("GET /api/v2/job_statuses/{id}"),
        0,
        "{:?}",
        s.by_route
    );
    assert_eq!(route("GET /api/v2/users/show_many"), 0, "{:?}", s.by_route);
}
