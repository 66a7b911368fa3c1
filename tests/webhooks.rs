//! Webhook edge: unsigned or badly signed deliveries get 401 and store nothing; a valid one is
//! stored and applied.

mod harness;

use std::time::Duration;

use ferry::connectors::hubspot::signature::{sign_v3, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use harness::{eventually, Ctx, SECRET};
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
