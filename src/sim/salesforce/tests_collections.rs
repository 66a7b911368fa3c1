//! Salesforce simulator: sObject Collections tests over real HTTP — partial failures with
//! `allOrNone: false`, rollbacks with `allOrNone: true`, the 200-record limit, updates,
//! upserts by external id, deletes and retrieves.

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, Client};
use super::SimConfig;

fn contact(last: Option<&str>) -> Value {
    match last {
        Some(l) => json!({"attributes": {"type": "Contact"}, "LastName": l}),
        None => json!({"attributes": {"type": "Contact"}, "FirstName": "NoLast"}),
    }
}

#[tokio::test]
async fn create_with_a_partial_failure() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let body = json!({"allOrNone": false, "records": [
        contact(Some("A")),
        contact(None),
        {"attributes": {"type": "Account"}, "Name": "Acme"},
    ]});
    let a = api
        .call(Method::POST, "/composite/sobjects", Some(body))
        .await;
    assert_eq!(a.status, 200);
    let r = a.body.as_array().cloned().unwrap_or_default();
    assert_eq!(r.len(), 3);
    assert_eq!(
        (&r[0]["success"], &r[0]["errors"]),
        (&json!(true), &json!([]))
    );
    assert!(r[0]["id"].as_str().is_some_and(|id| id.starts_with("003")));
    assert_eq!(
        r[1],
        json!({"success": false, "errors": [{
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [LastName]",
            "fields": ["LastName"],
        }]})
    );
    assert!(r[2]["id"].as_str().is_some_and(|id| id.starts_with("001")));
    assert_eq!(sim.records("Contact").len(), 1);
    assert_eq!(sim.records("Account").len(), 1);
    let s = sim.stats();
    assert_eq!(s.api_usage, 1, "one call, one API request");
    assert_eq!(s.route("POST /composite/sobjects"), 1);
    assert_eq!(s.route("POST /services/oauth2/token"), 1);
    assert_eq!(s.requests, 2);
    sim.shutdown();
}

#[tokio::test]
async fn all_or_none_rolls_back() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let kept = api.create("Contact", json!({"LastName": "Kept"})).await;
    let body = json!({"allOrNone": true, "records": [contact(Some("A")), contact(None), contact(Some("C"))]});
    let a = api
        .call(Method::POST, "/composite/sobjects", Some(body))
        .await;
    assert_eq!(a.status, 200);
    let rolled = json!({"success": false, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
        "fields": [],
    }]});
    let r = a.body.as_array().cloned().unwrap_or_default();
    assert_eq!(r.len(), 3);
    assert_eq!((&r[0], &r[2]), (&rolled, &rolled));
    assert_eq!(
        r[1]["errors"][0]["statusCode"],
        json!("REQUIRED_FIELD_MISSING")
    );
    assert_eq!(sim.records("Contact").len(), 1);
    // updates roll back too (and keep their ids in the answer)
    let body = json!({"allOrNone": true, "records": [
        {"attributes": {"type": "Contact"}, "id": kept, "LastName": "Changed"},
        {"attributes": {"type": "Contact"}, "id": kept, "Email": "bad"},
    ]});
    let a = api
        .call(Method::PATCH, "/composite/sobjects", Some(body))
        .await;
    assert_eq!(a.body[0]["id"], json!(kept));
    assert_eq!(
        a.body[0]["errors"][0]["statusCode"],
        json!("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    );
    assert_eq!(
        a.body[1]["errors"][0]["statusCode"],
        json!("INVALID_EMAIL_ADDRESS")
    );
    assert_eq!(
        sim.get("Contact", &kept)
            .map(|r| r.fields["LastName"].clone()),
        Some(json!("Kept"))
    );
    sim.shutdown();
}

#[tokio::test]
async fn two_hundred_records_at_most() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let records: Vec<Value> = (0..201).map(|n| contact(Some(&format!("C{n}")))).collect();
    let a = api
        .call(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"records": records})),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "EXCEEDED_ID_LIMIT"));
    assert_eq!(sim.records("Contact").len(), 0);
    let a = api
        .call(
            Method::POST,
            "/composite/sobjects",
            Some(json!({"records": records[..200]})),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(sim.records("Contact").len(), 200);
    let ids: Vec<String> = sim
        .records("Contact")
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let mut many = ids.join(",");
    many.push_str(",003000000000001");
    let a = api
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={many}"),
            None,
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "EXCEEDED_ID_LIMIT"));
    // an unknown field fails the whole request
    let a = api
        .call(Method::POST, "/composite/sobjects", Some(json!({"records": [{"attributes": {"type": "Contact"}, "LastName": "x", "Nope": 1}]})))
        .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_FIELD"));
    sim.shutdown();
}

