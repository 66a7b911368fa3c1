//! Stripe connector against the simulator, reads: listing pages newest first with
//! `starting_after`, fetches by id (a deleted customer archived, an unknown id left out),
//! invoices with their customer id and paid time, lookups by email and by other properties.

use serde_json::{json, Value};

use super::{Options, Stripe};
use crate::connectors::{Connector, RemoteRecord};
use crate::sim::stripe::{SimConfig, StripeSim};

pub(super) async fn sim(cfg: SimConfig) -> StripeSim {
    StripeSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

pub(super) fn connector_with(sim: &StripeSim, options: Options) -> Stripe {
    Stripe::new("billing", &sim.base_url(), &sim.test_key(), options)
}

pub(super) fn connector(sim: &StripeSim) -> Stripe {
    connector_with(sim, Options::default())
}

pub(super) fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

#[tokio::test]
async fn lists_every_customer_in_pages_newest_first() {
    let sim = sim(SimConfig {
        seed_customers: 250,
        ..SimConfig::default()
    })
    .await;
    let s = connector(&sim);
    let props = paths(&["name", "email", "address.city"]);
    let mut pages: Vec<Vec<RemoteRecord>> = vec![];
    let mut after = None;
    loop {
        let page = s.list("customers", &props, after).await.expect("page");
        pages.push(page.records);
        match page.after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50]);
    let all: Vec<&RemoteRecord> = pages.iter().flatten().collect();
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no record twice");
    assert_eq!(all[0].properties["name"], "Customer 250");
    assert_eq!(all[0].properties["email"], "customer250@example.com");
    assert_eq!(all[0].properties["address.city"], Value::Null, "no address");
    assert_eq!(all[249].properties["name"], "Customer 1");
    assert!(all.iter().all(|r| !r.archived && r.updated_at.is_none()));
    assert_eq!(
        sim.stats().by_route.get("GET /v1/customers"),
        Some(&3),
        "one call a page"
    );
}

#[tokio::test]
async fn fetches_by_id_with_deleted_customers_archived() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let ann = sim
        .app_create_customer(json!({"name": "Ann", "email": "ann@example.com",
            "address": {"city": "Oslo"}, "metadata": {"plan": "gold"}}))
        .unwrap();
    let bob = sim.app_create_customer(json!({"name": "Bob"})).unwrap();
    sim.app_delete_customer(&id(&bob)).unwrap();
    let ids = vec![id(&ann), id(&bob), "cus_unknown".to_string()];
    let got = s
        .fetch(
            "customers",
            &ids,
            &paths(&["name", "address.city", "metadata.plan", "metadata.none"]),
        )
        .await
        .expect("fetched");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].id, id(&ann));
    assert!(!got[0].archived);
    assert_eq!(got[0].properties["name"], "Ann");
    assert_eq!(got[0].properties["address.city"], "Oslo");
    assert_eq!(got[0].properties["metadata.plan"], "gold");
    assert_eq!(got[0].properties["metadata.none"], Value::Null, "unset");
    assert_eq!(got[1].id, id(&bob));
    assert!(got[1].archived, "the deletion stub is the deletion");
}

#[tokio::test]
async fn invoices_read_with_customer_ids_and_paid_times() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let ann = sim.app_create_customer(json!({"name": "Ann"})).unwrap();
    let inv = sim
        .app_create_invoice(&id(&ann), json!({"currency": "eur"}))
        .unwrap();
    sim.app_add_invoice_item(&id(&inv), 1500, "Seats").unwrap();
    sim.app_finalize_invoice(&id(&inv)).unwrap();
    let paid = sim.app_pay_invoice(&id(&inv)).unwrap();
    let paid_at = paid["status_transitions"]["paid_at"].as_i64().unwrap();
    let props = paths(&[
        "status",
        "amount_due",
        "amount_paid",
        "currency",
        "customer",
        "status_transitions.paid_at",
    ]);
    let page = s.list("invoices", &props, None).await.expect("page");
    assert_eq!(page.records.len(), 1);
    let r = &page.records[0];
    assert_eq!(r.id, id(&inv));
    assert_eq!(r.properties["status"], "paid");
    assert_eq!(r.properties["amount_due"], 1500);
    assert_eq!(r.properties["amount_paid"], 1500);
    assert_eq!(r.properties["currency"], "eur");
    assert_eq!(r.properties["customer"], Value::String(id(&ann)));
    let expected = chrono::DateTime::from_timestamp(paid_at, 0).unwrap();
    assert_eq!(
        r.properties["status_transitions.paid_at"],
        Value::String(expected.to_rfc3339())
    );
    let fetched = s.fetch("invoices", &[id(&inv)], &props).await.unwrap();
    assert_eq!(fetched[0].properties, r.properties);
}

#[tokio::test]
async fn finds_customers_by_email_and_by_other_properties() {
    let sim = sim(SimConfig {
        seed_customers: 120,
        ..SimConfig::default()
    })
    .await;
    let s = connector(&sim);
    let ann = sim
        .app_create_customer(json!({"name": "Ann", "email": "ann@example.com",
            "metadata": {"ext": "A-1"}}))
        .unwrap();
    let got = s
        .find(
            "customers",
            "email",
            &["ann@example.com".into(), "nobody@example.com".into()],
            &paths(&["name"]),
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id(&ann));
    assert_eq!(got[0].properties["email"], "ann@example.com");
    assert_eq!(got[0].properties["name"], "Ann");
    let got = s
        .find("customers", "metadata.ext", &["A-1".into()], &[])
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
        [id(&ann)]
    );
}
