//! Salesforce simulator: API tests over real HTTP — the shared client, both OAuth flows and
//! refused grants, session expiry, API versions and describe.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{SalesforceSim, SimConfig};

pub(super) async fn start(cfg: SimConfig) -> SalesforceSim {
    SalesforceSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

pub(super) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs a form to the token endpoint: status and JSON body.
pub(super) async fn token(sim: &SalesforceSim, form: &[(&str, &str)]) -> (u16, Value) {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            use crate::sim::core::query::encode;
            format!("{}={}", encode(k), encode(v))
        })
        .collect();
    let resp = http()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(super) struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

pub(super) struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

impl Answer {
    /// The first error's code of an error array.
    pub fn code(&self) -> &str {
        self.body[0]["errorCode"].as_str().unwrap_or("")
    }
}

impl Client {
    /// Logs in with the refresh-token flow.
    pub(super) async fn login(sim: &SalesforceSim) -> Client {
        let c = sim.config().clone();
        let (status, body) = token(
            sim,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &c.client_id),
                ("client_secret", &c.client_secret),
                ("refresh_token", &c.refresh_token),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        Client {
            http: http(),
            base: sim.base_url(),
            token: body["access_token"].as_str().expect("token").to_string(),
        }
    }

    /// `path` below `/services/data/v62.0` (or absolute when it starts with `/services`).
    pub(super) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_with(method, path, body, &[]).await
    }

    pub(super) async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("/services") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/services/data/v62.0{path}", self.base)
        };
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", format!("Bearer {}", self.token));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            body,
            headers,
        }
    }

    pub(super) async fn create(&self, object: &str, body: Value) -> String {
        let a = self
            .call(Method::POST, &format!("/sobjects/{object}/"), Some(body))
            .await;
        assert_eq!(a.status, 201, "{}", a.body);
        a.body["id"].as_str().expect("id").to_string()
    }
}

pub(super) fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[tokio::test]
async fn oauth_flows_and_refused_grants() {
    let sim = start(SimConfig::default()).await;
    let c = sim.config().clone();
    let (status, body) = token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
            ("refresh_token", &c.refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], json!(sim.base_url()));
    let id = format!("{}/id/{}/{}", sim.base_url(), c.org_id, super::API_USER);
    assert_eq!(body["id"], json!(id));
    let access = body["access_token"].as_str().expect("token");
    assert!(access.starts_with(&format!("{}!", c.org_id)), "{access}");
    let issued = body["issued_at"].as_str().expect("issued_at");
    assert!(issued.parse::<i64>().is_ok());
    assert_eq!(
        body["signature"],
        json!(super::auth::signature(&c.client_secret, &id, issued))
    );

    let (status, cc) = token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &c.client_id),
            ("client_secret", &c.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(cc["access_token"], body["access_token"]);
    let api = Client {
        http: http(),
        base: sim.base_url(),
        token: cc["access_token"].as_str().expect("token").to_string(),
    };
    assert_eq!(api.call(Method::GET, "/limits", None).await.status, 200);

    let refused = [
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", c.client_secret.as_str()),
                ("refresh_token", "stale"),
            ],
            ("invalid_grant", "expired access/refresh token"),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", c.client_id.as_str()),
                ("client_secret", "wrong"),
            ],
            ("invalid_client", "invalid client credentials"),
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "someone-else"),
                ("client_secret", c.client_secret.as_str()),
            ],
            ("invalid_client_id", "client identifier invalid"),
        ),
        (
            vec![("grant_type", "authorization_code")],
            ("unsupported_grant_type", "grant type not supported"),
        ),
    ];
    for (form, (error, description)) in refused {
        let (status, body) = token(&sim, &form).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(
            body,
            json!({"error": error, "error_description": description})
        );
    }
    let s = sim.stats();
    assert_eq!(s.route("POST /services/oauth2/token"), 6);
    assert_eq!(s.api_usage, 1, "token calls are not API requests");
    sim.shutdown();
}

