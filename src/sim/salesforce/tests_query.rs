//! Salesforce simulator: SOQL tests — the parser on its own, then over real HTTP: filters,
//! ordering, limits, paging through `nextRecordsUrl` (configured and `batchSize` page sizes),
//! malformed queries and unknown fields, and `query` vs `queryAll` with deleted rows.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::soql::{parse, Expr, Lit, Op};
use super::tests_api::{start, Client};
use super::wire::sf_datetime;
use super::SimConfig;

#[test]
fn parser_shapes_and_errors() {
    let s = parse("select Id, LastName from Contact where (Email = 'a\\'b' or Email = null) and Amount >= -2.5 order by LastName desc nulls first, Id limit 10 offset 2").expect("parsed");
    assert_eq!(s.fields.as_ref().map(Vec::len), Some(2));
    assert_eq!(s.object.text, "Contact");
    assert_eq!((s.limit, s.offset), (Some(10), Some(2)));
    assert!(
        s.order[0].desc && !s.order[0].nulls_last && !s.order[1].desc && !s.order[1].nulls_last
    );
    let Some(Expr::And(terms)) = &s.filter else {
        panic!("an AND: {:?}", s.filter);
    };
    assert!(
        matches!(&terms[0], Expr::Or(xs) if xs[0] == Expr::Cmp(xs_name(&xs[0]), Op::Eq, Lit::Str("a'b".into())))
    );
    assert!(matches!(&terms[1], Expr::Cmp(_, Op::Ge, Lit::Num(n)) if *n == -2.5));
    let s =
        parse("SELECT COUNT() FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00.000+0000")
            .expect("count");
    assert_eq!(s.fields, None);
    assert!(
        matches!(&s.filter, Some(Expr::Cmp(_, Op::Gt, Lit::Temporal(t))) if t == "2024-01-01T00:00:00.000+0000")
    );
    for bad in [
        "SELECT FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE",
        "SELECT Id FROM Contact WHERE a = 1 AND b = 2 OR c = 3",
        "SELECT Id FROM Contact WHERE Name = 'open",
        "SELECT Id FROM Contact LIMIT x",
        "SELECT Id FROM Contact trailing",
        "SELECT Id, FROM Contact",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.errors[0].code, "MALFORMED_QUERY", "{bad}");
    }
    let e = parse("SELECT Id FROM Contact WHERE").expect_err("eof");
    assert_eq!(
        e.errors[0].message,
        "\nSELECT Id FROM Contact WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>"
    );
}

fn xs_name(e: &Expr) -> super::soql::Name {
    match e {
        Expr::Cmp(n, _, _) => n.clone(),
        _ => panic!("a comparison"),
    }
}

async fn q(api: &Client, soql: &str) -> super::tests_api::Answer {
    let enc = crate::sim::core::query::encode(soql);
    api.call(Method::GET, &format!("/query/?q={enc}"), None)
        .await
}

