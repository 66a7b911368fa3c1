//! Salesforce end to end: the engine between a real hub and the Salesforce simulator, polling
//! only (Salesforce sends no webhooks). `crm.contacts` mapped to Contacts (email as the match
//! key): backfill, a hub edit sent through sObject Collections, a hub insert created, a
//! Salesforce edit reaching the hub through the SystemModstamp poll, and a Salesforce
//! deletion reaching it through getDeleted.

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
