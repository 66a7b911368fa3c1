//! One bad value refuses only itself: whatever the app sends (a NUL character, an integer out
//! of range, a malformed date, boolean or numeric, a value over the size limit) and whichever
//! path brings it (webhook, poll, backfill), the record's other fields apply, every other
//! record and later change flows, and the value is one open dead letter per record and field
//! that closes when a good value arrives. On the way out, a row whose processing fails every
//! time becomes a dead letter and the rows claimed with it go through.

mod harness;

use std::time::Duration;

use ferry::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use harness::{eventually, props, Ctx, SECRET};
use serde_json::json;

/// Text properties of the simulator mapped to typed hub columns.
const TYPED: &str = r#"
    { column = "zip",     property = "zip",     type = "integer" },
    { column = "city",    property = "city",    type = "date" },
    { column = "state",   property = "state",   type = "boolean" },
    { column = "address", property = "address", type = "numeric" },
    { column = "notes",   property = "notes" },
"#;

/// The bad value of each class, by property.
fn bad_values() -> Vec<(&'static str, String)> {
    vec![
        ("firstname", "Ann\u{0}Lee".to_string()),
        ("zip", "99999999999".to_string()),
        ("city", "2024-13-45".to_string()),
        ("state", "maybe".to_string()),
        ("address", "12,5".to_string()),
        (
            "notes",
            "n".repeat(ferry::inbound::screen::MAX_VALUE_BYTES + 1),
        ),
    ]
}

