//! REST simulator: auth tests over HTTP — every kind accepts its credential and refuses a
//! wrong or missing one; client-credentials and login tokens expire after `ttl` on the sim
//! clock; a login body of the profile's keys and its answer's lifetime; the rate limit
//! answers 429 with `Retry-After`.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::json;

use super::tests_support::{start, Client, CURSOR_BEARER, LINK_BASIC, OFFSET_APIKEY};

fn refused(a: &super::tests_support::Answer) {
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.body["error"], "unauthorized");
    assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn bearer_header_query_basic_and_none() {
    let sim = start(CURSOR_BEARER).await;
    assert_eq!(Client::new(&sim).get("/v1/contacts").await.status, 200);
    refused(&Client::bare(&sim).get("/v1/contacts").await);
    let wrong = Client::bare(&sim).header("Authorization", "Bearer nope");
    let a = wrong.get("/v1/contacts").await;
    refused(&a);
    assert!(a
        .header("www-authenticate")
        .is_some_and(|h| h.starts_with("Bearer")));

    let sim = start(OFFSET_APIKEY).await;
    assert_eq!(Client::new(&sim).get("/api/companies").await.status, 200);
    refused(
        &Client::bare(&sim)
            .header("X-API-Key", "nope")
            .get("/api/companies")
            .await,
    );
    let bearer = Client::bare(&sim).header("Authorization", "Bearer sim-secret");
    refused(&bearer.get("/api/companies").await);

    let sim =
        start("[auth]\nkind = \"query\"\nname = \"key\"\n[resources.a]\npath = \"/a\"\n").await;
    assert_eq!(Client::new(&sim).get("/a").await.status, 200);
    refused(&Client::bare(&sim).get("/a?key=nope").await);
    refused(&Client::bare(&sim).get("/a").await);

    let sim = start(LINK_BASIC).await;
    assert_eq!(Client::new(&sim).get("/tickets").await.status, 200);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for creds in ["ferry:nope", "other:sim-secret"] {
        let c = Client::bare(&sim).header("Authorization", &format!("Basic {}", b64(creds)));
        refused(&c.get("/tickets").await);
    }
    refused(&Client::bare(&sim).get("/tickets").await);

    let sim = start("[auth]\nkind = \"none\"\n[resources.a]\npath = \"/a\"\n").await;
    assert_eq!(Client::bare(&sim).get("/a").await.status, 200);
}

const OAUTH: &str = r#"
[auth]
kind = "client_credentials"
url = "/oauth2/token"
username = "client-1"
secret = "s3cret"
ttl = "10m"

[resources.a]
path = "/a"
"#;

#[tokio::test]
async fn client_credentials_tokens_work_until_their_ttl() {
    let sim = start(OAUTH).await;
    let c = Client::bare(&sim);
    let token_url = format!("{}/oauth2/token", sim.base_url());
    let form = |body: &str| {
        c.http
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
    };
    let resp =
        form("grant_type=client_credentials&client_id=client-1&client_secret=s3cret&scope=read")
            .send()
            .await
            .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        (&v["token_type"], &v["expires_in"], &v["scope"]),
        (&json!("Bearer"), &json!(600), &json!("read"))
    );
    let token = v["access_token"].as_str().expect("token").to_string();

    // the client may also authenticate with HTTP basic
    let resp = c
        .http
        .post(&token_url)
        .basic_auth("client-1", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);

    let wrong = form("grant_type=client_credentials&client_id=client-1&client_secret=nope")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status().as_u16(), 401);
    let v: serde_json::Value = wrong.json().await.expect("json");
    assert_eq!(v["error"], "invalid_client");
    let grant = form("grant_type=password").send().await.expect("sent");
    assert_eq!(grant.status().as_u16(), 400);
    assert_eq!(c.get("/oauth2/token").await.status, 405);

    let authed = Client::bare(&sim).header("Authorization", &format!("Bearer {token}"));
    assert_eq!(authed.get("/a").await.status, 200);
    refused(
        &Client::bare(&sim)
            .header("Authorization", "Bearer s3cret")
            .get("/a")
            .await,
    );
    sim.clock().advance(Duration::from_secs(9 * 60));
    assert_eq!(authed.get("/a").await.status, 200);
    sim.clock().advance(Duration::from_secs(61));
    let expired = authed.get("/a").await;
    refused(&expired);
    assert!(expired.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("expired")));
}

