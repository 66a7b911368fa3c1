//! REST connector against the REST simulator, trust both ways: every sign-in kind (bearer, a
//! header, a query parameter, basic, client credentials, a login call) against the sim's
//! matching profile, wrong secrets as `ConnectorError::Auth`, sessions renewed once after the
//! sim's clock passes their ttl; and signed webhooks end to end — each scheme (secret, HMAC of
//! `{timestamp}.{body}` with a prefix, Standard Webhooks, JWT) with each payload (record,
//! changed fields, ids) received from the sim and parsed into events, tampering refused.

use std::time::Duration;

use serde_json::json;

use super::tests_support::{
    connect, connect_as, ids, numbers, props, sim, sim_with, text, walk, Hook, Receiver,
    CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY,
};
use crate::connectors::{ConnectorError, WebhookError, WebhookRequest};

const QUERY_SIM: &str = r#"
[auth]
kind = "query"
name = "key"
[resources.items]
path = "/items"
records = ""
[resources.items.pages]
style = "link"
"#;

/// (sim profile, seeded resource, connection snippet) of each static credential kind; the
/// listings page, so the credential goes with every page (next links carry no key).
const STATIC: [(&str, &str, &str); 4] = [
    (
        CURSOR_BEARER,
        "contacts",
        "[auth]\nkind = \"bearer\"\n[resources.contacts]\npath = \"/v1/contacts\"\n\
         records = \"/data\"\n[resources.contacts.pages]\nsize = 3",
    ),
    (
        OFFSET_APIKEY,
        "companies",
        "[auth]\nkind = \"header\"\nname = \"X-API-Key\"\n[resources.companies]\n\
         path = \"/api/companies\"\nrecords = \"/items\"\n[resources.companies.pages]\n\
         style = \"offset\"\nsize = 3",
    ),
    (
        QUERY_SIM,
        "items",
        "[auth]\nkind = \"query\"\nname = \"key\"\n[resources.items]\npath = \"/items\"\n\
         [resources.items.pages]\nstyle = \"link\"\nsize = 3",
    ),
    (
        LINK_BASIC,
        "tickets",
        "[auth]\nkind = \"basic\"\nusername = \"ferry\"\n[resources.tickets]\n\
         path = \"/tickets\"\n[resources.tickets.pages]\nstyle = \"link\"\n\
         size_param = \"per_page\"\nsize = 3",
    ),
];

#[track_caller]
fn auth_error<T: std::fmt::Debug>(r: Result<T, ConnectorError>) {
    match r {
        Err(ConnectorError::Auth(m)) => assert!(m.contains("401"), "{m}"),
        other => panic!("expected an auth failure, got {other:?}"),
    }
}

#[tokio::test]
async fn static_credentials_sign_every_page_and_wrong_ones_fail_as_auth() {
    for (profile, object, snippet) in STATIC {
        let sim = sim(profile, &[(object, 7)]).await;
        let c = connect(&sim, snippet);
        let (records, pages) = walk(c.as_ref(), object, &props(&["name"])).await;
        assert_eq!(records.len(), 7, "{object}");
        assert!(pages >= 3, "{object}: {pages} pages");
        assert_eq!(sim.stats().status(401), 0, "{object}");
        let wrong = connect_as(&sim, snippet, "not-the-secret");
        auth_error(wrong.list(object, &[], None).await);
        auth_error(wrong.fetch(object, &["1".into()], &[]).await);
        assert_eq!(sim.stats().status(401), 2, "{object}: no second try");
    }
    // basic: the user name counts as much as the password
    let (profile, object, snippet) = STATIC[3];
    let sim = sim(profile, &[(object, 1)]).await;
    let c = connect(
        &sim,
        &snippet.replace("username = \"ferry\"", "username = \"eve\""),
    );
    auth_error(c.list(object, &[], None).await);
}

const CC_SIM: &str = r#"
[auth]
kind = "client_credentials"
username = "app-id"
url = "/oauth/token"
ttl = "10m"
[resources.items]
path = "/items"
"#;

const CC: &str = r#"
[auth]
kind = "client_credentials"
username = "app-id"
url = "/oauth/token"
scope = "items:read"
[resources.items]
path = "/items"
records = "/data"
"#;

const LOGIN_SIM: &str = r#"
[auth]
kind = "login"
username = "ann"
url = "/session"
token = "/session/token"
ttl = "5m"
[resources.items]
path = "/items"
"#;

const LOGIN: &str = r#"
[auth]
kind = "login"
username = "ann"
url = "/session"
token = "/session/token"
[resources.items]
path = "/items"
records = "/data"
"#;

