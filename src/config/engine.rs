//! Configuration: the `[engine]` table (listener, replication slot, workers, polling and
//! retention periods) and the durations it is written in.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// HTTP listener for webhooks, /healthz.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL apps post webhooks to, as they see it (HubSpot signs the full URL).
    /// Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Replication slot name (lowercase).
    #[serde(default = "default_slot")]
    pub slot: String,
    #[serde(default = "default_publication")]
    pub publication: String,
    /// Outbound worker tasks per process, shared out among the connections: each connection
    /// has its own lane (an equal share, at least two), so a slow app never holds the others.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How often each mapping asks its app for records changed since the last poll: the sure
    /// path for changes whose webhook was lost. `0s` turns polling off.
    #[serde(default = "default_poll_interval", deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// How far back each poll reaches before the last change it saw (search indexes lag,
    /// clocks differ). Records read twice are applied once.
    #[serde(default = "default_poll_overlap", deserialize_with = "duration")]
    pub poll_overlap: Duration,
    /// How often each mapping compares every remote id with its links: remote deletions reach
    /// the hub, missing records are fetched. `0s` turns it off.
    #[serde(default = "default_reconcile_interval", deserialize_with = "duration")]
    pub reconcile_interval: Duration,
    /// How long ferry.history keeps each field change ferry sent or applied; `0s` records
    /// none.
    #[serde(default = "default_history_retention", deserialize_with = "duration")]
    pub history_retention: Duration,
}

fn default_history_retention() -> Duration {
    Duration::from_secs(30 * 86400)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_poll_overlap() -> Duration {
    Duration::from_secs(60)
}
fn default_reconcile_interval() -> Duration {
    Duration::from_secs(6 * 3600)
}

/// `250ms`, `30s`, `5m`, `6h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("duration `{s}` must look like 250ms, 30s, 5m, 6h or 30d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "duration `{s}` must look like 250ms, 30s, 5m, 6h or 30d"
            ))
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration `{s}` is out of range"))
}

/// Deserializes a duration written as [`parse_duration`] reads it (`deserialize_with`).
pub(super) fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8700))
}
fn default_slot() -> String {
    "ferry".into()
}
fn default_publication() -> String {
    "ferry".into()
}
/// Outbound workers per process; each holds one hub connection at a time. On 2 cores, 6 left
/// less CPU idle than 4 while draining (15,800-24,100 changes/s against 15,900-17,200 in the
/// same hour; see BENCHMARKS.md).
pub fn default_workers() -> usize {
    6
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            listen: default_listen(),
            public_url: None,
            slot: default_slot(),
            publication: default_publication(),
            workers: default_workers(),
            poll_interval: default_poll_interval(),
            poll_overlap: default_poll_overlap(),
            reconcile_interval: default_reconcile_interval(),
            history_retention: default_history_retention(),
        }
    }
}

impl EngineConfig {
    /// Structural checks of the `[engine]` table.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let slot = &self.slot;
        if slot.is_empty()
            || slot.len() > 63
            || !slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::Invalid(format!(
                "engine.slot `{slot}`: slot names are 1-63 characters of a-z, 0-9 and _"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
