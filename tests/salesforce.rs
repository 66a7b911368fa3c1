//! Salesforce end to end: the engine between a real hub and the Salesforce simulator, polling
//! only (Salesforce sends no webhooks). `crm.contacts` mapped to Contacts (email as the match
//! key): backfill, a hub edit sent through sObject Collections, a hub insert created, a
//! Salesforce edit reaching the hub through the SystemModstamp poll, and a Salesforce
//! deletion reaching it through getDeleted; a token revoked mid-run, and the daily allocation
//! spent by the org's other integrations; a create whose answer was lost (keyed and by email).

mod harness;

use std::time::Duration;

use harness::salesforce::SalesforceCtx;
use harness::{eventually, obj, Sql};
use serde_json::json;

const CONTACTS: &str = r#"
[[mappings]]
connection = "salesforce"
object = "Contact"
table = "crm.contacts"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "last_name",  property = "LastName" },
  { column = "first_name", property = "FirstName" },
  { column = "email",      property = "Email" },
  { column = "phone",      property = "Phone" },
  { column = "full_name",  property = "Name", direction = "inbound" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_sync_both_ways() {
    let ctx = SalesforceCtx::start(5, r#"poll_interval = "1s""#, CONTACTS).await;

    // backfill: every Contact, with Salesforce's computed full name
    let rows: i64 = ctx.one("select count(*) from crm.contacts").await;
    assert_eq!(rows, 5);
    let full: String = ctx
        .one("select full_name from crm.contacts where email = 'contact2@example.com'")
        .await;
    assert_eq!(full, "First2 Contact2");
    ctx.quiesce().await;

    // a hub edit reaches Salesforce through one Collections update
    let before = ctx.salesforce.stats().route("PATCH /composite/sobjects");
    ctx.exec("update crm.contacts set phone = '+1 555 9999' where email = 'contact2@example.com'")
        .await;
    eventually(
        "the hub's edit in Salesforce",
        Duration::from_secs(15),
        || async {
            let c = ctx.contact("contact2@example.com")?;
            (c.fields["Phone"] == "+1 555 9999").then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(
        ctx.salesforce.stats().route("PATCH /composite/sobjects") - before,
        1
    );

    // a hub insert is created in Salesforce, and its id written back
    ctx.exec("insert into crm.contacts (last_name, email) values ('Newman', 'new@example.com')")
        .await;
    let made = eventually(
        "the hub's insert in Salesforce",
        Duration::from_secs(15),
        || async { ctx.contact("new@example.com") },
    )
    .await;
    assert_eq!(made.fields["LastName"], "Newman");
    eventually("the new id in the hub", Duration::from_secs(15), || async {
        let id: Option<String> = ctx
            .one("select salesforce_id from crm.contacts where email = 'new@example.com'")
            .await;
        (id.as_deref() == Some(made.id.as_str())).then_some(())
    })
    .await;

    // an edit inside Salesforce reaches the hub through the poll
    let c3 = ctx.contact("contact3@example.com").unwrap();
    ctx.salesforce
        .app_update("Contact", &c3.id, obj(json!({"LastName": "Changed"})))
        .unwrap();
    eventually("Salesforce's edit in the hub", Duration::from_secs(15), || async {
        let (last, full): (String, String) = {
            let c = ctx.hub.client().await.unwrap();
            let r = c
                .query_one(
                    "select last_name, full_name from crm.contacts where email = 'contact3@example.com'",
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        (last == "Changed" && full == "First3 Changed").then_some(())
    })
    .await;

    // a deletion inside Salesforce reaches the hub through getDeleted once its minute is over
    let c4 = ctx.contact("contact4@example.com").unwrap();
    ctx.salesforce.app_delete("Contact", &c4.id).unwrap();
    ctx.salesforce.clock().advance(Duration::from_secs(61));
    eventually(
        "Salesforce's deletion in the hub",
        Duration::from_secs(15),
        || async {
            let n: i64 = ctx
                .one("select count(*) from crm.contacts where email = 'contact4@example.com'")
                .await;
            (n == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    let rows: i64 = ctx.one("select count(*) from crm.contacts").await;
    assert_eq!(rows, 5, "five seeds, one new, one deleted");
    assert_eq!(ctx.salesforce.records("Contact").len(), 5);
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}

/// Salesforce revokes ferry's access token while it runs (a session timeout, an admin's
/// "revoke"): the next call is a 401 `INVALID_SESSION_ID`; ferry signs in again with the
/// refresh token and repeats the call, so a hub edit and a Salesforce edit each arrive once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_mid_run_loses_and_repeats_nothing() {
    let ctx = SalesforceCtx::start(3, r#"poll_interval = "1s""#, CONTACTS).await;
    ctx.quiesce().await;
    let before = ctx.salesforce.stats();
    ctx.salesforce.expire_sessions();
    ctx.exec("update crm.contacts set phone = '+1 555 0101' where email = 'contact1@example.com'")
        .await;
    let c2 = ctx.contact("contact2@example.com").unwrap();
    ctx.salesforce
        .app_update("Contact", &c2.id, obj(json!({"LastName": "Renamed"})))
        .unwrap();
    eventually("both edits across", Duration::from_secs(20), || async {
        let sf = ctx.contact("contact1@example.com")?;
        let last: String = ctx
            .one("select last_name from crm.contacts where email = 'contact2@example.com'")
            .await;
        (sf.fields["Phone"] == "+1 555 0101" && last == "Renamed").then_some(())
    })
    .await;
    ctx.quiesce().await;
    let after = ctx.salesforce.stats();
    assert!(
        after.unauthorized > before.unauthorized,
        "a call met the revoked token"
    );
    assert!(
        after.route("POST /services/oauth2/token") > before.route("POST /services/oauth2/token"),
        "signed in again"
    );
    assert_eq!(
        after.records_written - before.records_written,
        1,
        "the hub's edit written once"
    );
    let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(dead, 0);
    ctx.stop().await;
}

/// The org's other integrations spend the daily API allocation: Salesforce answers 403
/// `REQUEST_LIMIT_EXCEEDED`; ferry pauses the connection (no call sent while paused), says so
/// in `ferry.status`, and keeps the hub's edits queued. Once the allocation is back (a restart
/// here, as the pause is 15 minutes), the edit is written once and the status clears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_allocation_pauses_the_connection_and_says_so() {
    let mut ctx = SalesforceCtx::start(3, r#"poll_interval = "500ms""#, CONTACTS).await;
    ctx.quiesce().await;
    let limit = ctx.salesforce.stats().api_limit;
    ctx.salesforce.spend_api_usage(limit);
    let why = eventually(
        "the pause in ferry.status",
        Duration::from_secs(15),
        || async {
            let e: Option<String> = ctx
                .one("select poll_error from ferry.status where mapping = 'salesforce.Contact'")
                .await;
            e
        },
    )
    .await;
    assert!(why.contains("rate limited (daily"), "{why}");
    ctx.exec("update crm.contacts set phone = '+1 555 0202' where email = 'contact1@example.com'")
        .await;
    // paused: nothing is sent, the edit waits in the outbox
    let refused = ctx.salesforce.stats().limit_exceeded;
    let requests = ctx.salesforce.stats().requests;
    assert!(refused >= 1);

    // the write waits out the pause in the outbox, says why, and spends no retry budget
    let (error, wait, attempts): (String, f64, i32) = eventually(
        "the write put off",
        Duration::from_secs(10),
        || async {
            let c = ctx.hub.client().await.unwrap();
            // the mark may not be queued yet
            let r = c
                .query_opt(
                    "select last_error, extract(epoch from next_attempt_at - now())::float8, attempts from ferry.outbox",
                    &[],
                )
                .await
                .unwrap()?;
            let e: Option<String> = r.get(0);
            e.map(|e| (e, r.get(1), r.get(2)))
        },
    )
    .await;
    assert!(error.contains("rate limited (daily"), "{error}");
    assert!(
        wait > 600.0,
        "retried after the pause, not before: {wait} s"
    );
    assert_eq!(attempts, 0, "a throttle is no failed attempt");
    assert_eq!(
        ctx.salesforce.stats().requests,
        requests,
        "no call while paused"
    );

    // the allocation is back and the pause over (a restart forgets the in-memory pause; the
    // outbox's retry time is moved to now as if its 15 minutes had passed)
    ctx.salesforce.reset_api_usage();
    let written = ctx.salesforce.stats().records_written;
    ctx.restart().await;
    ctx.exec("update ferry.outbox set next_attempt_at = now()")
        .await;
    eventually(
        "the queued edit in Salesforce",
        Duration::from_secs(20),
        || async {
            let c = ctx.contact("contact1@example.com")?;
            (c.fields["Phone"] == "+1 555 0202").then_some(())
        },
    )
    .await;
    eventually("the status clear", Duration::from_secs(15), || async {
        let e: Option<String> = ctx
            .one("select poll_error from ferry.status where mapping = 'salesforce.Contact'")
            .await;
        e.is_none().then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(ctx.salesforce.stats().records_written - written, 1);
    ctx.stop().await;
}

/// Creates keyed on an external id: `ext_id` is the match key and Salesforce's `Ext_Id__c`.
const KEYED: &str = r#"
[[mappings]]
connection = "salesforce"
object = "Contact"
table = "crm.keyed"
match_key = "ext_id"
delete_fuse = { enabled = false }
fields = [
  { column = "ext_id",    property = "Ext_Id__c" },
  { column = "last_name", property = "LastName" },
  { column = "email",     property = "Email" },
]
"#;

/// A create Salesforce carried out whose answer never came back (the same as ferry dying
/// between the call and its commit): keyed on the external id, the create is repeated as an
/// upsert and lands on the record the first one made; matched on email, the record is looked
/// up and adopted. Either way one Contact, linked to the hub row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_makes_one_contact() {
    for (mapping, insert, upsert_route) in [
        (
            KEYED,
            "insert into crm.keyed (ext_id, last_name, email) values ('hub-1', 'Keyed', 'k@example.com')",
            Some("PATCH /composite/sobjects/Contact/Ext_Id__c"),
        ),
        (
            CONTACTS,
            "insert into crm.contacts (last_name, email) values ('Plain', 'k@example.com')",
            None,
        ),
    ] {
        let ctx = SalesforceCtx::start(0, r#"poll_interval = "1s""#, mapping).await;
        ctx.quiesce().await;
        let table = if upsert_route.is_some() {
            "crm.keyed"
        } else {
            "crm.contacts"
        };
        ctx.salesforce.set_faults(0.0, 0.0, 1.0);
        ctx.exec(insert).await;
        let made = eventually("the create in Salesforce", Duration::from_secs(15), || async {
            ctx.contact("k@example.com")
        })
        .await;
        // its answer is lost, and so is that of the next call (a keyed create sent again, or a
        // lookup by email)
        eventually("a second answer lost", Duration::from_secs(15), || async {
            (ctx.salesforce.stats().lost_responses >= 2).then_some(())
        })
        .await;
        ctx.salesforce.set_faults(0.0, 0.0, 0.0);
        eventually("the hub row linked", Duration::from_secs(30), || async {
            let id: Option<String> = ctx
                .one(&format!("select salesforce_id from {table}"))
                .await;
            (id.as_deref() == Some(made.id.as_str())).then_some(())
        })
        .await;
        ctx.quiesce().await;
        let contacts = ctx.salesforce.records("Contact");
        assert_eq!(contacts.len(), 1, "{table}: one Contact: {contacts:?}");
        if let Some(route) = upsert_route {
            assert!(
                ctx.salesforce.stats().route(route) >= 2,
                "the create repeated as an upsert"
            );
        }
        let dead: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
        assert_eq!(dead, 0);
        ctx.stop().await;
    }
}
