//! REST connector against the REST simulator, the change feed: an updated-since filter at
//! 1-second precision (`>=`: same-second edits found on the next poll), the overlap window
//! under edits made while a pass pages (records may repeat, none is missed), a watermark that
//! moves only when a pass ends, records whose updated_at is null found by created_at, a
//! newest-first listing read until it reaches older records, tombstones as archived, and a
//! deleted-records feed read after the changed records.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::tests_support::{
    assert_watermark, connect, flat, ids, pass, props, sim, since, start, text, CURSOR_BEARER,
    LINK_BASIC, OFFSET_APIKEY,
};
use crate::connectors::RemoteRecord;
use crate::sim::rest::RestSim;

const FEED_SIM: &str = r#"
[auth]
kind = "none"

[resources.people]
path = "/people"
timestamps = "rfc3339_seconds"
since_param = "updated_since"
sort_param = "sort"
[resources.people.pages]
style = "cursor"
has_more = "/has_more"
"#;

/// The same collection as a filtered feed (`people`) and as a newest-first one (`newest`).
const FEED: &str = r#"
[resources.people]
path = "/people"
records = "/data"
[resources.people.pages]
size = 5
has_more = "/has_more"
[resources.people.changes]
style = "filter"
param = "updated_since"

[resources.newest]
path = "/people"
records = "/data"
[resources.newest.pages]
size = 5
has_more = "/has_more"
[resources.newest.changes]
style = "newest_first"
query = { sort = "-updated_at" }
"#;

const NO_OVERLAP: Duration = Duration::ZERO;

fn time(v: &Value) -> DateTime<Utc> {
    let t = v.as_str().expect("an RFC 3339 time");
    DateTime::parse_from_rfc3339(t)
        .expect("a time")
        .with_timezone(&Utc)
}

/// Moves the sim clock to 50 ms past a whole second: the next ~900 ms are one second.
fn align(sim: &RestSim) {
    let ms = i64::from(sim.clock().now().timestamp_subsec_millis());
    sim.clock().shift(TimeDelta::milliseconds(1050 - ms));
}

/// The record `id` in `records`, the last one when it repeats.
fn last<'r>(records: &'r [RemoteRecord], id: &Value) -> Option<&'r RemoteRecord> {
    records.iter().rev().find(|r| r.id == text(id))
}

#[tokio::test]
async fn same_second_edits_are_found_on_the_next_poll() {
    let sim = sim(FEED_SIM, &[("people", 3)]).await;
    let c = connect(&sim, FEED);
    let p = props(&["name"]);
    let from = start(&sim, Duration::from_secs(600), NO_OVERLAP);
    let (pages, cursor) = pass(c.as_ref(), "people", &p, None, from).await;
    assert!(flat(&pages).is_empty(), "the seed is an hour old");
    assert_eq!(since(&cursor), from.at, "an empty pass keeps its watermark");

    align(&sim);
    let a = sim.insert("people", json!({"name": "a"}));
    let (pages, cursor) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    assert_eq!(ids(&flat(&pages)), [text(&a["id"])]);
    assert_watermark(&cursor, time(&a["updated_at"]), "the newest change seen");
    // in the watermark's own second: a new record and an edit of the one already read
    let b = sim.insert("people", json!({"name": "b"}));
    sim.edit("people", &a["id"], json!({"name": "a2"}))
        .expect("edited");
    let a2 = sim.get("people", &a["id"]).expect("a");
    assert_eq!(
        (&b["updated_at"], &a2["updated_at"]),
        (&a["updated_at"], &a["updated_at"]),
        "the test needs one second for all three changes"
    );
    let (pages, _) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    let got = flat(&pages);
    assert_eq!(
        last(&got, &a["id"]).expect("a again").properties["name"],
        "a2"
    );
    assert_eq!(last(&got, &b["id"]).expect("b").properties["name"], "b");
    assert!(got.iter().all(|r| !r.archived));
}

