//! Salesforce simulator: single-record tests over real HTTP — create, read (`?fields=`, 15-
//! character ids), update, soft delete and the record errors, cascading Account deletes, and
//! upserts by external id (201 created / 200 updated, `updateOnly`, duplicates).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{start, Client};
use super::SimConfig;

#[tokio::test]
async fn single_record_crud_and_errors() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let account = api.create("Account", json!({"Name": "Acme"})).await;
    assert_eq!((account.len(), &account[..3]), (18, "001"));
    let a = api
        .call(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com", "AccountId": account})),
        )
        .await;
    assert_eq!(a.status, 201);
    let id = a.body["id"].as_str().expect("id").to_string();
    assert_eq!(a.body, json!({"id": id, "success": true, "errors": []}));
    assert!(id.starts_with("003"));

    let got = api
        .call(Method::GET, &format!("/sobjects/Contact/{id}"), None)
        .await
        .body;
    assert_eq!(
        got["attributes"],
        json!({"type": "Contact", "url": format!("/services/data/v62.0/sobjects/Contact/{id}")})
    );
    assert_eq!(
        (&got["Name"], &got["IsDeleted"], &got["Phone"]),
        (&json!("Ada Lovelace"), &json!(false), &Value::Null)
    );
    assert_eq!(got["CreatedById"], json!(super::API_USER));
    let stamp = got["SystemModstamp"].as_str().expect("stamp").to_string();
    assert!(stamp.len() == 28 && stamp.ends_with("+0000"), "{stamp}");
    let some = api
        .call(
            Method::GET,
            &format!("/sobjects/Contact/{}?fields=email,LastName", &id[..15]),
            None,
        )
        .await
        .body;
    assert_eq!(
        some,
        json!({"attributes": got["attributes"], "Email": "ada@example.com", "LastName": "Lovelace", "Id": id})
    );

    sim.clock().advance(Duration::from_millis(1500));
    let a = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Contact/{id}"),
            Some(json!({"Phone": "+44 1", "FirstName": null})),
        )
        .await;
    assert_eq!((a.status, a.body), (204, Value::Null));
    let rec = sim.get("Contact", &id).expect("record");
    assert_eq!(
        (&rec.fields["Phone"], &rec.fields["Name"]),
        (&json!("+44 1"), &json!("Lovelace"))
    );
    assert_ne!(rec.fields["SystemModstamp"], json!(stamp));

    let errors = [
        (
            json!({"FirstName": "NoLast"}),
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LastName]",
            Some(json!(["LastName"])),
        ),
        (
            json!({"LastName": "X", "Foo__c": 1}),
            "INVALID_FIELD",
            "No such column 'Foo__c' on sobject of type Contact",
            None,
        ),
        (
            json!({"LastName": "X", "Id": id}),
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
            None,
        ),
        (
            json!({"LastName": "X".repeat(81)}),
            "STRING_TOO_LONG",
            "",
            Some(json!(["LastName"])),
        ),
        (
            json!({"LastName": "X", "Email": "not-an-email"}),
            "INVALID_EMAIL_ADDRESS",
            "Email: invalid email address: not-an-email",
            Some(json!(["Email"])),
        ),
        (
            json!({"LastName": "X", "AccountId": "garbage"}),
            "MALFORMED_ID",
            "Account ID: id value of incorrect type: garbage",
            Some(json!(["AccountId"])),
        ),
        (
            json!({"LastName": "X", "CreatedDate": "2024-01-01T00:00:00Z"}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            "",
            Some(json!(["CreatedDate"])),
        ),
    ];
    for (body, code, message, fields) in errors {
        let a = api
            .call(Method::POST, "/sobjects/Contact", Some(body.clone()))
            .await;
        assert_eq!((a.status, a.code()), (400, code), "{body}");
        if !message.is_empty() {
            assert_eq!(a.body[0]["message"], json!(message));
        }
        assert_eq!(a.body[0].get("fields").cloned(), fields, "{body}");
    }
    let a = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Contact/{id}"),
            Some(json!({"LastName": null})),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "REQUIRED_FIELD_MISSING"));
    let opp = api
        .create(
            "Opportunity",
            json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2030-01-31"}),
        )
        .await;
    let a = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Opportunity/{opp}"),
            Some(json!({"IsWon": true})),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    );
    api.call(
        Method::PATCH,
        &format!("/sobjects/Opportunity/{opp}"),
        Some(json!({"StageName": "Closed Won"})),
    )
    .await;
    assert_eq!(
        sim.get("Opportunity", &opp)
            .map(|r| r.fields["IsWon"].clone()),
        Some(json!(true))
    );

    let a = api
        .call(Method::DELETE, &format!("/sobjects/Contact/{id}"), None)
        .await;
    assert_eq!(a.status, 204);
    assert!(sim
        .get("Contact", &id)
        .is_some_and(|r| r.deleted && r.fields["IsDeleted"] == json!(true)));
    let a = api
        .call(Method::GET, &format!("/sobjects/Contact/{id}"), None)
        .await;
    assert_eq!(
        (a.status, a.body),
        (
            404,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
        )
    );
    let a = api
        .call(Method::DELETE, &format!("/sobjects/Contact/{id}"), None)
        .await;
    assert_eq!((a.status, a.code()), (404, "ENTITY_IS_DELETED"));
    let a = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Contact/{id}"),
            Some(json!({"Phone": "1"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (404, "ENTITY_IS_DELETED"));
    let a = api
        .call(
            Method::POST,
            "/sobjects/Contact",
            Some(json!({"LastName": "Y", "AccountId": account})),
        )
        .await;
    assert_eq!(a.status, 201);
    // deleting the account takes its contacts along; undelete brings them back
    sim.app_delete("Account", &account).expect("deleted");
    let child = a.body["id"].as_str().unwrap_or_default().to_string();
    assert!(sim.get("Contact", &child).is_some_and(|r| r.deleted));
    sim.app_undelete("Account", &account).expect("undeleted");
    assert!(sim.get("Contact", &child).is_some_and(|r| !r.deleted));
    let a = api
        .call(
            Method::PUT,
            &format!("/sobjects/Contact/{child}"),
            Some(json!({})),
        )
        .await;
    assert_eq!((a.status, a.code()), (405, "METHOD_NOT_ALLOWED"));
    sim.shutdown();
}

#[tokio::test]
async fn upsert_by_external_id() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let path = "/sobjects/Contact/Ext_Id__c/EXT-1";
    let a = api
        .call(Method::PATCH, path, Some(json!({"LastName": "First"})))
        .await;
    assert_eq!(a.status, 201);
    let id = a.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        a.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    // external ids match case-insensitively
    let a = api
        .call(
            Method::PATCH,
            "/sobjects/Contact/Ext_Id__c/ext-1",
            Some(json!({"LastName": "Second"})),
        )
        .await;
    assert_eq!(
        (a.status, a.body),
        (
            200,
            json!({"id": id, "success": true, "errors": [], "created": false})
        )
    );
    assert_eq!(sim.records("Contact").len(), 1);
    assert_eq!(
        sim.get("Contact", &id)
            .map(|r| r.fields["LastName"].clone()),
        Some(json!("Second"))
    );
    let got = api.call(Method::GET, path, None).await;
    assert_eq!((got.status, &got.body["Id"]), (200, &json!(id)));
    let a = api
        .call(
            Method::PATCH,
            "/sobjects/Contact/Ext_Id__c/EXT-2?updateOnly=true",
            Some(json!({"LastName": "N"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (404, "NOT_FOUND"));
    let a = api
        .call(
            Method::PATCH,
            "/sobjects/Contact/Email/a@b.co",
            Some(json!({"LastName": "N"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_FIELD"));
    let a = api
        .call(
            Method::PATCH,
            "/sobjects/Contact/Nope__c/1",
            Some(json!({"LastName": "N"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (404, "NOT_FOUND"));
    let other = api.create("Contact", json!({"LastName": "Other"})).await;
    let a = api
        .call(
            Method::PATCH,
            &format!("/sobjects/Contact/{other}"),
            Some(json!({"Ext_Id__c": "EXT-1"})),
        )
        .await;
    assert_eq!((a.status, a.code()), (400, "DUPLICATE_VALUE"));
    assert_eq!(
        a.body[0]["message"],
        json!(format!(
            "duplicate value found: Ext_Id__c duplicates value on record with id: {id}"
        ))
    );
    let a = api.call(Method::DELETE, path, None).await;
    assert_eq!(a.status, 204);
    // the deleted record no longer holds the value: an upsert creates a new one
    let a = api
        .call(Method::PATCH, path, Some(json!({"LastName": "Third"})))
        .await;
    assert_eq!((a.status, a.body["created"].clone()), (201, json!(true)));
    assert_ne!(a.body["id"], json!(id));
    sim.shutdown();
}
