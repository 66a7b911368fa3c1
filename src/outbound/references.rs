//! Outbound path, before the API call: reference fields. A reference column holds the hub row
//! key of a row another mapping syncs (a Zendesk user's organization); its app takes the id of
//! that row's record there. A row whose referenced record does not exist in the app yet waits
//! (the mark is held and tried again) instead of sending a dangling reference.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use crate::hub::catalog::{Field, Mapping};
use crate::hub::HubError;

/// The remote ids of the rows the claimed rows reference, per reference column.
#[derive(Debug, Default)]
pub struct References {
    by_column: HashMap<String, HashMap<i64, String>>,
}

/// Why a row cannot go out yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting(pub String);

impl References {
    /// Looks up, for every reference field of `mapping`, the remote ids of the rows `rows`
    /// point at (one query per reference field).
    pub async fn load(
        client: &impl GenericClient,
        mapping: &Mapping,
        rows: &HashMap<i64, Map<String, Value>>,
    ) -> Result<References, HubError> {
        let mut refs = References::default();
        for f in mapping.fields.iter().filter(|f| f.direction.outbound()) {
            let Some(target) = f.references else { continue };
            let keys: Vec<i64> = rows
                .values()
                .filter_map(|r| r.get(&f.column)?.as_i64())
                .collect();
            let mut ids = HashMap::new();
            if !keys.is_empty() {
                for r in client
                    .query(
                        "select row_key, remote_id from ferry.links
                          where mapping_id = $1 and row_key = any($2) and remote_id is not null",
                        &[&target, &keys],
                    )
                    .await?
                {
                    ids.insert(r.get::<_, i64>(0), r.get::<_, String>(1));
                }
            }
            refs.by_column.insert(f.column.clone(), ids);
        }
        Ok(refs)
    }

    /// The app's value of a reference column's hub value: the referenced record's id (a JSON
    /// number when it is one, as apps with integer ids take it), null for null, or why the row
    /// must wait.
    pub fn to_app(&self, field: &Field, hub: &Value) -> Result<Value, Waiting> {
        let Some(key) = hub.as_i64() else {
            return Ok(Value::Null);
        };
        match self
            .by_column
            .get(&field.column)
            .and_then(|ids| ids.get(&key))
        {
            Some(id) => Ok(id
                .parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(id.clone()))),
            None => Err(Waiting(format!(
                "column {} references row {key}, whose record the app does not have yet",
                field.column
            ))),
        }
    }
}
