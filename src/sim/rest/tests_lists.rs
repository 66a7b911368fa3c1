//! REST simulator: list tests over HTTP — every pagination style walks each record exactly
//! once, the stop-rule lies (`has_more_lies`, `repeat_cursor`), page sizes, the since filter
//! (`>=`, at 1-second precision too), sorts, equality filters (bare, in bracket forms, or
//! only on the profile's `filters`), the search endpoint and empty listings.

use std::time::Duration;

use serde_json::{json, Value};

use super::tests_support::{
    seed, start, start_with, Answer, Client, CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY,
};

fn ids(records: &Value) -> Vec<Value> {
    records
        .as_array()
        .expect("an array of records")
        .iter()
        .map(|r| r["id"].clone())
        .collect()
}

fn numbers(range: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    range.map(|i| json!(i)).collect()
}

/// The URL of the `rel` link in a `Link` header.
fn link(a: &Answer, rel: &str) -> Option<String> {
    let header = a.header("link")?;
    header.split(", ").find_map(|part| {
        let (url, params) = part.split_once(';')?;
        (params.trim() == format!("rel=\"{rel}\"")).then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[tokio::test]
async fn cursor_pages_walk_every_record_once() {
    let sim = start_with(CURSOR_BEARER, seed("contacts", 23)).await;
    let c = Client::new(&sim);
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut url = "/v1/contacts?limit=5".to_string();
    loop {
        let a = c.get(&url).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        seen.extend(ids(&a.body["data"]));
        let Some(cursor) = a.body["next_cursor"].as_str() else {
            assert_eq!(a.body["has_more"], false);
            assert!(a.body["next_cursor"].is_null());
            break;
        };
        assert_eq!(a.body["has_more"], true);
        url = format!("/v1/contacts?limit=5&cursor={cursor}");
        assert!(pages < 20, "runaway walk");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, numbers(1..=23));
}

#[tokio::test]
async fn offset_pages_walk_every_record_once() {
    let sim = start_with(OFFSET_APIKEY, seed("companies", 23)).await;
    let c = Client::new(&sim);
    let expected: Vec<Value> = sim
        .records("companies")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    let (mut seen, mut offset, mut pages) = (Vec::new(), 0, 0);
    loop {
        let a = c
            .get(&format!("/api/companies?limit=5&offset={offset}"))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.body["meta"]["total"], 23);
        pages += 1;
        let page = ids(&a.body["items"]);
        offset += page.len();
        seen.extend(page);
        if a.body["meta"]["has_more"] == false {
            break;
        }
        assert!(pages < 20, "runaway walk");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen.len(), 23);
    assert_eq!(seen, expected);
    assert!(seen
        .iter()
        .all(|id| id.as_str().is_some_and(|s| s.len() == 20)));
}

const PAGE_AND_NEXT: &str = r#"
[auth]
kind = "query"
name = "key"

[resources.people]
path = "/people"
[resources.people.pages]
style = "page"
param = "p"
size_param = "per_page"
first_page = 0
default_size = 5
exact_last_page = true

[resources.deals]
path = "/crm/deals"
ids = "string"
records = "/results"
[resources.deals.pages]
style = "next_url"
size_param = "count"
next = "/paging/next"
"#;

#[tokio::test]
async fn page_numbers_and_an_exactly_full_last_page() {
    let sim = start_with(PAGE_AND_NEXT, seed("people", 20)).await;
    let c = Client::new(&sim);
    let (mut seen, mut page) = (Vec::new(), 0);
    loop {
        let a = c.get(&format!("/people?p={page}")).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let got = ids(&a.body["data"]);
        let short = got.len() < 5;
        seen.extend(got);
        if short {
            break;
        }
        page += 1;
    }
    assert_eq!(page, 4, "the page after the exactly full last one is empty");
    assert_eq!(seen, numbers(1..=20));
    assert_eq!(c.get("/people?p=-1").await.status, 400);
}

#[tokio::test]
async fn next_urls_walk_every_record_once() {
    let sim = start_with(PAGE_AND_NEXT, seed("deals", 12)).await;
    let c = Client::new(&sim);
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut url = "/crm/deals?count=5".to_string();
    loop {
        let a = c.get(&url).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        seen.extend(ids(&a.body["results"]));
        let Some(next) = a.body["paging"]["next"].as_str() else {
            break;
        };
        assert!(next.starts_with(&sim.base_url()), "{next}");
        assert!(next.contains("count=5") && !next.contains("key="), "{next}");
        url = next.to_string();
    }
    assert_eq!(pages, 3);
    let expected: Vec<Value> = sim
        .records("deals")
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn link_headers_walk_every_record_once() {
    let sim = start_with(LINK_BASIC, seed("tickets", 23)).await;
    let c = Client::new(&sim);
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut url = "/tickets?per_page=5".to_string();
    loop {
        let a = c.get(&url).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        seen.extend(ids(&a.body));
        let first = link(&a, "first").expect("a first link");
        assert_eq!(first, format!("{}/tickets?per_page=5", sim.base_url()));
        match link(&a, "next") {
            Some(next) => url = next,
            None => break,
        }
        assert!(pages < 20, "runaway walk");
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, numbers(1..=23));
}

const NONE_AND_HEADER: &str = r#"
[auth]
kind = "none"

[resources.all]
path = "/all"
[resources.all.pages]
style = "none"

[resources.b]
path = "/b"
records = ""
[resources.b.pages]
style = "cursor"
param = "after"
cursor_header = "X-Next-Cursor"
default_size = 4
"#;

#[tokio::test]
async fn one_page_lists_and_cursors_in_a_header() {
    let sim = start_with(NONE_AND_HEADER, |cfg| {
        cfg.seed.insert("all".into(), 120);
        cfg.seed.insert("b".into(), 10);
    })
    .await;
    let c = Client::bare(&sim);
    let a = c.get("/all?limit=5").await;
    assert_eq!(ids(&a.body["data"]), numbers(1..=120));
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut url = "/b".to_string();
    loop {
        let a = c.get(&url).await;
        assert!(a.body.is_array(), "a bare array: {}", a.body);
        pages += 1;
        seen.extend(ids(&a.body));
        match a.header("x-next-cursor") {
            Some(cursor) => url = format!("/b?after={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, numbers(1..=10));
}

const LIES: &str = r#"
[auth]
kind = "none"

[resources.c]
path = "/c"
[resources.c.pages]
style = "cursor"
has_more = "/has_more"
default_size = 5
has_more_lies = true

[resources.o]
path = "/o"
[resources.o.pages]
style = "offset"
has_more = "/more"
default_size = 5
has_more_lies = true

[resources.loop]
path = "/loop"
[resources.loop.pages]
style = "cursor"
has_more = "/has_more"
default_size = 5
repeat_cursor = true

[resources.nloop]
path = "/nloop"
[resources.nloop.pages]
style = "next_url"
default_size = 5
repeat_cursor = true
"#;

#[tokio::test]
async fn has_more_lies_once_then_an_empty_page_tells_the_truth() {
    let sim = start_with(LIES, |cfg| {
        cfg.seed.insert("c".into(), 10);
        cfg.seed.insert("o".into(), 7);
    })
    .await;
    let c = Client::bare(&sim);
    let p1 = c.get("/c").await;
    assert_eq!(
        (ids(&p1.body["data"]).len(), &p1.body["has_more"]),
        (5, &json!(true))
    );
    let cur = p1.body["next_cursor"].as_str().expect("cursor");
    let p2 = c.get(&format!("/c?cursor={cur}")).await;
    assert_eq!(ids(&p2.body["data"]), numbers(6..=10));
    assert_eq!(p2.body["has_more"], true, "the lie");
    let cur = p2.body["next_cursor"]
        .as_str()
        .expect("a cursor past the end");
    let p3 = c.get(&format!("/c?cursor={cur}")).await;
    assert_eq!(p3.body["data"], json!([]));
    assert_eq!(
        (&p3.body["has_more"], &p3.body["next_cursor"]),
        (&json!(false), &Value::Null)
    );

    let o2 = c.get("/o?offset=5").await;
    assert_eq!(
        (ids(&o2.body["data"]).len(), &o2.body["more"]),
        (2, &json!(true))
    );
    let o3 = c.get("/o?offset=7").await;
    assert_eq!(
        (&o3.body["data"], &o3.body["more"]),
        (&json!([]), &json!(false))
    );
}

#[tokio::test]
async fn repeat_cursor_loops_on_the_last_page() {
    let sim = start_with(LIES, |cfg| {
        cfg.seed.insert("loop".into(), 7);
        cfg.seed.insert("nloop".into(), 3);
    })
    .await;
    let c = Client::bare(&sim);
    let p1 = c.get("/loop").await;
    let c1 = p1.body["next_cursor"].as_str().expect("cursor").to_string();
    let p2 = c.get(&format!("/loop?cursor={c1}")).await;
    assert_eq!(ids(&p2.body["data"]), numbers(6..=7));
    assert_eq!(
        p2.body["next_cursor"],
        json!(c1),
        "the request's own cursor again"
    );
    assert_eq!(p2.body["has_more"], true);
    let again = c.get(&format!("/loop?cursor={c1}")).await;
    assert_eq!(again.body, p2.body, "a loop");

    let n1 = c.get("/nloop").await;
    assert_eq!(ids(&n1.body["data"]), numbers(1..=3));
    let next = n1.body["next"]
        .as_str()
        .expect("a next url on the only page");
    let n2 = c.get(next).await;
    assert_eq!(ids(&n2.body["data"]), numbers(1..=3));
    assert_eq!(n2.body["next"], json!(next), "the same URL again");
}

const SECONDS: &str = r#"
[auth]
kind = "none"

[resources.s]
path = "/s"
timestamps = "rfc3339_seconds"
since_param = "updated_since"
sort_param = "sort"
"#;

#[tokio::test]
async fn since_includes_equal_one_second_timestamps() {
    let sim = start(SECONDS).await;
    let c = Client::bare(&sim);
    let a = sim.insert("s", json!({"name": "a"}));
    let at = a["updated_at"].as_str().expect("a time").to_string();
    assert!(at.ends_with('Z') && !at.contains('.'), "{at}");
    sim.clock().advance(Duration::from_secs(2));
    let b = sim.insert("s", json!({"name": "b"}));
    let bt = b["updated_at"].as_str().expect("a time").to_string();
    let both = c.get(&format!("/s?updated_since={at}")).await;
    assert_eq!(
        ids(&both.body["data"]),
        vec![a["id"].clone(), b["id"].clone()]
    );
    let only_b = c.get(&format!("/s?updated_since={bt}")).await;
    assert_eq!(ids(&only_b.body["data"]), vec![b["id"].clone()]);
    let bad = c.get("/s?updated_since=yesterday").await;
    assert_eq!(
        (bad.status, &bad.body["error"]),
        (400, &json!("bad_request"))
    );

    // newest first and oldest first, after an edit moves `a` to the front
    sim.clock().advance(Duration::from_secs(2));
    sim.edit("s", &a["id"], json!({"name": "a2"}))
        .expect("edited");
    let newest = c.get("/s?sort=-updated_at").await;
    assert_eq!(
        ids(&newest.body["data"]),
        vec![a["id"].clone(), b["id"].clone()]
    );
    let oldest = c.get("/s?sort=updated_at").await;
    assert_eq!(
        ids(&oldest.body["data"]),
        vec![b["id"].clone(), a["id"].clone()]
    );
    assert_eq!(c.get("/s?sort=name").await.status, 400);
}

#[tokio::test]
async fn since_reads_created_at_while_updated_at_is_null() {
    let sim = start(LINK_BASIC).await;
    let c = Client::new(&sim);
    let t1 = sim.insert("tickets", json!({"title": "one"}));
    assert!(t1["updated_at"].is_null());
    sim.clock().advance(Duration::from_secs(5));
    let t2 = sim.insert("tickets", json!({"title": "two"}));
    let since = t2["created_at"].as_i64().expect("unix ms");
    let a = c.get(&format!("/tickets?since={since}")).await;
    assert_eq!(ids(&a.body), vec![t2["id"].clone()]);
    sim.edit("tickets", &t1["id"], json!({"title": "one!"}))
        .expect("edited");
    let a = c.get(&format!("/tickets?since={since}")).await;
    assert_eq!(ids(&a.body), vec![t1["id"].clone(), t2["id"].clone()]);
}

#[tokio::test]
async fn field_filters_search_and_sizes() {
    let sim = start_with(CURSOR_BEARER, seed("contacts", 120)).await;
    let c = Client::new(&sim);
    let one = c.get("/v1/contacts?email=record3%40example.com").await;
    assert_eq!(ids(&one.body["data"]), vec![json!(3)]);
    let ignored = c.get("/v1/contacts?limit=3&not_a_field=x").await;
    assert_eq!(ids(&ignored.body["data"]), numbers(1..=3));
    let capped = c.get("/v1/contacts?limit=1000").await;
    assert_eq!(ids(&capped.body["data"]).len(), 100);
    let default = c.get("/v1/contacts").await;
    assert_eq!(ids(&default.body["data"]).len(), 50);
    assert_eq!(c.get("/v1/contacts?limit=0").await.status, 400);
    let bad = c.get("/v1/contacts?cursor=nonsense").await;
    assert_eq!(
        (bad.status, &bad.body["error"]),
        (400, &json!("invalid_cursor"))
    );

    let (mut seen, mut body) = (Vec::new(), json!({"limit": 40}));
    loop {
        let a = c.post("/v1/contacts/search", &body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        seen.extend(ids(&a.body["data"]));
        match a.body["next_cursor"].as_str() {
            Some(cur) => body = json!({"limit": 40, "cursor": cur}),
            None => break,
        }
    }
    assert_eq!(seen, numbers(1..=120));
    let found = c
        .post(
            "/v1/contacts/search",
            &json!({"email": "record7@example.com"}),
        )
        .await;
    assert_eq!(ids(&found.body["data"]), vec![json!(7)]);
}

#[tokio::test]
async fn bracket_filters_and_a_filter_list() {
    let strapi = "[resources.a]\npath = \"/a\"\nupdated_at = \"updatedAt\"\n\
                  created_at = \"createdAt\"\nfilters = [\"slug\"]\n";
    let sim = start(strapi).await;
    let c = Client::new(&sim);
    for slug in ["one", "two", "three"] {
        sim.insert("a", json!({"slug": slug, "state": "open"}));
        sim.clock().advance(Duration::from_secs(10));
    }
    let found = c.get("/a?filters%5Bslug%5D%5B%24eq%5D=two").await;
    assert_eq!(ids(&found.body["data"]), vec![json!(2)]);
    let none = c.get("/a?filters[slug][$eq]=four").await;
    assert_eq!(ids(&none.body["data"]), Vec::<Value>::new());
    let not_listed = c.get("/a?state=all&slug=one&filters[state][$eq]=x").await;
    assert_eq!(
        ids(&not_listed.body["data"]),
        vec![json!(1)],
        "only slug filters"
    );
    let two = sim.records("a")[1]["updatedAt"]
        .as_str()
        .expect("time")
        .to_string();
    sim.edit("a", &json!(1), json!({"slug": "uno"}))
        .expect("edited");
    let since = c.get(&format!("/a?filters[updatedAt][$gte]={two}")).await;
    assert_eq!(ids(&since.body["data"]), numbers(1..=3));
    let born = c.get(&format!("/a?filters[createdAt][$gte]={two}")).await;
    assert_eq!(ids(&born.body["data"]), numbers(2..=3));
    assert_eq!(c.get("/a?filters[updatedAt][$gte]=soon").await.status, 400);
    let ignored = c.get("/a?filters[slug][$contains]=t").await;
    assert_eq!(
        ids(&ignored.body["data"]).len(),
        3,
        "other comparisons are ignored"
    );

    let directus = "[resources.t]\npath = \"/t\"\nupdated_at = \"date_updated\"\n\
                    created_at = \"date_created\"\nnull_updated_on_insert = true\n";
    let sim = start(directus).await;
    let c = Client::new(&sim);
    for key in ["OPS-1", "OPS-2"] {
        sim.insert("t", json!({"ticket_key": key}));
    }
    let found = c
        .get("/t?filter[ticket_key][_eq]=OPS-2&meta=filter_count")
        .await;
    assert_eq!(ids(&found.body["data"]), vec![json!(2)]);
    let nothing = c.get("/t?filter[not_a_field][_eq]=x").await;
    assert_eq!(
        ids(&nothing.body["data"]),
        Vec::<Value>::new(),
        "brackets always filter"
    );
    let bare = c.get("/t?not_a_field=x").await;
    assert_eq!(ids(&bare.body["data"]), numbers(1..=2));

    // an _or group: updated at or after t (a never-updated item's null date_updated never
    // passes), or created at or after t
    sim.clock().advance(Duration::from_secs(10));
    let t = sim
        .clock()
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    sim.edit("t", &json!(1), json!({"subject": "edited"}))
        .expect("edited");
    sim.insert("t", json!({"ticket_key": "OPS-3"}));
    let updated = c
        .get(&format!("/t?filter[_or][0][date_updated][_gte]={t}"))
        .await;
    assert_eq!(
        ids(&updated.body["data"]),
        vec![json!(1)],
        "item 3 was never updated"
    );
    let either = c
        .get(&format!(
            "/t?filter[_or][0][date_updated][_gte]={t}&filter[_or][1][date_created][_gte]={t}"
        ))
        .await;
    assert_eq!(ids(&either.body["data"]), vec![json!(1), json!(3)]);
}

#[tokio::test]
async fn empty_listings_answer_one_empty_page() {
    let sim = start_with(CURSOR_BEARER, seed("contacts", 3)).await;
    let c = Client::new(&sim);
    sim.faults().set_empty_listings(true);
    let a = c.get("/v1/contacts").await;
    assert_eq!(a.body["data"], json!([]));
    assert_eq!(
        (&a.body["has_more"], &a.body["next_cursor"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(
        c.get("/v1/contacts/2").await.status,
        200,
        "reads by id still work"
    );
}
