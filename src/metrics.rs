//! Observability: the Prometheus registry behind `GET /metrics`. Counters and histograms are
//! fed by the data path as it runs (API calls by connection and status, their latency, webhook
//! deliveries, conflicts decided); the queue gauges (backlog, dead letters, open conflicts,
//! replication lag) are read from the hub at scrape time, so they say what SQL says.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::hub::{Hub, HubError};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub connection: String,
    /// HTTP status code, or `transport` when no response came.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabel {
    pub connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub connection: String,
    /// `stored`, `duplicate`, `refused`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MappingLabel {
    pub mapping: String,
}

/// Every metric ferry exports.
pub struct Metrics {
    registry: Registry,
    pub api_calls: Family<CallLabels, Counter>,
    pub api_seconds: Family<ConnectionLabel, Histogram>,
    pub webhook_events: Family<WebhookLabels, Counter>,
    /// An app's daily API allocation as it last reported it (Salesforce's
    /// `Sforce-Limit-Info`): requests used, and the allocation.
    api_daily_used: Family<ConnectionLabel, Gauge>,
    api_daily_limit: Family<ConnectionLabel, Gauge>,
    backlog: Family<MappingLabel, Gauge>,
    dead_letters: Family<MappingLabel, Gauge>,
    open_conflicts: Family<MappingLabel, Gauge>,
    conflicts: Family<MappingLabel, Gauge>,
    held_deletes: Family<MappingLabel, Gauge>,
    lag_bytes: Gauge,
}

/// The process's metrics (one registry per process, shared by every engine it runs).
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("ferry");
        let api_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "api_calls",
            "API calls by connection and HTTP status",
            api_calls.clone(),
        );
        let api_seconds = Family::<ConnectionLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "api_call_seconds",
            "API call latency, request sent to response read",
            api_seconds.clone(),
        );
        let webhook_events = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by connection and outcome",
            webhook_events.clone(),
        );
        let api_daily_used = Family::<ConnectionLabel, Gauge>::default();
        registry.register(
            "api_daily_used",
            "API requests the app counts against its daily allocation, as it last reported",
            api_daily_used.clone(),
        );
        let api_daily_limit = Family::<ConnectionLabel, Gauge>::default();
        registry.register(
            "api_daily_limit",
            "The app's daily API allocation, as it last reported",
            api_daily_limit.clone(),
        );
        let backlog = Family::<MappingLabel, Gauge>::default();
        registry.register(
            "outbox_backlog",
            "Hub changes queued for the app (ferry.outbox rows)",
            backlog.clone(),
        );
        let dead_letters = Family::<MappingLabel, Gauge>::default();
        registry.register(
            "dead_letters_open",
            "Dead letters not retried yet",
            dead_letters.clone(),
        );
        let open_conflicts = Family::<MappingLabel, Gauge>::default();
        registry.register(
            "conflicts_open",
            "Manual conflicts waiting for ferry.resolve",
            open_conflicts.clone(),
        );
        let conflicts = Family::<MappingLabel, Gauge>::default();
        registry.register(
            "conflicts_recorded",
            "Conflicts recorded in ferry.conflicts, any decision",
            conflicts.clone(),
        );
        let held_deletes = Family::<MappingLabel, Gauge>::default();
        registry.register(
            "held_deletes",
            "Deletions held by the mass-delete fuse (ferry.held_deletes)",
            held_deletes.clone(),
        );
        let lag_bytes = Gauge::default();
        registry.register(
            "replication_lag_bytes",
            "WAL not yet acknowledged by the listener",
            lag_bytes.clone(),
        );
        Metrics {
            registry,
            api_calls,
            api_seconds,
            webhook_events,
            api_daily_used,
            api_daily_limit,
            backlog,
            dead_letters,
            open_conflicts,
            conflicts,
            held_deletes,
            lag_bytes,
        }
    })
}

impl Metrics {
    /// Counts one API call.
    pub fn api_call(&self, connection: &str, status: Option<u16>, took: Duration) {
        let status = status.map_or_else(|| "transport".to_string(), |s| s.to_string());
        self.api_calls
            .get_or_create(&CallLabels {
                connection: connection.to_string(),
                status,
            })
            .inc();
        self.api_seconds
            .get_or_create(&ConnectionLabel {
                connection: connection.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The daily allocation an app reported with its last answer.
    pub fn api_daily(&self, connection: &str, used: u64, limit: u64) {
        let label = ConnectionLabel {
            connection: connection.to_string(),
        };
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.api_daily_used.get_or_create(&label).set(gauge(used));
        self.api_daily_limit.get_or_create(&label).set(gauge(limit));
    }

    pub fn webhook(&self, connection: &str, outcome: &str) {
        self.webhook_events
            .get_or_create(&WebhookLabels {
                connection: connection.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The text exposition, with the queue gauges refreshed from the hub.
    pub async fn render(&self, hub: &Hub, lag_bytes: u64) -> Result<String, HubError> {
        let client = hub.client().await?;
        let rows = client
            .query(
                "select s.mapping, s.outbox_backlog, s.dead_letters, s.open_conflicts,
                        (select count(*) from ferry.conflicts c join ferry.mappings m on m.id = c.mapping_id
                          where m.name = s.mapping),
                        s.held_deletes
                   from ferry.status s",
                &[],
            )
            .await?;
        for r in rows {
            let label = MappingLabel { mapping: r.get(0) };
            self.backlog.get_or_create(&label).set(r.get(1));
            self.dead_letters.get_or_create(&label).set(r.get(2));
            self.open_conflicts.get_or_create(&label).set(r.get(3));
            self.conflicts.get_or_create(&label).set(r.get(4));
            self.held_deletes.get_or_create(&label).set(r.get(5));
        }
        self.lag_bytes
            .set(i64::try_from(lag_bytes).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        Ok(out)
    }
}
