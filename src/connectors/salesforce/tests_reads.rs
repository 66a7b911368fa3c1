//! Salesforce connector against the simulator, reads: listing pages in id order with typed
//! values, fetch by ids in Collections of 200 (deleted and unknown ids absent), find by a
//! property with values quoted safely, and webhooks refused.

use serde_json::{json, Map, Value};

use super::{Grant, Options, Salesforce};
use crate::connectors::{Connector, ConnectorError, RemoteRecord, WebhookError, WebhookRequest};
use crate::sim::salesforce::{SalesforceSim, SimConfig};

pub(super) async fn sim(cfg: SimConfig) -> SalesforceSim {
    SalesforceSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

/// The refresh-token grant the simulator accepts.
pub(super) fn grant(sim: &SalesforceSim) -> Grant {
    let c = sim.config();
    Grant::RefreshToken {
        client_id: c.client_id.clone(),
        client_secret: c.client_secret.clone(),
        refresh_token: c.refresh_token.clone(),
    }
}

pub(super) fn connector(sim: &SalesforceSim) -> Salesforce {
    connector_with(sim, Options::default())
}

pub(super) fn connector_with(sim: &SalesforceSim, options: Options) -> Salesforce {
    Salesforce::new("salesforce", &sim.base_url(), grant(sim), options)
}

pub(super) fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(super) fn paths(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn list_all(sf: &Salesforce, object: &str, props: &[String]) -> Vec<Vec<RemoteRecord>> {
    let mut pages = vec![];
    let mut after = None;
    loop {
        let page = sf.list(object, props, after).await.expect("page");
        pages.push(page.records);
        match page.after {
            Some(a) => after = Some(a),
            None => return pages,
        }
    }
}

#[tokio::test]
async fn lists_every_live_record_in_pages_with_typed_values() {
    let sim = sim(SimConfig {
        seed_accounts: 2,
        seed_contacts: 250,
        query_page_size: 200,
        ..SimConfig::default()
    })
    .await;
    let sf = connector_with(
        &sim,
        Options {
            page_size: 100,
            ..Options::default()
        },
    );
    let contacts = sim.records("Contact");
    sim.app_delete("Contact", &contacts[3].id).unwrap();
    let props = paths(&["LastName", "Email", "AccountId", "MailingCity"]);
    let pages = list_all(&sf, "Contact", &props).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 49], "249 live contacts");
    let all: Vec<&RemoteRecord> = pages.iter().flatten().collect();
    let mut ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    // Salesforce's id order (the simulator's ignores case, as its 18-character ids may)
    assert!(
        ids.windows(2)
            .all(|w| w[0].to_lowercase() < w[1].to_lowercase()),
        "in id order, no repeats"
    );
    ids.dedup();
    assert_eq!(ids.len(), 249);
    assert!(
        !ids.contains(&contacts[3].id.as_str()),
        "deleted: not listed"
    );
    let first = all[0];
    assert_eq!(first.id, contacts[0].id);
    assert_eq!(first.properties["LastName"], json!("Contact1"));
    assert_eq!(first.properties["Email"], json!("contact1@example.com"));
    assert_eq!(first.properties["MailingCity"], Value::Null);
    assert_eq!(
        first.properties["AccountId"],
        contacts[0].fields["AccountId"]
    );
    let stamp = contacts[0].fields["SystemModstamp"].as_str().unwrap();
    assert_eq!(first.updated_at, super::mapping::parse_time(stamp));
    assert_eq!(sim.stats().route("GET /query"), 3);
}

#[tokio::test]
async fn fetch_reads_by_id_in_collections_of_200() {
    let sim = sim(SimConfig {
        seed_contacts: 250,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    let contacts = sim.records("Contact");
    sim.app_delete("Contact", &contacts[10].id).unwrap();
    let mut ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
    ids.push("003000000000000AAA".into());
    ids.push("not an id".into());
    let got = sf
        .fetch("Contact", &ids, &paths(&["LastName", "Phone"]))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        249,
        "the deleted, unknown and malformed ids are absent"
    );
    assert!(!got.iter().any(|r| r.id == contacts[10].id));
    assert_eq!(got[0].properties["LastName"], json!("Contact1"));
    assert_eq!(got[0].properties["Phone"], json!("+1 555 0201"));
    assert_eq!(sim.stats().route("GET /composite/sobjects/Contact"), 2);
    // an object Salesforce does not have fails the whole call, not as "record gone"
    let e = sf.fetch("Lead", &ids[..1], &[]).await.unwrap_err();
    assert!(
        matches!(e, ConnectorError::Rejected { status: 404, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn find_matches_values_quoted_safely() {
    let sim = sim(SimConfig {
        seed_contacts: 5,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    let tricky = sim
        .app_create(
            "Contact",
            map(json!({"LastName": "O'Brien \\ Sons", "Email": "ob@example.com"})),
        )
        .unwrap();
    let values = vec![
        "contact2@example.com".to_string(),
        "CONTACT4@example.com".to_string(),
        "nobody@example.com".to_string(),
        "x' OR LastName != '".to_string(),
    ];
    let mut found = sf
        .find("Contact", "Email", &values, &paths(&["LastName"]))
        .await
        .unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let names: Vec<&Value> = found.iter().map(|r| &r.properties["LastName"]).collect();
    assert_eq!(names, [&json!("Contact2"), &json!("Contact4")]);
    assert_eq!(found[0].properties["Email"], json!("contact2@example.com"));
    let by_name = sf
        .find("Contact", "LastName", &["O'Brien \\ Sons".into()], &[])
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].id, tricky);
    let e = sf
        .find("Contact", "Email FROM User --", &values, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::Rejected { status: 400, .. }));
}

#[tokio::test]
async fn webhooks_are_refused_clearly() {
    let sim = sim(SimConfig::default()).await;
    let sf = connector(&sim);
    let headers = axum::http::HeaderMap::new();
    let req = WebhookRequest {
        method: "POST",
        url: "http://ferry/webhooks/salesforce",
        headers: &headers,
        body: b"{}",
    };
    match sf.parse_webhook(&req, None) {
        Err(WebhookError::Malformed(m)) => assert!(m.contains("come by polling"), "{m}"),
        other => panic!("{other:?}"),
    }
}
