//! Zendesk simulator: organization tests over real HTTP (create, duplicate and blank names,
//! custom fields, show_many, delete with members leaving) and the "inside the app" hooks.

use reqwest::Method;
use serde_json::{json, Map, Value};

use super::tests_api::{is_iso_seconds, map, start, Client};
use super::SimConfig;

const U: &str = "/api/v2/users";
const O: &str = "/api/v2/organizations";

#[tokio::test]
async fn organizations_crud() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let resp = c
        .raw(
            Method::POST,
            O,
            Some(json!({"organization": {"name": "Acme", "external_id": "ACME-1", "domain_names": ["acme.com"], "tags": "gold", "organization_fields": {"tier": "a"}}})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    assert!(resp.headers().get("location").is_some());
    let org: Value = resp.json().await.expect("json");
    let id = org["organization"]["id"].as_u64().expect("id");
    assert_eq!(org["organization"]["domain_names"], json!(["acme.com"]));
    assert!(is_iso_seconds(&org["organization"]["created_at"]));
    let (status, body) = c
        .call(
            Method::POST,
            O,
            Some(json!({"organization": {"name": "acme"}})),
        )
        .await;
    assert_eq!(
        (status, body["details"]["name"][0]["error"].clone()),
        (422, json!("DuplicateValue"))
    );
    let (status, body) = c
        .call(
            Method::POST,
            O,
            Some(json!({"organization": {"notes": "x"}})),
        )
        .await;
    assert_eq!(
        (status, body["details"]["name"][0]["error"].clone()),
        (422, json!("BlankValue"))
    );

    let (status, put) = c
        .call(
            Method::PUT,
            &format!("{O}/{id}"),
            Some(
                json!({"organization": {"notes": "vip", "organization_fields": {"region": "eu"}}}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        put["organization"]["organization_fields"],
        json!({"tier": "a", "region": "eu"})
    );
    let (_, member) = c
        .call(
            Method::POST,
            U,
            Some(json!({"user": {"name": "M", "organization_id": id}})),
        )
        .await;
    let member = member["user"]["id"].as_u64().expect("member");
    let (_, list) = c
        .call(Method::GET, &format!("{O}?page[size]=1"), None)
        .await;
    assert_eq!(list["organizations"][0]["id"].as_u64(), Some(id));
    assert_eq!(list["meta"]["has_more"], false);
    let (_, many) = c
        .call(
            Method::GET,
            &format!("{O}/show_many?external_ids=acme-1"),
            None,
        )
        .await;
    assert_eq!(many["organizations"][0]["id"].as_u64(), Some(id));

    let resp = c.raw(Method::DELETE, &format!("{O}/{id}"), None).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.bytes().await.expect("body").is_empty());
    let (status, _) = c.call(Method::GET, &format!("{O}/{id}"), None).await;
    assert_eq!(status, 404);
    let (_, m) = c.call(Method::GET, &format!("{U}/{member}"), None).await;
    assert_eq!(
        m["user"]["organization_id"],
        Value::Null,
        "members leave a deleted org"
    );
    assert!(sim.records("organizations").is_empty());
    assert!(sim.get("organizations", id).is_some_and(|r| r.deleted));
    sim.shutdown();
}

#[tokio::test]
async fn app_hooks_edit_records() {
    let sim = start(SimConfig::default()).await;
    let org = sim
        .app_create("organizations", map(json!({"name": "Initech"})))
        .expect("org");
    let id = sim
        .app_create(
            "users",
            map(json!({"name": "Peter", "email": "p@initech.com", "organization_id": org})),
        )
        .expect("user");
    sim.app_update("users", id, map(json!({"role": "agent"})))
        .expect("update");
    assert_eq!(
        sim.get("users", id).map(|r| r.fields["role"].clone()),
        Some(json!("agent"))
    );
    assert!(matches!(
        sim.app_create("users", map(json!({"name": "Dup", "email": "P@initech.com"}))),
        Err(super::SimError::Invalid(e)) if e[0].error == "DuplicateValue"
    ));
    assert!(matches!(
        sim.app_update("users", 1, map(json!({}))),
        Err(super::SimError::NotFound)
    ));
    assert!(matches!(
        sim.app_create("tickets", Map::new()),
        Err(super::SimError::UnknownObject(_))
    ));
    sim.app_delete("users", id).expect("delete");
    assert!(sim
        .get("users", id)
        .is_some_and(|r| r.deleted && r.fields["active"] == false));
    sim.app_delete("organizations", org).expect("delete org");
    assert!(sim.records("organizations").is_empty());
    sim.shutdown();
}
