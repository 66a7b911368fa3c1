//! Three-party convergence, CRM and billing: `crm.people` mapped to Salesforce Contacts
//! (polled: Salesforce sends no webhooks) and Stripe customers (signed webhooks and the events
//! feed), with a real `ferry run` process killed (SIGKILL) at random points and restarted while
//! psql, the Salesforce simulator and the Stripe simulator edit at the same time. The run and
//! its checks are `harness/parties/convergence.rs`'s: the three end equal, conflicts are real
//! ones, every value is one somebody wrote, no dead letters, and echo counts are exact. And a
//! Salesforce connection out of its daily allocation holding up no other app.

mod harness;

use std::time::Duration;

use ferry::sim::salesforce::{SalesforceSim, SimConfig as SalesforceConfig};
use ferry::sim::stripe::{SimConfig as StripeConfig, StripeSim};
use harness::eventually;
use harness::parties::apps::{SalesforceParty, StripeParty};
use harness::parties::convergence::{converge, first_sync};
use harness::parties::World;
use harness::Sql;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_salesforce_and_stripe_converge_through_sigkills() {
    let w = World::start(SalesforceParty::start().await, StripeParty::start().await).await;
    converge(w, ["sf", "st"]).await;
}

/// A Salesforce connection whose daily allocation is spent (paused for 15 minutes after
/// `REQUEST_LIMIT_EXCEEDED`) delays no other app: with Stripe's webhooks dropped, its events
/// poll — in its own loop — still brings a Stripe edit to the hub within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_connection_out_of_allocation_delays_no_other_app() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let sf = SalesforceSim::start(SalesforceConfig::default(), addr)
        .await
        .expect("salesforce simulator starts");
    let st = StripeSim::start(StripeConfig::default(), addr)
        .await
        .expect("stripe simulator starts");
    let w = World::start(
        Box::new(SalesforceParty(sf.clone())),
        Box::new(StripeParty(st.clone())),
    )
    .await;
    let ferry = w.spawn();
    first_sync(&w).await;

    sf.spend_api_usage(sf.stats().api_limit);
    eventually(
        "the Salesforce pause in ferry.status",
        Duration::from_secs(15),
        || async {
            let e: Option<String> = w
                .one("select poll_error from ferry.status where connection = 'salesforce'")
                .await;
            e.filter(|e| e.contains("daily"))
        },
    )
    .await;
    st.set_drop_webhooks(1.0);
    let people = w.hub_people().await;
    let (email, (_, _, cus)) = people
        .iter()
        .find(|(_, p)| p.2.is_some())
        .expect("a person in Stripe");
    w.apps[1].update(cus.as_deref().unwrap(), "phone", "+1 999 0001");
    eventually(
        "the Stripe edit in the hub",
        Duration::from_secs(15),
        || async {
            let hub = w.hub_people().await;
            (hub.get(email)?.0 .1.as_deref() == Some("+1 999 0001")).then_some(())
        },
    )
    .await;
    let still: Option<String> = w
        .one("select poll_error from ferry.status where connection = 'salesforce'")
        .await;
    assert!(still.is_some(), "Salesforce still paused meanwhile");
    drop(ferry);
    w.shutdown();
}
