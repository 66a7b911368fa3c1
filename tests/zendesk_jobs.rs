//! Zendesk end to end, bulk jobs: a create whose answer was lost is sent again as it is and
//! lands on the same user (creates are keyed on email: no lookup, no duplicate), and a job's
//! echo that arrives before the job is recorded is no change, and a write that changed nothing
//! does not make an unseen Zendesk edit look older than it.

mod harness;

use std::time::Duration;

use harness::zendesk::{ZendeskCtx, USERS};
use harness::{eventually, obj, Sql};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_sent_again_onto_the_same_user() {
    let ctx = ZendeskCtx::start(3, "", USERS, false, |_| {}).await;
    ctx.quiesce().await;
    // Zendesk takes the job but its answer is lost (504): the user exists, ferry does not know
    ctx.zendesk.set_faults(0.0, 0.0, 1.0);
    ctx.exec(
        "insert into support.users (name, email, phone) values ('Lost Answer', 'lost@example.com', '+15550606')",
    )
    .await;
    eventually("the lost answer", Duration::from_secs(15), || async {
        (ctx.zendesk.stats().lost_responses >= 1).then_some(())
    })
    .await;
    let made = eventually("the job ran anyway", Duration::from_secs(15), || async {
        ctx.user("lost@example.com")
    })
    .await;
    ctx.zendesk.set_faults(0.0, 0.0, 0.0);
    // the retry lands on the user the lost create made
    eventually(
        "the row linked to the user the lost create made",
        Duration::from_secs(30),
        || async {
            let id: Option<String> = ctx
                .one("select zendesk_id from support.users where email = 'lost@example.com'")
                .await;
            (id == Some(made.id.to_string())).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let same: usize = ctx
        .zendesk
        .records("users")
        .iter()
        .filter(|u| u.fields["email"] == "lost@example.com")
        .count();
    assert_eq!(same, 1, "one user, not two");
    // users' creates are keyed on email (create_or_update_many): the retry is the same create,
    // sent again as it is, with no lookup first
    let routes = ctx.zendesk.stats().by_route;
    assert!(
        !routes.contains_key("GET /api/v2/users/search"),
        "no lookup before the keyed create: {routes:?}"
    );
    assert!(
        routes
            .get("POST /api/v2/users/create_or_update_many")
            .is_some_and(|n| *n >= 2),
        "the create was sent again: {routes:?}"
    );
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}

/// A bulk job's echo can arrive before ferry has learned the job finished. Seen then, with the
/// row edited again meanwhile, it would look like Zendesk's own change against the old base:
/// a conflict that nobody made, and the newer hub value possibly lost. It waits instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_that_arrives_before_its_job_is_recorded_is_not_a_change() {
    let ctx = ZendeskCtx::start(3, "", USERS, false, |_| {}).await;
    ctx.quiesce().await;
    ctx.zendesk.set_job_delay(Duration::from_millis(600));
    let jobs = || {
        ctx.zendesk
            .stats()
            .by_route
            .get("PUT /api/v2/users/update_many")
            .copied()
            .unwrap_or(0)
    };
    const APPLIED: &str = "select count(*) from ferry.field_changes where direction = 'app_to_hub'";
    let applied_before: i64 = ctx.one(APPLIED).await;
    let before = jobs();
    ctx.exec("update support.users set phone = '+15551111' where email = 'user1@example.com'")
        .await;
    eventually("the first job queued", Duration::from_secs(10), || async {
        (jobs() > before).then_some(())
    })
    .await;
    // edited again while the first value is on its way
    ctx.exec("update support.users set phone = '+15552222' where email = 'user1@example.com'")
        .await;
    eventually(
        "the second value in Zendesk",
        Duration::from_secs(20),
        || async {
            let u = ctx.user("user1@example.com")?;
            (u.fields["phone"] == "+15552222").then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let phone: String = ctx
        .one("select phone from support.users where email = 'user1@example.com'")
        .await;
    assert_eq!(phone, "+15552222", "the hub keeps its newer value");
    let conflicts: i64 = ctx.one("select count(*) from ferry.conflicts").await;
    assert_eq!(conflicts, 0, "the echo was no conflict");
    let applied: i64 = ctx.one(APPLIED).await;
    assert_eq!(applied, applied_before, "nothing came back from Zendesk");
    ctx.stop().await;
}

/// A write that changes nothing in Zendesk (the user already had the value) leaves the user's
/// `updated_at` where it was. An edit made in Zendesk before that write, which ferry had not
/// seen yet, is still a change when ferry sees it afterwards: the write claims no version for
/// the user that would make the edit look older than what ferry has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_seen_after_a_write_that_changed_nothing_still_arrives() {
    let ctx = ZendeskCtx::start(3, "poll_interval = \"1s\"", USERS, false, |_| {}).await;
    ctx.quiesce().await;
    let id = ctx.user("user1@example.com").expect("user1").id;
    // an edit in Zendesk whose webhook is lost: ferry does not know it yet
    ctx.zendesk.set_drop_webhooks(1.0);
    ctx.zendesk
        .app_update(
            "users",
            id,
            obj(json!({"name": "Edited In Zendesk", "phone": "+15553333"})),
        )
        .expect("edit in Zendesk");
    ctx.zendesk.clock().advance(Duration::from_secs(10));
    // the hub gets the same phone: ferry's write to Zendesk changes nothing there
    ctx.exec("update support.users set phone = '+15553333' where email = 'user1@example.com'")
        .await;
    eventually("the write recorded", Duration::from_secs(20), || async {
        let n: i64 = ctx
            .one(
                "select count(*) from ferry.field_changes
                  where direction = 'hub_to_app' and field = 'phone' and new_value = '\"+15553333\"'",
            )
            .await;
        (n > 0).then_some(())
    })
    .await;
    // the export shows the edit once its minute has passed
    ctx.zendesk.set_drop_webhooks(0.0);
    ctx.zendesk.clock().advance(Duration::from_secs(61));
    eventually(
        "Zendesk's edit in the hub",
        Duration::from_secs(30),
        || async {
            let name: String = ctx
                .one("select name from support.users where email = 'user1@example.com'")
                .await;
            (name == "Edited In Zendesk").then_some(())
        },
    )
    .await;
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}
