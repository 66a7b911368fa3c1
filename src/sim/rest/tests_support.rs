//! REST simulator: test helpers — the sample profiles, starting a sim from profile
//! text, an HTTP client carrying the profile's credential, deadline waits, and a webhook
//! receiver that keeps every delivery.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use reqwest::Method;
use serde_json::Value;

use super::{Profile, RestSim, SimConfig};
use crate::sim::core::lock;

pub(super) const CURSOR_BEARER: &str = include_str!("profiles/cursor_bearer.toml");
pub(super) const OFFSET_APIKEY: &str = include_str!("profiles/offset_apikey.toml");
pub(super) const LINK_BASIC: &str = include_str!("profiles/link_basic.toml");

pub(super) fn profile(text: &str) -> Profile {
    Profile::parse(text).expect("profile parses")
}

pub(super) async fn start(text: &str) -> RestSim {
    start_with(text, |_| {}).await
}

/// A sim of the profile `text` after `tweak` changed its config.
pub(super) async fn start_with(text: &str, tweak: impl FnOnce(&mut SimConfig)) -> RestSim {
    let mut cfg = SimConfig::new(profile(text));
    tweak(&mut cfg);
    RestSim::start(cfg).await.expect("sim starts")
}

/// Seeds `n` records of `resource`.
pub(super) fn seed(resource: &str, n: usize) -> impl FnOnce(&mut SimConfig) {
    let resource = resource.to_string();
    move |cfg: &mut SimConfig| {
        cfg.seed.insert(resource, n);
    }
}

/// One answer.
pub(super) struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub(super) struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl Client {
    /// No credential.
    pub(super) fn bare(sim: &RestSim) -> Client {
        Client {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            base: sim.base_url(),
            headers: Vec::new(),
            query: Vec::new(),
        }
    }

    /// The profile's static credential (bearer, header, query or basic).
    pub(super) fn new(sim: &RestSim) -> Client {
        use super::profile::AuthKind;
        let a = &sim.profile().auth;
        let c = Client::bare(sim);
        match a.kind {
            AuthKind::Bearer => c.header("Authorization", &format!("Bearer {}", a.secret())),
            AuthKind::Header => c.header(a.name(), a.secret()),
            AuthKind::Query => Client {
                query: vec![(a.name().to_string(), a.secret().to_string())],
                ..c
            },
            AuthKind::Basic => {
                let raw = format!("{}:{}", a.username(), a.secret());
                let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
                c.header("Authorization", &format!("Basic {b64}"))
            }
            _ => c,
        }
    }

    pub(super) fn header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `target` is a path under the sim or an absolute URL.
    pub(super) async fn call(&self, method: Method, target: &str, body: Option<&Value>) -> Answer {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            format!("{}{target}", self.base)
        };
        let mut req = self.http.request(method, url);
        if !self.query.is_empty() {
            req = req.query(&self.query);
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
        }
    }

    pub(super) async fn get(&self, target: &str) -> Answer {
        self.call(Method::GET, target, None).await
    }

    pub(super) async fn post(&self, target: &str, body: &Value) -> Answer {
        self.call(Method::POST, target, Some(body)).await
    }

    pub(super) async fn patch(&self, target: &str, body: &Value) -> Answer {
        self.call(Method::PATCH, target, Some(body)).await
    }

    pub(super) async fn put(&self, target: &str, body: &Value) -> Answer {
        self.call(Method::PUT, target, Some(body)).await
    }

    pub(super) async fn delete(&self, target: &str) -> Answer {
        self.call(Method::DELETE, target, None).await
    }
}

/// Waits up to 5 s for `done`.
pub(crate) async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One delivery as received.
#[derive(Clone, Debug)]
pub(crate) struct Hook {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hook {
    pub(super) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("event is JSON")
    }
}

/// A webhook endpoint keeping every delivery.
pub(crate) struct Receiver {
    pub url: String,
    pub hooks: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let kept = hooks.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let kept = kept.clone();
                async move {
                    lock(&kept).push(Hook { headers, body });
                    StatusCode::NO_CONTENT
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, hooks }
    }

    /// Waits for `n` deliveries and returns them all.
    pub(crate) async fn wait(&self, n: usize) -> Vec<Hook> {
        until(&format!("{n} webhooks"), || lock(&self.hooks).len() >= n).await;
        lock(&self.hooks).clone()
    }
}
