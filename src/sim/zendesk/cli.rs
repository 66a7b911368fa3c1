//! Zendesk simulator: `ferry sim zendesk` — its command-line options and the foreground run.

use std::net::SocketAddr;
use std::time::Duration;

use super::{run_cli, SimConfig};
use crate::sim::core::budget::limit_arg;
use crate::sim::core::FaultArgs;

/// Zendesk Support (users, organizations, bulk jobs, incremental exports, event webhooks).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8702")]
    listen: SocketAddr,
    /// Agent email; the Basic auth user is `{email}/token`.
    #[arg(
        long,
        env = "FERRY_SIM_ZENDESK_EMAIL",
        default_value = "agent@example.com"
    )]
    email: String,
    /// API token (the Basic auth password).
    #[arg(long, env = "FERRY_SIM_ZENDESK_TOKEN", default_value = "sim-token")]
    token: String,
    /// OAuth access token also accepted as `Authorization: Bearer <token>`.
    #[arg(long, env = "FERRY_SIM_ZENDESK_OAUTH_TOKEN")]
    oauth_token: Option<String>,
    /// End-users to create at start (user1@example.com, user2@example.com, ...).
    #[arg(long, default_value_t = 0)]
    seed_users: usize,
    /// Organizations to create at start; seeded users join them in turn.
    #[arg(long, default_value_t = 0)]
    seed_orgs: usize,
    /// Where to POST signed event webhooks.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The webhook signing secret.
    #[arg(
        long,
        env = "FERRY_SIM_ZENDESK_WEBHOOK_SECRET",
        default_value = "sim-secret"
    )]
    webhook_secret: String,
    /// Account-wide rate limit as REQUESTS/SECONDSs, or `none`.
    #[arg(long, default_value = "700/60s")]
    rate_limit: String,
    /// Incremental export rate limit (on top of the account one), or `none`.
    #[arg(long, default_value = "10/60s")]
    incremental_limit: String,
    /// How long bulk jobs stay queued, in milliseconds.
    #[arg(long, default_value_t = 100)]
    job_delay_ms: u64,
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
            email: self.email,
            token: self.token,
            oauth_token: self.oauth_token,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
            rate_limit: limit_arg(&self.rate_limit)?,
            incremental_limit: limit_arg(&self.incremental_limit)?,
            job_delay: Duration::from_millis(self.job_delay_ms),
            seed_users: self.seed_users,
            seed_orgs: self.seed_orgs,
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
