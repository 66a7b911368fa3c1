//! REST simulator: webhook tests — each signing scheme verified by an independent
//! computation here (HMAC over a template, a static secret, Standard Webhooks, an HS256 JWT),
//! the event body (the sim's own, or shaped as an app's by `[webhooks.event]` and `kinds`),
//! extra headers and delivery ids, the payload kinds, in-app edits sending events, and drops.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use super::tests_support::{
    start_with, until, Client, Hook, Receiver, CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY,
};

fn hmac256(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("key");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

fn hmac512(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("key");
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

/// A sim of `profile` delivering to a fresh receiver.
async fn with_receiver(profile: &str) -> (super::RestSim, Receiver) {
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let sim = start_with(profile, move |cfg| cfg.webhook_url = Some(url)).await;
    (sim, rx)
}

#[tokio::test]
async fn hmac_over_timestamp_and_body_with_whole_records() {
    let (sim, rx) = with_receiver(CURSOR_BEARER).await;
    let c = Client::new(&sim);
    c.post("/v1/contacts", &json!({"email": "a@x.com", "name": "A"}))
        .await;
    c.patch("/v1/contacts/1", &json!({"name": "B"})).await;
    c.delete("/v1/contacts/1").await;
    let hooks = rx.wait(3).await;
    for h in &hooks {
        let ts = h.header("x-timestamp");
        let now = sim.clock().now().timestamp();
        assert!((now - ts.parse::<i64>().expect("unix secs")).abs() <= 5);
        let mut text = format!("{ts}.").into_bytes();
        text.extend_from_slice(&h.body);
        let want = format!("sha256={}", hex::encode(hmac256(b"whsec-sim", &text)));
        assert_eq!(h.header("x-signature"), want);
        assert_eq!(h.header("content-type"), "application/json");
    }
    let events: Vec<Value> = hooks.iter().map(Hook::json).collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        ["contacts.created", "contacts.updated", "contacts.deleted"]
    );
    let e = &events[1];
    assert_eq!(
        (&e["id"], &e["resource"]),
        (&json!("evt_2"), &json!("contacts"))
    );
    assert_eq!(e["data"]["name"], "B");
    assert_eq!(e["data"]["email"], "a@x.com");
    assert_eq!(e["occurred_at"], e["data"]["updated_at"]);
    assert_eq!(
        events[2]["data"],
        json!({"id": 1}),
        "a hard delete leaves only the id"
    );
    until("3 counted", || sim.webhook_counts().delivered == 3).await;
}

#[tokio::test]
async fn standard_webhooks_with_changed_fields() {
    let (sim, rx) = with_receiver(OFFSET_APIKEY).await;
    let c = Client::new(&sim);
    let created = c
        .post(
            "/api/companies",
            &json!({"company": {"name": "Acme", "size": 3}}),
        )
        .await;
    let id = created.body["item"]["id"].clone();
    let item = format!("/api/companies/{}", id.as_str().expect("id"));
    sim.clock().advance(std::time::Duration::from_secs(2));
    c.put(&item, &json!({"company": {"name": "Acme", "city": "Oslo"}}))
        .await;
    sim.clock().advance(std::time::Duration::from_secs(2));
    c.delete(&item).await;
    let hooks = rx.wait(3).await;
    // the default secret is the spec's example key
    let key = STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .expect("base64");
    let mut msg_ids = Vec::new();
    for h in &hooks {
        let (mid, ts) = (h.header("webhook-id"), h.header("webhook-timestamp"));
        assert!(mid.starts_with("msg_"), "{mid}");
        let mut text = format!("{mid}.{ts}.").into_bytes();
        text.extend_from_slice(&h.body);
        let want = format!("v1,{}", STANDARD.encode(hmac256(&key, &text)));
        assert_eq!(h.header("webhook-signature"), want);
        msg_ids.push(mid);
    }
    msg_ids.dedup();
    assert_eq!(msg_ids.len(), 3, "unique ids");
    let events: Vec<Value> = hooks.iter().map(Hook::json).collect();
    let d = &events[0]["data"];
    assert_eq!(
        (&d["id"], &d["name"], &d["size"]),
        (&id, &json!("Acme"), &json!(3))
    );
    assert!(
        events[0]["occurred_at"].is_i64(),
        "unix seconds like the records"
    );
    let d = events[1]["data"].as_object().expect("changed fields");
    let mut keys: Vec<&str> = d.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["city", "id", "size", "updated_at"], "{d:?}");
    assert!(d["size"].is_null(), "removed by the PUT");
    let d = events[2]["data"].as_object().expect("tombstone fields");
    assert!(d["deleted_at"].is_i64() && d.contains_key("updated_at") && !d.contains_key("name"));
    assert_eq!(events[2]["type"], "companies.deleted");
}

