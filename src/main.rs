//! The `ferry` command line: parse, set up logging, hand off.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use ferry::config::Config;
use ferry::engine::{secrets_from_env, Engine};
use ferry::hub::embedded::EmbeddedPg;
use ferry::hub::Hub;

// glibc's malloc was ~15% of all CPU in the outbound benchmark (free-list consolidation under
// the JSON and row churn of many small allocations); mimalloc is built for that pattern
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ferry",
    version,
    about = "Two-way sync between PostgreSQL and the apps your team uses"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "ferry.toml",
        env = "FERRY_CONFIG"
    )]
    config: PathBuf,
    /// Where the embedded PostgreSQL keeps its data (used when FERRY_DATABASE_URL is unset).
    #[arg(long, global = true, default_value = ".ferry", env = "FERRY_DATA_DIR")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sync engine (the default).
    Run,
    /// Print ferry.status (per mapping: state, backlog, dead letters, conflicts, lag) and exit.
    Status,
    /// Apply ferry.toml to the hub (tables, columns, mappings) and exit.
    Apply {
        /// Print what applying would change (tables, columns, mappings, backfills) and change
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a commented starter ferry.toml (at --config) and say which variables to set.
    Init {
        /// The app the starter connects: hubspot, zendesk, salesforce or stripe.
        #[arg(long, default_value = "hubspot")]
        preset: String,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Embedded PostgreSQL + seeded HubSpot and Zendesk simulators + ferry, one crm.people table.
    Demo {
        /// Contacts the simulator starts with.
        #[arg(long, default_value_t = 1000)]
        contacts: usize,
        /// The HubSpot simulator's address (Zendesk's takes the next port).
        #[arg(long, default_value = "127.0.0.1:8701")]
        sim_listen: SocketAddr,
        /// ferry's webhook/health address.
        #[arg(long, default_value = "127.0.0.1:8700")]
        listen: SocketAddr,
    },
    /// Benchmarks against the simulators, with same-run baselines (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run a local simulator of an app.
    Sim {
        #[command(subcommand)]
        app: ferry::sim::App,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Hub commit → API write: throughput vs pg_recvlogical, latency, rate-limited rate.
    Outbound {
        /// Rows, each updated once in its own transaction.
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        /// Latency probes per phase (unloaded, loaded).
        #[arg(long, default_value_t = 200)]
        latency_samples: usize,
        /// Length of the rate-limited run in seconds at the ideal rate (0 skips it).
        #[arg(long, default_value_t = 30)]
        rate_limited_secs: u64,
        /// Outbound workers of the engine under test (default: the engine's default).
        #[arg(long, default_value_t = ferry::config::default_workers())]
        workers: usize,
    },
    /// App → hub: backfill vs psql \copy and its peak memory, webhook ingest and latency.
    Inbound {
        /// Records the backfill reads from a simulator process.
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        /// App updates delivered by webhook.
        #[arg(long, default_value_t = 20_000)]
        webhook_events: usize,
        /// Webhook-to-row latency probes.
        #[arg(long, default_value_t = 200)]
        latency_samples: usize,
    },
    /// One table, two apps: a change in Zendesk until HubSpot accepted ferry's write of it.
    Nway {
        /// People in both apps.
        #[arg(long, default_value_t = 2_000)]
        people: usize,
        /// Changes timed per phase (unloaded, loaded).
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Hub edits per second in the loaded phase (each goes to both apps).
        #[arg(long, default_value_t = 100.0)]
        load_per_sec: f64,
    },
    /// The Zendesk preset under its budgets: backfill vs HubSpot's, a write backlog's rate.
    Zendesk {
        /// End-users seeded in Zendesk's simulator (and contacts in HubSpot's, the baseline).
        #[arg(long, default_value_t = 5_000)]
        users: usize,
        /// Zendesk's account budget, in the simulator and the connection's `rate_limit`.
        #[arg(long, default_value = "700/60s")]
        budget: String,
    },
    /// The Stripe preset under its budget: backfill vs HubSpot's, a write backlog's rate.
    Stripe {
        /// Customers seeded in Stripe's simulator (and contacts in HubSpot's, the baseline).
        #[arg(long, default_value_t = 1_500)]
        customers: usize,
        /// Stripe's budget (sandbox: 25 requests a second), in the simulator and the
        /// connection's `rate_limit`.
        #[arg(long, default_value = "25/1s")]
        budget: String,
    },
    /// The generic REST connector: backfill and webhook ingest vs the HubSpot preset's.
    Rest {
        /// Records seeded in the REST simulator (and contacts in HubSpot's, the baseline).
        #[arg(long, default_value_t = 5_000)]
        records: usize,
        /// App edits delivered by webhook (in both apps).
        #[arg(long, default_value_t = 2_000)]
        events: usize,
        /// Deliveries the REST simulator has in flight at once.
        #[arg(long, default_value_t = 8)]
        webhook_concurrency: usize,
        /// Events per delivery (1: each event posted on its own, as most apps send; HubSpot's
        /// simulator sends up to 100).
        #[arg(long, default_value_t = 1)]
        webhook_batch: usize,
        /// What the connection says the events carry: `records` (applied without a fetch when
        /// safe) or `ids` (every event's record fetched).
        #[arg(long, default_value = "records")]
        webhook_carries: String,
    },
    /// The Salesforce preset: backfill vs HubSpot's, a write backlog through sObject
    /// Collections, and the daily allocation paced over two simulated days.
    Salesforce {
        /// Contacts seeded in Salesforce's simulator (and contacts in HubSpot's, the baseline).
        #[arg(long, default_value_t = 6_000)]
        contacts: usize,
        /// The connection's `rate_limit` (Salesforce limits the day, not the second).
        #[arg(long, default_value = "5/1s")]
        budget: String,
        /// The org's daily API allocation in the simulated days.
        #[arg(long, default_value_t = 3_000)]
        daily_limit: u32,
    },
}

/// The hub: FERRY_DATABASE_URL, or the embedded server under the data directory.
async fn hub(data_dir: &std::path::Path) -> anyhow::Result<(Hub, Option<EmbeddedPg>)> {
    if let Ok(url) = std::env::var("FERRY_DATABASE_URL") {
        return Ok((Hub::connect(&url).await?, None));
    }
    let dir = data_dir.to_path_buf();
    let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir)).await??;
    pg.ensure_database("ferry").await?;
    let url = pg.url("ferry");
    eprintln!(
        "embedded PostgreSQL running; connect with: psql {url}; {}",
        pg.banner()
    );
    Ok((Hub::connect(&url).await?, Some(pg)))
}

