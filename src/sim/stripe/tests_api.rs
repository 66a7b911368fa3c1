//! Stripe simulator: API tests over real HTTP — auth (Bearer, Basic, bad and missing keys,
//! test/live separation), form nesting with metadata deletion and unknown parameters, and
//! customer CRUD with the deletion stub.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

use super::{SimConfig, StripeSim};

pub(super) async fn start(cfg: SimConfig) -> StripeSim {
    StripeSim::start(cfg, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

pub(super) struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub auth: String,
}

impl Client {
    pub(super) fn new(sim: &StripeSim) -> Client {
        Client::with_auth(sim, format!("Bearer {}", sim.test_key()))
    }

    pub(super) fn with_auth(sim: &StripeSim, auth: String) -> Client {
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

    /// Sends `form` (already encoded) as the query of a GET/DELETE or the body of a POST.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        form: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let post = method == Method::POST;
        let url = if post || form.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{form}", self.base)
        };
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", &self.auth);
        if post {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_string());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request sent")
    }

    pub(super) async fn call(&self, method: Method, path: &str, form: &str) -> (u16, Value) {
        let resp = self.send(method, path, form, &[]).await;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub(super) async fn post(&self, path: &str, form: &str) -> (u16, Value) {
        self.call(Method::POST, path, form).await
    }

    pub(super) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, "").await
    }
}

pub(super) fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// Waits up to 5 s for `done`.
pub(super) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn auth_bearer_basic_and_bad_keys() {
    let sim = start(SimConfig {
        live_key: Some("sk_live_51LiveKeyabcd".into()),
        ..SimConfig::default()
    })
    .await;
    let resp = Client::new(&sim)
        .send(Method::GET, "/v1/customers", "", &[])
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let rid = resp.headers()["request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(rid.starts_with("req_") && rid.len() == 18, "{rid}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", sim.test_key()));
    let (status, body) = Client::with_auth(&sim, format!("Basic {basic}"))
        .post("/v1/customers", "name=Basic")
        .await;
    assert_eq!((status, body["livemode"].clone()), (200, json!(false)));

    let resp = Client::with_auth(&sim, "Bearer sk_test_wrongwrongwrong1234".into())
        .send(Method::GET, "/v1/customers", "", &[])
        .await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("request-id"));
    let body: Value = resp.json().await.expect("json");
    assert_eq!(
        body,
        json!({"error": {"type": "invalid_request_error",
                         "message": "Invalid API Key provided: sk_test_***************1234"}})
    );
    let (status, body) = Client::with_auth(&sim, String::new())
        .get("/v1/customers")
        .await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("You did not provide an API key.")));

    // the live key sees live data only
    let live = Client::with_auth(&sim, "Bearer sk_live_51LiveKeyabcd".into());
    let (status, cus) = live.post("/v1/customers", "name=Live").await;
    assert_eq!((status, cus["livemode"].clone()), (200, json!(true)));
    let (status, body) = Client::new(&sim)
        .get(&format!("/v1/customers/{}", id(&cus)))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("resource_missing"))
    );
    assert_eq!(sim.records("customers").len(), 1);
    assert_eq!(sim.live().records("customers").len(), 1);
    assert_eq!(sim.live().records("customers")[0]["name"], "Live");
    assert_eq!(sim.stats().unauthorized, 2);
    sim.shutdown();
}

