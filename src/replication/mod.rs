//! Outbound path, hub side: the logical-replication listener that turns committed hub
//! changes into durable dirty marks.
//!
//! ```text
//!  PostgreSQL walsender ──CopyBoth──► client (framing, auth, status updates)
//!                                        │ XLogData
//!                                        ▼
//!                                     pgoutput (decode Begin/Relation/Insert/Update/Delete/Commit)
//!                                        │ (mapping, row key) per change, per commit
//!                                        ▼
//!                                     listener ──upsert──► ferry.outbox ──notify──► outbound workers
//!                                        │ after the upsert commits
//!                                        └──ack end_lsn──► walsender (slot advances)
//! ```

pub mod client;
pub mod listener;
pub mod pgoutput;
pub mod visibility;

pub use client::{ReplicationClient, ReplicationError};
