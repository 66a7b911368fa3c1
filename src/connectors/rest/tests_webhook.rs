//! REST connector, inbound edge: tests of webhook verification (every scheme) and of the
//! routing of deliveries into change events.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use super::config::{Resource, Webhook};
use super::signature::verify;
use super::webhook::parse;
use crate::connectors::{ChangeEvent, WebhookError, WebhookRequest};

const NOW: i64 = 1_700_000_000;
const BODY: &[u8] = br#"{"type":"contacts.updated","data":{"id":7}}"#;

/// Headers from `name: value` lines (a name may repeat).
fn headers(lines: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in lines.lines().filter_map(|l| l.split_once(": ")) {
        let name = HeaderName::from_bytes(k.trim().as_bytes()).unwrap();
        map.append(name, HeaderValue::from_str(v).unwrap());
    }
    map
}

/// One webhook configuration, secret and body, checked against header sets and clocks.
struct Case {
    config: Webhook,
    secret: String,
    body: Vec<u8>,
}

fn case(config: &str, secret: &str) -> Case {
    let config = toml::from_str(config).expect("webhook config");
    let (secret, body) = (secret.to_string(), BODY.to_vec());
    Case {
        config,
        secret,
        body,
    }
}

impl Case {
    fn body(mut self, body: &[u8]) -> Case {
        self.body = body.to_vec();
        self
    }
    fn run(&self, at: i64, lines: &str) -> Result<(), WebhookError> {
        let headers = headers(lines);
        let (method, url, body) = ("POST", "https://ferry.test/hooks", &self.body[..]);
        let request = WebhookRequest {
            method,
            url,
            headers: &headers,
            body,
        };
        let now = Utc.timestamp_opt(at, 0).unwrap();
        verify(&self.config, &request, &self.secret, now)
    }
    #[track_caller]
    fn ok(&self, at: i64, lines: &str) {
        if let Err(e) = self.run(at, lines) {
            panic!("refused {lines:?}: {e}");
        }
    }
    #[track_caller]
    fn no(&self, at: i64, lines: &str, needle: &str) {
        match self.run(at, lines) {
            Err(WebhookError::Signature(m)) => assert!(m.contains(needle), "{m:?} ∌ {needle:?}"),
            other => panic!("{lines:?}: expected a refusal with {needle:?}, got {other:?}"),
        }
    }
}

/// An `X-Signature` header line.
fn xs(signature: impl std::fmt::Display) -> String {
    format!("x-signature: {signature}")
}

fn mac256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(message);
    m.finalize().into_bytes().to_vec()
}

#[test]
fn none_and_secret_schemes() {
    case("scheme = \"none\"", "").ok(NOW, "");
    let c = case("scheme = \"secret\"", "s3cret");
    c.ok(NOW, "x-webhook-secret: s3cret");
    let wrong = "does not match the webhook secret";
    c.no(NOW, "X-Webhook-Secret: s3cre", wrong);
    c.no(NOW, "", "missing X-Webhook-Secret header");
    let c = case("scheme = \"secret\"\nheader = \"Authorization\"", "s3cret");
    c.ok(NOW, "authorization: Bearer s3cret");
    c.ok(NOW, "authorization: s3cret");
    c.no(NOW, "authorization: Bearer nope", wrong);
}

