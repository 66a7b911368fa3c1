//! Stripe end to end: the engine between a real hub and the Stripe simulator (test mode).
//! `billing.customers` mapped to customers (email as the match key, address parts and a
//! metadata key as paths): backfill; a hub edit of one address part sent as the whole address
//! (Stripe replaces an address whole) in one form-encoded call; a hub insert created with an
//! idempotency key; an edit in Stripe reaching the hub through its signed webhook; a deletion
//! in Stripe reaching it too; with webhooks lost, the events feed brings the changes.

mod harness;

use std::time::Duration;

use harness::stripe::{StripeCtx, CUSTOMERS};
use harness::{eventually, Sql};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_sync_both_ways() {
    let ctx = StripeCtx::start(4, r#"poll_interval = "1s""#, CUSTOMERS, false, |_| {}).await;
    let rows: i64 = ctx.one("select count(*) from billing.customers").await;
    assert_eq!(rows, 4, "the backfill brought every customer");
    ctx.quiesce().await;

    // a hub edit of one address part: Stripe gets the whole address in one call
    let c2 = ctx.customer("customer2@example.com").expect("customer2");
    let id2 = c2["id"].as_str().unwrap().to_string();
    ctx.stripe
        .app_update_customer(
            &id2,
            json!({"address": {"line1": "1 Main St", "city": "Lyon"}}),
        )
        .unwrap();
    eventually(
        "Stripe's address in the hub",
        Duration::from_secs(15),
        || async {
            let city: Option<String> = ctx
                .one("select city from billing.customers where email = 'customer2@example.com'")
                .await;
            (city.as_deref() == Some("Lyon")).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let before = ctx.stripe.stats().by_route.clone();
    ctx.exec("update billing.customers set city = 'Paris', plan = 'gold' where email = 'customer2@example.com'")
        .await;
    eventually(
        "the hub's edit in Stripe",
        Duration::from_secs(15),
        || async {
            let c = ctx.stripe.get(&id2)?;
            (c["address"]["city"] == "Paris" && c["metadata"]["plan"] == "gold").then_some(())
        },
    )
    .await;
    let c = ctx.stripe.get(&id2).unwrap();
    assert_eq!(
        c["address"]["line1"], "1 Main St",
        "the address's other parts kept"
    );
    ctx.quiesce().await;
    let after = ctx.stripe.stats().by_route;
    let route = "POST /v1/customers/{id}";
    assert_eq!(
        after.get(route).copied().unwrap_or(0) - before.get(route).copied().unwrap_or(0),
        1,
        "one update call: {after:?}"
    );

    // a hub insert becomes a customer, its id written back
    ctx.exec("insert into billing.customers (name, email, phone) values ('New Buyer', 'new@example.com', '+15550100')")
        .await;
    let made = eventually(
        "the hub's insert in Stripe",
        Duration::from_secs(15),
        || async { ctx.customer("new@example.com") },
    )
    .await;
    assert_eq!(made["phone"], "+15550100");
    eventually("the new id in the hub", Duration::from_secs(15), || async {
        let id: Option<String> = ctx
            .one("select stripe_id from billing.customers where email = 'new@example.com'")
            .await;
        (id.as_deref() == made["id"].as_str()).then_some(())
    })
    .await;

    // an edit and a deletion in Stripe, through webhooks
    let c3 = ctx.customer("customer3@example.com").expect("customer3");
    let id3 = c3["id"].as_str().unwrap().to_string();
    ctx.stripe
        .app_update_customer(&id3, json!({"phone": "+15550303"}))
        .unwrap();
    let c4 = ctx.customer("customer4@example.com").expect("customer4");
    ctx.stripe
        .app_delete_customer(c4["id"].as_str().unwrap())
        .unwrap();
    eventually(
        "Stripe's edit and deletion in the hub",
        Duration::from_secs(15),
        || async {
            let phone: Option<String> = ctx
                .one("select phone from billing.customers where email = 'customer3@example.com'")
                .await;
            let gone: i64 = ctx
                .one("select count(*) from billing.customers where email = 'customer4@example.com'")
                .await;
            (phone.as_deref() == Some("+15550303") && gone == 0).then_some(())
        },
    )
    .await;

    // webhooks lost: the events feed brings the change all the same
    ctx.stripe.set_drop_webhooks(1.0);
    let c1 = ctx.customer("customer1@example.com").expect("customer1");
    ctx.stripe
        .app_update_customer(
            c1["id"].as_str().unwrap(),
            json!({"name": "Renamed In Stripe"}),
        )
        .unwrap();
    eventually(
        "the feed's change in the hub",
        Duration::from_secs(20),
        || async {
            let name: String = ctx
                .one("select name from billing.customers where email = 'customer1@example.com'")
                .await;
            (name == "Renamed In Stripe").then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let rows: i64 = ctx.one("select count(*) from billing.customers").await;
    assert_eq!(rows, 4, "four seeds, one new, one deleted");
    assert_eq!(ctx.stripe.records("customers").len(), 4);
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}
