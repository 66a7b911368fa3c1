//! REST connector tests, shared helpers: a REST simulator started from profile text, a `Rest`
//! connector built from a connection TOML snippet pointing at it, walks through a listing and
//! one change-feed pass, deadline waits, and (from the simulator's tests) a webhook receiver
//! keeping each raw delivery.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::config::{ConnectionConfig, Secrets};
use crate::connectors::{Connector, FeedPage, FeedStart, RemoteRecord};
/// The webhook receiver is the simulator tests' own.
pub(super) use crate::sim::rest::tests_support::{Hook, Receiver};
use crate::sim::rest::{Profile, RestSim, SimConfig};

pub(super) const CURSOR_BEARER: &str = include_str!("../../sim/rest/profiles/cursor_bearer.toml");
pub(super) const OFFSET_APIKEY: &str = include_str!("../../sim/rest/profiles/offset_apikey.toml");
pub(super) const LINK_BASIC: &str = include_str!("../../sim/rest/profiles/link_basic.toml");

/// A simulator of `profile` with `seed` records per resource (`Record {n}`,
/// `record{n}@example.com`, an hour old).
pub(super) async fn sim(profile: &str, seed: &[(&str, usize)]) -> RestSim {
    sim_with(profile, seed, |_| {}).await
}

/// [`sim`] after `tweak` changed its configuration (a webhook URL, faults).
pub(super) async fn sim_with(
    profile: &str,
    seed: &[(&str, usize)],
    tweak: impl FnOnce(&mut SimConfig),
) -> RestSim {
    let mut cfg = SimConfig::new(Profile::parse(profile).expect("profile parses"));
    for (resource, n) in seed {
        cfg.seed.insert(resource.to_string(), *n);
    }
    tweak(&mut cfg);
    RestSim::start(cfg).await.expect("sim starts")
}

/// The connection of `snippet` (its `[auth]`, `[resources.…]` and `[webhook]` tables) at the
/// simulator's URL, parsed as `[connections.app]` is.
pub(super) fn connection(sim: &RestSim, snippet: &str) -> ConnectionConfig {
    let text = format!(
        "kind = \"rest\"\nbase_url = \"{}\"\ntoken_env = \"APP_TOKEN\"\n\
         webhook_secret_env = \"APP_WEBHOOK_SECRET\"\n{snippet}",
        sim.base_url()
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("connection parses: {e}\n{text}"))
}

/// The connector of `snippet` with the simulator's own secret.
pub(super) fn connect(sim: &RestSim, snippet: &str) -> Arc<dyn Connector> {
    connect_as(sim, snippet, sim.profile().auth.secret())
}

/// The connector of `snippet` signing in with `token`.
pub(super) fn connect_as(sim: &RestSim, snippet: &str, token: &str) -> Arc<dyn Connector> {
    let secrets = Secrets {
        token: token.to_string(),
        webhook_secret: Some(sim.profile().webhooks.secret().to_string()),
    };
    super::build("app", &connection(sim, snippet), &secrets).expect("the connector builds")
}

pub(super) fn props(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

pub(super) fn ids(records: &[RemoteRecord]) -> Vec<String> {
    records.iter().map(|r| r.id.clone()).collect()
}

/// A JSON id (`1`, `"k3x9"`) as the connector writes it.
pub(super) fn text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `1..=n` as id texts.
pub(super) fn numbers(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

/// Every record of a listing and how many pages it took; more than 50 pages fail the test
/// (a listing that never ends).
pub(super) async fn walk(
    c: &dyn Connector,
    object: &str,
    p: &[String],
) -> (Vec<RemoteRecord>, usize) {
    let (mut records, mut pages, mut after) = (Vec::new(), 0, None);
    loop {
        let page = c.list(object, p, after).await.expect("a listing page");
        pages += 1;
        records.extend(page.records);
        match page.after {
            Some(a) => after = Some(a),
            None => return (records, pages),
        }
        assert!(pages < 50, "{object}: the listing does not end");
    }
}

/// A feed start `ago` before the simulator's now, reaching back `overlap`.
pub(super) fn start(sim: &RestSim, ago: Duration, overlap: Duration) -> FeedStart {
    FeedStart {
        at: sim.clock().now() - TimeDelta::from_std(ago).expect("a short duration"),
        overlap,
    }
}

/// One feed pass from `cursor`: its pages (until `more` is false) and the cursor after it.
pub(super) async fn pass(
    c: &dyn Connector,
    object: &str,
    p: &[String],
    cursor: Option<String>,
    from: FeedStart,
) -> (Vec<FeedPage>, String) {
    let (mut pages, mut cursor) = (Vec::new(), cursor);
    loop {
        let page = c
            .changes(object, p, cursor.as_deref(), from)
            .await
            .expect("a feed page");
        let (more, next) = (page.more, page.cursor.clone());
        pages.push(page);
        cursor = Some(next);
        if !more {
            return (pages, cursor.expect("a cursor"));
        }
        assert!(pages.len() < 50, "{object}: the feed pass does not end");
    }
}

/// The records of feed pages, in order.
pub(super) fn flat(pages: &[FeedPage]) -> Vec<RemoteRecord> {
    pages.iter().flat_map(|p| p.records.clone()).collect()
}

/// Asserts a finished pass's watermark: its newest change less the pass's length (under a
/// second in these tests), never after it.
pub(super) fn assert_watermark(cursor: &str, newest: DateTime<Utc>, what: &str) {
    let got = since(cursor);
    assert!(
        got <= newest && newest - got < chrono::TimeDelta::seconds(1),
        "{what}: watermark {got}, newest change {newest}"
    );
}

/// The watermark (`since`) a feed cursor holds.
pub(super) fn since(cursor: &str) -> DateTime<Utc> {
    let v: Value = serde_json::from_str(cursor).expect("a feed cursor is JSON");
    v["since"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .expect("the cursor has a since")
        .with_timezone(&Utc)
}
