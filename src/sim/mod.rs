//! Simulators of the apps ferry syncs with: local HTTP servers that follow the vendors' wire
//! formats strictly (auth, paging, batch semantics, errors, rate limits, signed webhooks), so the
//! engine can be tested and benchmarked offline.

pub mod core;
pub mod hubspot;
pub mod rest;
pub mod salesforce;
pub mod stripe;
pub mod zendesk;

/// The simulators `ferry sim <app>` runs: one line each, naming the app's folder, whose
/// `cli::Args` are its options (the doc comment on `Args` is the subcommand's help).
macro_rules! simulators {
    ($($variant:ident => $app:ident),* $(,)?) => {
        /// A simulator and its options.
        #[derive(clap::Subcommand, Debug)]
        pub enum App {
            $($variant($app::cli::Args),)*
        }

        impl App {
            /// Serves until Ctrl-C.
            pub async fn run(self) -> std::io::Result<()> {
                match self {
                    $(App::$variant(args) => args.run().await,)*
                }
            }
        }
    };
}

simulators! {
    Hubspot => hubspot,
    Rest => rest,
    Salesforce => salesforce,
    Stripe => stripe,
    Zendesk => zendesk,
}
