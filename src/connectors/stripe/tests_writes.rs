//! Stripe connector against the simulator, writes: form-encoded creates and updates with a
//! nested address and metadata (a key removed by a null), deletes that count the already
//! deleted as done, a create sent twice making one customer (idempotency replay), refusals
//! naming Stripe's param, and 429s (`rate_limit`, `lock_timeout`) classified for retry.

use serde_json::{json, Value};

use super::config::SANDBOX_BUDGET;
use super::tests_reads::{connector, connector_with, sim};
use super::Options;
use crate::connectors::{Connector, ConnectorError, Properties};
use crate::sim::stripe::SimConfig;

pub(super) fn props(v: Value) -> Properties {
    v.as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn creates_updates_and_deletes_with_nested_values() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let out = s
        .create(
            "customers",
            &[props(json!({"name": "Ann", "email": "ann@example.com",
                "address.line1": "1 Main St", "address.city": "Oslo",
                "metadata.plan": "gold", "metadata.tier": "2"}))],
        )
        .await;
    let w = out[0].as_ref().expect("created");
    assert!(w.id.starts_with("cus_"), "{w:?}");
    let c = sim.get(&w.id).unwrap();
    assert_eq!(
        w.updated_at.unwrap().timestamp(),
        c["created"].as_i64().unwrap()
    );
    assert_eq!(c["name"], "Ann");
    assert_eq!(c["address"]["line1"], "1 Main St");
    assert_eq!(c["address"]["city"], "Oslo");
    assert_eq!(c["metadata"], json!({"plan": "gold", "tier": "2"}));

    // only the changed paths: the city (the rest of the address kept), a metadata key removed
    sim.reset_stats();
    let out = s
        .update(
            "customers",
            &[(
                w.id.clone(),
                props(json!({"address.city": "Bergen", "metadata.tier": null, "phone": "+4712345678"})),
            )],
        )
        .await;
    let u = out[0].as_ref().expect("updated");
    assert_eq!(u.id, w.id);
    // no version claimed: no time of the answer bounds the customer's state
    assert_eq!(u.updated_at, None);
    let c = sim.get(&w.id).unwrap();
    assert_eq!(c["address"]["city"], "Bergen");
    assert_eq!(c["address"]["line1"], "1 Main St", "kept");
    assert_eq!(c["metadata"], json!({"plan": "gold"}));
    assert_eq!(c["phone"], "+4712345678");
    assert_eq!(c["name"], "Ann");
    let routes = sim.stats().by_route;
    assert_eq!(routes.get("POST /v1/customers/{id}"), Some(&1));
    assert_eq!(
        routes.get("GET /v1/customers/{id}"),
        Some(&1),
        "the address read once"
    );

    // nulls clear: the whole address given, no read
    sim.reset_stats();
    let cleared = props(
        json!({"description": null, "address.line1": null, "address.line2": null,
        "address.city": null, "address.state": null, "address.postal_code": null, "address.country": null}),
    );
    s.update("customers", &[(w.id.clone(), cleared)]).await[0]
        .as_ref()
        .expect("cleared");
    let c = sim.get(&w.id).unwrap();
    assert_eq!(c["address"]["city"], Value::Null);
    assert_eq!(c["address"]["line1"], Value::Null);
    assert_eq!(sim.stats().by_route.get("GET /v1/customers/{id}"), None);

    // deleted; deleting again (or an id Stripe never had) is done too
    assert!(s.archive("customers", std::slice::from_ref(&w.id)).await[0].is_ok());
    assert_eq!(sim.get(&w.id).unwrap()["deleted"], true);
    let again = s
        .archive("customers", &[w.id.clone(), "cus_never".into()])
        .await;
    assert!(again.iter().all(Result::is_ok), "{again:?}");
    // updating a deleted customer: gone
    let out = s
        .update("customers", &[(w.id.clone(), props(json!({"name": "X"})))])
        .await;
    assert!(matches!(out[0], Err(ConnectorError::NotFound)), "{out:?}");
}