fn with(pairs: &[(&str, String)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// Open dead letters of one remote record, as `field: error`, by field.
async fn open_letters(ctx: &Ctx, remote_id: &str) -> Vec<(String, String)> {
    let client = ctx.hub.client().await.unwrap();
    client
        .query(
            "select field, error from ferry.dead_letters
              where remote_id = $1 and direction = 'inbound' and resolved_at is null and retried_at is null
              order by field",
            &[&remote_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn all_letters(ctx: &Ctx, remote_id: &str) -> i64 {
    let client = ctx.hub.client().await.unwrap();
    client
        .query_one(
            "select count(*) from ferry.dead_letters where remote_id = $1",
            &[&remote_id],
        )
        .await
        .unwrap()
        .get(0)
}

/// Every bad-value class by webhook (the simulator's delivery answered 2xx) and then by poll
/// (webhooks dropped): the good fields apply, one letter per field whatever the polls, another
/// record's change still arrives by polling, a good value closes the letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_refuse_only_themselves_by_webhook_and_poll() {
    let ctx = Ctx::start_full(3, "poll_interval = \"1s\"", "", TYPED, "").await;
    ctx.quiesce().await;
    let (bad, other): (String, String) = (
        ctx.one("select hubspot_id from hubspot.contacts where id = 1")
            .await,
        ctx.one("select hubspot_id from hubspot.contacts where id = 2")
            .await,
    );
    let mut values = bad_values();
    values.push(("lastname", "Goodfield".to_string()));
    ctx.sim.app_update("contacts", &bad, with(&values)).unwrap();

    let letters = eventually(
        "one dead letter per bad field",
        Duration::from_secs(15),
        || async {
            let l = open_letters(&ctx, &bad).await;
            (l.len() == 6).then_some(l)
        },
    )
    .await;
    let text: std::collections::BTreeMap<String, String> = letters.into_iter().collect();
    assert!(
        text["firstname"].contains("NUL") && text["firstname"].contains("Ann\\u0000Lee"),
        "{text:?}"
    );
    assert!(
        text["zip"].contains("zip (integer)") && text["zip"].contains("99999999999"),
        "{text:?}"
    );
    assert!(
        text["city"].contains("city (date)") && text["city"].contains("2024-13-45"),
        "{text:?}"
    );
    assert!(
        text["state"].contains("state (boolean)") && text["state"].contains("maybe"),
        "{text:?}"
    );
    assert!(text["address"].contains("address (numeric)"), "{text:?}");
    assert!(
        text["notes"].contains("limit") && text["notes"].len() < 1000,
        "{text:?}"
    );
    let (last, first): (Option<String>, Option<String>) = ctx
        .pair("select lastname, firstname from hubspot.contacts where id = 1")
        .await;
    assert_eq!(
        last.as_deref(),
        Some("Goodfield"),
        "the record's good field applied"
    );
    assert_ne!(
        first.as_deref(),
        Some("Ann"),
        "the bad field kept its hub value"
    );
    eventually(
        "the webhook events processed, none left retrying",
        Duration::from_secs(10),
        || async {
            let remaining: i64 = ctx.one("select count(*) from ferry.inbox").await;
            (remaining == 0).then_some(())
        },
    )
    .await;

    // polling alone from here: the bad record is read again at every poll (overlap window)
    ctx.sim.set_drop_webhooks(true);
    ctx.sim
        .app_update("contacts", &other, props(&[("lastname", "ByPolling")]))
        .unwrap();
    eventually(
        "another record's change arrives by polling",
        Duration::from_secs(10),
        || async {
            let l: Option<String> = ctx
                .one("select lastname from hubspot.contacts where id = 2")
                .await;
            (l.as_deref() == Some("ByPolling")).then_some(())
        },
    )
    .await;
    let polled: chrono::DateTime<chrono::Utc> = ctx
        .one("select polled_at from ferry.mapping_progress")
        .await;
    eventually("two more polls", Duration::from_secs(10), || async {
        let n: i64 = ctx
            .one(&format!(
                "select count(*) from ferry.mapping_progress where polled_at > '{}'::timestamptz + interval '1.5 seconds'",
                polled.to_rfc3339()
            ))
            .await;
        (n == 1).then_some(())
    })
    .await;
    assert_eq!(open_letters(&ctx, &bad).await.len(), 6);
    assert_eq!(
        all_letters(&ctx, &bad).await,
        6,
        "never a new letter per poll"
    );
    let times: i64 = ctx
        .one(&format!(
            "select max(times)::bigint from ferry.dead_letters where remote_id = '{bad}'"
        ))
        .await;
    assert!(
        times >= 2,
        "repeats are counted on the open letter: {times}"
    );

    // a good value closes its letter, by polling too
    let good = [
        ("firstname", "Ann".to_string()),
        ("zip", "12345".to_string()),
        ("city", "2024-02-29".to_string()),
        ("state", "true".to_string()),
        ("address", "12.5".to_string()),
        ("notes", "short".to_string()),
    ];
    ctx.sim.app_update("contacts", &bad, with(&good)).unwrap();
    eventually("the letters close", Duration::from_secs(10), || async {
        open_letters(&ctx, &bad).await.is_empty().then_some(())
    })
    .await;
    let row: (Option<String>, Option<i32>) = ctx
        .pair("select firstname, zip from hubspot.contacts where id = 1")
        .await;
    assert_eq!(row, (Some("Ann".into()), Some(12345)));
    let closed: String = ctx
        .one(&format!("select string_agg(distinct resolution, ',') from ferry.dead_letters where remote_id = '{bad}'"))
        .await;
    assert_eq!(closed, "a good value arrived");
    let status: i64 = ctx.one("select dead_letters from ferry.status").await;
    assert_eq!(status, 0);
    ctx.stop().await;
}

/// A backfill (a resync) over new and known records holding bad values ends, with every good
/// value in and one letter per bad field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_do_not_stop_a_backfill() {
    let ctx = Ctx::start_full(2, "poll_interval = \"1h\"", "", TYPED, "").await;
    ctx.quiesce().await;
    ctx.sim.set_drop_webhooks(true);
    let known: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 1")
        .await;
    ctx.sim
        .app_update(
            "contacts",
            &known,
            with(&[("zip", "-99999999999".into()), ("lastname", "Known".into())]),
        )
        .unwrap();
    let mut fresh = vec![];
    for (i, (prop, value)) in bad_values().into_iter().enumerate() {
        let email = format!("fresh{i}@example.com");
        let pairs = vec![
            ("email", email),
            ("lastname", format!("Fresh{i}")),
            (prop, value),
        ];
        fresh.push(ctx.sim.app_create("contacts", with(&pairs)).unwrap());
    }
    let msg: String = ctx.one("select ferry.resync('hubspot.contacts')").await;
    assert!(msg.contains("resync started"), "{msg}");
    eventually("the resync ends", Duration::from_secs(30), || async {
        let n: i64 = ctx
            .one("select count(*) from hubspot.contacts where lastname like 'Fresh%'")
            .await;
        let done: bool = ctx
            .one("select backfill_state = 'done' from ferry.mappings")
            .await;
        (n == 6 && done).then_some(())
    })
    .await;
    let last: Option<String> = ctx
        .one("select lastname from hubspot.contacts where id = 1")
        .await;
    assert_eq!(last.as_deref(), Some("Known"));
    assert_eq!(open_letters(&ctx, &known).await.len(), 1);
    for id in &fresh {
        let l = open_letters(&ctx, id).await;
        assert_eq!(l.len(), 1, "record {id}: {l:?}");
        let key: Option<i64> = ctx
            .opt(&format!(
                "select row_key from ferry.dead_letters where remote_id = '{id}'"
            ))
            .await;
        assert!(key.is_some(), "the letter names the hub row");
    }
    ctx.stop().await;
}

/// A signed delivery whose events hold a NUL character is stored (2xx), kept as received, and
/// its events applied; a delivery is never answered 5xx for its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_holding_a_nul_is_stored_and_applied() {
    let ctx = Ctx::start(3).await;
    ctx.sim.set_webhook_url(None);
    ctx.quiesce().await;
    let (a, b): (String, String) = (
        ctx.one("select hubspot_id from hubspot.contacts where id = 1")
            .await,
        ctx.one("select hubspot_id from hubspot.contacts where id = 2")
            .await,
    );
    ctx.sim
        .app_update("contacts", &b, props(&[("lastname", "FromDelivery")]))
        .unwrap();
    ctx.exec("create table public.inbox_copy (raw text, payload jsonb)")
        .await;
    ctx.exec(
        "create function public.keep() returns trigger language plpgsql as $$
         begin insert into public.inbox_copy values (new.raw, new.payload); return new; end $$;
         ",
    )
    .await;
    ctx.exec("create trigger keep after insert on ferry.inbox for each row execute function public.keep()")
        .await;
    let body = format!(
        r#"[{{"eventId": 7101, "subscriptionType": "contact.propertyChange", "objectId": {a}, "propertyName": "firstname", "propertyValue": "x\u0000y", "occurredAt": 1, "attemptNumber": 0}},
            {{"eventId": 7102, "subscriptionType": "contact.propertyChange", "objectId": {b}, "propertyName": "lastname", "propertyValue": "FromDelivery", "occurredAt": 1, "attemptNumber": 0}}]"#
    );
    let url = ctx.engine().webhook_url("hubspot");
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let sig = sign_v3(SECRET.as_bytes(), "POST", &url, body.as_bytes(), &now);
    let status = reqwest::Client::new()
        .post(&url)
        .header(SIGNATURE_HEADER, sig)
        .header(TIMESTAMP_HEADER, now)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 204);
    let raw: String = ctx
        .one("select raw from public.inbox_copy where payload is null")
        .await;
    assert!(raw.contains("x\\u0000y"), "kept as received: {raw}");
    let stored: i64 = ctx.one("select count(*) from public.inbox_copy").await;
    assert_eq!(stored, 2);
    eventually("the delivery applied", Duration::from_secs(10), || async {
        let l: Option<String> = ctx
            .one("select lastname from hubspot.contacts where id = 2")
            .await;
        (l.as_deref() == Some("FromDelivery")).then_some(())
    })
    .await;
    ctx.stop().await;
}

