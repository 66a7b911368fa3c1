//! Inbound path: app changes → hub rows. Webhooks land in ferry.inbox; the inbox worker and
//! the backfill fetch records and hand them to `apply` (one SQL call per batch).

pub mod apply;
pub mod backfill;
pub mod inbox;
pub mod webhook;
