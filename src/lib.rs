//! ferry: two-way sync between a PostgreSQL hub and the apps a team uses.
//!
//! Data path (see DESIGN.md §1): hub change → [`replication`] → ferry.outbox → [`outbound`]
//! → [`connectors`]; app change → [`inbound`] (webhooks, backfill) → `ferry.apply` → hub row.

pub mod bench;
pub mod config;
pub mod connectors;
pub mod context;
pub mod control;
pub mod demo;
pub mod engine;
pub mod hub;
pub mod inbound;
pub mod metrics;
pub mod outbound;
pub mod replication;
pub mod sim;
pub mod starter;