#[tokio::test]
async fn update_upsert_delete_retrieve() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let a = api.create("Contact", json!({"LastName": "A"})).await;
    let b = api
        .create("Contact", json!({"LastName": "B", "Ext_Id__c": "k-b"}))
        .await;
    let body = json!({"records": [
        {"attributes": {"type": "Contact"}, "id": a, "Phone": "1"},
        {"attributes": {"type": "Contact"}, "LastName": "no id"},
        {"attributes": {"type": "Contact"}, "id": "003000000000000AAA", "Phone": "2"},
    ]});
    let r = api
        .call(Method::PATCH, "/composite/sobjects", Some(body))
        .await
        .body;
    assert_eq!(r[0], json!({"id": a, "success": true, "errors": []}));
    assert_eq!(r[1]["errors"][0]["statusCode"], json!("MISSING_ARGUMENT"));
    assert_eq!(
        r[2]["errors"][0]["statusCode"],
        json!("INVALID_CROSS_REFERENCE_KEY")
    );

    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Contact"}, "Ext_Id__c": "K-B", "LastName": "B2"},
        {"attributes": {"type": "Contact"}, "Ext_Id__c": "k-new", "LastName": "New"},
        {"attributes": {"type": "Contact"}, "LastName": "keyless"},
    ]});
    let r = api
        .call(
            Method::PATCH,
            "/composite/sobjects/Contact/Ext_Id__c",
            Some(body),
        )
        .await
        .body;
    assert_eq!(
        r[0],
        json!({"id": b, "success": true, "errors": [], "created": false})
    );
    assert_eq!(
        (&r[1]["success"], &r[1]["created"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(r[2]["success"], json!(false));
    let new_id = r[1]["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        sim.get("Contact", &b).map(|r| r.fields["LastName"].clone()),
        Some(json!("B2"))
    );

    let r = api
        .call(Method::GET, &format!("/composite/sobjects/Contact?ids={a},{new_id},003000000000000AAA&fields=LastName,Phone"), None)
        .await
        .body;
    assert_eq!(r[0]["LastName"], json!("A"));
    assert_eq!(r[0]["Phone"], json!("1"));
    assert_eq!(r[1]["LastName"], json!("New"));
    assert_eq!(r[2], Value::Null);

    let r = api
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={a},{a},bogus&allOrNone=false"),
            None,
        )
        .await
        .body;
    assert_eq!(r[0], json!({"id": a, "success": true, "errors": []}));
    assert_eq!(r[1]["errors"][0]["statusCode"], json!("ENTITY_IS_DELETED"));
    assert_eq!(r[2]["errors"][0]["statusCode"], json!("MALFORMED_ID"));
    assert!(sim.get("Contact", &a).is_some_and(|r| r.deleted));
    let r = api
        .call(
            Method::DELETE,
            &format!("/composite/sobjects?ids={b},bogus&allOrNone=true"),
            None,
        )
        .await
        .body;
    assert_eq!(
        r[0]["errors"][0]["statusCode"],
        json!("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    );
    assert!(sim.get("Contact", &b).is_some_and(|r| !r.deleted));
    sim.shutdown();
}
