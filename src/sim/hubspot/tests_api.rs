//! HubSpot simulator: API tests over real HTTP (auth, CRUD, conflicts, validation, batch, list
//! paging, search, rate limiting, the simulator clock).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{HubSpotSim, SimConfig};

pub(super) async fn start(cfg: SimConfig) -> HubSpotSim {
    HubSpotSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub(super) fn new(sim: &HubSpotSim) -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Client {
            http,
            base: sim.base_url(),
            token: sim.token(),
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
            .bearer_auth(&self.token);
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
}

const C: &str = "/crm/v3/objects/contacts";

#[tokio::test]
async fn auth_is_required() {
    let sim = start(SimConfig::default()).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for auth in [None, Some("Bearer wrong")] {
        let mut req = http.get(format!("{}{C}", sim.base_url()));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("sent");
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["category"], "INVALID_AUTHENTICATION");
        assert_eq!(body["status"], "error");
        assert!(body["correlationId"]
            .as_str()
            .is_some_and(|s| s.len() == 36));
    }
    assert_eq!(sim.stats().requests, 0);
    let (status, body) = Client::new(&sim)
        .call(Method::GET, "/crm/v3/objects/widgets", None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["category"], "VALIDATION_ERROR");
    sim.shutdown();
}

#[tokio::test]
async fn crud_round_trip() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, created) = c.call(Method::POST, C, Some(json!({"properties": {"email": "a@example.com", "firstname": "Ann", "phone": 5551234}}))).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["properties"]["phone"], "5551234");
    assert_eq!(created["properties"]["hs_object_id"], id.as_str());
    assert_eq!(created["properties"]["lastname"], Value::Null);
    assert_eq!(created["archived"], false);

    let (status, got) = c
        .call(
            Method::GET,
            &format!("{C}/{id}?properties=email,city,nonsense"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let props = got["properties"].as_object().expect("props");
    assert_eq!(props.len(), 5, "email, city + 3 read-only: {got}");
    assert_eq!(props["city"], Value::Null);

    let (status, patched) = c
        .call(
            Method::PATCH,
            &format!("{C}/{id}"),
            Some(json!({"properties": {"city": "Oslo", "phone": null}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["properties"]["city"], "Oslo");
    assert_eq!(patched["properties"]["phone"], Value::Null);
    assert!(patched["updatedAt"].as_str() > created["updatedAt"].as_str());
    assert_eq!(
        patched["properties"]["lastmodifieddate"],
        patched["updatedAt"]
    );
    let rec = sim.get("contacts", &id).expect("stored");
    assert_eq!(rec.properties.get("city").map(String::as_str), Some("Oslo"));
    assert!(!rec.properties.contains_key("phone"));

    let resp = c.raw(Method::DELETE, &format!("{C}/{id}"), None).await;
    assert_eq!(resp.status().as_u16(), 204);
    let (status, body) = c.call(Method::GET, &format!("{C}/{id}"), None).await;
    assert_eq!(status, 404);
    assert_eq!(body["category"], "OBJECT_NOT_FOUND");
    let (status, _) = c
        .call(
            Method::PATCH,
            &format!("{C}/{id}"),
            Some(json!({"properties": {"city": "x"}})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = c
        .call(Method::GET, &format!("{C}/{id}?archived=true"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["archived"], true);
    assert!(body["archivedAt"].is_string());
    let (_, listed) = c
        .call(Method::GET, &format!("{C}?archived=true"), None)
        .await;
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(1));
    let (_, live) = c.call(Method::GET, C, None).await;
    assert_eq!(live["results"].as_array().map(Vec::len), Some(0));
    assert!(sim.get("contacts", &id).is_some_and(|r| r.archived));
    assert!(sim.records("contacts").is_empty());
    let s = sim.stats();
    assert_eq!((s.write_requests, s.records_written), (4, 3));
    sim.shutdown();
}

#[tokio::test]
async fn duplicate_email_conflicts() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (_, first) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "dup@example.com"}})),
        )
        .await;
    let first_id = first["id"].as_str().expect("id").to_string();
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "DUP@example.com"}})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["category"], "CONFLICT");
    assert_eq!(
        body["message"],
        format!("Contact already exists. Existing ID: {first_id}")
    );
    let other = sim
        .app_create(
            "contacts",
            json!({"email": "other@example.com"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .expect("created");
    let (status, _) = c
        .call(
            Method::PATCH,
            &format!("{C}/{other}"),
            Some(json!({"properties": {"email": "Dup@Example.com"}})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(matches!(
        sim.app_create("contacts", json!({"email": "dup@example.com"}).as_object().cloned().unwrap_or_default()),
        Err(super::SimError::Duplicate { existing_id }) if existing_id == first_id
    ));
    sim.app_archive("contacts", &first_id).expect("archived");
    let (status, _) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "dup@example.com"}})),
        )
        .await;
    assert_eq!(status, 201);
    sim.shutdown();
}

