//! N-way sync through one hub table: `crm.people` mapped to two apps at once (two HubSpot
//! portals here, each its own simulator). First sync matches both apps' records on email into
//! one row each; an edit in one app reaches the hub and the other app exactly once and never
//! goes back to its origin; a hub edit reaches both.

mod harness;

use std::time::Duration;

use ferry::config::Config;
use ferry::hub::Hub;
use harness::portals::{mapping, set, Two};
use harness::{eventually, Sql};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_table_keeps_two_apps_identical_without_echoes() {
    let two = Two::start(20, 10).await;
    // first sync: one row per email, linked to both apps; B gets the 10 contacts it lacked
    let rows: i64 = two.one("select count(*) from crm.people").await;
    assert_eq!(rows, 20, "one row per person, not one per app record");
    eventually("every row linked to both apps", Duration::from_secs(20), || async {
        let linked: i64 = two
            .one("select count(*) from crm.people where app_a_id is not null and app_b_id is not null")
            .await;
        (linked == 20).then_some(())
    })
    .await;
    assert_eq!(
        two.b.records("contacts").len(),
        20,
        "B got the 10 it lacked, once each"
    );
    assert_eq!(two.a.records("contacts").len(), 20, "A got nothing new");

    // an edit in A reaches the hub and B once, and nothing goes back to A
    let (a_writes, b_writes) = (two.a.stats().records_written, two.b.stats().records_written);
    let id_a: String = two
        .one("select app_a_id from crm.people where email = 'contact3@example.com'")
        .await;
    let mut props = serde_json::Map::new();
    props.insert("phone".into(), "+15550303".into());
    two.a.app_update("contacts", &id_a, props).unwrap();
    eventually("A's edit in B", Duration::from_secs(10), || async {
        (Two::prop(&two.b, "contact3@example.com", "phone").as_deref() == Some("+15550303"))
            .then_some(())
    })
    .await;
    let phone: String = two
        .one("select phone from crm.people where email = 'contact3@example.com'")
        .await;
    assert_eq!(phone, "+15550303");
    // settle, then count: exactly one record written to B, none to A
    two.quiesce().await;
    assert_eq!(
        two.b.stats().records_written - b_writes,
        1,
        "one write to B"
    );
    assert_eq!(two.a.stats().records_written - a_writes, 0, "no echo to A");

    // a hub edit reaches both
    two.exec("update crm.people set lastname = 'Hub' where email = 'contact5@example.com'")
        .await;
    eventually(
        "the hub's edit in both apps",
        Duration::from_secs(10),
        || async {
            (Two::prop(&two.a, "contact5@example.com", "lastname").as_deref() == Some("Hub")
                && Two::prop(&two.b, "contact5@example.com", "lastname").as_deref() == Some("Hub"))
            .then_some(())
        },
    )
    .await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_in_both_apps_converge_and_deletes_travel() {
    let two = Two::start(12, 12).await;
    two.quiesce().await;
    let ids = |email: &'static str| {
        let two = &two;
        async move {
            let a: String = two
                .one(&format!(
                    "select app_a_id from crm.people where email = '{email}'"
                ))
                .await;
            let b: String = two
                .one(&format!(
                    "select app_b_id from crm.people where email = '{email}'"
                ))
                .await;
            (a, b)
        }
    };

    // different fields of one person, changed in each app at once: both changes everywhere,
    // one write to each app, no conflict
    let (a7, b7) = ids("contact7@example.com").await;
    let (a_w, b_w) = (two.a.stats().records_written, two.b.stats().records_written);
    set(&two.a, &a7, "phone", "+15550707");
    set(&two.b, &b7, "lastname", "Seven");
    eventually("both edits everywhere", Duration::from_secs(10), || async {
        let e = "contact7@example.com";
        (Two::prop(&two.a, e, "lastname").as_deref() == Some("Seven")
            && Two::prop(&two.b, e, "phone").as_deref() == Some("+15550707"))
        .then_some(())
    })
    .await;
    two.quiesce().await;
    let hub: (String, String) = (
        two.one("select phone from crm.people where email = 'contact7@example.com'")
            .await,
        two.one("select lastname from crm.people where email = 'contact7@example.com'")
            .await,
    );
    assert_eq!(hub, ("+15550707".into(), "Seven".into()));
    assert_eq!(two.a.stats().records_written - a_w, 1);
    assert_eq!(two.b.stats().records_written - b_w, 1);
    let conflicts: i64 = two.one("select count(*) from ferry.conflicts").await;
    assert_eq!(conflicts, 0);

    // the same field changed in both apps at once: one value everywhere in the end
    let (a8, b8) = ids("contact8@example.com").await;
    set(&two.a, &a8, "firstname", "FromA");
    set(&two.b, &b8, "firstname", "FromB");
    two.quiesce().await;
    let hub: String = two
        .one("select firstname from crm.people where email = 'contact8@example.com'")
        .await;
    let e = "contact8@example.com";
    assert_eq!(
        Two::prop(&two.a, e, "firstname").as_deref(),
        Some(hub.as_str())
    );
    assert_eq!(
        Two::prop(&two.b, e, "firstname").as_deref(),
        Some(hub.as_str())
    );
    let recorded: i64 = two
        .one("select count(*) from ferry.conflicts c join crm.people p on p.id = c.row_key where p.email = 'contact8@example.com'")
        .await;
    assert!(
        recorded <= 1,
        "a conflict is recorded once, not per app ({recorded})"
    );
    println!("same field in both apps: {hub} won, {recorded} conflict recorded");

    // a deletion in A deletes the hub row and B's record
    let (a9, b9) = ids("contact9@example.com").await;
    two.a.app_archive("contacts", &a9).unwrap();
    eventually("A's deletion in B", Duration::from_secs(10), || async {
        two.b
            .get("contacts", &b9)
            .is_some_and(|r| r.archived)
            .then_some(())
    })
    .await;
    let left: i64 = two
        .one("select count(*) from crm.people where email = 'contact9@example.com'")
        .await;
    assert_eq!(left, 0);
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_may_keep_its_records_when_the_hub_deletes() {
    // B keeps what the hub deletes (e.g. support keeps people sales removed)
    let two = Two::start_with(6, 6, "on_hub_delete = \"ignore\"").await;
    two.quiesce().await;
    let (a_id, b_id): (String, String) = (
        two.one("select app_a_id from crm.people where email = 'contact2@example.com'")
            .await,
        two.one("select app_b_id from crm.people where email = 'contact2@example.com'")
            .await,
    );
    let preview: String = {
        two.exec("select ferry.pause('app_b.contacts')").await;
        two.exec("delete from crm.people where email = 'contact2@example.com'")
            .await;
        eventually(
            "B's plan in ferry.pending",
            Duration::from_secs(10),
            || async {
                let op: Option<String> = two
                    .hub
                    .client()
                    .await
                    .unwrap()
                    .query_opt(
                        // the deleted row's line (another row may have a mark that plans nothing)
                        "select operation from ferry.pending where mapping = 'app_b.contacts' and remote_id = $1",
                        &[&b_id],
                    )
                    .await
                    .unwrap()
                    .map(|r| r.get(0));
                op
            },
        )
        .await
    };
    assert_eq!(preview, "release", "ferry.pending says B keeps the record");
    two.exec("select ferry.resume('app_b.contacts')").await;
    eventually("A's record deleted", Duration::from_secs(10), || async {
        two.a
            .get("contacts", &a_id)
            .is_some_and(|r| r.archived)
            .then_some(())
    })
    .await;
    two.quiesce().await;
    assert!(
        two.b.get("contacts", &b_id).is_some_and(|r| !r.archived),
        "B keeps its record"
    );
    let links: i64 = two
        .one(&format!(
            "select count(*) from ferry.links where remote_id = '{b_id}'"
        ))
        .await;
    assert_eq!(links, 0, "B's link is gone");
    let rows: i64 = two
        .one("select count(*) from crm.people where email = 'contact2@example.com'")
        .await;
    assert_eq!(rows, 0, "the row stays deleted");
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_maps_translate_both_ways_and_refuse_what_they_do_not_name() {
    // the hub speaks A's words; B calls a customer an evangelist and a lead a subscriber
    let two = Two::start_full(
        4,
        4,
        "",
        r#"{ column = "stage", property = "lifecyclestage" },"#,
        r#"{ column = "stage", property = "lifecyclestage", map = { customer = "evangelist", lead = "subscriber" } },"#,
    )
    .await;
    two.quiesce().await;
    let e = "contact1@example.com";
    two.exec(&format!(
        "update crm.people set stage = 'customer' where email = '{e}'"
    ))
    .await;
    eventually(
        "the stage in both apps",
        Duration::from_secs(10),
        || async {
            (Two::prop(&two.a, e, "lifecyclestage").as_deref() == Some("customer")
                && Two::prop(&two.b, e, "lifecyclestage").as_deref() == Some("evangelist"))
            .then_some(())
        },
    )
    .await;

    // B's word comes back as the hub's, and goes on to A in the hub's words
    let b_id: String = two
        .one(&format!(
            "select app_b_id from crm.people where email = '{e}'"
        ))
        .await;
    set(&two.b, &b_id, "lifecyclestage", "subscriber");
    eventually(
        "B's subscriber is the hub's and A's lead",
        Duration::from_secs(10),
        || async {
            (Two::prop(&two.a, e, "lifecyclestage").as_deref() == Some("lead")).then_some(())
        },
    )
    .await;
    let stage: String = two
        .one(&format!("select stage from crm.people where email = '{e}'"))
        .await;
    assert_eq!(stage, "lead");

    // a value B's map does not name refuses only itself, each way
    set(&two.b, &b_id, "lifecyclestage", "other");
    set(&two.b, &b_id, "phone", "+15550111");
    eventually(
        "B's other fields still arrive",
        Duration::from_secs(10),
        || async { (Two::prop(&two.a, e, "phone").as_deref() == Some("+15550111")).then_some(()) },
    )
    .await;
    two.quiesce().await;
    let stage: String = two
        .one(&format!("select stage from crm.people where email = '{e}'"))
        .await;
    assert_eq!(stage, "lead", "the unmapped value is not applied");
    let inbound: String = two
        .one("select error from ferry.dead_letters where direction = 'inbound' and field = 'stage'")
        .await;
    assert!(inbound.contains("not in the field's map"), "{inbound}");

    let e2 = "contact2@example.com";
    two.exec(&format!(
        "update crm.people set stage = 'opportunity', lastname = 'Opp' where email = '{e2}'"
    ))
    .await;
    eventually(
        "A takes the unmapped stage",
        Duration::from_secs(10),
        || async {
            (Two::prop(&two.a, e2, "lifecyclestage").as_deref() == Some("opportunity"))
                .then_some(())
        },
    )
    .await;
    eventually("B's write is a dead letter", Duration::from_secs(10), || async {
        let n: i64 = two
            .one("select count(*) from ferry.dead_letters d join ferry.mappings m on m.id = d.mapping_id
                   where m.name = 'app_b.contacts' and d.direction = 'outbound' and d.error like '%not in the field''s map%'")
            .await;
        (n == 1).then_some(())
    })
    .await;
    assert_ne!(
        Two::prop(&two.b, e2, "lastname").as_deref(),
        Some("Opp"),
        "the refused row is not half-sent"
    );
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_chooses_the_rows_an_app_gets() {
    // only customers go to B
    let stage = r#"{ column = "stage", property = "lifecyclestage" },"#;
    let two = Two::start_full(6, 0, "filter = \"stage = 'customer'\"", stage, stage).await;
    two.quiesce().await;
    assert_eq!(
        two.b.records("contacts").len(),
        0,
        "no customer yet, nothing in B"
    );

    let e = "contact1@example.com";
    two.exec(&format!(
        "update crm.people set stage = 'customer' where email = '{e}'"
    ))
    .await;
    eventually("the new customer in B", Duration::from_secs(10), || async {
        (Two::prop(&two.b, e, "lifecyclestage").as_deref() == Some("customer")).then_some(())
    })
    .await;
    let b_id: String = eventually("B's id in the hub", Duration::from_secs(10), || async {
        two.one::<Option<String>>(&format!(
            "select app_b_id from crm.people where email = '{e}'"
        ))
        .await
    })
    .await;
    // leaving the filter deletes the record there (on_hub_delete = "delete")
    two.exec(&format!(
        "update crm.people set stage = 'lead' where email = '{e}'"
    ))
    .await;
    eventually(
        "the former customer gone from B",
        Duration::from_secs(10),
        || async {
            two.b
                .get("contacts", &b_id)
                .is_some_and(|r| r.archived)
                .then_some(())
        },
    )
    .await;
    eventually("A gets every row", Duration::from_secs(10), || async {
        (Two::prop(&two.a, e, "lifecyclestage").as_deref() == Some("lead")).then_some(())
    })
    .await;

    // a record B has itself, matching a row outside the filter, is linked but not B's to lose
    let mut props = serde_json::Map::new();
    props.insert("email".into(), "contact3@example.com".into());
    props.insert("firstname".into(), "Own".into());
    let own = two.b.app_create("contacts", props).unwrap();
    eventually("B's own record linked", Duration::from_secs(10), || async {
        let n: i64 = two
            .one(&format!(
                "select count(*) from crm.people where app_b_id = '{own}'"
            ))
            .await;
        (n == 1).then_some(())
    })
    .await;
    two.exec("update crm.people set lastname = 'NotSent' where email = 'contact3@example.com'")
        .await;
    two.quiesce().await;
    let rec = two.b.get("contacts", &own).unwrap();
    assert!(!rec.archived, "B keeps its own record");
    assert_ne!(
        rec.properties.get("lastname").map(String::as_str),
        Some("NotSent"),
        "a row outside the filter is not sent"
    );
    let rows: i64 = two
        .one("select count(*) from crm.people where email = 'contact3@example.com'")
        .await;
    assert_eq!(rows, 1, "matched, not duplicated");
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_does_not_work_is_refused_at_apply() {
    let (_, url) = harness::fresh_db().await;
    let hub = Hub::connect(&url).await.unwrap();
    ferry::hub::migrate::migrate(&hub).await.unwrap();
    let text = format!(
        r#"
        [connections.app_b]
        kind = "hubspot"
        base_url = "http://127.0.0.1:1"
        token_env = "UNUSED"
        {}
        "#,
        mapping("app_b", "filter = \"stag = 'customer'\"", "")
    );
    let config = Config::parse(&text, "test config").unwrap();
    let err = ferry::hub::schema::apply(&hub, &config)
        .await
        .expect_err("a filter naming no column is refused")
        .to_string();
    assert_eq!(
        err,
        "mapping `app_b.contacts`: filter `stag = 'customer'` does not work on crm.people: column \"stag\" does not exist"
    );
    let mappings: i64 = hub
        .client()
        .await
        .unwrap()
        .query_one("select count(*) from ferry.mappings", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mappings, 0, "nothing applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_may_unlink_what_it_deletes() {
    // a deletion in B drops only B's link: the person stays in the hub and in A
    let two = Two::start_with(5, 5, "on_remote_delete = \"unlink\"").await;
    two.quiesce().await;
    let e = "contact4@example.com";
    let (a_id, b_id): (String, String) = (
        two.one(&format!(
            "select app_a_id from crm.people where email = '{e}'"
        ))
        .await,
        two.one(&format!(
            "select app_b_id from crm.people where email = '{e}'"
        ))
        .await,
    );
    two.b.app_archive("contacts", &b_id).unwrap();
    eventually("B's link dropped", Duration::from_secs(10), || async {
        let unlinked: Option<String> = two
            .one(&format!(
                "select app_b_id from crm.people where email = '{e}'"
            ))
            .await;
        unlinked.is_none().then_some(())
    })
    .await;
    two.exec(&format!(
        "update crm.people set phone = '+15550404' where email = '{e}'"
    ))
    .await;
    eventually("the edit in A", Duration::from_secs(10), || async {
        (Two::prop(&two.a, e, "phone").as_deref() == Some("+15550404")).then_some(())
    })
    .await;
    two.quiesce().await;
    assert!(
        two.a.get("contacts", &a_id).is_some_and(|r| !r.archived),
        "A keeps the person"
    );
    let in_b = two
        .b
        .records("contacts")
        .into_iter()
        .filter(|r| r.properties.get("email").map(String::as_str) == Some(e))
        .count();
    assert_eq!(in_b, 0, "the unlinked row is not created in B again");
    let detached: i64 = two.one("select count(*) from ferry.detached").await;
    assert_eq!(detached, 1);
    two.stop().await;
}
