//! Stripe simulator: invoice tests over real HTTP — the draft → open → paid lifecycle with
//! invoice items and `expand[]=customer`, void and uncollectible, every wrong-state error,
//! deletion of drafts, and app-side edits emitting the same events.

use reqwest::Method;
use serde_json::{json, Value};

use super::tests_api::{id, start, Client};
use super::SimConfig;

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn lifecycle_with_items_and_expand() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (_, cus) = c
        .post(
            "/v1/customers",
            "email=bill%40x.com&name=Bill&invoice_prefix=BILL",
        )
        .await;
    let cid = id(&cus);
    // a pending item, pulled in by the invoice
    let (status, pending) = c
        .post(
            "/v1/invoiceitems",
            &format!("customer={cid}&amount=700&description=Setup"),
        )
        .await;
    assert_eq!((status, pending["invoice"].clone()), (200, Value::Null));
    let (status, inv) = c
        .post(
            "/v1/invoices",
            &format!("customer={cid}&pending_invoice_items_behavior=include&metadata[order]=42"),
        )
        .await;
    assert_eq!(status, 200, "{inv}");
    let iid = id(&inv);
    assert!(iid.starts_with("in_") && iid.len() == 27);
    for (k, v) in [
        ("status", json!("draft")),
        ("amount_due", json!(700)),
        ("amount_paid", json!(0)),
        ("amount_remaining", json!(700)),
        ("currency", json!("usd")),
        ("customer", json!(cid)),
        ("number", Value::Null),
        ("paid", json!(false)),
        ("metadata", json!({"order": "42"})),
        ("customer_email", json!("bill@x.com")),
        (
            "status_transitions",
            json!({"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null}),
        ),
    ] {
        assert_eq!(inv[k], v, "{k}");
    }
    let (status, item) = c
        .post(
            "/v1/invoiceitems",
            &format!("customer={cid}&amount=1500&invoice={iid}"),
        )
        .await;
    assert_eq!((status, item["invoice"].clone()), (200, json!(iid)));
    let path = format!("/v1/invoices/{iid}");
    let (_, inv) = c.post(&path, "description=March&metadata[order]=").await;
    assert_eq!(
        (
            inv["amount_due"].clone(),
            inv["description"].clone(),
            inv["metadata"].clone()
        ),
        (json!(2200), json!("March"), json!({}))
    );
    assert_eq!(inv["lines"]["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(inv["lines"]["data"][1]["invoice_item"], json!(id(&item)));

    let now = sim.clock().now().timestamp();
    let (status, fin) = c.post(&format!("{path}/finalize"), "").await;
    assert_eq!(status, 200);
    assert_eq!(
        (fin["status"].clone(), fin["number"].clone()),
        (json!("open"), json!("BILL-0001"))
    );
    let fin_at = fin["status_transitions"]["finalized_at"]
        .as_i64()
        .expect("finalized_at");
    assert!((now..=now + 1).contains(&fin_at));
    let (status, paid) = c
        .call(Method::POST, &format!("{path}/pay"), "expand[]=customer")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            paid["status"].clone(),
            paid["paid"].clone(),
            paid["amount_paid"].clone(),
            paid["amount_remaining"].clone()
        ),
        (json!("paid"), json!(true), json!(2200), json!(0))
    );
    assert!(paid["status_transitions"]["paid_at"].is_i64());
    assert_eq!(paid["customer"]["object"], "customer");
    assert_eq!(paid["customer"]["next_invoice_sequence"], 2);
    let (_, got) = c.call(Method::GET, &path, "expand[]=customer").await;
    assert_eq!(got["customer"]["email"], "bill@x.com");
    let (_, got) = c.get(&path).await;
    assert_eq!(got["customer"], json!(cid));

    let events = sim.records("events");
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "invoiceitem.created",
            "invoice.created",
            "invoiceitem.created",
            "invoice.updated",
            "invoice.updated",
            "invoice.finalized",
            "invoice.updated",
            "invoice.paid",
            "invoice.updated",
            "invoice.payment_succeeded"
        ]
    );
    assert_eq!(events[4]["data"]["previous_attributes"]["amount_due"], 700);
    assert_eq!(events[7]["data"]["previous_attributes"]["status"], "draft");
    assert_eq!(
        events[9]["data"]["previous_attributes"]["status_transitions"],
        json!({"paid_at": null})
    );
    sim.shutdown();
}

async fn new_invoice(c: &Client, customer: &str) -> String {
    id(&c
        .post("/v1/invoices", &format!("customer={customer}"))
        .await
        .1)
}

