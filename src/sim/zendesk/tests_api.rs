//! Zendesk simulator: API tests over real HTTP — auth both ways, user and organization CRUD,
//! validation errors, cursor and offset paging, show_many, search and create_or_update.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{SimConfig, ZendeskSim};

pub(super) async fn start(cfg: SimConfig) -> ZendeskSim {
    ZendeskSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

pub(super) fn basic(email: &str, token: &str) -> String {
    let raw = format!("{email}/token:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

pub(super) struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

impl Client {
    pub(super) fn new(sim: &ZendeskSim) -> Client {
        Client::with_auth(sim, basic(&sim.email(), &sim.token()))
    }

    pub(super) fn with_auth(sim: &ZendeskSim, auth: String) -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Client {
            http,
            base: sim.base_url(),
            auth,
        }
    }

    pub(super) async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request sent")
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let resp = self.raw(method, path, body).await;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// GET of an absolute URL the simulator printed (a `next_page` or `after_url`).
    pub(super) async fn follow(&self, url: &str) -> (u16, Value) {
        let path = url.strip_prefix(&self.base).expect("link on this sim");
        self.call(Method::GET, path, None).await
    }
}

/// Polls `check` every 10 ms until it holds, failing after 5 s.
pub(super) async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(super) fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

pub(super) fn is_iso_seconds(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 20 && s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok()
    })
}

const U: &str = "/api/v2/users";
const O: &str = "/api/v2/organizations";

#[tokio::test]
async fn auth_basic_bearer_and_refusals() {
    let sim = start(SimConfig {
        oauth_token: Some("oauth-123".into()),
        ..SimConfig::default()
    })
    .await;
    let refused = [
        None,
        Some(basic("agent@example.com", "wrong")),
        Some(basic("someone@example.com", "sim-token")),
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("agent@example.com:sim-token")
        )),
        Some("Bearer sim-token".to_string()),
        Some("Bearer nope".to_string()),
    ];
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for auth in &refused {
        let mut req = http.get(format!("{}{U}", sim.base_url()));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("sent");
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        assert!(resp.headers().get("www-authenticate").is_some());
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body, json!({"error": "Couldn't authenticate you"}));
    }
    for auth in [
        basic("AGENT@example.com", "sim-token"),
        "Bearer oauth-123".to_string(),
    ] {
        let (status, body) = Client::with_auth(&sim, auth)
            .call(Method::GET, "/api/v2/users/me.json", None)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["email"], "agent@example.com");
        assert_eq!(body["user"]["role"], "admin");
    }
    let s = sim.stats();
    assert_eq!((s.requests, s.unauthorized), (8, 6));
    assert_eq!(s.by_route.get("GET /api/v2/users/me"), Some(&2));
    sim.shutdown();
}

