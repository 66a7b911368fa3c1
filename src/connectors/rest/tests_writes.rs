//! REST connector against the REST simulator, writes: creates with wrapped bodies and the id
//! read from the answer, PATCH updates of the changed fields only, read–merge–PUT updates that
//! keep the other fields, deletes (hard and tombstone; a second one counts as done), 422
//! refusals with the app's message, 429 / 5xx / lost answers classified as retryable, and
//! `find` by a filter parameter, a search body or a full scan, archived records left out.

use serde_json::{json, Value};

use super::tests_support::{connect, ids, props, sim, text, CURSOR_BEARER, OFFSET_APIKEY};
use crate::connectors::{ConnectorError, Properties};

fn values(v: Value) -> Properties {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const CONTACTS: &str = r#"
[resources.contacts]
path = "/v1/contacts"
records = "/data"
find = { property = "email" }
[resources.contacts.pages]
size = 5
has_more = "/has_more"
"#;

/// The same contacts listed (and found) through the search endpoint.
const SEARCHED: &str = r#"
[resources.contacts]
path = "/v1/contacts"
list_path = "/v1/contacts/search"
records = "/data"
find = { property = "email" }
[resources.contacts.pages]
size = 5
cursor_in_body = true
"#;

const COMPANIES: &str = r#"
[auth]
kind = "header"
name = "X-API-Key"
[resources.companies]
path = "/api/companies"
records = "/items"
record = "/item"
wrap = "company"
deleted = "deleted_at"
update = { method = "PUT", full = true }
[resources.companies.pages]
style = "offset"
size = 2
total = "/meta/total"
"#;

#[track_caller]
fn rejected<T: std::fmt::Debug>(r: Result<T, ConnectorError>, status: u16, needle: &str) {
    match r {
        Err(e @ ConnectorError::Rejected { .. }) => {
            assert!(!e.retryable(), "a refusal is final");
            let ConnectorError::Rejected { status: s, message } = e else {
                unreachable!()
            };
            assert_eq!(s, status, "{message}");
            assert!(message.contains(needle), "{message:?} ∌ {needle:?}");
        }
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn creates_send_wrapped_bodies_and_read_the_id_from_the_answer() {
    let sim = sim(OFFSET_APIKEY, &[]).await;
    let c = connect(&sim, COMPANIES);
    let items = [
        values(json!({"name": "Acme", "address.city": "Oslo", "size": 12})),
        values(json!({"domain": "nameless.test"})),
        values(json!({"name": "Beta", "tags": ["x"]})),
    ];
    let mut out = c.create("companies", &items).await.into_iter();
    let acme = out.next().unwrap().expect("created");
    rejected(out.next().unwrap(), 422, "`name` is required");
    let beta = out.next().unwrap().expect("created");
    assert_eq!(acme.id.len(), 20, "the string id at /item/id: {acme:?}");
    let stored = sim.get("companies", &json!(acme.id)).expect("stored");
    assert_eq!(stored["name"], "Acme");
    assert_eq!(stored["address"], json!({"city": "Oslo"}), "nested by path");
    assert_eq!(stored["size"], 12);
    assert_eq!(
        acme.updated_at.map(|t| t.timestamp()),
        stored["updated_at"].as_i64()
    );
    assert_eq!(
        sim.get("companies", &json!(beta.id)).unwrap()["tags"],
        json!(["x"])
    );
    assert_eq!(sim.records("companies").len(), 2);
}

#[tokio::test]
async fn patch_updates_send_the_changed_fields_only() {
    let sim = sim(CURSOR_BEARER, &[]).await;
    let c = connect(&sim, CONTACTS);
    let ann = sim.insert(
        "contacts",
        json!({"email": "ann@example.com", "name": "Ann", "phone": "1",
               "address": {"city": "Oslo", "zip": "0150"}}),
    );
    // an in-app edit ferry has not read: a PATCH of other fields leaves it alone
    sim.edit("contacts", &ann["id"], json!({"phone": "2"}))
        .expect("edited");
    let change = values(json!({"name": "Ann B", "address.city": "Bergen"}));
    let out = c.update("contacts", &[(text(&ann["id"]), change)]).await;
    let written = out.into_iter().next().unwrap().expect("updated");
    let stored = sim.get("contacts", &ann["id"]).expect("stored");
    assert_eq!(written.id, text(&ann["id"]));
    assert_eq!(
        written
            .updated_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        stored["updated_at"].as_str().map(str::to_string)
    );
    assert_eq!(
        (&stored["name"], &stored["phone"], &stored["email"]),
        (&json!("Ann B"), &json!("2"), &json!("ann@example.com"))
    );
    assert_eq!(stored["address"], json!({"city": "Bergen", "zip": "0150"}));
    // null clears; a missing record is NotFound
    let clear = values(json!({"phone": null}));
    let out = c
        .update(
            "contacts",
            &[(text(&ann["id"]), clear.clone()), ("999".into(), clear)],
        )
        .await;
    assert!(out[0].is_ok(), "{out:?}");
    assert!(matches!(out[1], Err(ConnectorError::NotFound)), "{out:?}");
    assert_eq!(
        sim.get("contacts", &ann["id"]).unwrap()["phone"],
        Value::Null
    );
}

#[tokio::test]
async fn put_updates_read_merge_and_keep_the_other_fields() {
    let sim = sim(OFFSET_APIKEY, &[]).await;
    let c = connect(&sim, COMPANIES);
    let acme = sim.insert(
        "companies",
        json!({"name": "Acme", "domain": "acme.test", "address": {"city": "Oslo", "zip": "1"}}),
    );
    let id = text(&acme["id"]);
    sim.reset_stats();
    let change = values(json!({"domain": "acme.example", "address.city": "Bergen"}));
    let out = c.update("companies", &[(id.clone(), change)]).await;
    let written = out.into_iter().next().unwrap().expect("updated");
    let stored = sim.get("companies", &acme["id"]).expect("stored");
    assert_eq!(
        (&stored["name"], &stored["domain"]),
        (&json!("Acme"), &json!("acme.example")),
        "the PUT replaced the record with the merged whole"
    );
    assert_eq!(stored["address"], json!({"city": "Bergen", "zip": "1"}));
    assert_eq!(written.id, id);
    assert_eq!(
        written.updated_at.map(|t| t.timestamp()),
        stored["updated_at"].as_i64()
    );
    let stats = sim.stats();
    assert_eq!(stats.route("GET /api/companies/{id}"), 1);
    assert_eq!(stats.route("PUT /api/companies/{id}"), 1);
    // the app takes no PATCH; gone and tombstoned records are NotFound
    let patching = connect(
        &sim,
        &COMPANIES.replace("update = { method = \"PUT\", full = true }\n", ""),
    );
    let out = patching
        .update("companies", &[(id.clone(), values(json!({"name": "X"})))])
        .await;
    rejected(
        out.into_iter().next().unwrap(),
        405,
        "this route takes GET, PUT, DELETE",
    );
    assert!(sim.delete("companies", &acme["id"]));
    let out = c
        .update(
            "companies",
            &[
                (id, values(json!({"name": "X"}))),
                ("NoSuch".into(), Properties::new()),
            ],
        )
        .await;
    assert!(
        out.iter()
            .all(|r| matches!(r, Err(ConnectorError::NotFound))),
        "{out:?}"
    );
}

#[tokio::test]
async fn deletes_hard_or_tombstoned_and_again_count_as_done() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 3)]).await;
    let c = connect(&sim, CONTACTS);
    let one = |s: &str| vec![s.to_string()];
    let out = c.archive("contacts", &["1".into(), "2".into()]).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert!(sim.get("contacts", &json!(1)).is_none());
    let out = c.archive("contacts", &["1".into(), "999".into()]).await;
    assert!(out.iter().all(Result::is_ok), "already gone: {out:?}");
    assert_eq!(sim.stats().status(404), 2);
    assert_eq!(
        ids(&c.fetch("contacts", &one("3"), &[]).await.unwrap()),
        one("3")
    );

    let sim = tombstones().await;
    let c = connect(&sim, COMPANIES);
    let id = text(&sim.records("companies")[0]["id"]);
    for _ in 0..2 {
        let out = c.archive("companies", &one(&id)).await;
        assert!(out[0].is_ok(), "{out:?}");
    }
    let got = c.fetch("companies", &one(&id), &[]).await.expect("fetched");
    assert!(got[0].archived, "the tombstone stays, deleted");
}