#[tokio::test]
async fn sessions_sign_in_once_and_again_after_they_expire() {
    for (profile, snippet, sign_in, ttl) in [
        (CC_SIM, CC, "POST /oauth/token", 600),
        (LOGIN_SIM, LOGIN, "POST /session", 300),
    ] {
        let sim = sim(profile, &[("items", 3)]).await;
        let c = connect(&sim, snippet);
        let p = props(&["name"]);
        for _ in 0..3 {
            assert_eq!(ids(&walk(c.as_ref(), "items", &p).await.0), numbers(3));
        }
        assert_eq!(
            sim.stats().route(sign_in),
            1,
            "{sign_in}: the session is kept"
        );
        // past the ttl on the app's clock (ferry's own clock still trusts the session): the
        // app answers 401, and the connector signs in again once, unseen by the caller
        sim.clock().advance(Duration::from_secs(ttl + 1));
        let got = c.fetch("items", &["2".into()], &p).await.expect("renewed");
        assert_eq!(got[0].properties["name"], "Record 2");
        assert_eq!(walk(c.as_ref(), "items", &p).await.0.len(), 3);
        let stats = sim.stats();
        assert_eq!(stats.route(sign_in), 2, "{sign_in}: signed in again once");
        assert_eq!(stats.status(401), 1, "{sign_in}: {stats:?}");

        let wrong = connect_as(&sim, snippet, "not-the-secret");
        match wrong.list("items", &[], None).await {
            Err(ConnectorError::Auth(m)) => assert!(m.contains("HTTP 401"), "{m}"),
            other => panic!("{sign_in}: expected an auth failure, got {other:?}"),
        }
        assert_eq!(
            sim.stats().route(sign_in),
            4,
            "one renewal, then the refusal"
        );
        assert_eq!(
            sim.stats().route("GET /items"),
            4,
            "no API call without a session"
        );
    }
}

/// Sim webhook lines and the connection's `[webhook]` for each scheme.
const SCHEMES: [(&str, &str); 4] = [
    ("secret", "scheme = \"secret\""),
    (
        "hmac",
        "scheme = \"hmac\"\nprefix = \"sha256=\"\nsigned = \"{timestamp}.{body}\"\n\
         timestamp_header = \"X-Timestamp\"",
    ),
    ("standard", "scheme = \"standard\""),
    ("jwt", "scheme = \"jwt\""),
];

const HOOKS_SIM: &str = r#"
[auth]
kind = "none"
[resources.people]
path = "/people"
[resources.orgs]
path = "/orgs"
ids = "string"
delete = "tombstone"
"#;

const HOOKS: &str = r#"
[resources.people]
path = "/people"
[resources.orgs]
path = "/orgs"
deleted = "deleted_at"
"#;

fn request<'a>(rx: &'a Receiver, hook: &'a Hook, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        url: &rx.url,
        headers: &hook.headers,
        body,
    }
}

#[tokio::test]
async fn webhooks_of_every_scheme_and_payload_parse_into_events() {
    for (scheme, lines) in SCHEMES {
        for payload in ["record", "changed", "ids"] {
            let rx = Receiver::start().await;
            let profile = format!("{HOOKS_SIM}[webhooks]\n{lines}\npayload = \"{payload}\"\n");
            let url = rx.url.clone();
            let sim = sim_with(&profile, &[], |cfg| cfg.webhook_url = Some(url)).await;
            let c = connect(&sim, &format!("{HOOKS}[webhook]\n{lines}\n"));
            let secret = sim.profile().webhooks.secret().to_string();
            let case = format!("{scheme}/{payload}");

            let ann = sim.insert("people", json!({"name": "Ann"}));
            sim.edit("people", &ann["id"], json!({"name": "Ann B"}))
                .expect("edited");
            assert!(sim.delete("people", &ann["id"]));
            let org = sim.insert("orgs", json!({"name": "Acme"}));
            assert!(sim.delete("orgs", &org["id"]));
            let hooks = rx.wait(5).await;
            assert_eq!(hooks.len(), 5, "{scheme}/{payload}: one delivery a change");

            let (p, o) = (text(&ann["id"]), text(&org["id"]));
            let want = [
                ("people", &p, false),
                ("people", &p, false),
                ("people", &p, true),
                ("orgs", &o, false),
                ("orgs", &o, true),
            ];
            let mut event_ids = Vec::new();
            for (hook, (object, id, deleted)) in hooks.iter().zip(want) {
                let events = c
                    .parse_webhook(&request(&rx, hook, &hook.body), Some(&secret))
                    .unwrap_or_else(|e| panic!("{case}: refused: {e}"));
                assert_eq!(events.len(), 1, "{case}");
                let e = &events[0];
                assert_eq!(
                    (e.object.as_str(), &e.remote_id, e.deleted),
                    (object, id, deleted),
                    "{case}: {}",
                    e.raw
                );
                event_ids.push(e.event_id.clone().expect("an event id"));
            }
            event_ids.dedup();
            assert_eq!(event_ids.len(), 5, "{case}: {event_ids:?}");

            let hook = &hooks[0];
            let wrong = c.parse_webhook(&request(&rx, hook, &hook.body), Some("wrong"));
            assert!(
                matches!(wrong, Err(WebhookError::Signature(_))),
                "{case}: {wrong:?}"
            );
            let none = c.parse_webhook(&request(&rx, hook, &hook.body), None);
            assert!(matches!(none, Err(WebhookError::NoSecret)), "{case}");
            if scheme != "secret" {
                // a static secret does not bind the body; every other scheme does
                let body = String::from_utf8(hook.body.to_vec()).expect("text");
                let tampered = body.replace("people.created", "people.deleted");
                assert_ne!(tampered, body, "{case}");
                let r = c.parse_webhook(&request(&rx, hook, tampered.as_bytes()), Some(&secret));
                assert!(
                    matches!(r, Err(WebhookError::Signature(_))),
                    "{case}: {r:?}"
                );
            }
        }
    }
}