#[tokio::test]
async fn a_change_in_the_starts_own_second_is_found() {
    let sim = sim(FEED_SIM, &[]).await;
    let c = connect(&sim, FEED);
    align(&sim);
    // the feed starts a moment into a second; the app stamps a change made just after with
    // that whole second, before the start
    let from = start(&sim, Duration::ZERO, NO_OVERLAP);
    let a = sim.insert("people", json!({"name": "a"}));
    assert!(time(&a["updated_at"]) < from.at);
    let (pages, _) = pass(c.as_ref(), "people", &props(&["name"]), None, from).await;
    assert_eq!(ids(&flat(&pages)), [text(&a["id"])]);
}

#[tokio::test]
async fn the_overlap_repeats_records_but_misses_none_edited_while_paging() {
    let sim = sim(FEED_SIM, &[("people", 23)]).await;
    let c = connect(&sim, FEED);
    let p = props(&["name"]);
    // the overlap is what brings back a record edited on a page the pass had read already
    // (its time is older than the pass's newest change): with none, record 2's edit is lost
    let from = start(&sim, Duration::from_secs(7200), Duration::from_secs(30));
    let first = c.changes("people", &p, None, from).await.expect("page");
    assert_eq!((first.records.len(), first.more), (5, true));
    assert_eq!(
        since(&first.cursor),
        from.at,
        "mid-pass, the watermark stays"
    );

    // edits while the pass pages: records read already, records ahead, a new one
    let edit = |id: i64, name: &str| {
        sim.edit("people", &json!(id), json!({ "name": name }))
            .expect("edited")
    };
    let mut latest = vec![edit(2, "two")];
    sim.clock().advance(Duration::from_secs(3));
    latest.push(edit(12, "twelve"));
    latest.push(sim.insert("people", json!({"name": "new"})));
    sim.clock().advance(Duration::from_secs(3));
    latest.push(edit(3, "three"));

    let mut cursor = first.cursor.clone();
    let mut pass_one = first.records.clone();
    loop {
        let page = c
            .changes("people", &p, Some(&cursor), from)
            .await
            .expect("page");
        pass_one.extend(page.records.clone());
        cursor = page.cursor;
        if !page.more {
            break;
        }
        assert_eq!(since(&cursor), from.at, "mid-pass, the watermark stays");
    }
    assert_eq!(pass_one.len(), 24, "every record once in a pass");
    let newest = pass_one.iter().filter_map(|r| r.updated_at).max();
    assert_watermark(
        &cursor,
        newest.expect("a newest change"),
        "the pass ends at its newest change",
    );
    // a crash after page one repeats exactly page two
    let again = c
        .changes("people", &p, Some(&first.cursor), from)
        .await
        .expect("page");
    assert_eq!(ids(&again.records), ["6", "7", "8", "9", "10"]);

    let (pages, _) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    let pass_two = flat(&pages);
    let mut seen = pass_one.clone();
    seen.extend(pass_two.clone());
    for want in &latest {
        let got = last(&seen, &want["id"]).expect("every edited record is read");
        assert_eq!(got.properties["name"], want["name"], "{want}");
        assert_eq!(got.updated_at, Some(time(&want["updated_at"])));
    }
    assert!(
        last(&pass_two, &json!(12)).is_some(),
        "the overlap reads the newest changes again"
    );
    assert!(pass_two.len() < 24, "the overlap is not a full read");
}

const TICKETS: &str = r#"
[auth]
kind = "basic"
username = "ferry"
[resources.tickets]
path = "/tickets"
[resources.tickets.pages]
style = "link"
size_param = "per_page"
size = 2
[resources.tickets.changes]
style = "filter"
param = "since"
format = "unix_ms"
"#;

