//! Salesforce connector against the simulator, writes through sObject Collections: a refused
//! record fails alone with Salesforce's `statusCode` and message, creates keyed on the
//! external id land once however often they are sent, updates, deletes that count the
//! already deleted as done, and the describe check's sentences.

use serde_json::{json, Value};

use super::tests_reads::{connector, connector_with, map, sim};
use super::Options;
use crate::connectors::{Connector, ConnectorError, FieldUse, Properties, Written};
use crate::sim::salesforce::SimConfig;

pub(super) fn props(v: Value) -> Properties {
    map(v).into_iter().collect()
}

fn written(results: Vec<Result<Written, ConnectorError>>) -> Vec<Written> {
    results.into_iter().map(|r| r.expect("written")).collect()
}

#[tokio::test]
async fn a_refused_record_fails_alone_with_its_status_code() {
    let sim = sim(SimConfig::default()).await;
    let sf = connector(&sim);
    let out = sf
        .create(
            "Contact",
            &[
                props(json!({"LastName": "Ann", "Email": "ann@example.com"})),
                props(json!({"FirstName": "NoLast"})),
                props(json!({"LastName": "Bob", "Email": "not-an-email"})),
                props(json!({"LastName": "Cy", "Phone": "+1 555"})),
            ],
        )
        .await;
    assert_eq!(out.len(), 4);
    let ann = out[0].as_ref().unwrap();
    assert!(ann.updated_at.is_some());
    assert_eq!(
        sim.get("Contact", &ann.id).unwrap().fields["Email"],
        "ann@example.com"
    );
    match &out[1] {
        Err(ConnectorError::Rejected {
            status: 400,
            message,
        }) => assert_eq!(
            message,
            "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)"
        ),
        other => panic!("{other:?}"),
    }
    match &out[2] {
        Err(ConnectorError::Rejected { message, .. }) => assert_eq!(
            message,
            "INVALID_EMAIL_ADDRESS: Email: invalid email address: not-an-email (fields: Email)"
        ),
        other => panic!("{other:?}"),
    }
    assert!(out[3].is_ok());
    assert_eq!(sim.records("Contact").len(), 2);
    assert_eq!(sim.stats().route("POST /composite/sobjects"), 1, "one call");

    // a value of the wrong type fails the whole request's JSON: split until it stands alone
    let out = sf
        .create(
            "Contact",
            &[
                props(json!({"LastName": "D1"})),
                props(json!({"LastName": "D2"})),
                props(json!({"LastName": "D3", "Email": ["a list"]})),
                props(json!({"LastName": "D4"})),
            ],
        )
        .await;
    assert!(
        out[0].is_ok() && out[1].is_ok() && out[3].is_ok(),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], Err(ConnectorError::Rejected { message, .. }) if message.starts_with("JSON_PARSER_ERROR")),
        "{out:?}"
    );
    assert_eq!(sim.records("Contact").len(), 5);

    // updates: the deleted record is NotFound, a bad value refused, the rest written
    let ids: Vec<String> = out.iter().flatten().map(|w| w.id.clone()).collect();
    sim.app_delete("Contact", &ids[1]).unwrap();
    let up = sf
        .update(
            "Contact",
            &[
                (ids[0].clone(), props(json!({"Phone": "+1 555 7777"}))),
                (ids[1].clone(), props(json!({"Phone": "+1"}))),
                (ids[2].clone(), props(json!({"LastName": null}))),
            ],
        )
        .await;
    assert_eq!(up[0].as_ref().unwrap().id, ids[0]);
    assert_eq!(
        sim.get("Contact", &ids[0]).unwrap().fields["Phone"],
        "+1 555 7777"
    );
    assert!(matches!(up[1], Err(ConnectorError::NotFound)), "{up:?}");
    assert!(
        matches!(&up[2], Err(ConnectorError::Rejected { message, .. }) if message.starts_with("REQUIRED_FIELD_MISSING")),
        "{up:?}"
    );
}

