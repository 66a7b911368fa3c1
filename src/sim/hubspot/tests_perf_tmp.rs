//! HubSpot simulator: temporary throughput probe.
use super::tests_api::{start, Client};
use super::SimConfig;
use reqwest::Method;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn probe() {
    let rx_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rx_addr = rx_listener.local_addr().unwrap();
    let app = axum::Router::new().route("/h", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(rx_listener, app).await });
    let sim = start(SimConfig { seed_contacts: 20_000, webhook_url: Some(format!("http://{rx_addr}/h")), ..SimConfig::default() }).await;
    let c = Arc::new(Client::new(&sim));
    let t = std::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25u64 {
                let inputs: Vec<_> = (0..100u64).map(|i| json!({"id": (1 + w * 2500 + b * 100 + i).to_string(), "properties": {"city": format!("c{b}"), "jobtitle": "x"}})).collect();
                let (s, _) = c.call(Method::POST, "/crm/v3/objects/contacts/batch/update", Some(json!({"inputs": inputs}))).await;
                assert_eq!(s, 200);
            }
        }));
    }
    for t in tasks { t.await.unwrap(); }
    let el = t.elapsed();
    let t2 = std::time::Instant::now();
    while sim.stats().webhook_events < 40_000 && t2.elapsed().as_secs() < 20 { tokio::time::sleep(std::time::Duration::from_millis(10)).await; }
    eprintln!("20k updates in {el:?}; webhooks drained after +{:?}; stats {:?}", t2.elapsed(), sim.stats());
}