#[test]
fn hmac_hex_base64_prefix_and_sha512() {
    let sig = hex::encode(mac256(b"k", BODY));
    let c = case("", "k");
    c.ok(NOW, &xs(&sig));
    c.ok(NOW, &xs(sig.to_uppercase()));
    c.no(NOW, &xs(format!("{sig}x")), "no hex signature");
    case("", "other").no(NOW, &xs(&sig), "matches");
    case("", "k").body(b"{}").no(NOW, &xs(&sig), "matches");
    c.no(NOW, "", "missing X-Signature header");

    let c = case("prefix = \"sha256=\"\nheader = \"X-Hub\"", "k");
    c.ok(NOW, &format!("x-hub: sha256={sig}"));
    c.no(NOW, &format!("x-hub: {sig}"), "after `sha256=`");

    let c = case("encoding = \"base64\"", "k");
    let mac = mac256(b"k", BODY);
    c.ok(NOW, &xs(STANDARD.encode(&mac)));
    c.ok(NOW, &xs(URL_SAFE_NO_PAD.encode(&mac)));
    c.no(NOW, &xs(&sig), "matches");

    let c = case("algorithm = \"sha512\"", "k");
    let mut m = Hmac::<Sha512>::new_from_slice(b"k").unwrap();
    m.update(BODY);
    c.ok(NOW, &xs(hex::encode(m.finalize().into_bytes())));
    c.no(NOW, &xs(&sig), "matches");
}

#[test]
fn hmac_timestamp_template_and_rotation() {
    let config = "signed = \"{timestamp}.{body}\"\ntimestamp_header = \"X-Ts\"";
    let c = case(config, "k");
    let sig = hex::encode(mac256(b"k", &[format!("{NOW}.").as_bytes(), BODY].concat()));
    let good = format!("{}\nx-ts: {NOW}", xs(&sig));
    c.ok(NOW, &good);
    c.ok(NOW + 299, &good);
    c.no(NOW + 301, &good, "X-Ts timestamp outside the tolerance");
    c.no(NOW - 301, &good, "timestamp outside the tolerance");
    case(&format!("{config}\ntolerance = \"1h\""), "k").ok(NOW + 3000, &good);
    // the timestamp sent is not the one signed
    c.no(NOW, &format!("{}\nx-ts: {}", xs(&sig), NOW + 1), "matches");
    c.no(NOW, &xs(&sig), "missing X-Ts header");
    c.no(
        NOW,
        &format!("{}\nx-ts: soon", xs(&sig)),
        "not Unix seconds",
    );
    let unset = case("signed = \"{timestamp}.{body}\"", "k");
    unset.no(NOW, &xs(&sig), "no timestamp_header");

    // rotation: any of several signatures, comma- or space-separated, or repeated headers
    let new = hex::encode(mac256(b"k", BODY));
    let old = hex::encode(mac256(b"old", BODY));
    let c = case("", "k");
    c.ok(NOW, &xs(format!("{old},{new}")));
    c.ok(NOW, &xs(format!("{old} {new}")));
    c.ok(NOW, &xs(format!("{new}, {old}")));
    c.ok(NOW, &format!("{}\n{}", xs(&old), xs(&new)));
    c.no(NOW, &xs(format!("{old},{old}")), "matches");
    // with a prefix, only the prefixed parts are signatures (`t=…,v1=…`)
    let c = case("prefix = \"v1=\"", "k");
    c.ok(NOW, &xs(format!("t={NOW},v1={old},v1={new}")));
}

// Standard Webhooks' published test vector (the spec and its reference libraries).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_HEADERS: &str =
    "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\nwebhook-timestamp: 1614265330";
const SPEC_AT: i64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