#[tokio::test]
async fn a_create_sent_twice_makes_one_customer() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let item = props(json!({"name": "Ann", "email": "ann@example.com", "metadata.plan": "gold"}));
    let first = s
        .create("customers", std::slice::from_ref(&item))
        .await
        .remove(0)
        .unwrap();
    let second = s
        .create("customers", std::slice::from_ref(&item))
        .await
        .remove(0)
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(sim.records("customers").len(), 1);
    assert_eq!(sim.stats().idempotent_replays, 1);

    // the answer lost (504 after the write): the retry gets the customer the first one made
    sim.set_faults(0.0, 0.0, 1.0);
    let bob = props(json!({"name": "Bob", "email": "bob@example.com"}));
    let lost = s
        .create("customers", std::slice::from_ref(&bob))
        .await
        .remove(0);
    assert!(
        matches!(lost, Err(ConnectorError::Transient(_))),
        "{lost:?}"
    );
    assert_eq!(sim.records("customers").len(), 2, "the write happened");
    sim.set_faults(0.0, 0.0, 0.0);
    let retried = s.create("customers", &[bob]).await.remove(0).unwrap();
    assert_eq!(sim.records("customers").len(), 2, "no second Bob");
    assert_eq!(sim.records("customers")[1]["id"], Value::String(retried.id));
    // another connection's same values are another create
    let other = super::Stripe::new(
        "other",
        &sim.base_url(),
        &sim.test_key(),
        Options::default(),
    );
    other.create("customers", &[item]).await.remove(0).unwrap();
    assert_eq!(sim.records("customers").len(), 3);
}

#[tokio::test]
async fn a_refused_record_names_stripes_param() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let out = s
        .create(
            "customers",
            &[props(json!({"name": "Ann", "email": "not-an-email"}))],
        )
        .await;
    match &out[0] {
        Err(ConnectorError::Rejected {
            status: 400,
            message,
        }) => assert_eq!(
            message,
            "HTTP 400: email_invalid: Invalid email address: not-an-email (param: email)"
        ),
        other => panic!("{other:?}"),
    }
    let long_key = format!("metadata.{}", "k".repeat(41));
    let out = s
        .create("customers", &[props(json!({long_key: "v"}))])
        .await;
    match &out[0] {
        Err(e @ ConnectorError::Rejected { message, .. }) => {
            assert!(!e.retryable());
            assert!(
                message.ends_with(&format!("(param: metadata[{}])", "k".repeat(41))),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.records("customers").is_empty());
    // invoices are never written
    let out = s
        .create("invoices", &[props(json!({"customer": "cus_1"}))])
        .await;
    assert!(
        matches!(&out[0], Err(ConnectorError::Rejected { message, .. }) if message.contains("inbound only")),
        "{out:?}"
    );
    assert!(s.archive("invoices", &["in_1".into()]).await[0].is_err());
}

#[tokio::test]
async fn throttles_and_lock_timeouts_are_retried() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let item = props(json!({"name": "Ann"}));
    sim.set_lock_timeouts(1.0);
    let out = s
        .create("customers", std::slice::from_ref(&item))
        .await
        .remove(0);
    match &out {
        Err(e @ ConnectorError::RateLimited { policy, .. }) => {
            assert_eq!(policy, "lock_timeout");
            assert!(e.retryable());
        }
        other => panic!("{other:?}"),
    }
    assert!(sim.records("customers").is_empty(), "nothing happened");
    sim.set_lock_timeouts(0.0);
    assert!(s.create("customers", &[item]).await[0].is_ok(), "the retry");
    assert_eq!(sim.records("customers").len(), 1);

    sim.set_faults(0.0, 1.0, 0.0);
    match s.list("customers", &[], None).await {
        Err(ConnectorError::RateLimited {
            policy,
            retry_after,
        }) => {
            assert_eq!(policy, "rate_limit");
            assert_eq!(retry_after, std::time::Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    sim.set_faults(0.0, 0.0, 0.0);
    assert_eq!(
        s.list("customers", &[], None).await.unwrap().records.len(),
        1
    );

    // the sandbox budget keeps 60 calls at once under Stripe's 25 a second: no 429
    let budgeted = connector_with(
        &sim,
        Options {
            budget: Some(SANDBOX_BUDGET),
            ..Options::default()
        },
    );
    // the calls above spent part of this second's sandbox budget
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sim.reset_stats();
    let calls = (0..60).map(|_| budgeted.list("customers", &[], None));
    let results = futures_util::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(sim.stats().throttled, 0);
    assert_eq!(sim.stats().requests, 60);
}
