//! Outbound path, around each batch: a row whose processing fails every time (a statement the
//! hub refuses for that row, a panic) fails alone. The batch is processed again row by row, and
//! a row failing alone counts attempts until it becomes a dead letter; the rows claimed with
//! it go through.

use super::{commit, process, Mark};
use crate::connectors::Connector;
use crate::hub::catalog::Mapping;
use crate::hub::HubError;

/// Attempts before a row whose processing itself fails becomes a dead letter: unlike an app's
/// outage, such a failure rarely heals.
pub(super) const PROCESS_BUDGET: i32 = 5;

/// Processes a chunk of marks so that a row failing every time fails alone: when the chunk
/// fails (a statement error other than a lost connection, or a panic), each of its rows is
/// processed on its own, and a row failing alone counts an attempt; after [`PROCESS_BUDGET`]
/// it is a dead letter. The rows claimed with it go through.
pub(super) async fn isolate(
    client: &mut deadpool_postgres::Object,
    mapping: &Mapping,
    connector: &dyn Connector,
    marks: &[Mark],
) -> Result<(), HubError> {
    let result = guarded(process(client, mapping, connector, marks)).await;
    let Some(failure) = failed(client, result)? else {
        return Ok(());
    };
    if let [mark] = marks {
        return commit::count_failure(client, mapping, mark, &failure, PROCESS_BUDGET).await;
    }
    tracing::warn!(mapping = %mapping.name, rows = marks.len(), "a batch failed; its rows go one at a time");
    for mark in marks {
        let result = guarded(process(
            client,
            mapping,
            connector,
            std::slice::from_ref(mark),
        ))
        .await;
        if let Some(failure) = failed(client, result)? {
            commit::count_failure(client, mapping, mark, &failure, PROCESS_BUDGET).await?;
        }
    }
    Ok(())
}

/// A processing step's result with its panic caught (the panic's message as the error).
async fn guarded(
    step: impl std::future::Future<Output = Result<(), HubError>>,
) -> Result<(), String> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(step).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("ferry failed processing this row: {why}"))
        }
    }
}

/// `Ok(None)`: the step went through; `Ok(Some(why))`: it failed for its rows; `Err`: the hub
/// connection is gone (the round ends, its claims lapse, nothing is counted against the rows).
fn failed(
    client: &deadpool_postgres::Object,
    result: Result<(), String>,
) -> Result<Option<String>, HubError> {
    match result {
        Ok(()) => Ok(None),
        Err(why) if client.is_closed() => Err(HubError::Schema(format!(
            "hub connection lost while processing outbound rows: {why}"
        ))),
        Err(why) => Ok(Some(why)),
    }
}