#[tokio::test]
async fn jwt_webhooks_carry_ids_only() {
    let (sim, rx) = with_receiver(LINK_BASIC).await;
    let t = sim.insert("tickets", json!({"title": "from the app"}));
    sim.edit("tickets", &t["id"], json!({"title": "edited in the app"}));
    sim.delete("tickets", &t["id"]);
    let hooks = rx.wait(3).await;
    for h in &hooks {
        let auth = h.header("authorization");
        let jwt = auth.strip_prefix("Bearer ").expect("a bearer JWT");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(head["alg"], "HS256");
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.encode(hmac256(b"whsec-sim", signing_input.as_bytes()));
        assert_eq!(parts[2], sig);
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(
            claims["sha256"],
            json!(hex::encode(Sha256::digest(&h.body)))
        );
        let iat = claims["iat"].as_i64().expect("iat");
        assert_eq!(claims["exp"], json!(iat + 300));
    }
    let events: Vec<Value> = hooks.iter().map(Hook::json).collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        ["tickets.created", "tickets.updated", "tickets.deleted"]
    );
    assert!(events.iter().all(|e| e["data"] == json!({"id": 1})));
}

const SECRET_AND_SHA512: &str = r#"
[auth]
kind = "none"
[resources.a]
path = "/a"
ids = "string"
[webhooks]
scheme = "SCHEME"
header = "X-Hook"
algorithm = "sha512"
encoding = "base64"
secret = "shh"
"#;

#[tokio::test]
async fn a_static_secret_and_sha512_base64() {
    let (sim, rx) = with_receiver(&SECRET_AND_SHA512.replace("SCHEME", "secret")).await;
    let r = sim.insert("a", json!({"n": 1}));
    let hooks = rx.wait(1).await;
    assert_eq!(hooks[0].header("x-hook"), "shh");
    let e = hooks[0].json();
    assert_eq!(e["data"]["id"], r["id"], "string ids stay strings");
    assert!(e["data"]["id"].is_string());

    let (sim, rx) = with_receiver(&SECRET_AND_SHA512.replace("SCHEME", "hmac")).await;
    sim.insert("a", json!({"n": 1}));
    let hooks = rx.wait(1).await;
    let want = STANDARD.encode(hmac512(b"shh", &hooks[0].body));
    assert_eq!(hooks[0].header("x-hook"), want);
}

#[tokio::test]
async fn unsigned_hooks_drops_and_a_late_url() {
    let profile =
        "[auth]\nkind = \"none\"\n[resources.a]\npath = \"/a\"\n[webhooks]\nscheme = \"none\"\n";
    let (sim, rx) = with_receiver(profile).await;
    sim.insert("a", json!({}));
    let hooks = rx.wait(1).await;
    assert!(hooks[0].headers.get("x-signature").is_none());
    sim.faults().set_webhook_drop_rate(1.0);
    sim.insert("a", json!({}));
    until("a drop", || sim.webhook_counts().dropped == 1).await;
    sim.faults().set_webhook_drop_rate(0.0);
    sim.set_webhook_url(None);
    sim.insert("a", json!({}));
    sim.set_webhook_url(Some(rx.url.clone()));
    sim.insert("a", json!({}));
    let hooks = rx.wait(2).await;
    assert_eq!(
        hooks[1].json()["id"],
        "evt_4",
        "events made without a URL are not sent"
    );
}

/// GitHub-like: `{"action", "issue"}`, the event in a header, a delivery id.
const GITHUB_LIKE: &str = r#"
[resources.issues]
path = "/issues"
id_field = "number"
[webhooks]
header = "X-Hub-Signature-256"
prefix = "sha256="
id_header = "X-GitHub-Delivery"
headers = { "X-GitHub-Event" = "issues" }
event = { kind = "/action", record = "/issue", resource = "", id = "", time = "" }
kinds = { created = "opened", updated = "edited", deleted = "deleted" }
"#;

/// Strapi-like: `{"event", "model", "entry", "createdAt"}`, `Bearer <secret>`, the event
/// type in a header, a model name other than the resource's.
const STRAPI_LIKE: &str = r#"
[resources.article]
path = "/articles"
ids = "string"
id_field = "documentId"
also_numeric_id = true
[webhooks]
scheme = "secret"
header = "Authorization"
prefix = "Bearer "
resource_value = "api::{resource}.{resource}"
headers = { "X-Strapi-Event" = "{kind}" }
event = { kind = "/event", resource = "/uid", record = "/entry", id = "", time = "/createdAt" }
kinds = { created = "entry.create", updated = "entry.update", deleted = "entry.delete" }
"#;

/// Directus-like: `{"event", "collection", "payload", "keys"}`, creates naming their `key`.
const DIRECTUS_LIKE: &str = r#"
[resources.tickets]
path = "/items/tickets"
[webhooks]
scheme = "secret"
payload = "changed"
event = { kind = "/event", resource = "/collection", record = "/payload", id = "", time = "", keys = "/keys", key = "/key" }
kinds = { created = "{resource}.items.create", updated = "{resource}.items.update", deleted = "{resource}.items.delete" }
"#;

