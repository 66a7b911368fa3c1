//! Stripe simulator: list tests over real HTTP — paging forward and back with `starting_after`
//! / `ending_before`, every paging error, customer and invoice filters, and the events API
//! (type wildcards, `types[]`, `created`, the 30-day window and the cursor-too-old error).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{id, start, Client};
use super::SimConfig;

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .map(|d| d.iter().map(id).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_both_ways_newest_first() {
    let sim = start(SimConfig {
        seed_customers: 20,
        sandbox_rate_limit: None,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    // five more in the same second: the tiebreak keeps creation order
    for n in 0..5 {
        c.post("/v1/customers", &format!("name=Now{n}")).await;
    }
    let mut all: Vec<String> = sim.records("customers").iter().map(id).collect();
    all.reverse();
    assert_eq!(all.len(), 25);
    let (mut seen, mut cursor, mut pages) = (Vec::new(), String::new(), Vec::new());
    loop {
        let q = if cursor.is_empty() {
            "limit=10".to_string()
        } else {
            format!("limit=10&starting_after={cursor}")
        };
        let (status, page) = c.call(Method::GET, "/v1/customers", &q).await;
        assert_eq!(status, 200);
        assert_eq!(
            (page["object"].clone(), page["url"].clone()),
            (json!("list"), json!("/v1/customers"))
        );
        seen.extend(ids(&page));
        pages.push((ids(&page).len(), page["has_more"].as_bool()));
        if page["has_more"] != true {
            break;
        }
        cursor = seen.last().cloned().unwrap_or_default();
    }
    assert_eq!(
        pages,
        [(10, Some(true)), (10, Some(true)), (5, Some(false))]
    );
    assert_eq!(seen, all);
    // and back from the oldest: the 10 just newer than it, newest first
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/customers",
            &format!("limit=10&ending_before={}", all[24]),
        )
        .await;
    assert_eq!(ids(&page), all[14..24].to_vec());
    assert_eq!(page["has_more"], true);
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/customers",
            &format!("limit=10&ending_before={}", all[4]),
        )
        .await;
    assert_eq!(
        (ids(&page), page["has_more"].clone()),
        (all[0..4].to_vec(), json!(false))
    );
    let (_, page) = c.get("/v1/customers").await;
    assert_eq!(ids(&page).len(), 10, "default limit");
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/customers",
            "email=customer3%40example.com",
        )
        .await;
    assert_eq!(ids(&page), [all[22].clone()]);

    for (q, param, message) in [
        (
            "limit=0",
            "limit",
            "This value must be greater than or equal to 1.",
        ),
        (
            "limit=101",
            "limit",
            "This value must be less than or equal to 100.",
        ),
        ("limit=ten", "limit", "Invalid integer: ten"),
        (
            "starting_after=cus_a&ending_before=cus_b",
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.",
        ),
        (
            "starting_after=cus_unknown",
            "starting_after",
            "No such customer: 'cus_unknown'",
        ),
        (
            "ending_before=cus_unknown",
            "ending_before",
            "No such customer: 'cus_unknown'",
        ),
        (
            "created[since]=1",
            "created[since]",
            "Received unknown parameter: created[since]",
        ),
        ("sort=asc", "sort", "Received unknown parameter: sort"),
    ] {
        let (status, body) = c.call(Method::GET, "/v1/customers", q).await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(
            (
                body["error"]["param"].clone(),
                body["error"]["message"].clone()
            ),
            (json!(param), json!(message)),
            "{q}"
        );
    }
    let (_, body) = c
        .call(Method::GET, "/v1/customers", "starting_after=cus_unknown")
        .await;
    assert_eq!(body["error"]["code"], "resource_missing");
    sim.shutdown();
}