#[tokio::test]
async fn validation_errors() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "v@example.com", "foo": "x"}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["category"], "VALIDATION_ERROR");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Property values were not valid")));
    assert_eq!(body["errors"][0]["code"], "PROPERTY_DOESNT_EXIST");
    assert_eq!(body["errors"][0]["context"]["propertyName"][0], "foo");
    for bad in [
        json!({"createdate": "1"}),
        json!({"city": {"a": 1}}),
        json!({"lifecyclestage": "nope"}),
    ] {
        let (status, body) = c
            .call(Method::POST, C, Some(json!({ "properties": bad })))
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let resp = c
        .http
        .post(format!("{}{C}", c.base))
        .bearer_auth(&c.token)
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["category"], "VALIDATION_ERROR");
    let (status, _) = c.call(Method::GET, &format!("{C}?limit=101"), None).await;
    assert_eq!(status, 400);
    assert!(sim.records("contacts").is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn batch_partial_failure() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let url = format!("{C}/batch/create");
    let inputs = json!({"inputs": [
        {"properties": {"email": "b1@example.com"}, "objectWriteTraceId": "t1"},
        {"properties": {"email": "b2@example.com", "bogus": "1"}, "objectWriteTraceId": "t2"},
        {"properties": {"email": "B1@example.com"}, "objectWriteTraceId": "t3"},
    ]});
    let (status, body) = c.call(Method::POST, &url, Some(inputs)).await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["status"], "COMPLETE");
    assert_eq!(body["numErrors"], 2);
    assert_eq!(body["results"][0]["objectWriteTraceId"], "t1");
    assert_eq!(body["errors"][0]["context"]["objectWriteTraceId"][0], "t2");
    assert_eq!(body["errors"][1]["category"], "CONFLICT");
    assert_eq!(body["errors"][1]["context"]["objectWriteTraceId"][0], "t3");
    let b1 = body["results"][0]["id"].as_str().expect("id").to_string();

    let (status, _) = c.call(Method::POST, &url, Some(json!({"inputs": [{"properties": {"email": "ok@example.com"}}, {"properties": {"bogus": 1}}]}))).await;
    assert_eq!(status, 400);
    assert_eq!(
        sim.records("contacts").len(),
        1,
        "nothing created without trace ids"
    );
    let (status, body) = c.call(Method::POST, &url, Some(json!({"inputs": [{"properties": {"email": "n1@example.com"}}, {"properties": {"email": "n2@example.com"}}]}))).await;
    assert_eq!(
        (status, body["results"].as_array().map(Vec::len)),
        (201, Some(2))
    );

    let upd = json!({"inputs": [{"id": b1, "properties": {"city": "Rome"}}, {"id": "999", "properties": {"city": "x"}}]});
    let (status, body) = c
        .call(Method::POST, &format!("{C}/batch/update"), Some(upd))
        .await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body["results"][0]["properties"]["city"], "Rome");
    assert_eq!(body["errors"][0]["category"], "OBJECT_NOT_FOUND");
    assert_eq!(body["errors"][0]["context"]["id"][0], "999");

    let read = json!({"properties": ["city"], "inputs": [{"id": b1}, {"id": "998"}]});
    let (status, body) = c
        .call(Method::POST, &format!("{C}/batch/read"), Some(read))
        .await;
    assert_eq!(status, 207);
    assert_eq!(body["results"][0]["properties"]["city"], "Rome");
    assert_eq!(body["errors"][0]["context"]["id"][0], "998");
    let (status, body) = c
        .call(
            Method::POST,
            &format!("{C}/batch/read"),
            Some(json!({"idProperty": "email", "inputs": [{"id": "B1@example.com"}]})),
        )
        .await;
    assert_eq!(
        (status, body["results"][0]["id"].as_str()),
        (200, Some(b1.as_str()))
    );

    let resp = c
        .raw(
            Method::POST,
            &format!("{C}/batch/archive"),
            Some(json!({"inputs": [{"id": b1}, {"id": "12345"}]})),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(sim.get("contacts", &b1).is_some_and(|r| r.archived));
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"properties": {"email": format!("m{i}@example.com")}}))
        .collect();
    let (status, _) = c
        .call(Method::POST, &url, Some(json!({ "inputs": many })))
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .call(Method::POST, &url, Some(json!({"inputs": []})))
        .await;
    assert_eq!(status, 400);
    sim.shutdown();
}