#[tokio::test]
async fn event_bodies_and_headers_shaped_as_an_apps() {
    let (sim, rx) = with_receiver(GITHUB_LIKE).await;
    let i = sim.insert("issues", json!({"title": "Bug", "state": "open"}));
    sim.edit("issues", &i["number"], json!({"state": "closed"}));
    sim.delete("issues", &i["number"]);
    let hooks = rx.wait(3).await;
    let actions: Vec<Value> = hooks.iter().map(|h| h.json()["action"].clone()).collect();
    assert_eq!(
        actions,
        [json!("opened"), json!("edited"), json!("deleted")]
    );
    let edited = hooks[1].json();
    assert_eq!(edited["issue"]["state"], "closed");
    assert_eq!(edited["issue"]["number"], 1);
    assert_eq!(
        hooks[2].json(),
        json!({"action": "deleted", "issue": {"number": 1}})
    );
    let mut deliveries: Vec<String> = hooks
        .iter()
        .map(|h| h.header("x-github-delivery"))
        .collect();
    assert!(
        deliveries.iter().all(|d| d.starts_with("msg_")),
        "{deliveries:?}"
    );
    deliveries.dedup();
    assert_eq!(deliveries.len(), 3, "one id per event");
    for h in &hooks {
        assert_eq!(h.header("x-github-event"), "issues");
        let want = format!("sha256={}", hex::encode(hmac256(b"whsec-sim", &h.body)));
        assert_eq!(h.header("x-hub-signature-256"), want);
    }

    let (sim, rx) = with_receiver(STRAPI_LIKE).await;
    let a = sim.insert("article", json!({"title": "Hello"}));
    sim.edit("article", &a["documentId"], json!({"title": "Hello!"}));
    let hooks = rx.wait(2).await;
    let e = hooks[1].json();
    assert_eq!(
        (&e["event"], &e["uid"]),
        (&json!("entry.update"), &json!("api::article.article"))
    );
    assert_eq!(
        (&e["entry"]["documentId"], &e["entry"]["id"]),
        (&a["documentId"], &json!(1))
    );
    assert_eq!(e["createdAt"], e["entry"]["updated_at"]);
    assert_eq!(hooks[1].header("x-strapi-event"), "entry.update");
    assert_eq!(hooks[1].header("authorization"), "Bearer whsec-sim");

    let (sim, rx) = with_receiver(DIRECTUS_LIKE).await;
    let t = sim.insert("tickets", json!({"subject": "Disk full"}));
    sim.edit("tickets", &t["id"], json!({"status": "pending"}));
    sim.delete("tickets", &t["id"]);
    let events: Vec<Value> = rx.wait(3).await.iter().map(Hook::json).collect();
    assert_eq!(events[0]["event"], "tickets.items.create");
    assert_eq!(
        (&events[0]["key"], events[0].get("keys")),
        (&json!(1), None)
    );
    assert_eq!(events[1]["event"], "tickets.items.update");
    assert_eq!(
        (&events[1]["keys"], &events[1]["collection"]),
        (&json!([1]), &json!("tickets"))
    );
    assert_eq!(events[1]["payload"]["status"], "pending");
    assert!(
        events[1]["payload"].get("subject").is_none(),
        "changed fields only"
    );
    assert_eq!(
        (&events[2]["event"], &events[2]["keys"]),
        (&json!("tickets.items.delete"), &json!([1]))
    );
}

#[tokio::test]
async fn batched_deliveries_carry_arrays_of_queued_events() {
    let rx = Receiver::start().await;
    let url = rx.url.clone();
    let sim = start_with(CURSOR_BEARER, move |cfg| {
        cfg.profile.webhooks.batch = 3;
        cfg.seed.insert("contacts".into(), 7);
        cfg.webhook_url = Some(url);
    })
    .await;
    for id in 1..=7 {
        sim.edit("contacts", &json!(id), json!({"phone": format!("+{id}")}))
            .expect("edit");
    }
    until("7 events delivered", || {
        sim.webhook_counts().events_delivered == 7
    })
    .await;
    let hooks = rx.wait(1).await;
    let mut phones = vec![];
    for h in &hooks {
        let ts = h.header("x-timestamp");
        let mut text = format!("{ts}.").into_bytes();
        text.extend_from_slice(&h.body);
        let want = format!("sha256={}", hex::encode(hmac256(b"whsec-sim", &text)));
        assert_eq!(h.header("x-signature"), want, "the array body is signed");
        let events = h.json();
        let events = events.as_array().expect("a batch is a JSON array");
        assert!((1..=3).contains(&events.len()), "{} events", events.len());
        phones.extend(events.iter().map(|e| e["data"]["phone"].clone()));
    }
    let want: Vec<Value> = (1..=7).map(|id| json!(format!("+{id}"))).collect();
    assert_eq!(phones, want, "every event once, in order");
    assert!(hooks.len() < 7, "queued events share deliveries");
}
