//! Inbound path: app changes → hub rows. Webhooks land in ferry.inbox; the inbox worker, the
//! poller, the reconcile and the backfill fetch records and hand them to `apply` (one SQL call
//! per batch).

pub mod apply;
pub mod backfill;
pub mod cadence;
pub mod inbox;
pub mod intake;
pub mod poll;
pub mod reconcile;
pub mod screen;
pub mod webhook;

use crate::connectors::ConnectorError;
use crate::hub::HubError;

/// Why a backfill, poll or reconcile run stopped early. Each resumes from its stored position.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Retry after a delay.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Retry after the connector's hint or with backoff; a rejection needs the operator.
    #[error("reading remote records: {0}")]
    Connector(#[from] ConnectorError),
    /// A backfill batch merged after one that failed: not stored either (the cursor must not
    /// pass the failed pages). Retry after a delay, from the stored cursor.
    #[error("an earlier batch of the backfill was not stored; resuming from the last stored page")]
    EarlierBatchFailed,
}
