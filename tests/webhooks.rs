//! Webhook edge: unsigned or badly signed deliveries get 401 and store nothing; a valid one is
//! stored and applied; concurrent deliveries are stored together (one commit), each answered
//! once its events are durable, replays dropped across deliveries of one commit too.

mod harness;

use std::time::Duration;

use ferry::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use harness::{eventually, props, Ctx, SECRET};
use serde_json::json;

async fn post(ctx: &Ctx, body: &str, headers: &[(&str, String)]) -> u16 {
    let mut req = reqwest::Client::new()
        .post(ctx.engine().webhook_url("hubspot"))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.expect("ferry answers").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_signatures_are_refused_and_store_nothing() {
    let ctx = Ctx::start(3).await;
    ctx.sim.set_webhook_url(None); // only our own deliveries from here on
    ctx.quiesce().await;
    let id: String = ctx
        .one("select hubspot_id from hubspot.contacts where id = 1")
        .await;
    let body = json!([{"eventId": 9001, "subscriptionType": "contact.deletion", "objectId": id.parse::<u64>().unwrap(),
                       "occurredAt": 1, "attemptNumber": 0}])
    .to_string();
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let url = ctx.engine().webhook_url("hubspot");

    assert_eq!(post(&ctx, &body, &[]).await, 401, "missing signature");
    let wrong = sign_v3(b"not-the-secret", "POST", &url, body.as_bytes(), &now);
    assert_eq!(
        post(
            &ctx,
            &body,
            &[(SIGNATURE_HEADER, wrong), (TIMESTAMP_HEADER, now.clone())]
        )
        .await,
        401,
        "wrong secret"
    );
    let good = sign_v3(SECRET.as_bytes(), "POST", &url, body.as_bytes(), &now);
    let tampered = body.replace("9001", "9002");
    assert_eq!(
        post(
            &ctx,
            &tampered,
            &[
                (SIGNATURE_HEADER, good.clone()),
                (TIMESTAMP_HEADER, now.clone())
            ]
        )
        .await,
        401,
        "tampered body"
    );
    let stale = (chrono::Utc::now().timestamp_millis() - 10 * 60 * 1000).to_string();
    let stale_sig = sign_v3(SECRET.as_bytes(), "POST", &url, body.as_bytes(), &stale);
    assert_eq!(
        post(
            &ctx,
            &body,
            &[(SIGNATURE_HEADER, stale_sig), (TIMESTAMP_HEADER, stale)]
        )
        .await,
        401,
        "stale timestamp"
    );
    let stored: i64 = ctx.one("select count(*) from ferry.inbox").await;
    assert_eq!(stored, 0, "refused deliveries store nothing");
    let rows: i64 = ctx.one("select count(*) from hubspot.contacts").await;
    assert_eq!(rows, 3, "refused deliveries change nothing");

    // a well-signed delivery of the same event is stored and applied (the record is archived in
    // the app first, so the deletion is true)
    ctx.sim.app_archive("contacts", &id).unwrap();
    assert_eq!(
        post(
            &ctx,
            &body,
            &[(SIGNATURE_HEADER, good), (TIMESTAMP_HEADER, now)]
        )
        .await,
        204
    );
    eventually("deletion applied", Duration::from_secs(5), || async {
        let n: i64 = ctx
            .one("select count(*) from hubspot.contacts where id = 1")
            .await;
        (n == 0).then_some(())
    })
    .await;
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_body_is_400() {
    let ctx = Ctx::start(1).await;
    let url = ctx.engine().webhook_url("hubspot");
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let body = "{not json";
    let sig = sign_v3(SECRET.as_bytes(), "POST", &url, body.as_bytes(), &now);
    assert_eq!(
        post(
            &ctx,
            body,
            &[(SIGNATURE_HEADER, sig), (TIMESTAMP_HEADER, now)]
        )
        .await,
        400
    );
    let stored: i64 = ctx.one("select count(*) from ferry.inbox").await;
    assert_eq!(stored, 0);
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_one_event_deliveries_are_all_stored_and_applied_once() {
    let ctx = Ctx::start(40).await;
    ctx.sim.set_webhook_url(None); // only our own deliveries from here on
    ctx.quiesce().await;
    let ids: Vec<String> = ctx
        .column("select hubspot_id from hubspot.contacts order by id")
        .await;
    for (i, id) in ids.iter().enumerate() {
        ctx.sim
            .app_update("contacts", id, props(&[("phone", &format!("+49{i}"))]))
            .unwrap();
    }
    let body = |i: usize| {
        json!([{"eventId": 500 + i, "subscriptionType": "contact.propertyChange",
                "objectId": ids[i].parse::<u64>().unwrap(), "propertyName": "phone",
                "occurredAt": 1, "attemptNumber": 0}])
        .to_string()
    };
    // every delivery at once, each event twice (an app retrying while the first is in flight)
    let deliveries = (0..ids.len()).chain(0..ids.len()).map(|i| {
        let body = body(i);
        let ctx = &ctx;
        async move { ctx.post_signed(&body).await }
    });
    let answers = futures_util::future::join_all(deliveries).await;
    assert!(answers.iter().all(|s| *s == 204), "{answers:?}");
    eventually(
        "every delivery applied",
        Duration::from_secs(10),
        || async {
            let n: i64 = ctx
                .one("select count(*) from hubspot.contacts where phone like '+49%'")
                .await;
            (n == ids.len() as i64).then_some(())
        },
    )
    .await;
    let seen: i64 = ctx
        .one("select count(*) from ferry.seen_events where event_id::bigint >= 500")
        .await;
    assert_eq!(seen, ids.len() as i64, "one memory per event id");
    ctx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_stores_each_delivery_in_order_and_drops_replays() {
    let ctx = Ctx::start(1).await;
    ctx.sim.set_webhook_url(None);
    ctx.quiesce().await;
    ctx.exec("insert into ferry.seen_events (connection, event_id) values ('probe', 'old')")
        .await;
    let mut client = ctx.hub.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    // deliveries 0, 1, 2: 0 repeats an id inside itself, 1 repeats one of 0's and one seen
    // long ago, 2 has events without ids; 3 is another connection with 0's id
    let rows = tx
        .query(
            "select delivery, stored from ferry.store_webhook_events(
                 array['probe','probe','probe','probe','probe','probe','probe','other'],
                 array['a','b','a','b','old',null,null,'a'],
                 array['contacts','contacts','contacts','contacts','contacts','contacts','contacts','contacts'],
                 array['1','2','1','2','3','4','5','1'],
                 array['changed','changed','changed','changed','changed','deleted','changed','changed'],
                 array['{\"n\":1}','{\"n\":2}','{\"n\":3}','{\"n\":4}','{\"n\":5}','{\"n\":6}','{\"n\":7}','{\"n\":8}']::jsonb[],
                 array[null,null,null,null,null,null,null,null]::text[],
                 array[0,0,0,1,1,2,2,3]) order by delivery",
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, vec![(0, 2), (1, 0), (2, 2), (3, 1)]);
    let inbox: Vec<String> = tx
        .query(
            "select connection || ':' || coalesce(event_id, '-') || ':' || remote_id || ':' || kind
                    || ':' || (payload ->> 'n')
               from ferry.inbox where connection in ('probe', 'other') order by id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        inbox,
        vec![
            "probe:a:1:changed:1",
            "probe:b:2:changed:2",
            "probe:-:4:deleted:6",
            "probe:-:5:changed:7",
            "other:a:1:changed:8"
        ]
    );
    tx.rollback().await.unwrap();
    drop(client);
    ctx.stop().await;
}
