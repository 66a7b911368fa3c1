//! HubSpot simulator: `ferry sim hubspot` — its command-line options and the foreground run.

use std::net::SocketAddr;

use super::{run_cli, SimConfig};
use crate::sim::core::budget::limit_arg;
use crate::sim::core::FaultArgs;

/// HubSpot CRM v3 (contacts, companies, deals).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8701")]
    listen: SocketAddr,
    /// Bearer token the simulator requires.
    #[arg(long, env = "FERRY_SIM_TOKEN", default_value = "sim-token")]
    token: String,
    /// Contacts to create at start.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    /// Where to POST signed webhook batches.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Webhook signing secret (the app's client secret).
    #[arg(long, env = "FERRY_SIM_WEBHOOK_SECRET", default_value = "sim-secret")]
    webhook_secret: String,
    /// Events a webhook delivery holds at most (HubSpot's 100; 1 = one event a delivery).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=100))]
    webhook_batch: u16,
    /// Webhook deliveries in flight at once (the app's concurrency limit).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    webhook_concurrency: u16,
    /// Rate limit as REQUESTS/SECONDSs, e.g. 190/10s, or `none`.
    #[arg(long, default_value = "none")]
    rate_limit: String,
    #[command(flatten)]
    faults: FaultArgs,
}

impl Args {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> std::io::Result<()> {
        let cfg = SimConfig {
            token: self.token,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            webhook_batch: usize::from(self.webhook_batch),
            webhook_concurrency: usize::from(self.webhook_concurrency),
            rate_limit: limit_arg(&self.rate_limit)?,
            seed_contacts: self.seed,
            latency: self.faults.latency(),
            error_rate: self.faults.error_rate,
            throttle_rate: self.faults.throttle_rate,
            lost_response_rate: self.faults.lost_response_rate,
        };
        run_cli(cfg, self.listen).await
    }
}