#[tokio::test]
async fn records_never_updated_are_found_by_their_creation_time() {
    let sim = sim(LINK_BASIC, &[("tickets", 2)]).await;
    let c = connect(&sim, TICKETS);
    let p = props(&["title"]);
    let from = start(&sim, Duration::from_secs(60), NO_OVERLAP);
    let new: Vec<Value> = (0..3)
        .map(|i| sim.insert("tickets", json!({ "title": format!("t{i}") })))
        .collect();
    assert!(new.iter().all(|t| t["updated_at"].is_null()));
    let (pages, cursor) = pass(c.as_ref(), "tickets", &p, None, from).await;
    let got = flat(&pages);
    let want: Vec<String> = new.iter().map(|t| text(&t["id"])).collect();
    assert_eq!(ids(&got), want, "over two link pages");
    assert_eq!(pages.len(), 2);
    let created = |t: &Value| DateTime::from_timestamp_millis(t["created_at"].as_i64().unwrap());
    assert_eq!(got[2].updated_at, created(&new[2]));
    assert_watermark(&cursor, created(&new[2]).unwrap(), "the newest creation");

    sim.clock().advance(Duration::from_secs(2));
    sim.edit(
        "tickets",
        &json!(1),
        json!({"title": "seeded, now updated"}),
    )
    .expect("edited");
    let later = sim.insert("tickets", json!({"title": "later"}));
    let (pages, _) = pass(c.as_ref(), "tickets", &p, Some(cursor.clone()), from).await;
    let got = flat(&pages);
    let edited = last(&got, &json!(1)).expect("the seeded ticket's first update");
    assert_eq!(edited.properties["title"], "seeded, now updated");
    assert!(edited.updated_at > Some(since(&cursor)));
    assert!(last(&got, &later["id"]).is_some());
    assert!(
        last(&got, &json!(2)).is_none(),
        "the untouched seed stays behind"
    );
}

#[tokio::test]
async fn newest_first_stops_at_older_records() {
    let sim = sim(FEED_SIM, &[("people", 23)]).await;
    let c = connect(&sim, FEED);
    let p = props(&["name"]);
    let from = start(&sim, Duration::from_secs(600), NO_OVERLAP);
    let x = sim.insert("people", json!({"name": "x"}));
    sim.clock().advance(Duration::from_secs(1));
    sim.edit("people", &json!(7), json!({"name": "seven"}))
        .expect("edited");
    sim.clock().advance(Duration::from_secs(1));
    let y = sim.insert("people", json!({"name": "y"}));
    sim.reset_stats();
    let (pages, cursor) = pass(c.as_ref(), "newest", &p, None, from).await;
    let got = flat(&pages);
    assert_eq!(ids(&got), [text(&y["id"]), "7".into(), text(&x["id"])]);
    assert_eq!(pages.len(), 1, "the first page reached older records");
    assert_eq!(
        sim.stats().route("GET /people"),
        1,
        "no page read past them"
    );
    assert_watermark(&cursor, time(&y["updated_at"]), "the newest change");

    sim.clock().advance(Duration::from_secs(2));
    sim.edit("people", &json!(9), json!({"name": "nine"}))
        .expect("edited");
    let (pages, _) = pass(c.as_ref(), "newest", &p, Some(cursor), from).await;
    let got = flat(&pages);
    assert_eq!(got[0].id, "9");
    assert_eq!(got[0].properties["name"], "nine");
    // the watermark sits up to a pass's length (rounded down to the second) before `y`: a
    // change a second older may be read again, one two seconds older is not
    assert!(last(&got, &x["id"]).is_none());
}

const COMPANIES: &str = r#"
[auth]
kind = "header"
name = "X-API-Key"
[resources.companies]
path = "/api/companies"
records = "/items"
record = "/item"
deleted = "deleted_at"
[resources.companies.pages]
style = "offset"
size = 2
total = "/meta/total"
[resources.companies.changes]
style = "filter"
param = "modified_since"
format = "unix"
"#;