#[test]
fn standard_webhooks_spec_vector_and_refusals() {
    let spec = |secret: &str| case("scheme = \"standard\"", secret).body(SPEC_BODY);
    let signed = |sig: &str| format!("{SPEC_HEADERS}\nwebhook-signature: {sig}");
    let c = spec(SPEC_SECRET);
    c.ok(SPEC_AT, &signed(SPEC_SIG));
    // rotation: a space-separated list, other versions ignored
    c.ok(
        SPEC_AT + 60,
        &signed(&format!("v1a,abcd v1,bm9wZQ== {SPEC_SIG}")),
    );
    // the same key without its whsec_ prefix
    spec(&SPEC_SECRET[6..]).ok(SPEC_AT, &signed(SPEC_SIG));
    spec(SPEC_SECRET)
        .body(br#"{"test": 1}"#)
        .no(SPEC_AT, &signed(SPEC_SIG), "matches");
    c.no(SPEC_AT, &signed("v1,bm9wZQ=="), "matches");
    c.no(SPEC_AT, &signed("v2,abc"), "no v1 signature");
    c.no(
        SPEC_AT + 301,
        &signed(SPEC_SIG),
        "webhook-timestamp timestamp outside the tolerance",
    );
    c.no(SPEC_AT - 301, &signed(SPEC_SIG), "outside the tolerance");
    spec("whsec_!!!").no(SPEC_AT, &signed(SPEC_SIG), "not base64");
    let no_id = format!("webhook-timestamp: {SPEC_AT}\nwebhook-signature: {SPEC_SIG}");
    c.no(SPEC_AT, &no_id, "missing webhook-id header");
    c.no(SPEC_AT, SPEC_HEADERS, "missing webhook-signature header");
    // a secret that is neither whsec_ nor base64 is used as raw bytes
    let signed_content = [&b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330."[..], SPEC_BODY].concat();
    let raw = STANDARD.encode(mac256(b"plain text!", &signed_content));
    spec("plain text!").ok(SPEC_AT, &signed(&format!("v1,{raw}")));
}

fn token(claims: Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap()
}

#[test]
fn jwt_signature_times_and_body_hash() {
    let c = case("scheme = \"jwt\"", "k");
    let bearer = |jwt: &str| format!("authorization: Bearer {jwt}");
    let hash = hex::encode(Sha256::digest(BODY));
    let good = token(json!({"iat": NOW, "exp": NOW + 60, "sha256": hash}), "k");
    c.ok(NOW, &bearer(&good));
    c.ok(NOW + 60 + 299, &bearer(&good)); // exp with the tolerance as leeway
    c.no(NOW + 60 + 301, &bearer(&good), "has expired");
    let signed = |claims: Value| bearer(&token(claims, "k"));
    c.no(NOW, &bearer(&token(json!({}), "other")), "bad signature");
    c.no(NOW, &signed(json!({"iat": NOW + 3600})), "in the future");
    c.no(NOW, &signed(json!({"nbf": NOW + 3600})), "not valid yet");
    let other_hash = hex::encode(Sha256::digest(b"{}"));
    let mismatch = signed(json!({"sha256": other_hash}));
    c.no(NOW, &mismatch, "sha256 claim does not match the body");
    // no time claims at all
    c.ok(NOW, &signed(json!({"sub": "app"})));
    // `alg: none` and garbage are refused
    let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none = format!("{head}.{}.", URL_SAFE_NO_PAD.encode("{}"));
    c.no(
        NOW,
        &bearer(&none),
        "Authorization header holds no valid HS256 JWT",
    );
    c.no(NOW, &bearer("not-a-jwt"), "no valid HS256 JWT");
    c.no(NOW, "", "missing Authorization header");
    case("scheme = \"jwt\"\nheader = \"X-Token\"", "k").ok(NOW, &format!("x-token: {good}"));
}

/// The events of an unsigned delivery, as `object/id [deleted] event-id` lines.
fn deliver(config: &str, names: &[&str], body: Value) -> Vec<String> {
    let config: Webhook = toml::from_str(&format!("scheme = \"none\"\n{config}")).unwrap();
    let body = serde_json::to_vec(&body).unwrap();
    let (headers, now) = (HeaderMap::new(), Utc.timestamp_opt(NOW, 0).unwrap());
    let request = WebhookRequest {
        method: "POST",
        url: "/",
        headers: &headers,
        body: &body,
    };
    let events = parse(&config, &resources(names), &request, None, now).unwrap();
    events
        .iter()
        .map(|e| {
            let deleted = if e.deleted { " deleted" } else { "" };
            format!(
                "{}/{}{deleted} {}",
                e.object,
                e.remote_id,
                e.event_id.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

fn resources(names: &[&str]) -> BTreeMap<String, Resource> {
    let resource = |n: &str| toml::from_str(&format!("path = \"/{n}\"\ndeleted = \"deleted_at\""));
    names
        .iter()
        .map(|n| (n.to_string(), resource(n).unwrap()))
        .collect()
}

#[test]
fn routes_events_to_resources() {
    let both = ["contacts", "deals"];
    let body = json!([
        {"id": "e1", "type": "contacts.updated", "data": {"id": 12}},
        {"id": 2, "type": "deals.deleted", "data": {"id": "d-1"}},
        {"id": "e3", "type": "invoices.paid", "data": {"id": 5}},
        {"id": "e4", "type": "contacts.created", "data": {}},
        {"id": "e5", "type": "contacts.updated", "data": {"id": 13, "deleted_at": "2024-01-01T00:00:00Z"}},
        {"id": "e6", "type": "contacts.updated", "data": {"id": 14, "deleted_at": null}},
        {"id": "e7", "type": "deals", "data": {"id": 15, "deleted_at": false}},
        {"type": "contacts.deleted", "data": {"id": 16}},
    ]);
    let expected = [
        "contacts/12 e1",
        "deals/d-1 deleted 2",
        "contacts/13 deleted e5",
        "contacts/14 e6",
        "deals/15 e7",
        "contacts/16 deleted -",
    ];
    assert_eq!(deliver("", &both, body), expected);
    // one resource: every event is about it, whatever its type; with two, an unknown type is skipped
    let other = json!({"type": "person.removed", "data": {"id": 1}});
    assert_eq!(deliver("", &["contacts"], other.clone()), ["contacts/1 -"]);
    assert!(deliver("", &both, other.clone()).is_empty());
    assert_eq!(deliver("resource = \"deals\"", &both, other), ["deals/1 -"]);
    // pointers for the events, resource, id, event id and type; custom delete types
    let config = r#"events = "/events"
        resource_from = "/object"
        id = "/record/key"
        event_id = "/meta/uid"
        kind = "/action"
        deletes = ["removed", "purge"]"#;
    let body = json!({"events": [
        {"object": "contacts", "action": "removed", "record": {"key": 4}, "meta": {"uid": "u1"}},
        {"object": "deals", "action": "deal.purge", "record": {"key": "9"}, "id": "x"},
        {"object": "tickets", "action": "created", "record": {"key": 1}},
        {"object": "deals", "action": "deal.purged", "record": {"key": 10, "deleted_at": 1}},
        {"action": "contacts.removed", "record": {"key": 11}},
    ]});
    let expected = [
        "contacts/4 deleted u1",
        "deals/9 deleted x",
        "deals/10 deleted -",
        "contacts/11 deleted -", // no /object: routed by its type
    ];
    assert_eq!(deliver(config, &both, body), expected);
    // a delivery without events (a ping) carries nothing
    assert!(deliver("events = \"/events\"", &["contacts"], json!({"ping": true})).is_empty());
    // Directus: ids in an array (`keys`, one event per item, each its own event id) or
    // alone (`key`, of a create); pointers tried in order
    let directus = r#"resource_from = "/collection"
        id = ["/keys", "/key"]
        kind = "/event"
        event_id = "/uid"
        deletes = ["delete"]"#;
    let body = json!([
        {"event": "contacts.items.update", "collection": "contacts", "keys": [7, "8"], "uid": "a"},
        {"event": "contacts.items.create", "collection": "contacts", "key": 9, "uid": "b"},
        {"event": "deals.items.delete", "collection": "deals", "keys": [3], "uid": "c"},
        {"event": "deals.items.update", "collection": "deals", "keys": [], "uid": "d"},
    ]);
    let expected = [
        "contacts/7 a#7",
        "contacts/8 a#8",
        "contacts/9 b",
        "deals/3 deleted c",
    ];
    assert_eq!(deliver(directus, &both, body), expected);
}

#[test]
fn secrets_bodies_and_standard_event_ids() {
    let contacts = resources(&["contacts"]);
    let now = Utc.timestamp_opt(NOW, 0).unwrap();
    let (standard, none): (Webhook, Webhook) = (
        toml::from_str("scheme = \"standard\"").unwrap(),
        toml::from_str("scheme = \"none\"").unwrap(),
    );
    let run = |config: &Webhook, headers: &HeaderMap, body: &[u8], secret: Option<&str>| {
        let request = WebhookRequest {
            method: "POST",
            url: "/",
            headers,
            body,
        };
        parse(config, &contacts, &request, secret, now)
    };
    let empty = HeaderMap::new();
    let refusal = |r: Result<Vec<ChangeEvent>, WebhookError>| match r.unwrap_err() {
        WebhookError::NoSecret => "no secret",
        WebhookError::Signature(_) => "signature",
        WebhookError::Malformed(_) => "malformed",
    };
    assert_eq!(refusal(run(&standard, &empty, b"{}", None)), "no secret");
    assert_eq!(
        refusal(run(&standard, &empty, b"{}", Some("k"))),
        "signature"
    );
    assert_eq!(refusal(run(&none, &empty, b"{nope", None)), "malformed");
    assert_eq!(refusal(run(&none, &empty, b"\"hi\"", None)), "malformed");

    // the webhook-id names the delivery; several events get #index
    let secret = format!("whsec_{}", STANDARD.encode(b"0123456789abcdef"));
    let signed = |body: &[u8]| {
        let content = [format!("msg_1.{NOW}.").as_bytes(), body].concat();
        let sig = STANDARD.encode(mac256(b"0123456789abcdef", &content));
        headers(&format!(
            "webhook-id: msg_1\nwebhook-timestamp: {NOW}\nwebhook-signature: v1,{sig}"
        ))
    };
    let one = br#"{"id": "e1", "type": "contacts.updated", "data": {"id": 1}}"#;
    let events = run(&standard, &signed(one), one, Some(&secret)).unwrap();
    assert_eq!(
        (events[0].event_id.as_deref(), events[0].remote_id.as_str()),
        (Some("msg_1"), "1")
    );
    assert_eq!(events[0].raw["type"], "contacts.updated");
    let two = br#"[{"data": {"id": 1}}, {"data": {"id": 2}}]"#;
    let events = run(&standard, &signed(two), two, Some(&secret)).unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.event_id.clone().unwrap()).collect();
    assert_eq!(ids, ["msg_1#0", "msg_1#1"]);
}

#[test]
fn whole_records_are_read_from_events_only_when_configured() {
    let res = &resources(&["contacts"])["contacts"];
    let event = json!({"type": "contacts.updated",
                       "data": {"id": 12, "updated_at": "2024-05-01T10:00:00Z",
                                "email": "a@x.com", "address": {"city": "Oslo"}}});
    let props = ["email".to_string(), "address.city".to_string()];
    let config = |extra: &str| -> Webhook { toml::from_str(extra).expect("webhook config") };
    let rec = super::webhook::carried_record(&config("carries = \"records\""), res, &event, &props)
        .expect("a carried record");
    assert_eq!(rec.id, "12");
    assert_eq!(rec.updated_at.map(|t| t.timestamp()), Some(1_714_557_600));
    assert_eq!(rec.properties["address.city"], json!("Oslo"));
    assert!(!rec.archived);
    for other in ["", "carries = \"ids\"", "carries = \"changes\""] {
        assert!(super::webhook::carried_record(&config(other), res, &event, &props).is_none());
    }
    // an event whose id names no object (`/id` at the top) carries the event itself
    let top = config("carries = \"records\"\nid = \"/id\"");
    let flat = json!({"id": 7, "email": "b@x.com"});
    assert_eq!(
        super::webhook::carried_record(&top, res, &flat, &props).map(|r| r.id),
        Some("7".into())
    );
}
