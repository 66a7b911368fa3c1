//! The hub's control schema: refinery migrations (append-only) then the idempotent `sql/`
//! objects (functions, views, triggers), re-applied at every start.

use super::{Hub, HubError};

refinery::embed_migrations!("migrations");

/// Idempotent objects, in dependency order.
const SQL_OBJECTS: &[(&str, &str)] = &[
    (
        "functions/references.sql",
        include_str!("../../sql/functions/references.sql"),
    ),
    (
        "functions/apply.sql",
        include_str!("../../sql/functions/apply.sql"),
    ),
    (
        "functions/fuse.sql",
        include_str!("../../sql/functions/fuse.sql"),
    ),
    (
        "functions/refusals.sql",
        include_str!("../../sql/functions/refusals.sql"),
    ),
    (
        "functions/backfill.sql",
        include_str!("../../sql/functions/backfill.sql"),
    ),
    (
        "functions/outbox.sql",
        include_str!("../../sql/functions/outbox.sql"),
    ),
    (
        "functions/inbox.sql",
        include_str!("../../sql/functions/inbox.sql"),
    ),
    (
        "functions/retry.sql",
        include_str!("../../sql/functions/retry.sql"),
    ),
    (
        "functions/control.sql",
        include_str!("../../sql/functions/control.sql"),
    ),
    (
        "views/status.sql",
        include_str!("../../sql/views/status.sql"),
    ),
    (
        "views/pending.sql",
        include_str!("../../sql/views/pending.sql"),
    ),
    (
        "views/history.sql",
        include_str!("../../sql/views/history.sql"),
    ),
    (
        "triggers/control.sql",
        include_str!("../../sql/triggers/control.sql"),
    ),
    (
        "triggers/mirror.sql",
        include_str!("../../sql/triggers/mirror.sql"),
    ),
    (
        "roles/console.sql",
        include_str!("../../sql/roles/console.sql"),
    ),
];

/// Serialises concurrent starts of several ferry processes.
const MIGRATE_LOCK: i64 = 0x6665_7272_7900_0001;

/// Brings the `ferry` schema up to date. Safe to run from several processes at once.
pub async fn migrate(hub: &Hub) -> Result<(), HubError> {
    let (mut client, conn) = hub.session().await?;
    let conn = tokio::spawn(conn);
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    let result = async {
        client
            .batch_execute("create schema if not exists ferry")
            .await?;
        migrations::runner()
            .set_migration_table_name("ferry.schema_history")
            .run_async(&mut client)
            .await
            .map_err(|e| HubError::Migrate(e.to_string()))?;
        for (name, sql) in SQL_OBJECTS {
            client
                .batch_execute(sql)
                .await
                .map_err(|e| HubError::Migrate(format!("sql/{name}: {}", super::chain(&e))))?;
        }
        Ok(())
    }
    .await;
    let _ = client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await;
    drop(client);
    let _ = conn.await;
    result
}

/// The migrations this build would run on the hub (none: its ferry schema is up to date).
pub async fn pending(hub: &Hub) -> Result<Vec<String>, HubError> {
    let client = hub.client().await?;
    let applied: Vec<i32> = match client
        .query_opt(
            "select to_regclass('ferry.schema_history') is not null",
            &[],
        )
        .await?
        .map(|r| r.get::<_, bool>(0))
    {
        Some(true) => client
            .query("select version from ferry.schema_history", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
        _ => vec![],
    };
    let mut pending: Vec<_> = migrations::runner()
        .get_migrations()
        .iter()
        .filter(|m| !applied.contains(&(m.version() as i32)))
        .map(|m| (m.version(), format!("V{}__{}", m.version(), m.name())))
        .collect();
    pending.sort();
    Ok(pending.into_iter().map(|(_, name)| name).collect())
}