#[tokio::test]
async fn created_and_invoice_filters() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (_, old) = c.post("/v1/customers", "name=Old").await;
    let t_old = old["created"].as_i64().expect("created");
    sim.clock().advance(Duration::from_secs(100));
    let (_, new) = c.post("/v1/customers", "name=New").await;
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/customers",
            &format!("created[gt]={t_old}"),
        )
        .await;
    assert_eq!(ids(&page), [id(&new)]);
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/customers",
            &format!("created[lte]={t_old}"),
        )
        .await;
    assert_eq!(ids(&page), [id(&old)]);
    let (_, page) = c
        .call(Method::GET, "/v1/customers", &format!("created={t_old}"))
        .await;
    assert_eq!(ids(&page), [id(&old)]);
    let (_, a) = c
        .post("/v1/invoices", &format!("customer={}", id(&old)))
        .await;
    let (_, b) = c
        .post("/v1/invoices", &format!("customer={}", id(&new)))
        .await;
    c.post(&format!("/v1/invoices/{}/finalize", id(&b)), "")
        .await;
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/invoices",
            &format!("customer={}", id(&old)),
        )
        .await;
    assert_eq!(ids(&page), [id(&a)]);
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/invoices",
            "status=open&expand[]=data.customer",
        )
        .await;
    assert_eq!(ids(&page), [id(&b)]);
    assert_eq!(page["data"][0]["customer"]["name"], "New");
    assert_eq!(page["url"], "/v1/invoices");
    let (status, body) = c.call(Method::GET, "/v1/invoices", "status=late").await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (400, json!("status"))
    );
    sim.shutdown();
}

#[tokio::test]
async fn events_filters_expiry_and_old_cursor() {
    let sim = start(SimConfig {
        sandbox_rate_limit: None,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let (_, cus) = c.post("/v1/customers", "name=E").await;
    let cid = id(&cus);
    c.post(&format!("/v1/customers/{cid}"), "name=F").await;
    let (_, inv) = c.post("/v1/invoices", &format!("customer={cid}")).await;
    let (_, all) = c.get("/v1/events").await;
    let kinds: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["invoice.created", "customer.updated", "customer.created"]
    );
    assert_eq!(all["url"], "/v1/events");
    let first = all["data"][2].clone();
    assert_eq!(first["data"]["object"], cus);
    assert_eq!(first["object"], "event");
    assert_eq!(
        (first["livemode"].clone(), first["pending_webhooks"].clone()),
        (json!(false), json!(0))
    );
    assert_eq!(first["api_version"], "2024-06-20");
    assert!(first
        .get("data")
        .and_then(|d| d.get("previous_attributes"))
        .is_none());
    assert_eq!(
        all["data"][1]["data"]["previous_attributes"],
        json!({"name": "E"})
    );

    let (_, page) = c.call(Method::GET, "/v1/events", "type=customer.*").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/events",
            "types[]=invoice.created&types[]=customer.created",
        )
        .await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    let (_, page) = c
        .call(Method::GET, "/v1/events", "type=customer.created")
        .await;
    assert_eq!(ids(&page), [id(&first)]);
    let (status, body) = c.call(Method::GET, "/v1/events", "type=a&types[]=b").await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (
            400,
            json!("You may only specify one of these parameters: type, types.")
        )
    );
    let many: Vec<String> = (0..21).map(|i| format!("types[]=t{i}")).collect();
    let (status, body) = c.call(Method::GET, "/v1/events", &many.join("&")).await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (400, json!("types"))
    );
    let (status, got) = c.get(&format!("/v1/events/{}", id(&first))).await;
    assert_eq!((status, got), (200, first.clone()));

    // 29 days later everything is still there; past 30 days the first three are gone
    sim.clock().advance(Duration::from_secs(29 * 86_400));
    c.post(&format!("/v1/invoices/{}/finalize", id(&inv)), "")
        .await;
    let (_, page) = c
        .call(
            Method::GET,
            "/v1/events",
            &format!("created[gte]={}", first["created"]),
        )
        .await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(5));
    sim.clock().advance(Duration::from_secs(2 * 86_400));
    let (_, page) = c.get("/v1/events").await;
    let kinds: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds, ["invoice.updated", "invoice.finalized"]);
    let (status, body) = c.get(&format!("/v1/events/{}", id(&first))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("resource_missing"))
    );
    for param in ["starting_after", "ending_before"] {
        let (status, body) = c
            .call(
                Method::GET,
                "/v1/events",
                &format!("{param}={}", id(&first)),
            )
            .await;
        assert_eq!(status, 400, "{param}");
        assert_eq!(
            body["error"],
            json!({"type": "invalid_request_error", "code": "resource_missing", "param": param,
                   "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
                   "message": format!("No such event: '{}'", id(&first))})
        );
    }
    let newest = page["data"][0]["id"].as_str().expect("id").to_string();
    let (status, page) = c
        .call(
            Method::GET,
            "/v1/events",
            &format!("starting_after={newest}"),
        )
        .await;
    assert_eq!(
        (status, page["data"].as_array().map(Vec::len)),
        (200, Some(1))
    );
    sim.shutdown();
}
