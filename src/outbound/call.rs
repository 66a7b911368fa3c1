//! Outbound path, the API call of a round: interrupted creates looked up (or repeated where
//! creates are keyed upserts), then creates, updates and archives sent in batches of each
//! operation's size, and one outcome per planned op, in order.

use std::collections::HashMap;

use super::plan::{Link, Op};
use super::{Mark, Outcome};
use crate::connectors::{Connector, ConnectorError, Properties, Written};
use crate::hub::catalog::Mapping;

/// A create whose intent link is older than this attempt may have happened already (ferry died
/// between the API call and its commit, or the call timed out): look those records up by the
/// mapping's match key and adopt what exists instead of creating a duplicate.
pub(super) async fn adopt_interrupted_creates(
    mapping: &Mapping,
    connector: &dyn Connector,
    marks: &[Mark],
    links: &HashMap<i64, Link>,
    mut ops: Vec<Op>,
) -> (Vec<Op>, Option<(Vec<usize>, ConnectorError)>) {
    let Some(field) = mapping.match_field() else {
        return (ops, None);
    };
    // creates keyed on the match key are upserts: repeated as they are, they land on the
    // record the interrupted one made
    if connector
        .capabilities()
        .create_keys
        .contains(&field.property.as_str())
    {
        return (ops, None);
    }
    let mut wanted: Vec<(usize, String)> = vec![];
    for (i, (mark, op)) in marks.iter().zip(&ops).enumerate() {
        if let Op::Create { props, .. } = op {
            let interrupted = links
                .get(&mark.row_key)
                .is_some_and(|l| l.remote_id.is_none());
            // the match key's value as the app stores it (a string key: an email, an id)
            let key = props.get(&field.property).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            if let (true, Some(v)) = (interrupted, key) {
                wanted.push((i, v));
            }
        }
    }
    if wanted.is_empty() {
        return (ops, None);
    }
    let values: Vec<String> = wanted.iter().map(|(_, v)| v.clone()).collect();
    let found = match connector
        .find(&mapping.object, &field.property, &values, &[])
        .await
    {
        Ok(found) => found,
        // cannot tell whether those earlier creates happened: they must not be sent again yet
        Err(e) => return (ops, Some((wanted.into_iter().map(|(i, _)| i).collect(), e))),
    };
    let by_value: HashMap<String, String> = found
        .iter()
        .filter_map(|r| {
            Some((
                r.properties.get(&field.property)?.as_str()?.to_lowercase(),
                r.id.clone(),
            ))
        })
        .collect();
    for (i, v) in wanted {
        if let Some(remote_id) = by_value.get(&v.to_lowercase()) {
            if let Op::Create { props, base } = std::mem::replace(&mut ops[i], Op::Nothing) {
                tracing::info!(mapping = %mapping.name, row = marks[i].row_key, remote_id = %remote_id, "adopting the record an interrupted create made");
                ops[i] = Op::Adopt {
                    remote_id: remote_id.clone(),
                    props,
                    base,
                };
            }
        }
    }
    (ops, None)
}

/// Sends creates, updates and archives as batch calls; one outcome per op, in order.
pub(super) async fn call(
    mapping: &Mapping,
    connector: &dyn Connector,
    ops: Vec<Op>,
) -> Vec<Outcome> {
    let mut creates: Vec<(usize, Properties)> = vec![];
    let mut updates: Vec<(usize, (String, Properties))> = vec![];
    let mut archives: Vec<(usize, String)> = vec![];
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Create { props, .. } => creates.push((i, props.clone())),
            Op::Update {
                remote_id, props, ..
            }
            | Op::Adopt {
                remote_id, props, ..
            } => updates.push((i, (remote_id.clone(), props.clone()))),
            Op::Archive { remote_id } => archives.push((i, remote_id.clone())),
            Op::ForgetLink
            | Op::Release { .. }
            | Op::Nothing
            | Op::Refuse { .. }
            | Op::Wait { .. } => {}
        }
    }
    let object = mapping.object.as_str();
    let sizes = connector.capabilities().batch;
    let create_items: Vec<Properties> = creates.iter().map(|(_, p)| p.clone()).collect();
    let update_items: Vec<(String, Properties)> = updates.iter().map(|(_, u)| u.clone()).collect();
    let archive_ids: Vec<String> = archives.iter().map(|(_, id)| id.clone()).collect();
    // each operation in calls of at most its own batch size; the three kinds run together
    let (created, updated, archived) = tokio::join!(
        async {
            let mut out = vec![];
            for chunk in create_items.chunks(sizes.create.max(1)) {
                out.extend(connector.create(object, chunk).await);
            }
            out
        },
        async {
            let mut out = vec![];
            for chunk in update_items.chunks(sizes.update.max(1)) {
                out.extend(connector.update(object, chunk).await);
            }
            out
        },
        async {
            let mut out = vec![];
            for chunk in archive_ids.chunks(sizes.archive.max(1)) {
                out.extend(connector.archive(object, chunk).await);
            }
            out
        },
    );
    let mut results: Vec<Option<Result<Option<Written>, ConnectorError>>> = ops
        .iter()
        .map(|op| match op {
            Op::Refuse { reason, .. } => Some(Err(ConnectorError::Rejected {
                status: 422,
                message: reason.clone(),
            })),
            _ => None,
        })
        .collect();
    for ((i, _), r) in creates.iter().zip(created) {
        results[*i] = Some(r.map(Some));
    }
    for ((i, _), r) in updates.iter().zip(updated) {
        results[*i] = Some(r.map(Some));
    }
    for ((i, _), r) in archives.iter().zip(archived) {
        results[*i] = Some(r.map(|_| None));
    }
    ops.into_iter()
        .zip(results)
        .map(|(op, r)| match r {
            None | Some(Ok(None)) => Outcome::Done { op, remote: None },
            Some(Ok(remote)) => Outcome::Done { op, remote },
            // updating a record deleted in the app: it is gone; the inbound side removes the row
            Some(Err(ConnectorError::NotFound)) if matches!(op, Op::Update { .. }) => {
                Outcome::Done {
                    op: Op::Nothing,
                    remote: None,
                }
            }
            Some(Err(error)) => Outcome::Failed { op, error },
        })
        .collect()
}
