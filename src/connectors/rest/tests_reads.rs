//! REST connector against the REST simulator, reads: every pagination style (offset, page
//! number, cursor from the body or a header, a cursor in a search POST body, next-page URL,
//! `Link` header, one page) reads each record exactly once, an exactly full last page, the stop
//! rules (a has-more flag that lies, a cursor that repeats, the page cap, a total), and fetches
//! by id (missing ids answered 403 left out, numeric and string ids, wrapped records).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::tests_support::{
    connect, ids, numbers, props, sim, text, walk, CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY,
};
use crate::connectors::ConnectorError;

/// One resource per pagination style, none signed in.
const STYLES_SIM: &str = r#"
[auth]
kind = "none"
[resources.offset]
path = "/offset"
pages = { style = "offset" }
[resources.page]
path = "/page"
pages = { style = "page", param = "p", first_page = 0 }
[resources.cursor]
path = "/cursor"
pages = { style = "cursor", cursor = "/meta/next" }
[resources.header]
path = "/header"
records = ""
pages = { style = "cursor", param = "after", cursor_header = "X-Next-Cursor" }
[resources.search]
path = "/search"
search_path = "/search/query"
pages = { style = "cursor" }
[resources.hsearch]
path = "/hsearch"
records = ""
search_path = "/hsearch/query"
pages = { style = "cursor", param = "after", cursor_header = "X-Next-Cursor" }
[resources.next]
path = "/next"
pages = { style = "next_url", next = "/links/next" }
[resources.link]
path = "/link"
records = ""
pages = { style = "link" }
[resources.none]
path = "/none"
pages = { style = "none" }
"#;

/// The connector's view of [`STYLES_SIM`], five records a page.
const STYLES: &str = r#"
[resources.offset]
path = "/offset"
records = "/data"
pages = { style = "offset", size = 5 }
[resources.page]
path = "/page"
records = "/data"
pages = { style = "page", param = "p", first_page = 0, size = 5 }
[resources.cursor]
path = "/cursor"
records = "/data"
pages = { style = "cursor", cursor = "/meta/next", size = 5 }
[resources.header]
path = "/header"
pages = { style = "cursor", param = "after", cursor_header = "X-Next-Cursor", size = 5 }
[resources.search]
path = "/search"
list_path = "/search/query"
records = "/data"
pages = { style = "cursor", cursor_in_body = true, size = 5 }
[resources.hsearch]
path = "/hsearch"
list_path = "/hsearch/query"
pages = { style = "cursor", param = "after", cursor_header = "X-Next-Cursor", cursor_in_body = true, size = 5 }
[resources.next]
path = "/next"
records = "/data"
pages = { style = "next_url", next = "/links/next", size = 5 }
[resources.link]
path = "/link"
pages = { style = "link", size = 5 }
[resources.none]
path = "/none"
records = "/data"
pages = { style = "none" }
"#;

/// `hsearch`: a cursor read from a header and sent in the JSON body of a search.
const NAMES: [&str; 9] = [
    "offset", "page", "cursor", "header", "search", "hsearch", "next", "link", "none",
];

/// Walks every style over `n` seeded records: each id once, in order, with its values.
async fn every_style_reads(n: usize) {
    let seed: Vec<(&str, usize)> = NAMES.iter().map(|r| (*r, n)).collect();
    let sim = sim(STYLES_SIM, &seed).await;
    let c = connect(&sim, STYLES);
    for name in NAMES {
        let (records, pages) = walk(c.as_ref(), name, &props(&["name", "email"])).await;
        assert_eq!(
            ids(&records),
            numbers(n),
            "{name}: every record once, in order"
        );
        let last = records.last().expect("records");
        assert_eq!(
            last.properties["name"],
            json!(format!("Record {n}")),
            "{name}"
        );
        assert!(last.updated_at.is_some() && !last.archived, "{name}");
        // one page more than the full ones at most (an empty page ends a listing without a
        // stop signal)
        let most = if name == "none" { 1 } else { n.div_ceil(5) + 1 };
        assert!(pages <= most, "{name}: {pages} pages for {n} records");
    }
    let stats = sim.stats();
    assert_eq!(
        stats.route("GET /search"),
        0,
        "the search endpoint was used"
    );
    assert!(stats.route("POST /search/query") >= 4);
    assert!(stats.route("POST /hsearch/query") >= 4);
    assert_eq!(stats.route("GET /hsearch"), 0);
    assert_eq!(stats.status(400), 0, "{stats:?}");
}

