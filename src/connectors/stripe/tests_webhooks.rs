//! Stripe connector, webhook deliveries: `Stripe-Signature` checked against the secret (and a
//! previous one during a rotation), two `v1` while Stripe rolls a secret, the 300-second
//! tolerance, `v0` ignored, events read into changes — and real deliveries from the simulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::signature::sign;
use super::tests_reads::{connector, connector_with, id, sim};
use super::Options;
use crate::connectors::{ChangeEvent, Connector, WebhookError, WebhookRequest};
use crate::sim::stripe::{signature_header, SimConfig};

const SECRET: &str = "whsec_current";

/// What the test's webhook endpoint received.
type Deliveries = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

fn event(kind: &str, object: Value) -> Vec<u8> {
    json!({"id": "evt_1AbC", "object": "event", "type": kind, "created": 1_700_000_000,
           "data": {"object": object}})
    .to_string()
    .into_bytes()
}

fn deliver(
    c: &dyn Connector,
    body: &[u8],
    header: &str,
    secret: Option<&str>,
) -> Result<Vec<ChangeEvent>, WebhookError> {
    let mut headers = HeaderMap::new();
    headers.insert("stripe-signature", header.parse().unwrap());
    let request = WebhookRequest {
        method: "POST",
        url: "http://ferry/webhooks/stripe",
        headers: &headers,
        body,
    };
    c.parse_webhook(&request, secret)
}

#[tokio::test]
async fn signatures_rotation_and_tolerance() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let body = event(
        "customer.updated",
        json!({"id": "cus_1", "object": "customer", "name": "Ann"}),
    );
    let now = chrono::Utc::now().timestamp();
    let signed = signature_header(&[SECRET.to_string()], now, &body);
    // the simulator's recipe and ours agree
    assert_eq!(signed, format!("t={now},v1={}", sign(SECRET, now, &body)));
    let got = deliver(&s, &body, &signed, Some(SECRET)).expect("valid");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event_id.as_deref(), Some("evt_1AbC"));
    assert_eq!(
        (
            got[0].object.as_str(),
            got[0].remote_id.as_str(),
            got[0].deleted
        ),
        ("customers", "cus_1", false)
    );
    assert_eq!(got[0].raw["data"]["object"]["name"], "Ann");

    let wrong = deliver(&s, &body, &signed, Some("whsec_other"));
    assert!(
        matches!(&wrong, Err(WebhookError::Signature(m)) if m == "no v1 signature matches a webhook secret"),
        "{wrong:?}"
    );
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert!(deliver(&s, &tampered, &signed, Some(SECRET)).is_err());
    assert!(matches!(
        deliver(&s, &body, &signed, None),
        Err(WebhookError::NoSecret)
    ));

    // Stripe rolling the secret: two v1, either one of ours matches
    let both = signature_header(&["whsec_old".to_string(), SECRET.to_string()], now, &body);
    assert!(deliver(&s, &body, &both, Some(SECRET)).is_ok());
    assert!(deliver(&s, &body, &both, Some("whsec_old")).is_ok());
    assert!(deliver(&s, &body, &both, Some("whsec_neither")).is_err());
    // ferry's side of a rotation: the previous secret is still accepted
    let rotating = connector_with(
        &sim,
        Options {
            previous_webhook_secret: Some("whsec_old".into()),
            ..Options::default()
        },
    );
    let old_only = signature_header(&["whsec_old".to_string()], now, &body);
    assert!(deliver(&rotating, &body, &old_only, Some("whsec_new")).is_ok());
    assert!(deliver(&s, &body, &old_only, Some("whsec_new")).is_err());

    // 300 s either way
    let at = |t: i64| signature_header(&[SECRET.to_string()], t, &body);
    assert!(deliver(&s, &body, &at(now - 290), Some(SECRET)).is_ok());
    let stale = deliver(&s, &body, &at(now - 310), Some(SECRET));
    assert!(
        matches!(&stale, Err(WebhookError::Signature(m)) if m.contains("tolerance")),
        "{stale:?}"
    );
    assert!(deliver(&s, &body, &at(now + 310), Some(SECRET)).is_err());
    // v0 is not a signature ferry takes; a header without t= is refused
    let v0 = format!("t={now},v0={}", sign(SECRET, now, &body));
    assert!(
        matches!(deliver(&s, &body, &v0, Some(SECRET)), Err(WebhookError::Signature(m)) if m.contains("no v1"))
    );
    let no_t = format!("v1={}", sign(SECRET, now, &body));
    assert!(deliver(&s, &body, &no_t, Some(SECRET)).is_err());
    let with_v0 = format!("{signed},v0=deadbeef");
    assert!(deliver(&s, &body, &with_v0, Some(SECRET)).is_ok());
}

#[tokio::test]
async fn events_become_changes() {
    let sim = sim(SimConfig::default()).await;
    let s = connector(&sim);
    let now = chrono::Utc::now().timestamp();
    let check = |body: Vec<u8>| {
        let h = signature_header(&[SECRET.to_string()], now, &body);
        deliver(&s, &body, &h, Some(SECRET))
    };
    let gone = check(event(
        "customer.deleted",
        json!({"id": "cus_9", "object": "customer"}),
    ))
    .unwrap();
    assert_eq!(
        (gone[0].remote_id.as_str(), gone[0].deleted),
        ("cus_9", true)
    );
    let inv = check(event(
        "invoice.paid",
        json!({"id": "in_7", "object": "invoice", "status": "paid"}),
    ))
    .unwrap();
    assert_eq!(
        (
            inv[0].object.as_str(),
            inv[0].remote_id.as_str(),
            inv[0].deleted
        ),
        ("invoices", "in_7", false)
    );
    // not ferry's: subscriptions under customer.*, charges, an upcoming invoice without id
    for (kind, object) in [
        (
            "customer.subscription.created",
            json!({"id": "sub_1", "object": "subscription"}),
        ),
        (
            "charge.succeeded",
            json!({"id": "ch_1", "object": "charge"}),
        ),
        ("invoice.upcoming", json!({"object": "invoice"})),
    ] {
        assert!(check(event(kind, object)).unwrap().is_empty(), "{kind}");
    }
    assert!(matches!(
        check(b"not json".to_vec()),
        Err(WebhookError::Malformed(_))
    ));
}

#[tokio::test]
async fn the_simulators_deliveries_verify() {
    let got: Deliveries = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sim = sim(SimConfig {
        webhook_url: Some(url),
        webhook_secret: SECRET.into(),
        ..SimConfig::default()
    })
    .await;
    let s = connector(&sim);
    let ann = id(&sim.app_create_customer(json!({"name": "Ann"})).unwrap());
    sim.rotate_webhook_secret("whsec_next");
    sim.app_delete_customer(&ann).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "deliveries");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deliveries = got.lock().unwrap().clone();
    let mut changes = vec![];
    for (headers, body) in &deliveries {
        let request = WebhookRequest {
            method: "POST",
            url: "http://x/hook",
            headers,
            body,
        };
        changes.extend(s.parse_webhook(&request, Some(SECRET)).expect("verified"));
    }
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.remote_id.clone(), c.deleted))
            .collect::<Vec<_>>(),
        [(ann.clone(), false), (ann, true)]
    );
    let ids: Vec<String> = sim
        .records("events")
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        changes
            .iter()
            .map(|c| c.event_id.clone().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    // the second delivery carried two v1: the new secret alone verifies it too
    let (headers, body) = &deliveries[1];
    let request = WebhookRequest {
        method: "POST",
        url: "http://x/hook",
        headers,
        body,
    };
    assert!(s.parse_webhook(&request, Some("whsec_next")).is_ok());
}