#[tokio::test]
async fn sessions_expire_and_refresh_works() {
    let sim = start(SimConfig {
        session_timeout: Duration::from_secs(600),
        session_id: Some("static-session".into()),
        ..SimConfig::default()
    })
    .await;
    let api = Client::login(&sim).await;
    let invalid =
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    assert_eq!(api.call(Method::GET, "/limits", None).await.status, 200);
    // use keeps a session alive: 9 minutes, a call, 9 more minutes
    sim.clock().advance(Duration::from_secs(540));
    assert_eq!(api.call(Method::GET, "/limits", None).await.status, 200);
    sim.clock().advance(Duration::from_secs(540));
    assert_eq!(api.call(Method::GET, "/limits", None).await.status, 200);
    sim.clock().advance(Duration::from_secs(601));
    let a = api.call(Method::GET, "/limits", None).await;
    assert_eq!((a.status, a.body.clone()), (401, invalid.clone()));
    // the static session does not idle out
    let fixed = Client {
        token: "static-session".into(),
        ..Client::login(&sim).await
    };
    assert_eq!(fixed.call(Method::GET, "/limits", None).await.status, 200);
    let fresh = Client::login(&sim).await;
    assert_eq!(fresh.call(Method::GET, "/limits", None).await.status, 200);
    sim.expire_sessions();
    for c in [&fresh, &fixed] {
        let a = c
            .call(Method::GET, "/sobjects/Contact/describe", None)
            .await;
        assert_eq!((a.status, a.body), (401, invalid.clone()));
    }
    let again = Client::login(&sim).await;
    assert_eq!(again.call(Method::GET, "/limits", None).await.status, 200);
    let nobody = Client {
        token: "nope".into(),
        ..Client::login(&sim).await
    };
    assert_eq!(nobody.call(Method::GET, "/limits", None).await.status, 401);
    assert_eq!(sim.stats().unauthorized, 4);
    sim.shutdown();
}

#[tokio::test]
async fn versions_and_describe() {
    let sim = start(SimConfig::default()).await;
    let api = Client::login(&sim).await;
    for (v, status) in [
        ("v49.0", 404),
        ("v50.0", 200),
        ("v62.0", 200),
        ("v63.0", 404),
        ("62.0", 404),
    ] {
        let a = api
            .call(
                Method::GET,
                &format!("/services/data/{v}/sobjects/Contact/describe"),
                None,
            )
            .await;
        assert_eq!(a.status, status, "{v}");
        if status == 404 {
            assert_eq!(a.code(), "NOT_FOUND");
        }
    }
    let d = api
        .call(Method::GET, "/sobjects/Contact/describe/", None)
        .await
        .body;
    assert_eq!(
        (d["name"].clone(), d["keyPrefix"].clone()),
        (json!("Contact"), json!("003"))
    );
    let field = |name: &str| -> Value {
        d["fields"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let last = field("LastName");
    assert_eq!(
        (
            &last["type"],
            &last["nillable"],
            &last["createable"],
            &last["length"]
        ),
        (&json!("string"), &json!(false), &json!(true), &json!(80))
    );
    let ext = field("Ext_Id__c");
    assert_eq!(
        (&ext["externalId"], &ext["unique"]),
        (&json!(true), &json!(true))
    );
    let acct = field("AccountId");
    assert_eq!(
        (&acct["type"], &acct["referenceTo"]),
        (&json!("reference"), &json!(["Account"]))
    );
    let stamp = field("SystemModstamp");
    assert_eq!(
        (&stamp["type"], &stamp["updateable"]),
        (&json!("datetime"), &json!(false))
    );
    let o = api
        .call(Method::GET, "/sobjects/Opportunity/describe", None)
        .await
        .body;
    let won = o["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "IsWon").cloned());
    assert_eq!(won.map(|f| f["updateable"].clone()), Some(json!(false)));
    let stage = o["fields"]
        .as_array()
        .and_then(|fs| fs.iter().find(|f| f["name"] == "StageName").cloned())
        .unwrap_or_default();
    assert!(stage["picklistValues"]
        .as_array()
        .is_some_and(|v| v.iter().any(|p| p["value"] == "Closed Won")));
    let a = api.call(Method::GET, "/sobjects/Lead/describe", None).await;
    assert_eq!((a.status, a.code()), (404, "NOT_FOUND"));
    let g = api.call(Method::GET, "/sobjects", None).await.body;
    assert_eq!(g["sobjects"].as_array().map(Vec::len), Some(3));
    sim.shutdown();
}