#[tokio::test]
async fn every_style_reads_each_record_once() {
    every_style_reads(23).await;
}

#[tokio::test]
async fn an_exactly_full_last_page_ends_the_listing() {
    every_style_reads(20).await;
}

/// Cursor and offset listings whose has-more flag lies on the last page, and cursor / URL
/// listings whose last page points back at itself.
const LIES_SIM: &str = r#"
[auth]
kind = "none"
[resources.c]
path = "/c"
pages = { style = "cursor", has_more = "/has_more", has_more_lies = true }
[resources.o]
path = "/o"
pages = { style = "offset", has_more = "/more", has_more_lies = true }
[resources.loop]
path = "/loop"
pages = { style = "cursor", has_more = "/has_more", repeat_cursor = true }
[resources.nloop]
path = "/nloop"
pages = { style = "next_url", repeat_cursor = true }
[resources.lloop]
path = "/lloop"
records = ""
pages = { style = "link", repeat_cursor = true }
"#;

const LIES: &str = r#"
[resources.c]
path = "/c"
records = "/data"
pages = { style = "cursor", has_more = "/has_more", size = 5 }
[resources.o]
path = "/o"
records = "/data"
pages = { style = "offset", has_more = "/more", size = 5 }
[resources.loop]
path = "/loop"
records = "/data"
pages = { style = "cursor", has_more = "/has_more", size = 5 }
[resources.nloop]
path = "/nloop"
records = "/data"
pages = { style = "next_url", size = 5 }
[resources.lloop]
path = "/lloop"
pages = { style = "link", size = 5 }
"#;

#[tokio::test]
async fn lying_flags_and_repeating_cursors_end_without_duplicates() {
    for n in [3, 10, 23] {
        let seed = [("c", n), ("o", n), ("loop", n), ("nloop", n), ("lloop", n)];
        let sim = sim(LIES_SIM, &seed).await;
        let c = connect(&sim, LIES);
        for name in ["c", "o", "loop", "nloop", "lloop"] {
            let (records, pages) = walk(c.as_ref(), name, &props(&["name"])).await;
            assert_eq!(ids(&records), numbers(n), "{name} with {n} records");
            assert!(pages <= n.div_ceil(5) + 1, "{name}: {pages} pages for {n}");
        }
    }
}

#[tokio::test]
async fn the_page_cap_and_a_total_stop_the_listing() {
    let sim = sim(OFFSET_APIKEY, &[("companies", 23)]).await;
    let shape = r#"
[auth]
kind = "header"
name = "X-API-Key"
[resources.companies]
path = "/api/companies"
records = "/items"
[resources.companies.pages]
style = "offset"
size = 5
"#;
    // the total says when the last page was read: no empty page is asked for
    let total = connect(&sim, &format!("{shape}total = \"/meta/total\"\n"));
    let (records, pages) = walk(total.as_ref(), "companies", &props(&["name"])).await;
    assert_eq!((records.len(), pages), (23, 5));
    let unique: BTreeSet<String> = ids(&records).into_iter().collect();
    assert_eq!(unique.len(), 23);
    assert_eq!(sim.stats().route("GET /api/companies"), 5);
    // so does a has-more flag that tells the truth
    let flag = connect(&sim, &format!("{shape}has_more = \"/meta/has_more\"\n"));
    assert_eq!(walk(flag.as_ref(), "companies", &[]).await.1, 5);
    // the cap ends a listing early, and says so by giving no next position
    let capped = connect(&sim, &format!("{shape}max_pages = 2\n"));
    let (records, pages) = walk(capped.as_ref(), "companies", &[]).await;
    assert_eq!((records.len(), pages), (10, 2));
    let first = sim.records("companies");
    let want: Vec<String> = first[..10].iter().map(|r| text(&r["id"])).collect();
    assert_eq!(ids(&records), want, "string ids in creation order");
}

const TICKETS: &str = r#"
[auth]
kind = "basic"
username = "ferry"
[resources.tickets]
path = "/tickets"
gone = [403, 404]
[resources.tickets.pages]
style = "link"
size_param = "per_page"
size = 30
"#;

