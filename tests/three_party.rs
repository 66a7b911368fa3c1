//! Three-party convergence, CRM and support: `crm.people` mapped to HubSpot contacts and
//! Zendesk users, with a real `ferry run` process killed (SIGKILL) at random points and
//! restarted while psql, the HubSpot simulator and the Zendesk simulator edit at the same time
//! — same and different fields, inserts and deletes, on both apps' own edit paths. Some people
//! exist in both apps before the first sync (matched on email). The run and its checks are
//! `harness/parties/convergence.rs`'s: the three end equal, conflicts are real ones, every
//! value is one somebody wrote, no dead letters, and echo counts are exact.

mod harness;

use harness::parties::apps::{HubSpotParty, ZendeskParty};
use harness::parties::convergence::converge;
use harness::parties::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_hubspot_and_zendesk_converge_through_sigkills() {
    let w = World::start(HubSpotParty::start().await, ZendeskParty::start().await).await;
    converge(w, ["hs", "zd"]).await;
}