#[tokio::test]
async fn tombstones_come_through_as_archived() {
    let sim = sim(OFFSET_APIKEY, &[("companies", 5)]).await;
    let c = connect(&sim, COMPANIES);
    let p = props(&["name"]);
    let all = sim.records("companies");
    let from = start(&sim, Duration::from_secs(60), Duration::from_secs(1));
    let (pages, cursor) = pass(c.as_ref(), "companies", &p, None, from).await;
    assert!(flat(&pages).is_empty());
    sim.clock().advance(Duration::from_secs(2));
    assert!(sim.delete("companies", &all[1]["id"]));
    assert!(sim.delete("companies", &all[3]["id"]));
    sim.edit("companies", &all[4]["id"], json!({"name": "Renamed"}))
        .expect("edited");
    let (pages, _) = pass(c.as_ref(), "companies", &p, Some(cursor), from).await;
    let got = flat(&pages);
    let want: Vec<String> = [1, 3, 4].iter().map(|i| text(&all[*i]["id"])).collect();
    assert_eq!(ids(&got), want, "over two offset pages");
    let archived: Vec<bool> = got.iter().map(|r| r.archived).collect();
    assert_eq!(archived, [true, true, false]);
    assert_eq!(got[2].properties["name"], "Renamed");
}

const SEARCH_FEED: &str = r#"
[resources.contacts]
path = "/v1/contacts"
list_path = "/v1/contacts/search"
records = "/data"
[resources.contacts.pages]
size = 5
cursor_in_body = true
[resources.contacts.changes]
style = "filter"
param = "updated_since"
"#;

#[tokio::test]
async fn the_change_filter_goes_in_a_search_body() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 12)]).await;
    let c = connect(&sim, SEARCH_FEED);
    let from = start(&sim, Duration::from_secs(60), NO_OVERLAP);
    for id in [2, 7, 11] {
        sim.edit("contacts", &json!(id), json!({"name": "changed"}))
            .expect("edited");
    }
    for i in 0..4 {
        sim.insert(
            "contacts",
            json!({ "email": format!("new{i}@example.com") }),
        );
    }
    sim.reset_stats();
    let (pages, cursor) = pass(c.as_ref(), "contacts", &props(&["name"]), None, from).await;
    let want = ["2", "7", "11", "13", "14", "15", "16"];
    assert_eq!(ids(&flat(&pages)), want);
    assert_eq!(pages.len(), 2);
    let stats = sim.stats();
    assert_eq!(stats.route("POST /v1/contacts/search"), 2, "{stats:?}");
    assert_eq!(stats.route("GET /v1/contacts"), 0);
    let (pages, _) = pass(c.as_ref(), "contacts", &[], Some(cursor), from).await;
    assert!(flat(&pages).len() <= 7, "only the newest changes again");
}

/// Directus-like: `date_updated` stays null until the first update and the app leaves such
/// items out of a `date_updated >= t` filter; an `_or` naming `{since}` twice finds them.
#[tokio::test]
async fn an_or_filter_naming_since_twice_finds_items_never_updated() {
    let profile = r#"
[auth]
kind = "none"
[resources.items]
path = "/items"
records = "/data"
timestamps = "rfc3339"
updated_at = "date_updated"
created_at = "date_created"
null_updated_on_insert = true
[resources.items.pages]
style = "offset"
"#;
    let config = |changes: &str| {
        format!(
            "[resources.items]\npath = \"/items\"\nrecords = \"/data\"\n\
             updated_at = \"date_updated\"\ncreated_at = \"date_created\"\n\
             pages = {{ style = \"offset\", size = 50 }}\n[resources.items.changes]\n{changes}"
        )
    };
    let sim = sim(profile, &[("items", 2)]).await;
    let p = props(&["title"]);
    let from = start(&sim, Duration::from_secs(60), NO_OVERLAP);
    sim.clock().advance(Duration::from_secs(2));
    sim.edit("items", &json!(1), json!({"title": "updated"}))
        .expect("edited");
    let new = sim.insert("items", json!({"title": "new"}));
    assert!(new["date_updated"].is_null());

    let updated_only = connect(
        &sim,
        &config("style = \"filter\"\nparam = \"filter[date_updated][_gte]\"\n"),
    );
    let (pages, _) = pass(updated_only.as_ref(), "items", &p, None, from).await;
    assert_eq!(
        ids(&flat(&pages)),
        vec!["1"],
        "the new item's null date_updated fails >="
    );

    let either = connect(
        &sim,
        &config(
            "style = \"filter\"\nquery = { \"filter[_or][0][date_updated][_gte]\" = \"{since}\", \
             \"filter[_or][1][date_created][_gte]\" = \"{since}\" }\n",
        ),
    );
    let (pages, _) = pass(either.as_ref(), "items", &p, None, from).await;
    let got = flat(&pages);
    assert_eq!(ids(&got), vec!["1".to_string(), text(&new["id"])]);
    assert!(
        last(&got, &json!(2)).is_none(),
        "the untouched seed stays behind"
    );
}