#[tokio::test]
async fn creates_keyed_on_the_external_id_land_once() {
    let sim = sim(SimConfig::default()).await;
    let sf = connector_with(
        &sim,
        Options {
            external_id_field: Some("Ext_Id__c".into()),
            ..Options::default()
        },
    );
    assert_eq!(sf.capabilities().create_keys, ["Ext_Id__c"]);
    let items = vec![
        props(json!({"LastName": "Ann", "Ext_Id__c": "hub-1"})),
        props(json!({"LastName": "Plain"})),
        props(json!({"LastName": "Bob", "Ext_Id__c": "hub-2"})),
    ];
    let first = written(sf.create("Contact", &items).await);
    // the same creates again (their answer was lost, say): the keyed ones update
    let again = written(sf.create("Contact", &items).await);
    assert_eq!(again[0].id, first[0].id);
    assert_eq!(again[2].id, first[2].id);
    assert_ne!(again[1].id, first[1].id, "an unkeyed create makes a record");
    let all = sim.records("Contact");
    assert_eq!(all.len(), 4, "hub-1, hub-2 and two unkeyed");
    let ann = sim.get("Contact", &first[0].id).unwrap();
    assert_eq!(ann.fields["Ext_Id__c"], "hub-1");
    assert_eq!(ann.fields["LastName"], "Ann");
    let stats = sim.stats();
    assert_eq!(
        stats.route("PATCH /composite/sobjects/Contact/Ext_Id__c"),
        2
    );
    assert_eq!(stats.route("POST /composite/sobjects"), 2);
}

#[tokio::test]
async fn deleting_counts_the_already_deleted_as_done() {
    let sim = sim(SimConfig {
        seed_contacts: 3,
        ..SimConfig::default()
    })
    .await;
    let sf = connector(&sim);
    let ids: Vec<String> = sim.records("Contact").into_iter().map(|c| c.id).collect();
    sim.app_delete("Contact", &ids[1]).unwrap();
    let mut asked = ids.clone();
    asked.push("003000000000099AAA".into());
    let out = sf.archive("Contact", &asked).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert!(sim.records("Contact").is_empty());
    assert!(sim.get("Contact", &ids[0]).unwrap().deleted);
    // again: every one already gone
    let out = sf.archive("Contact", &ids).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(sim.stats().route("DELETE /composite/sobjects"), 2);
}

#[tokio::test]
async fn the_describe_check_names_each_problem_in_a_sentence() {
    let sim = sim(SimConfig::default()).await;
    let sf = connector(&sim);
    let f = |p: &str, writes: bool| FieldUse {
        property: p.into(),
        writes,
    };
    let ok = [f("LastName", true), f("email", true), f("Name", false)];
    assert_eq!(sf.check_fields("Contact", &ok).await, Ok(()));
    let bad = [
        f("LastName", true),
        f("Shoe_Size__c", false),
        f("Name", true),
        f("CreatedDate", true),
        f("Account.Name", false),
        f("Owner.Name", false),
    ];
    let e = sf.check_fields("Contact", &bad).await.unwrap_err();
    assert_eq!(
        e.lines().collect::<Vec<_>>(),
        [
            "Salesforce's Contact has no field `Shoe_Size__c` (check its API name: custom fields end in __c).",
            "`Name` on Salesforce's Contact is read-only (neither createable nor updateable): map it with direction = \"inbound\".",
            "`CreatedDate` on Salesforce's Contact is read-only (neither createable nor updateable): map it with direction = \"inbound\".",
            "Salesforce's Contact has no relationship `Owner` (in `Owner.Name`): name a lookup's relationship, e.g. `Account.Name`.",
        ]
    );
    assert_eq!(
        sf.check_fields("Lead", &ok).await.unwrap_err(),
        "Salesforce has no object `Lead` (check its API name: custom objects end in __c)."
    );
}
