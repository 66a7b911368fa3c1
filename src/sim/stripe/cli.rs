//! Stripe simulator: `ferry sim stripe` — its command-line options and the foreground run.

use std::net::SocketAddr;

use super::{run_cli, SimConfig};
use crate::sim::core::budget::limit_arg;
use crate::sim::core::FaultArgs;

/// Stripe (customers, invoices, events, idempotency keys, signed webhooks).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8704")]
    listen: SocketAddr,
    /// The sandbox secret key the simulator accepts.
    #[arg(long, env = "FERRY_SIM_STRIPE_KEY", default_value = "sk_test_sim")]
    key: String,
    /// A live secret key, which turns live mode on.
    #[arg(long, env = "FERRY_SIM_STRIPE_LIVE_KEY")]
    live_key: Option<String>,
    /// Where to POST signed events.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The endpoint's signing secret.
    #[arg(
        long,
        env = "FERRY_SIM_STRIPE_WEBHOOK_SECRET",
        default_value = "whsec_sim"
    )]
    webhook_secret: String,
    /// Sandbox budget as REQUESTS/SECONDSs, or `none`.
    #[arg(long, default_value = "25/1s")]
    rate_limit: String,
    /// Customers to create at start.
    #[arg(long, default_value_t = 0)]
    seed_customers: usize,
    #[command(flatten)]
    faults: FaultArgs,
    /// Share of webhook deliveries dropped.
    #[arg(long, default_value_t = 0.0)]
    webhook_drop_rate: f64,
}

impl Args {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> std::io::Result<()> {
        let cfg = SimConfig {
            test_key: self.key,
            live_key: self.live_key,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            sandbox_rate_limit: limit_arg(&self.rate_limit)?,
            seed_customers: self.seed_customers,
            latency: self.faults.latency(),
            error_rate: self.faults.error_rate,
            throttle_rate: self.faults.throttle_rate,
            lost_response_rate: self.faults.lost_response_rate,
            webhook_drop_rate: self.webhook_drop_rate,
            ..SimConfig::default()
        };
        run_cli(cfg, self.listen).await
    }
}