async fn main_inner(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            let mut config = Config::load(&cli.config)?;
            if let Ok(listen) = std::env::var("FERRY_LISTEN") {
                config.engine.listen = listen.parse().with_context(|| {
                    format!("FERRY_LISTEN={listen} is not an address like 0.0.0.0:8700")
                })?;
            }
            let secrets = secrets_from_env(&config)?;
            let (hub, pg) = hub(&cli.data_dir).await?;
            let engine = Engine::start(hub.clone(), &config, &secrets).await?;
            eprintln!(
                "ferry running; webhooks at {}/webhooks/<connection>",
                engine.public_url
            );
            ferry::demo::wait_for_signal().await;
            engine.shutdown().await;
            hub.close().await;
            if let Some(pg) = pg {
                pg.stop();
            }
        }
        Command::Init { preset, force } => {
            let Some(text) = ferry::starter::text(&preset) else {
                anyhow::bail!(
                    "unknown preset `{preset}` (known: {})",
                    ferry::starter::PRESETS.join(", ")
                );
            };
            if cli.config.exists() && !force {
                anyhow::bail!(
                    "{} exists already; `ferry init --force` overwrites it",
                    cli.config.display()
                );
            }
            std::fs::write(&cli.config, text)?;
            println!("wrote {} ({preset} starter)", cli.config.display());
            println!(
                "set these environment variables (ferry reads secrets only from the environment):"
            );
            for (var, what) in ferry::starter::env_vars(&preset) {
                println!("  export {var}=...   # {what}");
            }
            println!("then: `ferry apply --dry-run` shows what it would create, `ferry run` starts syncing");
        }
        Command::Status => {
            let (hub, pg) = hub(&cli.data_dir).await?;
            ferry::hub::migrate::migrate(&hub).await?;
            print!("{}", ferry::control::status_table(&hub).await?);
            hub.close().await;
            // a server another ferry process runs on keeps running
            if let Some(pg) = pg.filter(|pg| pg.owned()) {
                pg.stop();
            }
        }
        Command::Apply { dry_run } => {
            let config = Config::load(&cli.config)?;
            let (hub, pg) = hub(&cli.data_dir).await?;
            if dry_run {
                let pending = ferry::hub::migrate::pending(&hub).await?;
                if pending.is_empty() {
                    let report = ferry::hub::schema::apply_with(&hub, &config, true).await?;
                    if report.is_empty() {
                        println!("dry run: the hub already matches ferry.toml; applying would change nothing");
                    } else {
                        println!(
                            "dry run, nothing changed; applying ferry.toml would do this: {report}"
                        );
                    }
                } else {
                    println!(
                        "dry run, nothing changed; applying would first bring ferry's control schema up to date ({}), \
                         then apply ferry.toml: run `ferry apply` to do both",
                        pending.join(", ")
                    );
                }
            } else {
                ferry::hub::migrate::migrate(&hub).await?;
                let report = ferry::hub::schema::apply(&hub, &config).await?;
                println!("{report}");
            }
            hub.close().await;
            if let Some(pg) = pg.filter(|pg| pg.owned()) {
                pg.stop();
            }
        }
        Command::Demo {
            contacts,
            sim_listen,
            listen,
        } => {
            ferry::demo::run(ferry::demo::DemoOptions {
                data_dir: cli.data_dir,
                contacts,
                sim_listen,
                listen,
            })
            .await?;
        }
        Command::Bench {
            what:
                BenchWhat::Outbound {
                    rows,
                    latency_samples,
                    rate_limited_secs,
                    workers,
                },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::outbound::run(
                &dir,
                ferry::bench::outbound::Options {
                    rows,
                    latency_samples,
                    rate_limited_secs,
                    workers,
                },
            )
            .await?;
        }
        Command::Bench {
            what:
                BenchWhat::Inbound {
                    records,
                    webhook_events,
                    latency_samples,
                },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::inbound::run(
                &dir,
                ferry::bench::inbound::Options {
                    records,
                    webhook_events,
                    latency_samples,
                },
            )
            .await?;
        }
        Command::Bench {
            what:
                BenchWhat::Nway {
                    people,
                    samples,
                    load_per_sec,
                },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::nway::run(
                &dir,
                ferry::bench::nway::Options {
                    people,
                    samples,
                    load_per_sec,
                },
            )
            .await?;
        }
        Command::Bench {
            what: BenchWhat::Zendesk { users, budget },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::zendesk::run(&dir, ferry::bench::zendesk::Options { users, budget })
                .await?;
        }
        Command::Bench {
            what: BenchWhat::Stripe { customers, budget },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::stripe::run(&dir, ferry::bench::stripe::Options { customers, budget })
                .await?;
        }
        Command::Bench {
            what:
                BenchWhat::Rest {
                    records,
                    events,
                    webhook_concurrency,
                    webhook_batch,
                    webhook_carries,
                },
        } => {
            let dir = bench_dir(cli.data_dir);
            let opts = ferry::bench::rest::Options {
                records,
                events,
                webhook_concurrency,
                webhook_batch,
                webhook_carries,
            };
            ferry::bench::rest::run(&dir, opts).await?;
        }
        Command::Bench {
            what:
                BenchWhat::Salesforce {
                    contacts,
                    budget,
                    daily_limit,
                },
        } => {
            let dir = bench_dir(cli.data_dir);
            ferry::bench::salesforce::run(
                &dir,
                ferry::bench::salesforce::Options {
                    contacts,
                    budget,
                    daily_limit,
                },
            )
            .await?;
        }
        Command::Sim { app } => app.run().await?,
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // the demo talks to a person on the terminal: only problems are logged unless asked
    let default_filter = if matches!(cli.command, Some(Command::Demo { .. })) {
        "ferry=warn"
    } else {
        "ferry=info,warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = main_inner(cli).await {
        eprintln!("ferry: {e}");
        std::process::exit(1);
    }
}

/// Benchmarks keep their cluster apart from `ferry run`'s: the default data directory becomes
/// `.ferry-bench`; a directory given explicitly is used as it is.
fn bench_dir(data_dir: PathBuf) -> PathBuf {
    if data_dir == std::path::Path::new(".ferry") {
        PathBuf::from(".ferry-bench")
    } else {
        data_dir
    }
}