/// Three companies whose deletes leave tombstones.
async fn tombstones() -> crate::sim::rest::RestSim {
    sim(OFFSET_APIKEY, &[("companies", 3)]).await
}

#[tokio::test]
async fn validation_refusals_carry_the_apps_message() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 2)]).await;
    let c = connect(&sim, CONTACTS);
    let out = c
        .create(
            "contacts",
            &[
                values(json!({"name": "No email"})),
                values(json!({"email": "record1@example.com"})),
            ],
        )
        .await;
    let mut out = out.into_iter();
    rejected(out.next().unwrap(), 422, "`email` is required");
    rejected(out.next().unwrap(), 422, "`email` must be unique");
    let taken = values(json!({"email": "record1@example.com"}));
    let out = c.update("contacts", &[("2".into(), taken)]).await;
    rejected(out.into_iter().next().unwrap(), 422, "already used");
    assert_eq!(sim.records("contacts").len(), 2);
}

#[tokio::test]
async fn throttles_server_errors_and_lost_answers_are_retryable() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 2)]).await;
    let c = connect(&sim, CONTACTS);
    let new = || vec![values(json!({"email": "new@example.com"}))];
    let two = vec!["2".to_string()];
    sim.faults().set_rates(1.0, 0.0, 0.0);
    let errors = [
        c.create("contacts", &new()).await.remove(0).map(|_| ()),
        c.update("contacts", &[("2".into(), Properties::new())])
            .await
            .remove(0)
            .map(|_| ()),
        c.archive("contacts", &two).await.remove(0),
        c.fetch("contacts", &two, &[]).await.map(|_| ()),
        c.list("contacts", &[], None).await.map(|_| ()),
        c.find("contacts", "email", &two, &[]).await.map(|_| ()),
    ];
    for e in errors {
        assert!(matches!(e, Err(ConnectorError::Transient(_))), "{e:?}");
        assert!(e.unwrap_err().retryable());
    }
    sim.faults().set_rates(0.0, 1.0, 0.0);
    let e = c.create("contacts", &new()).await.remove(0).unwrap_err();
    assert!(
        matches!(&e, ConnectorError::RateLimited { retry_after, .. } if retry_after.as_secs() == 1),
        "{e:?}"
    );
    assert!(e.retryable());
    let e = c.fetch("contacts", &two, &[]).await.unwrap_err();
    assert!(matches!(e, ConnectorError::RateLimited { .. }), "{e:?}");
    assert!(sim.records("contacts").len() == 2, "nothing was written");
    // a create performed but answered 504: retryable, and found by its email afterwards
    sim.faults().set_rates(0.0, 0.0, 1.0);
    let e = c.create("contacts", &new()).await.remove(0).unwrap_err();
    assert!(matches!(e, ConnectorError::Transient(_)), "{e:?}");
    sim.faults().set_rates(0.0, 0.0, 0.0);
    let found = c
        .find(
            "contacts",
            "email",
            &["new@example.com".into()],
            &props(&["email"]),
        )
        .await
        .expect("found");
    assert_eq!(ids(&found), ["3"]);
    assert_eq!(found[0].properties["email"], "new@example.com");
}

