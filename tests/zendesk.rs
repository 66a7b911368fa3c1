//! Zendesk end to end: the engine between a real hub and the Zendesk simulator. `support.users`
//! mapped to Zendesk users (name, email as the match key, phone, role read-only, tags as
//! `text[]`, plan from `user_fields.plan`): backfill with typed values, a hub edit sent as its
//! changed path only, a Zendesk edit and deletion by webhook, a hub insert created through
//! `create_or_update_many`, a lost webhook caught by the export poll once Zendesk's last minute
//! has passed. Then HubSpot and Zendesk on one table: a Zendesk edit reaches HubSpot once; and
//! reference fields. (Bulk jobs' own cases: tests/zendesk_jobs.rs.)

mod harness;

use std::time::Duration;

use ferry::sim::zendesk::SimRecord;
use harness::zendesk::{user_id, ZendeskCtx, USERS};
use harness::{eventually, obj, Sql};
use serde_json::{json, Map};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sync_both_ways() {
    let ctx = ZendeskCtx::start(10, "", USERS, false, |sim| {
        let u1 = user_id(sim, "user1@example.com");
        sim.app_update(
            "users",
            u1,
            obj(json!({"tags": ["vip", "beta"], "user_fields": {"plan": "gold"}})),
        )
        .unwrap();
        let u2 = user_id(sim, "user2@example.com");
        sim.app_update(
            "users",
            u2,
            obj(json!({"user_fields": {"plan": "silver", "seats": 5}})),
        )
        .unwrap();
    })
    .await;

    // backfill: every user (the account owner too), with typed values
    let rows: i64 = ctx.one("select count(*) from support.users").await;
    assert_eq!(rows, 11);
    let (tags, plan, role): (Vec<String>, String, String) = {
        let c = ctx.hub.client().await.unwrap();
        let r = c
            .query_one(
                "select tags, plan, role from support.users where email = 'user1@example.com'",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(
        (tags, plan.as_str(), role.as_str()),
        (
            vec!["vip".to_string(), "beta".to_string()],
            "gold",
            "end-user"
        )
    );
    let owner: String = ctx
        .one("select role from support.users where email = 'agent@example.com'")
        .await;
    assert_eq!(owner, "admin");
    ctx.quiesce().await;

    // a hub edit reaches Zendesk as its changed path only: the user's other custom field stays
    let written = ctx.zendesk.stats().records_written;
    ctx.exec("update support.users set plan = 'platinum' where email = 'user2@example.com'")
        .await;
    eventually(
        "the hub's edit in Zendesk",
        Duration::from_secs(15),
        || async {
            let u = ctx.user("user2@example.com")?;
            (u.fields["user_fields"] == json!({"plan": "platinum", "seats": 5})).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(
        ctx.zendesk.stats().records_written - written,
        1,
        "one write"
    );
    let plan: String = ctx
        .one("select plan from support.users where email = 'user2@example.com'")
        .await;
    assert_eq!(plan, "platinum", "its own echo changed nothing");
    let sent: String = ctx
        .one(&format!(
            "select string_agg(field, ',') from ferry.field_changes
              where direction = 'hub_to_app' and remote_id = '{}'",
            user_id(&ctx.zendesk, "user2@example.com")
        ))
        .await;
    assert_eq!(sent, "plan", "only the changed field was sent");

    // an edit inside Zendesk reaches the hub by webhook
    let u3 = user_id(&ctx.zendesk, "user3@example.com");
    ctx.zendesk
        .app_update(
            "users",
            u3,
            obj(json!({"phone": "+15550303", "tags": ["new"]})),
        )
        .unwrap();
    eventually(
        "Zendesk's edit in the hub",
        Duration::from_secs(15),
        || async {
            let phone: Option<String> = ctx
                .opt("select phone from support.users where email = 'user3@example.com'")
                .await?;
            let tags: Vec<String> = ctx
                .one("select tags from support.users where email = 'user3@example.com'")
                .await;
            (phone.as_deref() == Some("+15550303") && tags == ["new"]).then_some(())
        },
    )
    .await;

    // a hub insert is created in Zendesk, through create_or_update_many
    ctx.exec(
        "insert into support.users (name, email, phone, tags, plan)
         values ('Hub Person', 'hub.person@example.com', '+15550404', '{trial,web}', 'trial')",
    )
    .await;
    let created = eventually(
        "the hub's insert in Zendesk",
        Duration::from_secs(15),
        || async { ctx.user("hub.person@example.com") },
    )
    .await;
    assert_eq!(created.fields["name"], "Hub Person");
    assert_eq!(created.fields["tags"], json!(["trial", "web"]));
    assert_eq!(created.fields["user_fields"], json!({"plan": "trial"}));
    assert!(ctx
        .zendesk
        .stats()
        .by_route
        .contains_key("POST /api/v2/users/create_or_update_many"));
    eventually("the new row linked, its role read back", Duration::from_secs(15), || async {
        let (id, role): (Option<String>, Option<String>) = {
            let c = ctx.hub.client().await.unwrap();
            let r = c
                .query_one(
                    "select zendesk_id, role from support.users where email = 'hub.person@example.com'",
                    &[],
                )
                .await
                .unwrap();
            (r.get(0), r.get(1))
        };
        (id == Some(created.id.to_string()) && role.as_deref() == Some("end-user")).then_some(())
    })
    .await;

    // a deletion in Zendesk deletes the hub row
    let u4 = user_id(&ctx.zendesk, "user4@example.com");
    ctx.zendesk.app_delete("users", u4).unwrap();
    eventually(
        "Zendesk's deletion in the hub",
        Duration::from_secs(15),
        || async {
            let left: i64 = ctx
                .one("select count(*) from support.users where email = 'user4@example.com'")
                .await;
            (left == 0).then_some(())
        },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(
        ctx.zendesk.records("users").len(),
        11,
        "10 seeded + owner + 1 - 1"
    );
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_webhook_is_caught_by_the_export_poll() {
    let ctx = ZendeskCtx::start(5, r#"poll_interval = "1s""#, USERS, false, |_| {}).await;
    ctx.quiesce().await;
    ctx.zendesk.set_drop_webhooks(1.0);
    let u5 = user_id(&ctx.zendesk, "user5@example.com");
    ctx.zendesk
        .app_update("users", u5, obj(json!({"phone": "+15550505"})))
        .unwrap();
    let gone = user_id(&ctx.zendesk, "user2@example.com");
    ctx.zendesk.app_delete("users", gone).unwrap();
    let started = std::time::Instant::now();
    // the export leaves out the last minute: polls that ran after the edit bring nothing yet
    let edited: String = ctx.one("select now()::text").await;
    eventually("a poll after the edit", Duration::from_secs(10), || async {
        let polled: bool = ctx
            .one(&format!(
                "select coalesce(bool_and(p.polled_at > '{edited}'::timestamptz + interval '1100 ms'), false)
                   from ferry.mapping_progress p join ferry.mappings m on m.id = p.mapping_id
                  where m.name = 'zendesk.users'"
            ))
            .await;
        polled.then_some(())
    })
    .await;
    let phone: Option<String> = ctx
        .one("select phone from support.users where email = 'user5@example.com'")
        .await;
    assert_ne!(
        phone.as_deref(),
        Some("+15550505"),
        "not before the minute has passed"
    );
    assert!(ctx.zendesk.stats().webhooks_dropped >= 2);
    // a minute later (on Zendesk's clock) the poll brings the edit and the deletion
    ctx.zendesk.clock().advance(Duration::from_secs(61));
    eventually(
        "the poll's catch in the hub",
        Duration::from_secs(30),
        || async {
            let phone: Option<String> = ctx
                .one("select phone from support.users where email = 'user5@example.com'")
                .await;
            let left: i64 = ctx
                .one("select count(*) from support.users where email = 'user2@example.com'")
                .await;
            (phone.as_deref() == Some("+15550505") && left == 0).then_some(())
        },
    )
    .await;
    println!(
        "a lost webhook's change reached the hub {:.1}s after the edit (3 s of it before the minute passed)",
        started.elapsed().as_secs_f64()
    );
    ctx.stop().await;
}

const PEOPLE: &str = r#"
[[mappings]]
connection = "hubspot"
object = "contacts"
table = "crm.people"
match_key = "email"
fields = [
  { column = "email", property = "email", transform = "lowercase" },
  { column = "name",  property = "firstname" },
  { column = "phone", property = "phone" },
]

[[mappings]]
connection = "zendesk"
object = "users"
table = "crm.people"
match_key = "email"
fields = [
  { column = "email", property = "email", transform = "lowercase" },
  { column = "name",  property = "name" },
  { column = "phone", property = "phone" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_and_zendesk_on_one_table() {
    let ctx = ZendeskCtx::start(5, "", PEOPLE, true, |_| {}).await;
    let hubspot = ctx.hubspot.as_ref().unwrap();
    // Zendesk's users (the owner too) reach HubSpot as contacts, one row per person
    eventually("every person in both apps", Duration::from_secs(20), || async {
        let linked: i64 = ctx
            .one("select count(*) from crm.people where hubspot_id is not null and zendesk_id is not null")
            .await;
        (linked == 6).then_some(())
    })
    .await;
    ctx.quiesce().await;
    assert_eq!(hubspot.records("contacts").len(), 6);

    // a phone changed in Zendesk reaches HubSpot with one write, and nothing goes back
    let (h_written, z_written) = (
        hubspot.stats().records_written,
        ctx.zendesk.stats().records_written,
    );
    let u2 = user_id(&ctx.zendesk, "user2@example.com");
    ctx.zendesk
        .app_update("users", u2, obj(json!({"phone": "+15550202"})))
        .unwrap();
    eventually(
        "Zendesk's edit in HubSpot",
        Duration::from_secs(15),
        || async {
            hubspot
                .records("contacts")
                .into_iter()
                .find(|c| {
                    c.properties.get("email").map(String::as_str) == Some("user2@example.com")
                })
                .filter(|c| c.properties.get("phone").map(String::as_str) == Some("+15550202"))
                .map(|_| ())
        },
    )
    .await;
    ctx.quiesce().await;
    assert_eq!(
        hubspot.stats().records_written - h_written,
        1,
        "one write to HubSpot"
    );
    assert_eq!(
        ctx.zendesk.stats().records_written - z_written,
        0,
        "no echo to Zendesk"
    );
    let phone: String = ctx
        .one("select phone from crm.people where email = 'user2@example.com'")
        .await;
    assert_eq!(phone, "+15550202");
    ctx.stop().await;
}

/// Users listed before the organizations they reference: the backfill takes the organizations
/// first all the same.
const PEOPLE_AND_ORGS: &str = r#"
[[mappings]]
connection = "zendesk"
object = "users"
table = "support.people"
match_key = "email"
delete_fuse = { enabled = false }
fields = [
  { column = "name",  property = "name" },
  { column = "email", property = "email", transform = "lowercase" },
  { column = "org",   property = "organization_id", type = "bigint", references = "zendesk.organizations" },
]

[[mappings]]
connection = "zendesk"
object = "organizations"
table = "support.orgs"
match_key = "name"
delete_fuse = { enabled = false }
fields = [
  { column = "name", property = "name" },
]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_fields_translate_ids_and_a_create_waits_for_what_it_references() {
    let ctx = ZendeskCtx::start(4, "", PEOPLE_AND_ORGS, false, |sim| {
        let org = |name: &str| {
            let mut f = Map::new();
            f.insert("name".into(), json!(name));
            sim.app_create("organizations", f).unwrap()
        };
        let orgs = [org("Acme"), org("Globex")];
        let users: Vec<SimRecord> = sim
            .records("users")
            .into_iter()
            .filter(|u| u.fields["role"] == "end-user")
            .collect();
        for (i, u) in users.iter().enumerate() {
            let mut f = Map::new();
            f.insert("organization_id".into(), json!(orgs[i % 2]));
            sim.app_update("users", u.id, f).unwrap();
        }
    })
    .await;
    ctx.quiesce().await;
    // every user's org is the hub row of the organization Zendesk names
    let members: Vec<SimRecord> = ctx
        .zendesk
        .records("users")
        .into_iter()
        .filter(|u| u.fields["organization_id"].is_u64())
        .collect();
    assert_eq!(members.len(), 4);
    for u in &members {
        let email = u.fields["email"].as_str().unwrap();
        let org: Option<String> = ctx
            .opt(&format!(
                "select o.zendesk_id from support.people p join support.orgs o on o.id = p.org
                  where p.email = '{email}'"
            ))
            .await;
        assert_eq!(
            org,
            Some(u.fields["organization_id"].to_string()),
            "{email}"
        );
    }
    let letters: i64 = ctx.one("select count(*) from ferry.dead_letters").await;
    assert_eq!(letters, 0, "no reference left unresolved at first sync");

    // a new organization and a member of it, made together in the hub while organizations are
    // paused: the member's create waits for the organization's, then names its Zendesk id
    ctx.exec("select ferry.pause('zendesk.organizations')")
        .await;
    ctx.exec(
        "with o as (insert into support.orgs (name) values ('Initech') returning id)
         insert into support.people (name, email, org) select 'Peter', 'peter@initech.example', id from o",
    )
    .await;
    eventually(
        "Peter's write tried and held",
        Duration::from_secs(10),
        || async {
            let tried: i64 = ctx
            .one(
                "select count(*) from ferry.outbox o join ferry.mappings m on m.id = o.mapping_id
                  where m.name = 'zendesk.users' and o.next_attempt_at > now()",
            )
            .await;
            (tried == 1).then_some(())
        },
    )
    .await;
    assert!(
        ctx.user("peter@initech.example").is_none(),
        "no dangling member"
    );
    // ferry.pending says why: Initech has no Zendesk id yet
    let (sends, state): (Option<String>, String) = ctx
        .pair("select sends, state from ferry.pending where mapping = 'zendesk.users' and field = 'org'")
        .await;
    assert_eq!(sends, None, "nothing to name yet");
    assert!(
        state.starts_with("waiting for the referenced row"),
        "{state}"
    );
    ctx.exec("select ferry.resume('zendesk.organizations')")
        .await;
    let peter = eventually(
        "Peter in Zendesk, in Initech",
        Duration::from_secs(15),
        || async {
            let initech = ctx
                .zendesk
                .records("organizations")
                .into_iter()
                .find(|o| o.fields["name"] == "Initech")?;
            let peter = ctx.user("peter@initech.example")?;
            (peter.fields["organization_id"] == json!(initech.id)).then_some(peter)
        },
    )
    .await;

    // moved to another organization inside Zendesk: the hub's reference follows
    let acme: String = ctx
        .one("select zendesk_id from support.orgs where name = 'Acme'")
        .await;
    let mut f = Map::new();
    f.insert(
        "organization_id".into(),
        json!(acme.parse::<u64>().unwrap()),
    );
    ctx.zendesk.app_update("users", peter.id, f).unwrap();
    eventually(
        "Peter in Acme in the hub",
        Duration::from_secs(10),
        || async {
            let org: Option<String> = ctx
                .opt(
                    "select o.name from support.people p join support.orgs o on o.id = p.org
                  where p.email = 'peter@initech.example'",
                )
                .await;
            (org.as_deref() == Some("Acme")).then_some(())
        },
    )
    .await;

    // a queued move back to Initech shows in ferry.pending as Zendesk's id of Initech
    ctx.exec("select ferry.pause('zendesk.users')").await;
    ctx.exec(
        "update support.people set org = (select id from support.orgs where name = 'Initech')
          where email = 'peter@initech.example'",
    )
    .await;
    let initech: String = ctx
        .one("select zendesk_id from support.orgs where name = 'Initech'")
        .await;
    let sends = eventually(
        "the move in ferry.pending",
        Duration::from_secs(10),
        || async {
            ctx.opt::<Option<String>>(
                "select sends from ferry.pending where mapping = 'zendesk.users' and field = 'org'",
            )
            .await
        },
    )
    .await;
    assert_eq!(
        sends,
        Some(initech),
        "the app's id of the referenced record"
    );
    ctx.stop().await;
}

/// A user whose change reaches the hub before its organization's (two webhooks in the other
/// order): the reference is an open dead letter at first; once the organization is applied,
/// ferry reads the user again by itself, the reference resolves and the letter closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_that_arrives_late_resolves_by_itself() {
    let ctx = ZendeskCtx::start(1, "", PEOPLE_AND_ORGS, false, |_| {}).await;
    ctx.quiesce().await;
    // nothing reaches ferry by itself: the two changes are applied below, in the wrong order
    ctx.zendesk.set_drop_webhooks(1.0);
    let mut f = Map::new();
    f.insert("name".into(), json!("Late Inc"));
    let org = ctx.zendesk.app_create("organizations", f).unwrap();
    let mut f = Map::new();
    f.insert("name".into(), json!("Early"));
    f.insert("email".into(), json!("early@late.example"));
    f.insert("organization_id".into(), json!(org));
    let user = ctx.zendesk.app_create("users", f).unwrap();
    let apply = |mapping: &'static str, records: serde_json::Value| {
        let hub = ctx.hub.clone();
        async move {
            let c = hub.client().await.unwrap();
            let id: i32 = c
                .query_one("select id from ferry.mappings where name = $1", &[&mapping])
                .await
                .unwrap()
                .get(0);
            c.query_one("select ferry.apply($1, $2, false)", &[&id, &records])
                .await
                .unwrap()
                .get::<_, serde_json::Value>(0)
        }
    };
    // each as Zendesk has it, with its own time
    let at =
        |object: &str, id: u64| ctx.zendesk.get(object, id).unwrap().fields["updated_at"].clone();
    let early = apply(
        "zendesk.users",
        json!([{"id": user.to_string(), "updated_at": at("users", user),
                "values": {"name": "Early", "email": "early@late.example", "org": org.to_string()}}]),
    )
    .await;
    assert_eq!(early["inserted"], 1, "{early}");
    let letter: String = ctx
        .one("select error from ferry.dead_letters where resolved_at is null")
        .await;
    assert!(letter.contains("which the hub does not have"), "{letter}");
    let org_row = apply(
        "zendesk.organizations",
        json!([{"id": org.to_string(), "updated_at": at("organizations", org), "values": {"name": "Late Inc"}}]),
    )
    .await;
    assert_eq!(org_row["inserted"], 1, "{org_row}");
    eventually(
        "the user's organization resolved",
        Duration::from_secs(15),
        || async {
            let org: Option<String> = ctx
                .opt(
                    "select o.zendesk_id from support.people p join support.orgs o on o.id = p.org
                      where p.email = 'early@late.example'",
                )
                .await;
            org
        },
    )
    .await;
    let open: i64 = ctx
        .one("select count(*) from ferry.dead_letters where resolved_at is null")
        .await;
    assert_eq!(open, 0, "the letter closed by itself");
    ctx.stop().await;
}