#[tokio::test]
async fn user_crud_round_trip() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let resp = c
        .raw(
            Method::POST,
            &format!("{U}.json"),
            Some(json!({"user": {"name": "Ann Lee", "email": "Ann@Example.com", "external_id": "crm-1", "phone": "+15551234", "tags": ["VIP"], "user_fields": {"plan": "pro"}}})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"]
        .to_str()
        .expect("loc")
        .to_string();
    let body: Value = resp.json().await.expect("json");
    let user = &body["user"];
    let id = user["id"].as_u64().expect("integer id");
    assert!(id > u64::from(u32::MAX), "ids are large integers");
    assert_eq!(location, format!("{}{U}/{id}.json", sim.base_url()));
    assert_eq!(user["url"], location.as_str());
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(
        (
            user["role"].clone(),
            user["active"].clone(),
            user["tags"].clone()
        ),
        (json!("end-user"), json!(true), json!(["vip"]))
    );
    assert_eq!(user["user_fields"], json!({"plan": "pro"}));
    assert!(is_iso_seconds(&user["created_at"]) && is_iso_seconds(&user["updated_at"]));

    let (status, got) = c.call(Method::GET, &format!("{U}/{id}"), None).await;
    assert_eq!((status, &got["user"]), (200, user));

    sim.clock().advance(Duration::from_secs(5));
    let (status, put) = c
        .call(
            Method::PUT,
            &format!("{U}/{id}.json"),
            Some(json!({"user": {"name": "Ann Park", "user_fields": {"tier": 2}, "id": 1}})),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["user"]["name"], "Ann Park");
    assert_eq!(put["user"]["id"], id, "read-only id ignored");
    assert_eq!(
        put["user"]["user_fields"],
        json!({"plan": "pro", "tier": 2})
    );
    assert!(put["user"]["updated_at"].as_str() > user["updated_at"].as_str());

    let (status, deleted) = c.call(Method::DELETE, &format!("{U}/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["user"]["active"], false);
    let (_, listed) = c.call(Method::GET, U, None).await;
    let ids: Vec<u64> = listed["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_u64())
        .collect();
    assert!(!ids.contains(&id), "deleted users are not listed");
    let (status, still) = c.call(Method::GET, &format!("{U}/{id}"), None).await;
    assert_eq!(
        (status, still["user"]["active"].clone()),
        (200, json!(false))
    );
    for (method, body) in [
        (Method::PUT, Some(json!({"user": {"name": "x"}}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = c.call(method, &format!("{U}/{id}"), body).await;
        assert_eq!(status, 404);
        assert_eq!(
            body,
            json!({"error": "RecordNotFound", "description": "Not found"})
        );
    }
    let (status, _) = c.call(Method::GET, &format!("{U}/999"), None).await;
    assert_eq!(status, 404);
    let (status, body) = c.call(Method::GET, "/api/v2/tickets", None).await;
    assert_eq!(
        (status, body["error"].clone()),
        (404, json!("InvalidEndpoint"))
    );
    assert!(sim.get("users", id).is_some_and(|r| r.deleted));
    assert_eq!(sim.records("users").len(), 1, "only the owner is left");
    sim.shutdown();
}

#[tokio::test]
async fn validation_errors_are_record_invalid() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, _) = c
        .call(
            Method::POST,
            U,
            Some(json!({"user": {"name": "A", "email": "a@x.com", "external_id": "E1"}})),
        )
        .await;
    assert_eq!(status, 201);
    let cases = [
        (json!({"email": "b@x.com"}), "name", "BlankValue"),
        (
            json!({"name": "  ", "email": "b@x.com"}),
            "name",
            "BlankValue",
        ),
        (json!({"name": "B", "email": "x"}), "email", "InvalidFormat"),
        (
            json!({"name": "B", "email": "A@X.COM"}),
            "email",
            "DuplicateValue",
        ),
        (
            json!({"name": "B", "external_id": "e1"}),
            "external_id",
            "DuplicateValue",
        ),
        (
            json!({"name": "B", "role": "owner"}),
            "role",
            "InvalidValue",
        ),
        (
            json!({"name": "B", "organization_id": 123}),
            "organization_id",
            "InvalidValue",
        ),
    ];
    for (user, field, code) in cases {
        let (status, body) = c.call(Method::POST, U, Some(json!({ "user": user }))).await;
        assert_eq!(status, 422, "{user} -> {body}");
        assert_eq!(body["error"], "RecordInvalid");
        assert_eq!(body["description"], "Record validation errors");
        assert_eq!(body["details"][field][0]["error"], code, "{body}");
        assert!(body["details"][field][0]["description"].is_string());
    }
    let (_, body) = c
        .call(
            Method::POST,
            U,
            Some(json!({"user": {"name": "B", "email": "x"}})),
        )
        .await;
    assert_eq!(
        body["details"]["email"][0]["description"],
        "Email: x is not properly formatted"
    );
    let (status, _) = c
        .call(Method::POST, U, Some(json!({"name": "unwrapped"})))
        .await;
    assert_eq!(status, 400);
    let resp = c
        .http
        .post(format!("{}{U}", c.base))
        .header("authorization", &c.auth)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(sim.records("users").len(), 2);
    sim.shutdown();
}

#[tokio::test]
async fn cursor_and_offset_paging() {
    let sim = start(SimConfig {
        seed_users: 24,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let (status, mut page) = c
        .call(Method::GET, &format!("{U}?page[size]=10"), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let mut seen = Vec::new();
    loop {
        seen.extend(
            page["users"]
                .as_array()
                .expect("users")
                .iter()
                .filter_map(|u| u["id"].as_u64()),
        );
        if page["meta"]["has_more"] == false {
            break;
        }
        let next = page["links"]["next"]
            .as_str()
            .expect("next link")
            .to_string();
        page = c.follow(&next).await.1;
    }
    assert_eq!(seen.len(), 25, "24 seeded + the owner");
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // backwards from the last page
    let before = page["meta"]["before_cursor"]
        .as_str()
        .expect("before")
        .to_string();
    let (_, prev) = c
        .call(
            Method::GET,
            &format!(
                "{U}?page[size]=10&page[before]={}",
                crate::sim::core::query::encode(&before)
            ),
            None,
        )
        .await;
    let prev_ids: Vec<u64> = prev["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_u64())
        .collect();
    assert_eq!(prev_ids, seen[10..20]);

    let (_, offset) = c
        .call(Method::GET, &format!("{U}.json?page=3&per_page=10"), None)
        .await;
    assert_eq!(offset["count"], 25);
    assert_eq!(offset["users"].as_array().map(Vec::len), Some(5));
    assert_eq!(offset["next_page"], Value::Null);
    let prev_url = offset["previous_page"].as_str().expect("prev").to_string();
    let (_, two) = c.follow(&prev_url).await;
    assert_eq!(two["users"][0]["id"].as_u64(), Some(seen[10]));
    let (_, default) = c.call(Method::GET, U, None).await;
    assert_eq!(default["users"].as_array().map(Vec::len), Some(25));
    let (_, agents) = c.call(Method::GET, &format!("{U}?role=admin"), None).await;
    assert_eq!(agents["count"], 1);

    for bad in [
        format!("{U}?page[size]=101"),
        format!("{U}?page[after]=bogus"),
        format!("{U}?page=101&per_page=100"),
        format!("{O}?page=10001&per_page=1"),
    ] {
        let (status, body) = c.call(Method::GET, &bad, None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = c
        .call(Method::GET, &format!("{U}?page=100&per_page=100"), None)
        .await;
    assert_eq!(status, 200, "the 10,000th record is still served");
    sim.shutdown();
}

#[tokio::test]
async fn show_many_search_and_create_or_update() {
    let sim = start(SimConfig {
        seed_users: 3,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let ids: Vec<u64> = sim.records("users").iter().map(|r| r.id).collect();
    let (_, many) = c
        .call(
            Method::GET,
            &format!("{U}/show_many.json?ids={},{},999", ids[3], ids[1]),
            None,
        )
        .await;
    let got: Vec<u64> = many["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["id"].as_u64())
        .collect();
    assert_eq!(
        got,
        [ids[3], ids[1]],
        "in the order asked, unknown ids skipped"
    );
    let too_many: Vec<String> = (1..=101).map(|n| n.to_string()).collect();
    let (status, _) = c
        .call(
            Method::GET,
            &format!("{U}/show_many?ids={}", too_many.join(",")),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = c.call(Method::GET, &format!("{U}/show_many"), None).await;
    assert_eq!(status, 400);

    let (status, created) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update"),
            Some(json!({"user": {"name": "Zoe", "email": "zoe@x.com", "external_id": "Z-1"}})),
        )
        .await;
    assert_eq!(status, 201);
    let zoe = created["user"]["id"].as_u64().expect("id");
    // a retried create matches by email (case-insensitive): no duplicate
    let (status, again) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update"),
            Some(json!({"user": {"name": "Zoe B", "email": "ZOE@x.com"}})),
        )
        .await;
    assert_eq!((status, again["user"]["id"].as_u64()), (200, Some(zoe)));
    assert_eq!(again["user"]["name"], "Zoe B");
    let (status, by_ext) = c
        .call(
            Method::POST,
            &format!("{U}/create_or_update"),
            Some(json!({"user": {"name": "Zoe C", "external_id": "z-1"}})),
        )
        .await;
    assert_eq!((status, by_ext["user"]["id"].as_u64()), (200, Some(zoe)));

    let (_, many) = c
        .call(
            Method::GET,
            &format!("{U}/show_many?external_ids=Z-1,nope"),
            None,
        )
        .await;
    assert_eq!(many["users"][0]["id"].as_u64(), Some(zoe));
    for (query, expected) in [
        ("query=email:zoe@x.com", vec![zoe]),
        ("query=email%3Auser2%40example.com", vec![ids[2]]),
        ("external_id=Z-1", vec![zoe]),
        ("query=type:user%20zoe", vec![zoe]),
        ("query=role:admin", vec![ids[0]]),
    ] {
        let (status, found) = c
            .call(Method::GET, &format!("{U}/search?{query}"), None)
            .await;
        assert_eq!(status, 200, "{query}");
        let got: Vec<u64> = found["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter_map(|u| u["id"].as_u64())
            .collect();
        assert_eq!(got, expected, "{query}");
        assert_eq!(found["count"], expected.len());
    }
    let (status, _) = c.call(Method::GET, &format!("{U}/search"), None).await;
    assert_eq!(status, 400);
    sim.shutdown();
}