/// A row whose outbound processing fails at every attempt (here a site trigger refusing
/// ferry's write-back of its remote id) becomes a dead letter after its budget; the rows
/// inserted with it are created and linked, and the app holds the row's record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_failing_every_attempt_becomes_a_dead_letter_alone() {
    let ctx = Ctx::start(0).await;
    ctx.exec(
        "create function public.refuse_write_back() returns trigger language plpgsql as $$
         begin
             if new.email = 'refuse@example.com' and new.hubspot_id is not null then
                 raise exception 'write-back refused by a site rule';
             end if;
             return new;
         end $$",
    )
    .await;
    ctx.exec("create trigger refuse before update on hubspot.contacts for each row execute function public.refuse_write_back()")
        .await;
    ctx.exec(
        "insert into hubspot.contacts (email, lastname) values
           ('one@example.com', 'One'), ('refuse@example.com', 'Refused'), ('two@example.com', 'Two')",
    )
    .await;
    let error: String = eventually(
        "the failing row is a dead letter",
        Duration::from_secs(30),
        || async {
            ctx.opt::<String>("select error from ferry.dead_letters where operation = 'process'")
                .await
        },
    )
    .await;
    assert!(
        error.contains("write-back refused by a site rule"),
        "{error}"
    );
    let linked: i64 = ctx
        .one("select count(*) from hubspot.contacts where hubspot_id is not null")
        .await;
    assert_eq!(linked, 2, "the rows claimed with it went through");
    let queued: i64 = ctx.one("select count(*) from ferry.outbox").await;
    assert_eq!(queued, 0, "nothing is claimed forever");
    let copies = ctx
        .sim
        .records("contacts")
        .iter()
        .filter(|r| r.properties.get("email").map(String::as_str) == Some("refuse@example.com"))
        .count();
    assert_eq!(
        copies, 1,
        "retries adopted the record the first attempt created"
    );
    ctx.stop().await;
}