#[tokio::test]
async fn wrong_states_and_missing_customers() {
    let sim = start(SimConfig {
        sandbox_rate_limit: None,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let (_, cus) = c.post("/v1/customers", "name=W").await;
    let cid = id(&cus);
    let draft = new_invoice(&c, &cid).await;
    let msg = |b: &Value| b["error"]["message"].as_str().unwrap_or("").to_string();
    for (action, expect) in [
        (
            "pay",
            "You can only pay open or uncollectible invoices; this invoice is draft.",
        ),
        (
            "void",
            "You can only void open or uncollectible invoices; this invoice is draft.",
        ),
        (
            "mark_uncollectible",
            "You can only mark as uncollectible open invoices; this invoice is draft.",
        ),
    ] {
        let (status, body) = c.post(&format!("/v1/invoices/{draft}/{action}"), "").await;
        assert_eq!((status, msg(&body)), (400, expect.to_string()), "{action}");
    }
    let (status, _) = c.post(&format!("/v1/invoices/{draft}/refund"), "").await;
    assert_eq!(status, 404);
    assert_eq!(
        c.post(&format!("/v1/invoices/{draft}/finalize"), "")
            .await
            .0,
        200
    );
    let (status, body) = c.post(&format!("/v1/invoices/{draft}/finalize"), "").await;
    assert_eq!(
        (status, msg(&body)),
        (
            400,
            "You can only finalize draft invoices; this invoice is open.".into()
        )
    );
    let (status, body) = c
        .call(Method::DELETE, &format!("/v1/invoices/{draft}"), "")
        .await;
    assert_eq!(status, 400);
    assert!(msg(&body).starts_with("You can only delete draft invoices."));
    let (status, body) = c
        .post(&format!("/v1/invoices/{draft}"), "auto_advance=true")
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invoice_not_editable"))
    );
    let (status, body) = c
        .post(&format!("/v1/invoices/{draft}"), "metadata[k]=v")
        .await;
    assert_eq!((status, body["metadata"].clone()), (200, json!({"k": "v"})));
    let (_, unc) = c
        .post(&format!("/v1/invoices/{draft}/mark_uncollectible"), "")
        .await;
    assert_eq!(unc["status"], "uncollectible");
    assert!(unc["status_transitions"]["marked_uncollectible_at"].is_i64());
    let (_, paid) = c
        .post(
            &format!("/v1/invoices/{draft}/pay"),
            "paid_out_of_band=true",
        )
        .await;
    assert_eq!(
        (paid["status"].clone(), paid["paid_out_of_band"].clone()),
        (json!("paid"), json!(true))
    );
    let (status, body) = c.post(&format!("/v1/invoices/{draft}/pay"), "").await;
    assert_eq!(
        (status, msg(&body)),
        (400, "Invoice is already paid".into())
    );
    let (status, body) = c.post(&format!("/v1/invoices/{draft}/void"), "").await;
    assert_eq!(
        (status, msg(&body)),
        (
            400,
            "You can only void open or uncollectible invoices; this invoice is paid.".into()
        )
    );

    let open = new_invoice(&c, &cid).await;
    c.post(&format!("/v1/invoices/{open}/finalize"), "").await;
    let (_, void) = c.post(&format!("/v1/invoices/{open}/void"), "").await;
    assert_eq!(
        (void["status"].clone(), void["amount_remaining"].clone()),
        (json!("void"), json!(0))
    );

    let gone = new_invoice(&c, &cid).await;
    let (status, stub) = c
        .call(Method::DELETE, &format!("/v1/invoices/{gone}"), "")
        .await;
    assert_eq!(
        (status, stub),
        (
            200,
            json!({"id": gone, "object": "invoice", "deleted": true})
        )
    );
    assert_eq!(c.get(&format!("/v1/invoices/{gone}")).await.0, 404);

    let (status, body) = c.post("/v1/invoices", "").await;
    assert_eq!(
        (
            status,
            body["error"]["code"].clone(),
            body["error"]["param"].clone()
        ),
        (400, json!("parameter_missing"), json!("customer"))
    );
    let (status, body) = c.post("/v1/invoices", "customer=cus_nobody").await;
    assert_eq!(
        (
            status,
            body["error"]["code"].clone(),
            body["error"]["param"].clone()
        ),
        (400, json!("resource_missing"), json!("customer"))
    );
    assert_eq!(msg(&body), "No such customer: 'cus_nobody'");
    c.call(Method::DELETE, &format!("/v1/customers/{cid}"), "")
        .await;
    let (status, body) = c.post("/v1/invoices", &format!("customer={cid}")).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("resource_missing"))
    );
    let (status, body) = c
        .post(
            "/v1/invoices",
            "customer=cus_x&collection_method=send_invoice",
        )
        .await;
    assert_eq!(
        (status, body["error"]["param"].clone()),
        (400, json!("days_until_due"))
    );
    sim.shutdown();
}

#[tokio::test]
async fn app_side_edits_emit_the_same_events() {
    let sim = start(SimConfig::default()).await;
    let cus = sim
        .app_create_customer(json!({"email": "app@x.com", "balance": 5}))
        .expect("customer");
    let cid = id(&cus);
    assert_eq!(cus["balance"], 5);
    let inv = sim
        .app_create_invoice(&cid, json!({"description": "Dash"}))
        .expect("invoice");
    let iid = id(&inv);
    sim.app_add_invoice_item(&iid, 999, "Widget").expect("item");
    sim.app_finalize_invoice(&iid).expect("finalize");
    let paid = sim.app_pay_invoice(&iid).expect("pay");
    assert_eq!(
        (paid["amount_paid"].clone(), paid["status"].clone()),
        (json!(999), json!("paid"))
    );
    let e = sim.app_pay_invoice(&iid).expect_err("paid twice");
    assert_eq!(e.message, "Invoice is already paid");
    sim.app_update_customer(&cid, json!({"name": "App"}))
        .expect("update");
    sim.app_delete_customer(&cid).expect("delete");
    assert!(sim.app_update_customer(&cid, json!({"name": "X"})).is_err());
    let events = sim.records("events");
    assert_eq!(events.len(), 11, "{:?}", types(&events));
    assert!(events
        .iter()
        .all(|e| e["request"] == json!({"id": null, "idempotency_key": null})));
    assert_eq!(events[9]["type"], "customer.updated");
    assert_eq!(
        events[9]["data"]["previous_attributes"],
        json!({"name": null})
    );
    assert_eq!(events[10]["type"], "customer.deleted");
    assert_eq!(events[10]["data"]["object"]["name"], "App");
    assert_eq!(sim.stats().writes, 0, "app-side edits are not API writes");
    let c = Client::new(&sim);
    let (status, got) = c.get(&format!("/v1/invoices/{iid}")).await;
    assert_eq!((status, got["description"].clone()), (200, json!("Dash")));
    sim.shutdown();
}