#[tokio::test]
async fn form_nesting_metadata_deletion_and_unknown_params() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let (status, cus) = c
        .post(
            "/v1/customers",
            "name=Ann+Lee+%26+Co&email=ann%40example.com&address[line1]=1+Main+St\
             &address%5Bcity%5D=Paris&address[country]=FR&metadata[plan]=gold&metadata[tier]=1\
             &preferred_locales[]=fr&preferred_locales[]=en&balance=-250&tax_exempt=exempt",
        )
        .await;
    assert_eq!(status, 200, "{cus}");
    assert_eq!(cus["name"], "Ann Lee & Co");
    assert_eq!(cus["email"], "ann@example.com");
    assert_eq!(
        cus["address"],
        json!({"line1": "1 Main St", "line2": null, "city": "Paris", "state": null,
               "postal_code": null, "country": "FR"})
    );
    assert_eq!(cus["metadata"], json!({"plan": "gold", "tier": "1"}));
    assert_eq!(cus["preferred_locales"], json!(["fr", "en"]));
    assert_eq!(
        (cus["balance"].clone(), cus["tax_exempt"].clone()),
        (json!(-250), json!("exempt"))
    );
    let path = format!("/v1/customers/{}", id(&cus));
    // an empty value deletes a metadata key; an empty string unsets a field
    let (status, upd) = c
        .post(&path, "metadata[plan]=&metadata[tier]=2&phone=&address=")
        .await;
    assert_eq!(status, 200);
    assert_eq!(upd["metadata"], json!({"tier": "2"}));
    assert_eq!(
        (upd["address"].clone(), upd["phone"].clone()),
        (Value::Null, Value::Null)
    );
    let (_, upd) = c.post(&path, "metadata=").await;
    assert_eq!(upd["metadata"], json!({}));

    for (form, param, code) in [
        ("foo=1", "foo", "parameter_unknown"),
        ("address[street]=x", "address[street]", "parameter_unknown"),
        ("email=not-an-email", "email", "email_invalid"),
        ("balance=ten", "balance", "parameter_invalid_integer"),
        (
            "shipping[address][city]=P",
            "shipping[name]",
            "parameter_missing",
        ),
    ] {
        let (status, body) = c.post("/v1/customers", form).await;
        assert_eq!(status, 400, "{form}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{form}");
        assert_eq!(body["error"]["param"], param, "{form}");
        assert_eq!(body["error"]["code"], code, "{form}");
    }
    let (_, body) = c.post("/v1/customers", "foo=1").await;
    assert_eq!(body["error"]["message"], "Received unknown parameter: foo");
    let (status, body) = c.post("/v1/customers", "tax_exempt=maybe").await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (
            400,
            json!("Invalid tax_exempt: must be one of none, exempt, or reverse")
        )
    );
    let (status, _) = c.post("/v1/customers", "metadata[a]=1&metadata=2").await;
    assert_eq!(status, 400);
    let (status, _) = c.post("/v1/customers", "address[line1=x").await;
    assert_eq!(status, 400);
    let (status, body) = c.call(Method::GET, &path, "expand[]=sources").await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (400, json!("This property cannot be expanded (sources)."))
    );
    assert_eq!(
        sim.records("customers").len(),
        1,
        "refused creates wrote nothing"
    );
    sim.shutdown();
}

#[tokio::test]
async fn customer_crud_and_deleted_stub() {
    let sim = start(SimConfig::default()).await;
    let c = Client::new(&sim);
    let before = sim.clock().now().timestamp();
    let (status, cus) = c
        .post("/v1/customers", "email=a%40x.com&name=A&description=first")
        .await;
    assert_eq!(status, 200);
    let cid = id(&cus);
    assert!(cid.starts_with("cus_") && cid.len() == 18, "{cid}");
    assert!(cid[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(cus["object"], "customer");
    let created = cus["created"].as_i64().expect("created");
    assert!((before..=before + 1).contains(&created));
    for (k, v) in [
        ("balance", json!(0)),
        ("currency", Value::Null),
        ("livemode", json!(false)),
        ("metadata", json!({})),
        ("phone", Value::Null),
        ("shipping", Value::Null),
        ("tax_exempt", json!("none")),
        ("preferred_locales", json!([])),
        ("address", Value::Null),
        ("next_invoice_sequence", json!(1)),
    ] {
        assert_eq!(cus[k], v, "{k}");
    }
    assert_eq!(cus["invoice_prefix"].as_str().map(str::len), Some(8));
    let path = format!("/v1/customers/{cid}");
    assert_eq!(c.get(&path).await, (200, cus.clone()));
    let (status, upd) = c.post(&path, "name=B").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            upd["name"].clone(),
            upd["email"].clone(),
            upd["description"].clone()
        ),
        (json!("B"), json!("a@x.com"), json!("first"))
    );
    assert_eq!(upd["created"], created);

    let stub = json!({"id": cid, "object": "customer", "deleted": true});
    assert_eq!(c.call(Method::DELETE, &path, "").await, (200, stub.clone()));
    assert_eq!(c.get(&path).await, (200, stub.clone()));
    let (status, body) = c.post(&path, "name=C").await;
    assert_eq!(status, 404);
    assert_eq!(
        body["error"],
        json!({"type": "invalid_request_error", "code": "resource_missing",
               "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
               "message": format!("No such customer: '{cid}'"), "param": "id"})
    );
    assert_eq!(c.call(Method::DELETE, &path, "").await.0, 404);
    let (status, list) = c.get("/v1/customers").await;
    assert_eq!((status, list["data"].clone()), (200, json!([])));
    assert_eq!(c.get("/v1/customers/cus_nope").await.0, 404);
    let (status, body) = c.get("/v1/charges").await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (404, json!("Unrecognized request URL (GET: /v1/charges)."))
    );
    assert_eq!(sim.get(&cid), Some(stub));
    let s = sim.stats();
    assert_eq!(s.writes, 3);
    assert_eq!(s.by_route.get("POST /v1/customers/{id}"), Some(&2));
    sim.shutdown();
}
