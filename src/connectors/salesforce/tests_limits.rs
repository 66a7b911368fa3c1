//! Salesforce connector against the simulator, the daily API allocation: ferry holds its
//! calls at its share of the org's allocation (and goes on once usage falls), and a 403
//! `REQUEST_LIMIT_EXCEEDED` pauses the connection with a long retry.

use std::time::Duration;

use tokio::time::{timeout, Instant};

use super::tests_reads::{connector_with, sim};
use super::Options;
use crate::connectors::{Connector, ConnectorError};
use crate::sim::salesforce::SimConfig;

#[tokio::test]
async fn calls_stop_at_ferrys_share_of_the_daily_allocation() {
    let sim = sim(SimConfig {
        daily_api_limit: 20,
        seed_contacts: 1,
        ..SimConfig::default()
    })
    .await;
    let sf = connector_with(
        &sim,
        Options {
            daily_share: 0.5,
            probe_every: Duration::from_secs(1),
            pacing: false,
            ..Options::default()
        },
    );
    for _ in 0..10 {
        sf.list("Contact", &[], None).await.unwrap();
    }
    assert_eq!(sim.stats().api_usage, 10);
    assert_eq!(sf.api_usage(), Some((10, 20)));
    // the eleventh call waits: half the allocation is spent
    let held = timeout(Duration::from_millis(600), sf.list("Contact", &[], None)).await;
    assert!(held.is_err(), "held at the share");
    assert_eq!(sim.stats().api_usage, 10, "nothing sent past the share");
    // the rolling day moves on: one probe reads the lower usage and calls flow again
    sim.reset_api_usage();
    let started = Instant::now();
    sf.list("Contact", &[], None).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(sf.api_usage(), Some((1, 20)));
    for _ in 0..3 {
        timeout(Duration::from_secs(1), sf.list("Contact", &[], None))
            .await
            .expect("not held")
            .unwrap();
    }
    assert_eq!(sim.stats().api_usage, 4);
    assert_eq!(sim.stats().limit_exceeded, 0);
}

#[tokio::test]
async fn request_limit_exceeded_pauses_the_connection() {
    let sim = sim(SimConfig {
        daily_api_limit: 5,
        ..SimConfig::default()
    })
    .await;
    let options = Options {
        daily_share: 1.0,
        limit_pause: Duration::from_millis(400),
        probe_every: Duration::from_millis(50),
        pacing: false,
        ..Options::default()
    };
    let sf = connector_with(&sim, options.clone());
    let other = connector_with(&sim, options);
    sf.list("Contact", &[], None).await.unwrap();
    // another integration of the org spends the rest
    for _ in 0..4 {
        other.list("Contact", &[], None).await.unwrap();
    }
    assert_eq!(sf.api_usage(), Some((1, 5)));
    match sf.list("Contact", &[], None).await {
        Err(ConnectorError::RateLimited {
            retry_after,
            policy,
        }) => {
            assert_eq!(retry_after, Duration::from_millis(400));
            assert_eq!(policy, "daily");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sf.api_usage(), Some((5, 5)));
    // paused: the next call waits out the pause before it is sent
    let started = Instant::now();
    let e = sf.list("Contact", &[], None).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(matches!(e, ConnectorError::RateLimited { .. }), "{e:?}");
    assert_eq!(sim.stats().limit_exceeded, 2);
    // the allocation is back: after the pause one call goes and finds room
    sim.reset_api_usage();
    let page = timeout(Duration::from_secs(3), sf.list("Contact", &[], None))
        .await
        .expect("resumes")
        .unwrap();
    assert!(page.records.is_empty());
    assert_eq!(sf.api_usage(), Some((1, 5)));
}
