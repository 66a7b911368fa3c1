//! Salesforce simulator: `ferry sim salesforce` — its command-line options and the foreground
//! run.

use std::net::SocketAddr;

use super::{run_cli, SimConfig};
use crate::sim::core::FaultArgs;

/// Salesforce REST API (OAuth, sObjects, Collections, SOQL, getDeleted, daily API limit).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1:8703")]
    listen: SocketAddr,
    /// The connected app's consumer key.
    #[arg(long, env = "FERRY_SIM_SF_CLIENT_ID", default_value = "sim-client")]
    client_id: String,
    /// The connected app's consumer secret.
    #[arg(long, env = "FERRY_SIM_SF_CLIENT_SECRET", default_value = "sim-secret")]
    client_secret: String,
    /// The refresh token the refresh_token grant accepts.
    #[arg(
        long,
        env = "FERRY_SIM_SF_REFRESH_TOKEN",
        default_value = "sim-refresh"
    )]
    refresh_token: String,
    /// API requests per rolling 24 hours (the org's daily allocation).
    #[arg(long, default_value_t = 15_000)]
    daily_api_limit: u32,
    /// Accounts, contacts and opportunities to create at start.
    #[arg(long, default_value_t = 0)]
    seed_accounts: usize,
    #[arg(long, default_value_t = 0)]
    seed_contacts: usize,
    #[arg(long, default_value_t = 0)]
    seed_opportunities: usize,
    #[command(flatten)]
    faults: FaultArgs,
}

impl Args {
    /// Serves until Ctrl-C.
    pub async fn run(self) -> std::io::Result<()> {
        let cfg = SimConfig {
            client_id: self.client_id,
            client_secret: self.client_secret,
            refresh_token: self.refresh_token,
            daily_api_limit: self.daily_api_limit,
            seed_accounts: self.seed_accounts,
            seed_contacts: self.seed_contacts,
            seed_opportunities: self.seed_opportunities,
            latency: self.faults.latency(),
            error_rate: self.faults.error_rate,
            throttle_rate: self.faults.throttle_rate,
            lost_response_rate: self.faults.lost_response_rate,
            ..SimConfig::default()
        };
        run_cli(cfg, self.listen).await
    }
}
