//! REST simulator: `ferry sim rest` — its command-line options and the foreground run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::profile::Profile;
use super::{run_cli, SimConfig};
use crate::sim::core::{FaultArgs, FaultSettings};

/// A generic JSON REST API shaped by a TOML profile (auth, ids, bodies, timestamps, pages,
/// deletes, signed webhooks).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The profile (TOML) describing the API's shape.
    #[arg(long)]
    profile: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8706")]
    listen: SocketAddr,
    /// The API secret (token, key, password or client secret) when the profile names none.
    #[arg(
        long,
        env = "FERRY_SIM_REST_SECRET",
        hide_env_values = true,
        default_value = "sim-secret"
    )]
    secret: String,
    /// Where to POST signed events.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The webhook secret when the profile names none [default: whsec-sim; for the
    /// `standard` scheme the Standard Webhooks example key].
    #[arg(long, env = "FERRY_SIM_REST_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Records to create at start, as RESOURCE=COUNT (repeatable).
    #[arg(long, value_parser = seed_arg)]
    seed: Vec<(String, usize)>,
    #[command(flatten)]
    faults: FaultArgs,
    /// Share of webhook deliveries dropped.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
}

/// `contacts=100`.
fn seed_arg(s: &str) -> Result<(String, usize), String> {
    let bad = || format!("seed `{s}` must look like contacts=100");
    let (name, n) = s.split_once('=').ok_or_else(bad)?;
    let n = n.trim().parse().map_err(|_| bad())?;
    Ok((name.trim().to_string(), n))
}

impl Args {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> std::io::Result<()> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        let mut profile = Profile::load(&self.profile).map_err(invalid)?;
        profile.auth.secret.get_or_insert(self.secret);
        if let Some(s) = self.webhook_secret {
            profile.webhooks.secret.get_or_insert(s);
        }
        let mut seed = BTreeMap::new();
        for (name, n) in self.seed {
            *seed.entry(name).or_insert(0) += n;
        }
        let config = SimConfig {
            profile,
            listen: self.listen,
            webhook_url: self.webhook_url,
            faults: FaultSettings {
                latency: self.faults.latency(),
                error_rate: self.faults.error_rate,
                throttle_rate: self.faults.throttle_rate,
                lost_response_rate: self.faults.lost_response_rate,
                webhook_drop_rate: self.webhook_drop_rate,
                empty_listings: false,
            },
            seed,
        };
        run_cli(config).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse() {
        assert_eq!(seed_arg("contacts=100"), Ok(("contacts".into(), 100)));
        assert!(seed_arg("contacts").is_err());
        assert!(seed_arg("contacts=many").is_err());
    }
}
