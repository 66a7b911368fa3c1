//! Observability: `/metrics` (Prometheus text) counts API calls and shows the queues as SQL
//! sees them; `/healthz` answers; `ferry status` prints the ferry.status view.

mod harness;

use std::time::Duration;

use harness::{eventually, Ctx};

/// The value of one sample line (`name{labels} value`) of a Prometheus text page.
fn sample(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_status_say_what_sql_says() {
    let ctx = Ctx::start(5).await;
    ctx.quiesce().await;
    let base = ctx.engine().public_url.clone();
    let http = reqwest::Client::new();
    let page = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    ctx.exec("update hubspot.contacts set company = 'Metered' where id = 1")
        .await;
    ctx.quiesce().await;
    let text = page().await;
    let ok_calls = sample(
        &text,
        "ferry_api_calls_total{connection=\"hubspot\",status=\"200\"}",
    )
    .expect("API calls counted");
    assert!(ok_calls >= 1.0, "{text}");
    assert!(
        sample(
            &text,
            "ferry_api_call_seconds_count{connection=\"hubspot\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ferry_outbox_backlog{mapping=\"hubspot.contacts\"}"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, "ferry_replication_lag_bytes").is_some(),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "ferry_webhook_deliveries_total{connection=\"hubspot\",outcome=\"stored\"}"
        )
        .is_some(),
        "{text}"
    );

    // paused: the backlog grows, in SQL, in /metrics and in `ferry status`
    let _: String = ctx.one("select ferry.pause('hubspot.contacts')").await;
    ctx.exec("update hubspot.contacts set company = 'Queued' where id in (2, 3, 4)")
        .await;
    eventually("three changes queued", Duration::from_secs(5), || async {
        let n: i64 = ctx.one("select outbox_backlog from ferry.status").await;
        (n == 3).then_some(())
    })
    .await;
    assert_eq!(
        sample(
            &page().await,
            "ferry_outbox_backlog{mapping=\"hubspot.contacts\"}"
        ),
        Some(3.0)
    );
    let table = ferry::control::status_table(&ctx.hub).await.unwrap();
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split('|').nth(1).unwrap_or("").trim().to_string())
    };
    assert_eq!(line("state").as_deref(), Some("paused"), "{table}");
    assert_eq!(line("outbox_backlog").as_deref(), Some("3"), "{table}");
    let _: String = ctx.one("select ferry.resume('hubspot.contacts')").await;
    ctx.quiesce().await;
    assert_eq!(
        sample(
            &page().await,
            "ferry_outbox_backlog{mapping=\"hubspot.contacts\"}"
        ),
        Some(0.0)
    );

    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(health.text().await.unwrap().contains("\"ok\""));
    ctx.stop().await;
}