fn names(body: &Value) -> Vec<String> {
    body["records"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| r["LastName"].as_str().unwrap_or("null").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn filters_order_and_limit() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    for (last, first, email) in [
        ("Cole", "Ann", Some("ann@x.com")),
        ("abel", "Bob", None),
        ("Baker", "Cy", Some("cy@x.com")),
        ("Drake", "Di", Some("di@y.com")),
    ] {
        api.create(
            "Contact",
            json!({"LastName": last, "FirstName": first, "Email": email}),
        )
        .await;
    }
    let cases = [
        ("SELECT LastName FROM Contact ORDER BY LastName", vec!["abel", "Baker", "Cole", "Drake"]),
        ("SELECT LastName FROM Contact ORDER BY LastName DESC LIMIT 2", vec!["Drake", "Cole"]),
        ("SELECT LastName FROM Contact WHERE LastName = 'COLE'", vec!["Cole"]),
        ("SELECT LastName FROM Contact WHERE Email != 'ann@x.com' ORDER BY LastName", vec!["abel", "Baker", "Drake"]),
        ("SELECT LastName FROM Contact WHERE Email = null", vec!["abel"]),
        ("SELECT LastName FROM Contact WHERE Email LIKE '%@x.com' ORDER BY Email DESC", vec!["Baker", "Cole"]),
        ("SELECT LastName FROM Contact WHERE FirstName IN ('Bob', 'Di') OR LastName > 'c' ORDER BY LastName", vec!["abel", "Cole", "Drake"]),
        ("SELECT LastName FROM Contact WHERE FirstName NOT IN ('Bob', 'Di') AND LastName < 'C' ", vec!["Baker"]),
        ("SELECT LastName FROM Contact ORDER BY Email NULLS LAST, LastName LIMIT 2 OFFSET 2", vec!["Drake", "abel"]),
    ];
    for (soql, want) in cases {
        let a = q(&api, soql).await;
        assert_eq!(a.status, 200, "{soql}: {}", a.body);
        assert_eq!(names(&a.body), want, "{soql}");
        assert_eq!(a.body["totalSize"], json!(want.len()), "{soql}");
        assert_eq!(a.body["done"], json!(true));
    }
    let a = q(
        &api,
        "SELECT Id, lastname FROM contact WHERE LastName = 'Cole'",
    )
    .await;
    let rec = &a.body["records"][0];
    let id = rec["Id"].as_str().unwrap_or_default();
    assert_eq!(
        rec["attributes"],
        json!({"type": "Contact", "url": format!("/services/data/v62.0/sobjects/Contact/{id}")})
    );
    assert_eq!(
        rec.as_object().map(|m| m.len()),
        Some(3),
        "only the selected fields: {rec}"
    );
    let a = q(
        &api,
        &format!("SELECT LastName FROM Contact WHERE Id = '{}'", &id[..15]),
    )
    .await;
    assert_eq!(names(&a.body), ["Cole"]);
    let a = q(&api, "SELECT COUNT() FROM Contact WHERE Email != null").await;
    assert_eq!(
        (a.body["totalSize"].clone(), a.body["records"].clone()),
        (json!(3), json!([]))
    );
    sim.shutdown();
}

#[tokio::test]
async fn paging_through_next_records_url() {
    let sim = start(SimConfig {
        seed_contacts: 450,
        query_page_size: 200,
        ..SimConfig::default()
    })
    .await;
    let api = Client::login(&sim).await;
    let a = q(&api, "SELECT Id, LastName FROM Contact ORDER BY LastName").await;
    assert_eq!(
        (a.body["totalSize"].clone(), a.body["done"].clone()),
        (json!(450), json!(false))
    );
    let mut seen: Vec<String> = names(&a.body);
    assert_eq!(seen.len(), 200);
    let mut next = a.body["nextRecordsUrl"].as_str().map(str::to_string);
    let mut pages = 1;
    while let Some(url) = next {
        assert!(url.starts_with("/services/data/v62.0/query/01g"), "{url}");
        let p = api.call(Method::GET, &url, None).await;
        assert_eq!((p.status, p.body["totalSize"].clone()), (200, json!(450)));
        seen.extend(names(&p.body));
        next = p.body["nextRecordsUrl"].as_str().map(str::to_string);
        assert_eq!(p.body["done"], json!(next.is_none()));
        pages += 1;
    }
    assert_eq!((pages, seen.len()), (3, 450));
    let mut sorted = seen.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(seen, sorted);
    assert_eq!(
        sim.open_query_locators(),
        0,
        "a fully read locator is closed"
    );
    // batchSize (clamped to 200..2000) overrides the configured size
    let enc = crate::sim::core::query::encode("SELECT Id FROM Contact");
    let a = api
        .call_with(
            Method::GET,
            &format!("/queryAll?q={enc}"),
            None,
            &[("Sforce-Query-Options", "batchSize=300")],
        )
        .await;
    assert_eq!(a.body["records"].as_array().map(Vec::len), Some(300));
    let a = api
        .call_with(
            Method::GET,
            &format!("/query?q={enc}"),
            None,
            &[("Sforce-Query-Options", "batchSize=5")],
        )
        .await;
    assert_eq!(a.body["records"].as_array().map(Vec::len), Some(200));
    let a = api
        .call(Method::GET, "/query/01g000000000000AAA-200", None)
        .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_QUERY_LOCATOR"));
    sim.shutdown();
}

#[tokio::test]
async fn malformed_queries_and_unknown_fields() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let cases = [
        ("SELECT Id FROM", 400, "MALFORMED_QUERY"),
        ("SELEC Id FROM Contact", 400, "MALFORMED_QUERY"),
        ("SELECT Id, Foo FROM Contact", 400, "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE Bar = 1", 400, "INVALID_FIELD"),
        ("SELECT Id FROM Contact ORDER BY Baz", 400, "INVALID_FIELD"),
        (
            "SELECT Id FROM Contact WHERE LastName = 5",
            400,
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'",
            400,
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM Contact WHERE Id = 'xyz'",
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        ("SELECT Id FROM Widget", 400, "INVALID_TYPE"),
        ("SELECT Id, Id FROM Contact", 400, "MALFORMED_QUERY"),
    ];
    for (soql, status, code) in cases {
        let a = q(&api, soql).await;
        assert_eq!((a.status, a.code()), (status, code), "{soql}: {}", a.body);
    }
    let a = q(&api, "SELECT Id, Foo FROM Contact").await;
    let msg = a.body[0]["message"].as_str().unwrap_or_default();
    assert!(msg.starts_with("\nSELECT Id, Foo FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Contact'."), "{msg}");
    let a = api.call(Method::GET, "/query", None).await;
    assert_eq!((a.status, a.code()), (400, "MALFORMED_QUERY"));
    sim.shutdown();
}

#[tokio::test]
async fn query_all_includes_deleted_rows_and_modstamps_filter() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    let t0 = sim.clock().now_millis();
    let a = api.create("Contact", json!({"LastName": "Alive"})).await;
    let b = api.create("Contact", json!({"LastName": "Gone"})).await;
    sim.clock().advance(Duration::from_secs(5));
    let mid = sim.clock().now_millis();
    api.call(Method::DELETE, &format!("/sobjects/Contact/{b}"), None)
        .await;
    let soql = "SELECT Id, LastName, IsDeleted FROM Contact ORDER BY LastName";
    let live = q(&api, soql).await.body;
    assert_eq!(names(&live), ["Alive"]);
    let enc = crate::sim::core::query::encode(soql);
    let all = api
        .call(Method::GET, &format!("/queryAll?q={enc}"), None)
        .await
        .body;
    assert_eq!(names(&all), ["Alive", "Gone"]);
    assert_eq!(all["records"][1]["IsDeleted"], json!(true));
    let both = api
        .call(
            Method::GET,
            &format!(
                "/queryAll?q={}",
                crate::sim::core::query::encode("SELECT Id FROM Contact WHERE IsDeleted = true")
            ),
            None,
        )
        .await
        .body;
    assert_eq!(both["records"][0]["Id"], json!(b));
    // SystemModstamp moves on delete; a watermark query sees the deleted row only in queryAll
    let since = format!("SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= {} ORDER BY SystemModstamp, Id", sf_datetime(mid));
    assert_eq!(q(&api, &since).await.body["totalSize"], json!(0));
    let all = api
        .call(
            Method::GET,
            &format!("/queryAll?q={}", crate::sim::core::query::encode(&since)),
            None,
        )
        .await
        .body;
    assert_eq!(all["records"][0]["Id"], json!(b));
    let stamp = all["records"][0]["SystemModstamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        super::wire::parse_datetime(&stamp)
            .is_some_and(|t| t >= mid && t - mid < chrono::TimeDelta::seconds(2)),
        "{stamp}"
    );
    let old = format!(
        "SELECT Id FROM Contact WHERE CreatedDate >= {} AND CreatedDate < {}",
        sf_datetime(t0)
            .replace(".000+0000", "Z")
            .replace("+0000", "Z"),
        sf_datetime(mid)
    );
    let r = q(&api, &old).await;
    assert_eq!(r.body["totalSize"], json!(1), "{old}: {}", r.body);
    assert_eq!(r.body["records"][0]["Id"], json!(a));
    sim.shutdown();
}