#[tokio::test]
async fn fetches_numeric_ids_and_leaves_out_the_missing_ones() {
    let sim = sim(LINK_BASIC, &[("tickets", 4)]).await;
    let c = connect(&sim, TICKETS);
    assert!(sim.delete("tickets", &json!(3)));
    let want = vec!["1".to_string(), "3".into(), "999".into(), "2".into()];
    let p = props(&["name", "title", "tags"]);
    let got = c
        .fetch("tickets", &want, &p)
        .await
        .expect("missing records are no error");
    assert_eq!(
        ids(&got),
        ["1", "2"],
        "in the order asked, the missing left out"
    );
    assert_eq!(got[0].properties["name"], "Record 1");
    // the freed id is reused by the next ticket
    let new = sim.insert("tickets", json!({"title": "New", "tags": ["a", "b"]}));
    assert_eq!(new["id"], json!(3));
    assert!(new["updated_at"].is_null(), "null until the first update");
    let got = c
        .fetch("tickets", &["3".to_string()], &p)
        .await
        .expect("fetched");
    assert_eq!(got[0].properties["title"], "New");
    assert_eq!(got[0].properties["tags"], json!(["a", "b"]));
    let created = new["created_at"].as_i64().expect("unix ms");
    assert_eq!(
        got[0].updated_at.map(|t| t.timestamp_millis()),
        Some(created),
        "a null updated_at reads as the creation time"
    );
    assert!(got.iter().all(|r| !r.archived));
    // without 403 among the gone statuses, a missing record is the app's refusal
    let strict = connect(&sim, &TICKETS.replace("gone = [403, 404]\n", ""));
    match strict.fetch("tickets", &["999".to_string()], &[]).await {
        Err(ConnectorError::Rejected {
            status: 403,
            message,
        }) => {
            assert_eq!(message, "no tickets record with id 999")
        }
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
    // the link listing reads the same records
    let (listed, pages) = walk(c.as_ref(), "tickets", &props(&["name"])).await;
    assert_eq!((ids(&listed), pages), (numbers(4), 1));
}

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
[resources.companies.pages]
style = "offset"
size = 10
total = "/meta/total"
"#;

#[tokio::test]
async fn fetches_string_ids_from_wrapped_records_with_tombstones() {
    let sim = sim(OFFSET_APIKEY, &[("companies", 3)]).await;
    let c = connect(&sim, COMPANIES);
    let all: Vec<Value> = sim.records("companies");
    let (a, b) = (all[0]["id"].clone(), all[1]["id"].clone());
    assert!(a.as_str().is_some_and(|s| s.len() == 20), "{a}");
    sim.edit("companies", &a, json!({"address": {"city": "Oslo"}}))
        .expect("edited");
    assert!(sim.delete("companies", &b));
    let want = vec![text(&a), text(&b), "NoSuchCompanyId0000".to_string()];
    let got = c
        .fetch("companies", &want, &props(&["name", "address.city"]))
        .await
        .expect("fetched");
    assert_eq!(ids(&got), [text(&a), text(&b)]);
    assert_eq!(got[0].properties["name"], "Record 1");
    assert_eq!(got[0].properties["address.city"], "Oslo");
    let edited = sim.get("companies", &a).expect("record")["updated_at"].clone();
    assert_eq!(
        got[0].updated_at.map(|t| t.timestamp()),
        edited.as_i64(),
        "unix seconds read from the wrapped record"
    );
    assert!(!got[0].archived);
    assert!(got[1].archived, "the tombstone is the deletion");
    // the listing has the tombstone too, archived
    let (listed, _) = walk(c.as_ref(), "companies", &[]).await;
    let archived: Vec<bool> = listed.iter().map(|r| r.archived).collect();
    assert_eq!(archived, [false, true, false]);
}

#[tokio::test]
async fn unknown_resources_and_stored_positions_are_refused() {
    let sim = sim(CURSOR_BEARER, &[("contacts", 2)]).await;
    let c = connect(
        &sim,
        "[resources.contacts]\npath = \"/v1/contacts\"\nrecords = \"/data\"\n",
    );
    match c.list("deals", &[], None).await {
        Err(ConnectorError::Rejected { message, .. }) => {
            assert!(message.contains("no resource `deals`"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let bad = c.list("contacts", &[], Some("not a position".into())).await;
    assert!(
        matches!(bad, Err(ConnectorError::Rejected { .. })),
        "{bad:?}"
    );
    let (records, pages) = walk(c.as_ref(), "contacts", &props(&["email"])).await;
    assert_eq!((ids(&records), pages), (numbers(2), 1));
    assert_eq!(records[1].properties["email"], "record2@example.com");
}
