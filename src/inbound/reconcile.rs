//! Inbound path, the safety net: every reconcile interval, each mapping lists every remote
//! record and compares it with its links. Records the hub lacks or holds stale are applied
//! (drift repaired and counted); linked records the app no longer has are deleted in the hub
//! (or soft-deleted, per mapping). Memory stays flat: one page at a time, the ids seen so far
//! in `ferry.reconcile_seen`. Each connection reconciles in its own loop (cadence.rs).
//!
//! A link made or synced after the run started is never taken for a deletion: its record may
//! have been created after the listing passed its place.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::apply::{apply, deletion_json, log_refusals, read_clock, record_json, stamp_read};
use super::SyncError;
use crate::connectors::Connector;
use crate::context::{Connections, Shared};
use crate::hub::catalog::Mapping;
use crate::hub::{Hub, HubError};

/// What one reconcile run found and did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub listed: u64,
    /// Records inserted or updated because the hub lacked them or held stale values.
    pub repaired: u64,
    /// Hub rows removed (or soft-deleted) because the app no longer has their record.
    pub deleted: u64,
}

/// Advisory lock class of reconcile runs: one per mapping across all ferry processes.
const LOCK_CLASS: i32 = 0x6665_7200;

pub async fn run(hub: Hub, shared: Arc<Shared>, connections: Connections, interval: Duration) {
    // one loop per connection (see cadence.rs)
    let inner = shared.clone();
    super::cadence::per_connection(shared, connections, interval, move |m, connector| {
        let (hub, shared) = (hub.clone(), inner.clone());
        async move {
            match reconcile(&hub, &shared, &m, connector.as_ref()).await {
                Ok(Some(r)) if r.repaired > 0 || r.deleted > 0 => {
                    tracing::info!(mapping = %m.name, listed = r.listed, repaired = r.repaired, deleted = r.deleted, "reconcile repaired drift")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(mapping = %m.name, error = %e, "reconcile failed; the next interval tries again")
                }
            }
        }
    })
    .await;
}

/// One full comparison of one mapping; `None` when another process is reconciling it.
pub async fn reconcile(
    hub: &Hub,
    shared: &Shared,
    mapping: &Mapping,
    connector: &dyn Connector,
) -> Result<Option<Report>, SyncError> {
    // the session lock lives on this connection, held for the whole run
    let lock = hub.client().await?;
    let locked: bool = lock
        .query_one(
            "select pg_try_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &mapping.id],
        )
        .await
        .map_err(HubError::from)?
        .get(0);
    if !locked {
        return Ok(None);
    }
    let result = run_locked(hub, shared, mapping, connector).await;
    let _ = lock
        .execute(
            "select pg_advisory_unlock($1, $2)",
            &[&LOCK_CLASS, &mapping.id],
        )
        .await;
    result.map(Some)
}

async fn run_locked(
    hub: &Hub,
    shared: &Shared,
    mapping: &Mapping,
    connector: &dyn Connector,
) -> Result<Report, SyncError> {
    let client = hub.client().await?;
    let started: DateTime<Utc> = client
        .query_one("select now()", &[])
        .await
        .map_err(HubError::from)?
        .get(0);
    client
        .execute(
            "delete from ferry.reconcile_seen where mapping_id = $1",
            &[&mapping.id],
        )
        .await
        .map_err(HubError::from)?;
    drop(client);
    let properties = mapping.properties();
    let mut report = Report::default();
    let mut after = None;
    loop {
        if shared.is_shutting_down() {
            return Ok(report);
        }
        let read_at = read_clock(&*hub.client().await?).await?;
        let page = connector
            .list(&mapping.object, &properties, after.take())
            .await?;
        report.listed += page.records.len() as u64;
        let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
        let mut records: Vec<serde_json::Value> = page
            .records
            .iter()
            .map(|r| record_json(mapping, r))
            .collect();
        // a record written meanwhile is held back (its write may be newer than this page)
        stamp_read(&mut records, &read_at);
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        tx.execute(
            "insert into ferry.reconcile_seen (mapping_id, remote_id) select $1, unnest($2::text[]) on conflict do nothing",
            &[&mapping.id, &ids],
        )
        .await
        .map_err(HubError::from)?;
        // unknown ids held back are not queued: a create in flight is matched by its link later
        let outcome = apply(&*tx, mapping.id, records, true, "reconcile").await?;
        log_refusals(mapping, &outcome);
        tx.commit().await.map_err(HubError::from)?;
        report.repaired += (outcome.inserted + outcome.updated) as u64;
        match page.after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    // linked before the run started and not listed: deleted in the app
    let client = hub.client().await?;
    let gone: Vec<String> = client
        .query(
            "select l.remote_id from ferry.links l
              where l.mapping_id = $1 and l.remote_id is not null
                and l.created_at < $2 and coalesce(l.synced_at, l.created_at) < $2
                and not exists (select 1 from ferry.reconcile_seen s
                                 where s.mapping_id = l.mapping_id and s.remote_id = l.remote_id)",
            &[&mapping.id, &started],
        )
        .await
        .map_err(HubError::from)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // a listing far shorter than the links (an outage's empty page, a token that lost its
    // rights) trips the mass-delete fuse before anything is deleted: every deletion is held
    let tripped: bool = client
        .query_one(
            "select ferry.fuse_listing($1, $2, $3)",
            &[&mapping.id, &(report.listed as i64), &(gone.len() as i64)],
        )
        .await
        .map_err(HubError::from)?
        .get(0);
    drop(client);
    if tripped {
        crate::hub::fuse::tripped(
            &mapping.name,
            crate::hub::fuse::Side::App,
            gone.len() as i64,
        );
    }
    for chunk in gone.chunks(500) {
        let mut client = hub.client().await?;
        let tx = client.transaction().await.map_err(HubError::from)?;
        let outcome = apply(
            &*tx,
            mapping.id,
            chunk.iter().map(|id| deletion_json(id)).collect(),
            false,
            "reconcile",
        )
        .await?;
        log_refusals(mapping, &outcome);
        tx.commit().await.map_err(HubError::from)?;
        report.deleted += outcome.deleted as u64;
    }
    let client = hub.client().await?;
    client
        .execute(
            "update ferry.mapping_progress set reconciled_at = now(), reconcile_deleted = reconcile_deleted + $2,
                    reconcile_repaired = reconcile_repaired + $3 where mapping_id = $1",
            &[&mapping.id, &(report.deleted as i64), &(report.repaired as i64)],
        )
        .await
        .map_err(HubError::from)?;
    client
        .execute(
            "delete from ferry.reconcile_seen where mapping_id = $1",
            &[&mapping.id],
        )
        .await
        .map_err(HubError::from)?;
    if report.repaired > 0 || report.deleted > 0 {
        shared.outbox_ready.notify_waiters();
    }
    Ok(report)
}