#[tokio::test]
async fn find_filters_or_scans_and_leaves_out_archived_records() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 12)]).await;
    let emails = [
        "record3@example.com",
        "record11@example.com",
        "nobody@example.com",
    ];
    let emails: Vec<String> = emails.iter().map(|e| e.to_string()).collect();
    let p = props(&["name"]);
    for shape in [CONTACTS, SEARCHED] {
        let c = connect(&sim, shape);
        sim.reset_stats();
        let found = c
            .find("contacts", "email", &emails, &p)
            .await
            .expect("found");
        assert_eq!(ids(&found), ["3", "11"]);
        assert_eq!(found[0].properties["name"], "Record 3");
        assert_eq!(
            found[1].properties["email"], "record11@example.com",
            "the property found by"
        );
        let calls = sim.stats().requests;
        assert_eq!(calls, 3, "one filtered call a value");
        // a property with no filter configured: the whole listing is read
        let found = c
            .find("contacts", "name", &["Record 12".into()], &p)
            .await
            .expect("found");
        assert_eq!(ids(&found), ["12"]);
        assert_eq!(sim.stats().requests - calls, 3, "12 records, 5 a page");
    }
    let c = connect(&sim, CONTACTS);
    assert!(sim.delete("contacts", &json!(3)));
    let found = c
        .find("contacts", "email", &emails, &p)
        .await
        .expect("found");
    assert_eq!(ids(&found), ["11"], "a deleted record is not found");

    // tombstones are listed by the app and left out by find, filtered or scanned
    let sim = tombstones().await;
    let all = sim.records("companies");
    assert!(sim.delete("companies", &all[1]["id"]));
    let again = sim.insert("companies", json!({"name": "Record 2"}));
    let filtered = COMPANIES.replace("deleted = ", "find = { property = \"name\" }\ndeleted = ");
    for shape in [COMPANIES.to_string(), filtered] {
        let c = connect(&sim, &shape);
        let found = c
            .find("companies", "name", &["Record 2".into()], &p)
            .await
            .expect("found");
        assert_eq!(ids(&found), [text(&again["id"])], "{shape}");
        assert!(!found[0].archived);
    }
}

#[tokio::test]
async fn read_only_resources_refuse_writes() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 1)]).await;
    let c = connect(
        &sim,
        &CONTACTS.replace("records = ", "writable = false\nrecords = "),
    );
    let out = c.create("contacts", &[Properties::new()]).await;
    rejected(out.into_iter().next().unwrap(), 0, "read-only");
    let out = c.archive("contacts", &["1".into()]).await;
    rejected(out.into_iter().next().unwrap(), 0, "read-only");
    assert!(sim.get("contacts", &json!(1)).is_some());
    let fields = [crate::connectors::FieldUse {
        property: "name".into(),
        writes: true,
    }];
    let e = c.check_fields("contacts", &fields).await.unwrap_err();
    assert!(e.contains("read-only"), "{e}");
}

#[tokio::test]
async fn find_through_a_search_body_sends_values_as_text() {
    let sim = sim(CURSOR_BEARER, &[]).await;
    let by_zip = SEARCHED.replace("property = \"email\"", "property = \"zip\"");
    let c = connect(&sim, &by_zip);
    let oslo = sim.insert("contacts", json!({"email": "a@example.com", "zip": "0150"}));
    sim.insert("contacts", json!({"email": "b@example.com", "zip": "150"}));
    let found = c
        .find("contacts", "zip", &["0150".into()], &props(&["zip"]))
        .await
        .expect("found");
    assert_eq!(
        ids(&found),
        [text(&oslo["id"])],
        "not the record with zip 150"
    );
    assert_eq!(found[0].properties["zip"], "0150");
}