const LOGIN: &str = r#"
[auth]
kind = "login"
url = "/session"
name = "X-Session"
username = "ops"
secret = "pw"
token = "/data/session/token"
ttl = "30s"

[resources.a]
path = "/a"
"#;

#[tokio::test]
async fn login_sessions_work_until_their_ttl() {
    let sim = start(LOGIN).await;
    let c = Client::bare(&sim);
    let bad = c
        .post("/session", &json!({"username": "ops", "password": "no"}))
        .await;
    refused(&bad);
    assert_eq!(
        c.post("/session", &json!({"user": "ops"})).await.status,
        400
    );
    let ok = c
        .post("/session", &json!({"username": "ops", "password": "pw"}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = ok.body["data"]["session"]["token"]
        .as_str()
        .expect("token")
        .to_string();
    let bare = Client::bare(&sim).header("X-Session", &token);
    assert_eq!(bare.get("/a").await.status, 200);
    let bearer = Client::bare(&sim).header("X-Session", &format!("Bearer {token}"));
    assert_eq!(bearer.get("/a").await.status, 200);
    refused(
        &Client::bare(&sim)
            .header("X-Session", "sess_nope")
            .get("/a")
            .await,
    );
    refused(
        &Client::bare(&sim)
            .header("Authorization", &format!("Bearer {token}"))
            .get("/a")
            .await,
    );
    sim.clock().advance(Duration::from_secs(31));
    refused(&bare.get("/a").await);
}

/// Directus-like: `{"email", "password"}` and the lifetime in milliseconds beside the token.
const EMAIL_LOGIN: &str = r#"
[auth]
kind = "login"
url = "/auth/login"
username = "ferry@example.com"
body = { email = "{username}", password = "{secret}" }
token = "/data/access_token"
expires = "/data/expires"
expires_unit = "ms"
ttl = "15m"

[resources.a]
path = "/a"
"#;

#[tokio::test]
async fn login_bodies_take_the_profile_keys() {
    let sim = start(EMAIL_LOGIN).await;
    let c = Client::bare(&sim);
    let old = json!({"username": "ferry@example.com", "password": "sim-secret"});
    let a = c.post("/auth/login", &old).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("\"email\"")));
    let wrong = json!({"email": "ferry@example.com", "password": "nope", "mode": "json"});
    refused(&c.post("/auth/login", &wrong).await);
    let ok = json!({"email": "ferry@example.com", "password": "sim-secret", "mode": "json"});
    let a = c.post("/auth/login", &ok).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["data"]["expires"], 900_000);
    let token = a.body["data"]["access_token"].as_str().expect("token");
    let authed = Client::bare(&sim).header("Authorization", &format!("Bearer {token}"));
    assert_eq!(authed.get("/a").await.status, 200);
}

#[tokio::test]
async fn the_rate_limit_answers_429_until_the_window_moves() {
    let sim =
        start("rate_limit = \"3/10s\"\n[auth]\nkind = \"none\"\n[resources.a]\npath = \"/a\"\n")
            .await;
    let c = Client::bare(&sim);
    for _ in 0..3 {
        assert_eq!(c.get("/a").await.status, 200);
    }
    let limited = c.call(Method::GET, "/a", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.body["error"], "rate_limited");
    let wait: u64 = limited
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("Retry-After");
    assert!((1..=10).contains(&wait), "{wait}");
    sim.clock().advance(Duration::from_secs(10));
    assert_eq!(c.get("/a").await.status, 200);
    assert_eq!(sim.stats().throttled, 1);
}
