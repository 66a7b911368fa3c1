//! Three-party convergence, CRM and billing: `crm.people` mapped to Salesforce Contacts
//! (polled: Salesforce sends no webhooks) and Stripe customers (signed webhooks and the events
//! feed), with a real `ferry run` process killed (SIGKILL) at random points and restarted while
//! psql, the Salesforce simulator and the Stripe simulator edit at the same time. The run and
//! its checks are `harness/parties/convergence.rs`'s: the three end equal, conflicts are real
//! ones, every value is one somebody wrote, no dead letters, and echo counts are exact.

mod harness;

use harness::parties::apps::{SalesforceParty, StripeParty};
use harness::parties::convergence::converge;
use harness::parties::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_salesforce_and_stripe_converge_through_sigkills() {
    let w = World::start(SalesforceParty::start().await, StripeParty::start().await).await;
    converge(w, ["sf", "st"]).await;
}