#[tokio::test]
async fn list_paging_sees_each_record_once() {
    let sim = start(SimConfig {
        seed_contacts: 250,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut seen = HashSet::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("{C}?limit=100&after={a}&properties=email,phone"),
            None => format!("{C}?limit=100&properties=email,phone"),
        };
        let (status, body) = c.call(Method::GET, &path, None).await;
        assert_eq!(status, 200);
        pages += 1;
        for r in body["results"].as_array().expect("results") {
            assert!(
                seen.insert(r["id"].as_str().expect("id").to_string()),
                "duplicate {r}"
            );
            assert!(r["properties"]["phone"]
                .as_str()
                .is_some_and(|p| p.starts_with("+1555") && p.len() == 12));
        }
        match body["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 250));
    assert!(sim
        .records("contacts")
        .iter()
        .any(|r| r.properties.get("email").map(String::as_str) == Some("contact250@example.com")));
    sim.shutdown();
}

#[tokio::test]
async fn search_by_last_modified() {
    let sim = start(SimConfig {
        seed_contacts: 20,
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    let mut stamps = Vec::new();
    for id in ["3", "7"] {
        let (status, body) = c
            .call(
                Method::PATCH,
                &format!("{C}/{id}"),
                Some(json!({"properties": {"city": "Lima"}})),
            )
            .await;
        assert_eq!(status, 200);
        stamps.push(
            body["properties"]["lastmodifieddate"]
                .as_str()
                .map(str::to_string)
                .expect("lastmod"),
        );
    }
    let watermark = chrono::DateTime::parse_from_rfc3339(&stamps[0])
        .expect("iso")
        .timestamp_millis();
    let q = json!({
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": watermark.to_string()}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["city"], "limit": 100,
    });
    let (status, body) = c.call(Method::POST, &format!("{C}/search"), Some(q)).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    // Seeded records created in the watermark's millisecond match GTE as well; only the order of
    // the two patched records and the bound are certain.
    let pos = |id: &str| ids.iter().position(|x| *x == id);
    assert!(
        matches!((pos("3"), pos("7")), (Some(a), Some(b)) if a < b),
        "{ids:?}"
    );
    assert!(body["results"]
        .as_array()
        .expect("r")
        .iter()
        .all(|r| r["properties"]["lastmodifieddate"].as_str() >= Some(stamps[0].as_str())));
    let iso = json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": stamps[1]}]}]});
    let (_, body) = c
        .call(Method::POST, &format!("{C}/search"), Some(iso))
        .await;
    assert_eq!(body["total"], 0);
    let (_, body) = c
        .call(
            Method::POST,
            &format!("{C}/search"),
            Some(json!({"limit": 5, "after": "15"})),
        )
        .await;
    assert_eq!(
        (body["total"].as_u64(), body["paging"].is_null()),
        (Some(20), true)
    );
    for bad in [
        json!({"limit": 201}),
        json!({"after": "10000"}),
        json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "x"}]}]}),
    ] {
        let (status, _) = c
            .call(Method::POST, &format!("{C}/search"), Some(bad))
            .await;
        assert_eq!(status, 400);
    }
    sim.shutdown();
}

#[tokio::test]
async fn rate_limit_answers_429() {
    let sim = start(SimConfig {
        rate_limit: Some((5, Duration::from_secs(1))),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    for i in 0..5 {
        let resp = c.raw(Method::GET, C, None).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["x-hubspot-ratelimit-max"], "5");
        assert_eq!(
            resp.headers()["x-hubspot-ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let resp = c.raw(Method::GET, C, None).await;
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(
        resp.headers()["x-hubspot-ratelimit-interval-milliseconds"],
        "1000"
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(body["errorType"], "RATE_LIMIT");
    let s = sim.stats();
    assert_eq!((s.requests, s.throttled, s.read_requests), (6, 1, 5));
    sim.shutdown();
}

#[tokio::test]
async fn the_clock_dates_records_and_frees_the_rate_window() {
    let sim = start(SimConfig {
        rate_limit: Some((1, Duration::from_secs(10))),
        ..SimConfig::default()
    })
    .await;
    let c = Client::new(&sim);
    sim.clock().advance(Duration::from_secs(3600));
    let (status, body) = c
        .call(
            Method::POST,
            C,
            Some(json!({"properties": {"email": "t@x.com"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let created = body["createdAt"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .expect("createdAt");
    let ahead = created.timestamp() - chrono::Utc::now().timestamp();
    assert!((3590..=3610).contains(&ahead), "{ahead} s ahead");
    let resp = c.raw(Method::GET, C, None).await;
    assert_eq!(resp.status().as_u16(), 429);
    sim.clock().advance(Duration::from_secs(10));
    let (status, _) = c.call(Method::GET, C, None).await;
    assert_eq!(status, 200, "the window moved on with the clock");
    sim.shutdown();
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, _) = c.call(Method::GET, C, None).await;
    assert_eq!(status, 200);
    sim.shutdown();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        if fresh
            .get(format!("{}{C}", sim.base_url()))
            .bearer_auth(sim.token())
            .send()
            .await
            .is_err()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server still answering after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
