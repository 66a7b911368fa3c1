//! The billing scenarios end to end, HubSpot as the CRM and Stripe as billing, through one hub:
//! (a) a billing address corrected in Stripe reaches the HubSpot contact through `crm.people`
//! (one table, both apps' people matched on email), and a phone changed in HubSpot reaches the
//! Stripe customer; (b) an invoice paid in Stripe moves the person's deal to won in HubSpot —
//! through a plain SQL trigger in the hub (the README's recipe), which ferry then syncs out like
//! any other edit.

mod harness;

use std::time::Duration;

use harness::stripe::StripeCtx;
use harness::{eventually, props, Sql};
use serde_json::{json, Value};

const BILLING: &str = r#"
[[mappings]]
connection = "hubspot"
object = "contacts"
table = "crm.people"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "name",  property = "firstname" },
  { column = "email", property = "email", transform = "lowercase" },
  { column = "phone", property = "phone" },
  { column = "line1", property = "address" },
  { column = "city",  property = "city" },
]

[[mappings]]
connection = "stripe"
object = "customers"
table = "crm.people"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "name",  property = "name" },
  { column = "email", property = "email", transform = "lowercase" },
  { column = "phone", property = "phone" },
  { column = "line1", property = "address.line1" },
  { column = "city",  property = "address.city" },
]

[[mappings]]
connection = "stripe"
object = "invoices"
table = "billing.invoices"
delete_fuse = { enabled = false }
fields = [
  { column = "person",      property = "customer", type = "bigint", references = "stripe.customers", direction = "inbound" },
  { column = "status",      property = "status", direction = "inbound" },
  { column = "amount_paid", property = "amount_paid", type = "bigint", direction = "inbound" },
  { column = "paid_at",     property = "status_transitions.paid_at", type = "timestamptz", direction = "inbound" },
]

[[mappings]]
connection = "hubspot"
object = "deals"
table = "crm.deals"
delete_fuse = { enabled = false }
fields = [
  { column = "name",   property = "dealname" },
  { column = "stage",  property = "dealstage" },
  { column = "amount", property = "amount", type = "numeric" },
]
"#;

/// The README's recipe: the hub is where rules across apps live.
const WON_WHEN_PAID: &str = r#"
alter table crm.deals add column if not exists person bigint;

create or replace function billing.won_when_paid() returns trigger
language plpgsql as $$
begin
    if new.status = 'paid' and (tg_op = 'INSERT' or old.status is distinct from 'paid') then
        update crm.deals set stage = 'closedwon'
         where person = new.person and stage is distinct from 'closedwon';
    end if;
    return new;
end $$;

create or replace trigger won_when_paid
    after insert or update of status on billing.invoices
    for each row execute function billing.won_when_paid();
"#;

/// A HubSpot record's property.
fn property(r: &Option<Value>, name: &str) -> Option<String> {
    r.as_ref()?
        .pointer(&format!("/properties/{name}"))?
        .as_str()
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_and_hubspot_keep_billing_and_sales_in_step() {
    let ctx = StripeCtx::start(3, r#"poll_interval = "1s""#, BILLING, true, |_| {}).await;
    let hubspot = ctx.hubspot.as_ref().expect("hubspot beside");
    // the first sync: Stripe's customers are HubSpot contacts too
    let contact = |email: &str| {
        hubspot
            .records("contacts")
            .into_iter()
            .find(|c| c.properties.get("email").map(String::as_str) == Some(email))
            .map(|c| json!({"id": c.id, "properties": c.properties}))
    };
    eventually(
        "Stripe's customers in HubSpot",
        Duration::from_secs(20),
        || async { contact("customer1@example.com") },
    )
    .await;
    ctx.quiesce().await;

    // (a) accounting corrects the billing address in Stripe: the CRM's contact gets it
    let cus = ctx.customer("customer1@example.com").expect("customer1");
    let cus_id = cus["id"].as_str().unwrap().to_string();
    ctx.stripe
        .app_update_customer(
            &cus_id,
            json!({"address": {"line1": "9 Rue Neuve", "city": "Lyon"}}),
        )
        .unwrap();
    eventually(
        "Stripe's address in HubSpot",
        Duration::from_secs(20),
        || async {
            let c = contact("customer1@example.com");
            (property(&c, "address").as_deref() == Some("9 Rue Neuve")
                && property(&c, "city").as_deref() == Some("Lyon"))
            .then_some(())
        },
    )
    .await;
    // ...and sales changes the phone in HubSpot: Stripe's customer gets it
    let c = contact("customer1@example.com").unwrap();
    hubspot
        .app_update(
            "contacts",
            c["id"].as_str().unwrap(),
            props(&[("phone", "+33 4 00 00 00 01")]),
        )
        .unwrap();
    eventually(
        "HubSpot's phone in Stripe",
        Duration::from_secs(20),
        || async {
            let s = ctx.stripe.get(&cus_id)?;
            (s["phone"] == "+33 4 00 00 00 01").then_some(())
        },
    )
    .await;
    let s = ctx.stripe.get(&cus_id).unwrap();
    assert_eq!(s["address"]["city"], "Lyon", "the address stays");

    // (b) an invoice paid in Stripe moves the person's open deal to won in HubSpot
    ctx.hub
        .client()
        .await
        .unwrap()
        .batch_execute(WON_WHEN_PAID)
        .await
        .expect("the recipe's SQL");
    ctx.exec(
        "insert into crm.deals (name, stage, amount, person)
         select 'Customer 1 renewal', 'contractsent', 1200, id from crm.people
          where email = 'customer1@example.com'",
    )
    .await;
    let deal = || {
        hubspot
            .records("deals")
            .into_iter()
            .find(|d| {
                d.properties.get("dealname").map(String::as_str) == Some("Customer 1 renewal")
            })
            .map(|d| json!({"id": d.id, "properties": d.properties}))
    };
    eventually("the deal in HubSpot", Duration::from_secs(20), || async {
        deal()
    })
    .await;
    let invoice = ctx
        .stripe
        .app_create_invoice(&cus_id, json!({}))
        .expect("invoice");
    let inv_id = invoice["id"].as_str().unwrap().to_string();
    ctx.stripe
        .app_add_invoice_item(&inv_id, 120_000, "Renewal")
        .expect("invoice item");
    ctx.stripe.app_finalize_invoice(&inv_id).expect("finalized");
    ctx.stripe.app_pay_invoice(&inv_id).expect("paid");
    eventually(
        "the paid invoice in the hub",
        Duration::from_secs(20),
        || async {
            let status: Option<String> = ctx
                .opt(
                    "select i.status from billing.invoices i join crm.people p on p.id = i.person
                  where p.email = 'customer1@example.com'",
                )
                .await;
            (status.as_deref() == Some("paid")).then_some(())
        },
    )
    .await;
    eventually(
        "the deal won in HubSpot",
        Duration::from_secs(20),
        || async { (property(&deal(), "dealstage").as_deref() == Some("closedwon")).then_some(()) },
    )
    .await;
    let (paid, paid_at): (Option<i64>, Option<chrono::DateTime<chrono::Utc>>) = ctx
        .pair(
            "select i.amount_paid, i.paid_at from billing.invoices i
               join crm.people p on p.id = i.person
              where p.email = 'customer1@example.com'",
        )
        .await;
    assert_eq!(
        paid,
        Some(120_000),
        "the invoice names its person's hub row"
    );
    assert!(paid_at.is_some(), "with its paid time");
    ctx.quiesce().await;
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}