/// [`FEED_SIM`] whose hard deletes are listed at `/deleted_people`.
fn deleted_log_sim() -> String {
    FEED_SIM.replace(
        "sort_param = \"sort\"\n",
        "sort_param = \"sort\"\ndeleted_log = \"deleted_people\"\n",
    ) + r#"
[resources.deleted_people]
path = "/deleted_people"
timestamps = "rfc3339_seconds"
since_param = "updated_since"
[resources.deleted_people.pages]
style = "cursor"
has_more = "/has_more"
"#
}

/// [`FEED`] reading that list after the changed records.
fn deletions_feed() -> String {
    format!("{FEED}[resources.people.deletions]\npath = \"/deleted_people\"\nid = \"record_id\"\n")
}

#[tokio::test]
async fn a_deleted_records_feed_brings_deletions_after_the_changes() {
    let sim = sim(&deleted_log_sim(), &[("people", 12)]).await;
    let c = connect(&sim, &deletions_feed());
    let p = props(&["name"]);
    let all = sim.records("people");
    let from = start(&sim, Duration::from_secs(60), Duration::from_secs(1));
    assert!(sim.delete("people", &all[0]["id"]));
    let (pages, cursor) = pass(c.as_ref(), "people", &p, None, from).await;
    let got = flat(&pages);
    let gone = last(&got, &all[0]["id"]).expect("the deletion is in the first pass");
    assert!(gone.archived && gone.updated_at.is_some(), "{gone:?}");
    assert!(gone.properties.is_empty());
    assert_eq!(ids(&got), [text(&all[0]["id"])], "nothing else changed");

    // an edit moves the watermark past the first deletion
    sim.clock().advance(Duration::from_secs(10));
    sim.edit("people", &all[1]["id"], json!({"name": "Renamed"}))
        .expect("edited");
    let (_, cursor) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    let (pages, cursor) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    assert!(
        last(&flat(&pages), &all[0]["id"]).is_none(),
        "a deletion before the bound is not listed again"
    );

    // seven deletions: two pages of the deleted-records feed
    sim.clock().advance(Duration::from_secs(2));
    for r in &all[2..9] {
        assert!(sim.delete("people", &r["id"]));
    }
    let (pages, _) = pass(c.as_ref(), "people", &p, Some(cursor), from).await;
    let got = flat(&pages);
    let mut deleted: Vec<String> = got
        .iter()
        .filter(|r| r.archived)
        .map(|r| r.id.clone())
        .collect();
    deleted.sort();
    let mut want: Vec<String> = all[2..9].iter().map(|r| text(&r["id"])).collect();
    want.sort();
    assert_eq!(deleted, want);
    assert!(pages.len() >= 3, "a changes page and two deletions pages");
    assert!(
        got.iter().all(|r| !r.archived || r.updated_at.is_some()),
        "each deletion carries its time"
    );
}
