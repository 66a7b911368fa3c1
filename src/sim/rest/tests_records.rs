//! REST simulator: record tests over HTTP — create/get/update/delete, PATCH merging
//! and PUT replacing or merging (the other method 405), ids under their own field (with a
//! numeric `id` beside), wrapped bodies, maintained fields, required and
//! unique fields, tombstones, reused ids, null `updated_at` on insert, the missing-record
//! status, injected faults and in-app edits.

use std::time::Duration;

use serde_json::{json, Value};

use super::tests_support::{start, Client, CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY};

#[tokio::test]
async fn patch_merges_and_put_is_refused() {
    let sim = start(CURSOR_BEARER).await;
    let c = Client::new(&sim);
    let body = json!({"email": "a@x.com", "name": "A", "address": {"city": "Oslo", "zip": "0150"},
                      "id": 99, "updated_at": "1999-01-01T00:00:00.000Z"});
    let created = c.post("/v1/contacts", &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = &created.body;
    assert_eq!(r["id"], 1, "the client's id is ignored");
    assert_ne!(r["updated_at"], "1999-01-01T00:00:00.000Z");
    assert_eq!(r["updated_at"], r["created_at"]);
    assert!(r["updated_at"]
        .as_str()
        .is_some_and(|t| t.len() == 24 && t.ends_with('Z')));
    assert_eq!(
        created.header("location"),
        Some(format!("{}/v1/contacts/1", sim.base_url()))
    );

    sim.clock().advance(Duration::from_secs(60));
    let patched = c
        .patch(
            "/v1/contacts/1",
            &json!({"address": {"city": "Bergen"}, "phone": "1"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let p = &patched.body;
    assert_eq!(
        p["address"],
        json!({"city": "Bergen", "zip": "0150"}),
        "merged one level"
    );
    assert_eq!((&p["name"], &p["phone"]), (&json!("A"), &json!("1")));
    assert_ne!(p["updated_at"], r["updated_at"]);
    assert_eq!(p["created_at"], r["created_at"]);
    assert_eq!(c.get("/v1/contacts/1").await.body, *p);

    let put = c.put("/v1/contacts/1", &json!({"email": "b@x.com"})).await;
    assert_eq!(
        (put.status, &put.body["error"]),
        (405, &json!("method_not_allowed"))
    );
    assert!(put.header("allow").is_some_and(|a| a.contains("PATCH")));
    assert_eq!(c.get("/v1/contacts/1").await.body["email"], "a@x.com");

    assert_eq!(c.delete("/v1/contacts/1").await.status, 204);
    let gone = c.get("/v1/contacts/1").await;
    assert_eq!(
        (gone.status, &gone.body["error"]),
        (404, &json!("not_found"))
    );
    assert_eq!(c.delete("/v1/contacts/1").await.status, 404);
    assert_eq!(
        c.patch("/v1/contacts/1", &json!({"a": 1})).await.status,
        404
    );
    assert_eq!(c.get("/v1/contacts/abc").await.status, 404);
}

#[tokio::test]
async fn required_and_unique_fields_answer_422() {
    let sim = start(CURSOR_BEARER).await;
    let c = Client::new(&sim);
    let missing = c.post("/v1/contacts", &json!({"name": "no email"})).await;
    assert_eq!(missing.status, 422);
    assert!(missing.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("email")));
    assert_eq!(
        c.post("/v1/contacts", &json!({"email": "a@x.com"}))
            .await
            .status,
        201
    );
    let dup = c.post("/v1/contacts", &json!({"email": "a@x.com"})).await;
    assert_eq!(
        (dup.status, &dup.body["error"]),
        (422, &json!("unprocessable"))
    );
    assert!(dup.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("email")));
    assert_eq!(
        c.post("/v1/contacts", &json!({"email": "b@x.com"}))
            .await
            .status,
        201
    );
    assert_eq!(
        c.patch("/v1/contacts/2", &json!({"email": "a@x.com"}))
            .await
            .status,
        422
    );
    assert_eq!(
        c.patch("/v1/contacts/2", &json!({"email": null}))
            .await
            .status,
        422
    );
    assert_eq!(
        c.patch("/v1/contacts/1", &json!({"email": "a@x.com"}))
            .await
            .status,
        200
    );
    // a freed value may be taken again
    assert_eq!(c.delete("/v1/contacts/1").await.status, 204);
    assert_eq!(
        c.patch("/v1/contacts/2", &json!({"email": "a@x.com"}))
            .await
            .status,
        200
    );
    assert_eq!(c.post("/v1/contacts", &json!([1])).await.status, 400);
    let bad = c.call(reqwest::Method::POST, "/v1/contacts", None).await;
    assert_eq!(
        (bad.status, &bad.body["error"]),
        (400, &json!("bad_request"))
    );
}

#[tokio::test]
async fn wrapped_bodies_put_replaces_and_tombstones_stay() {
    let sim = start(OFFSET_APIKEY).await;
    let c = Client::new(&sim);
    let bare = c.post("/api/companies", &json!({"name": "Acme"})).await;
    assert_eq!(bare.status, 400);
    assert!(bare.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("\"company\"")));
    let created = c
        .post(
            "/api/companies",
            &json!({"company": {"name": "Acme", "size": 10, "tags": ["a"]}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = created.body["item"].clone();
    let id = r["id"].as_str().expect("a string id").to_string();
    assert_eq!(id.len(), 20);
    assert!(r["updated_at"].is_i64() && r["deleted_at"].is_null());
    let item = format!("/api/companies/{id}");

    let patch = c.patch(&item, &json!({"company": {"size": 11}})).await;
    assert_eq!(patch.status, 405);
    let replaced = c.put(&item, &json!({"company": {"name": "Acme AS"}})).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    let after = &replaced.body["item"];
    assert_eq!(after["name"], "Acme AS");
    assert!(
        after.get("size").is_none() && after.get("tags").is_none(),
        "{after}"
    );
    assert_eq!(
        c.put(&item, &json!({"company": {"size": 3}})).await.status,
        422,
        "name is required"
    );

    sim.clock().advance(Duration::from_secs(5));
    assert_eq!(c.delete(&item).await.status, 204);
    let tomb = c.get(&item).await;
    assert_eq!(tomb.status, 200);
    let t = &tomb.body["item"];
    assert!(t["deleted_at"].is_i64(), "{t}");
    assert_eq!(t["deleted_at"], t["updated_at"]);
    let listed = c.get("/api/companies").await;
    assert_eq!(
        listed.body["items"][0]["id"],
        json!(id),
        "tombstones are listed"
    );
    assert_eq!(c.delete(&item).await.status, 404);
    assert_eq!(
        c.put(&item, &json!({"company": {"name": "x"}}))
            .await
            .status,
        404
    );
    let since = t["deleted_at"].as_i64().expect("secs");
    let changed = c
        .get(&format!("/api/companies?modified_since={since}"))
        .await;
    assert_eq!(changed.body["meta"]["total"], 1);
    assert_eq!(sim.records("companies").len(), 1);
}

/// Strapi-like: `documentId` strings beside a numeric `id`, PUT merging the fields sent.
const DOCUMENTS: &str = "[resources.article]\npath = \"/api/articles\"\nids = \"string\"\n\
    id_field = \"documentId\"\nalso_numeric_id = true\nupdate = \"put_partial\"\n\
    wrap = \"data\"\nrecord = \"/data\"\nrequired = [\"title\"]\n";

#[tokio::test]
async fn ids_under_their_own_field_and_put_merging() {
    let sim = start(DOCUMENTS).await;
    let c = Client::new(&sim);
    let sent = json!({"data": {"title": "Hello", "slug": "hello", "id": 9, "documentId": "x"}});
    let created = c.post("/api/articles", &sent).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let doc = created.body["data"].clone();
    let document_id = doc["documentId"].as_str().expect("a string id").to_string();
    assert_eq!((document_id.len(), &doc["id"]), (20, &json!(1)));
    let item = format!("/api/articles/{document_id}");
    assert_eq!(
        created.header("location"),
        Some(format!("{}{item}", sim.base_url()))
    );
    let merged = c.put(&item, &json!({"data": {"title": "Hello!"}})).await;
    assert_eq!(merged.status, 200, "{}", merged.body);
    let after = &merged.body["data"];
    assert_eq!(
        (&after["title"], &after["slug"]),
        (&json!("Hello!"), &json!("hello"))
    );
    assert_eq!(
        (&after["documentId"], &after["id"]),
        (&doc["documentId"], &json!(1))
    );
    let nulled = c.put(&item, &json!({"data": {"title": null}})).await;
    assert_eq!(nulled.status, 422, "a merge still keeps required fields");
    let patch = c.patch(&item, &json!({"data": {"title": "x"}})).await;
    assert_eq!(patch.status, 405);
    assert!(patch.header("allow").is_some_and(|a| a.contains("PUT")));
    assert_eq!(c.get(&item).await.body["data"]["title"], "Hello!");
    assert_eq!(
        c.get("/api/articles/1").await.status,
        404,
        "not by the numeric id"
    );

    let sim = start("[resources.issues]\npath = \"/issues\"\nid_field = \"number\"\n").await;
    let c = Client::new(&sim);
    let made = c.post("/issues", &json!({"title": "T", "number": 7})).await;
    assert_eq!((made.status, &made.body["number"]), (201, &json!(1)));
    assert!(made.body.get("id").is_none(), "{}", made.body);
    assert_eq!(c.get("/issues/1").await.body["title"], "T");
    let listed = c.get("/issues").await;
    assert_eq!(listed.body["data"][0]["number"], 1);
}

#[tokio::test]
async fn ids_are_reused_missing_is_403_and_updated_starts_null() {
    let sim = start(LINK_BASIC).await;
    let c = Client::new(&sim);
    for i in 1..=3 {
        let a = c.post("/tickets", &json!({"title": format!("t{i}")})).await;
        assert_eq!((a.status, &a.body["id"]), (201, &json!(i)));
        assert!(a.body["updated_at"].is_null() && a.body["created_at"].is_i64());
    }
    sim.clock().advance(Duration::from_millis(1500));
    let edited = c.patch("/tickets/3", &json!({"title": "t3!"})).await;
    let updated = edited.body["updated_at"]
        .as_i64()
        .expect("set by the first update");
    assert!(updated >= edited.body["created_at"].as_i64().unwrap_or(i64::MAX) + 1500);

    assert_eq!(c.delete("/tickets/2").await.status, 204);
    for (status, a) in [
        (403, c.get("/tickets/2").await),
        (403, c.get("/tickets/99").await),
        (403, c.patch("/tickets/99", &json!({"a": 1})).await),
        (403, c.delete("/tickets/99").await),
    ] {
        assert_eq!((a.status, &a.body["error"]), (status, &json!("forbidden")));
    }
    let reused = c.post("/tickets", &json!({"title": "again"})).await;
    assert_eq!(reused.body["id"], 2, "the freed id is taken again");
    assert_eq!(
        c.post("/tickets", &json!({"title": "new"})).await.body["id"],
        4
    );
}

#[tokio::test]
async fn faults_lose_responses_throttle_and_fail() {
    let sim = start(CURSOR_BEARER).await;
    let c = Client::new(&sim);
    sim.faults().set_rates(0.0, 0.0, 1.0);
    let lost = c.post("/v1/contacts", &json!({"email": "a@x.com"})).await;
    assert_eq!(lost.status, 504);
    assert_eq!(sim.records("contacts").len(), 1, "performed all the same");
    assert_eq!(
        c.get("/v1/contacts/1").await.status,
        200,
        "reads are never lost"
    );
    sim.faults().set_rates(0.0, 1.0, 0.0);
    let throttled = c.get("/v1/contacts").await;
    assert_eq!(
        (throttled.status, throttled.header("retry-after")),
        (429, Some("1".into()))
    );
    sim.faults().set_rates(1.0, 0.0, 0.0);
    assert!(c.get("/v1/contacts").await.status >= 500);
    sim.faults().set_rates(0.0, 0.0, 0.0);
    let s = sim.stats();
    assert_eq!(
        (s.lost_responses, s.throttles_injected, s.errors_injected),
        (1, 1, 1)
    );
    assert_eq!(s.route("GET /v1/contacts/{id}"), 1);
    assert_eq!(c.get("/nowhere").await.status, 404);
    assert_eq!(
        c.call(reqwest::Method::PUT, "/v1/contacts", None)
            .await
            .status,
        405
    );
}

#[tokio::test]
async fn in_app_edits_run_like_api_changes() {
    let sim = start(CURSOR_BEARER).await;
    let c = Client::new(&sim);
    let r = sim.insert("contacts", json!({"name": "in app"}));
    assert_eq!(r["id"], 1, "the app's own edits skip the API's checks");
    sim.clock().advance(Duration::from_secs(1));
    let e = sim
        .edit("contacts", &json!(1), json!({"email": "x@y.z"}))
        .expect("edited");
    assert_eq!(
        (&e["name"], &e["email"]),
        (&json!("in app"), &json!("x@y.z"))
    );
    assert_ne!(e["updated_at"], r["updated_at"]);
    assert_eq!(c.get("/v1/contacts/1").await.body, e);
    assert_eq!(sim.get("contacts", &json!("1")), Some(e));
    assert!(sim.edit("contacts", &json!(7), json!({})).is_none());
    assert_eq!(sim.insert("nope", json!({})), Value::Null);
    assert!(sim.delete("contacts", &json!(1)));
    assert!(!sim.delete("contacts", &json!(1)));
    assert!(sim.records("contacts").is_empty());
    assert_eq!(c.get("/v1/contacts/1").await.status, 404);
}
