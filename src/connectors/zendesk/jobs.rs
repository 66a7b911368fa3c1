//! Outbound path: Zendesk's bulk jobs — a `create_many`, `create_or_update_many`,
//! `update_many` or `destroy_many` answers a `job_status`; the connection's poller
//! (`poller.rs`) waits for it, and this turns the job's results into one outcome per input, in
//! input order (a failed item fails alone).

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::client::{details_text, Client};
use super::mapping::id_text;
use super::poller::Poller;
use crate::connectors::ConnectorError;

/// What the job did with one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Created, updated or deleted; the record's id when the result names it.
    Done { id: Option<String> },
    /// Zendesk's error code (`RecordNotFound`, `DuplicateValue`...) and its readable message.
    Failed { code: String, message: String },
}

/// A finished job: its final status and each input's outcome (None: the job reported nothing
/// for it, as when it failed or was killed part way).
#[derive(Debug)]
pub struct Finished {
    pub status: String,
    pub message: Option<String>,
    pub items: Vec<Option<Item>>,
}

impl Finished {
    /// Why an input without a result has none (the engine retries it).
    pub fn missing(&self) -> ConnectorError {
        ConnectorError::Transient(format!(
            "bulk job {} without a result for this item{}",
            self.status,
            self.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))
    }
}

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    job_status: Option<JobStatus>,
}

#[derive(Deserialize)]
pub struct JobStatus {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    results: Option<Vec<Value>>,
}

impl JobStatus {
    pub fn is_finished(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "killed")
    }
}

/// What names one input in a result that comes without an `index`: `("id", record id)`, or
/// the `("email", ..)` and `("external_id", ..)` a create carries.
pub type Keys = Vec<(&'static str, String)>;

/// Submits a bulk request and waits for its job (at most `wait`). `keys` name each input, to
/// place results that come without an `index`.
///
/// Once the job is queued the writes will happen whatever this side sees, so a transient
/// failure or a 429 while asking for its status is waited out (within `wait`) rather than
/// reported: reporting it would have the engine send the same writes again.
pub async fn run(
    client: &Client,
    poller: &Poller,
    method: Method,
    path: &str,
    body: Option<&Value>,
    keys: &[Keys],
    wait: Duration,
) -> Result<Finished, ConnectorError> {
    let started = std::time::Instant::now();
    let resp = client.call(method, path, body).await?;
    let submitted_job: Envelope = resp.parse()?;
    let job = submitted_job.job_status.ok_or_else(|| {
        ConnectorError::Transient("bulk request answered without a job_status".into())
    })?;
    let job = poller.finished(job, wait).await?;
    tracing::debug!(connection = %client.name(), job = %job.id, status = %job.status, items = keys.len(), waited_ms = started.elapsed().as_millis() as u64, "zendesk bulk job finished");
    Ok(Finished {
        items: place(job.results.as_deref().unwrap_or_default(), keys),
        status: job.status,
        message: job.message,
    })
}

/// Each result in its input's slot: by `index` when the result has one, else by the record
/// id, email or external id it names among the inputs' `keys` (the same field, compared
/// without case), else by its position.
fn place(results: &[Value], keys: &[Keys]) -> Vec<Option<Item>> {
    let mut out: Vec<Option<Item>> = vec![None; keys.len()];
    for (position, r) in results.iter().enumerate() {
        let by_index = r.get("index").and_then(Value::as_u64).map(|i| i as usize);
        let by_key = || {
            keys.iter().position(|input| {
                input.iter().any(|(field, value)| {
                    r.get(*field)
                        .and_then(id_text)
                        .is_some_and(|named| named.eq_ignore_ascii_case(value))
                })
            })
        };
        let slot = by_index.or_else(by_key).unwrap_or(position);
        if let Some(empty @ None) = out.get_mut(slot) {
            *empty = Some(item(r));
        }
    }
    out
}

/// One result: `{"id": .., "status": "Created"}` or
/// `{"index": 2, "error": "DuplicateValue", "details": "..", "status": "Failed"}`.
fn item(r: &Value) -> Item {
    let error = r.get("error").filter(|e| !e.is_null());
    let failed = error.is_some()
        || r.get("status").and_then(Value::as_str) == Some("Failed")
        || r.get("success") == Some(&Value::Bool(false));
    if !failed {
        return Item::Done {
            id: r.get("id").and_then(id_text),
        };
    }
    let code = match error {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "Failed".to_string(),
    };
    let details = match r.get("details") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(d @ Value::Object(_)) => details_text(d),
        _ => None,
    };
    let message = match details {
        Some(d) => format!("{d} ({code})"),
        None => code.clone(),
    };
    Item::Failed { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_land_in_input_order() {
        let results = [
            json!({"index": 1, "error": "DuplicateValue", "details": "Email: b@x.com is already being used by another user", "status": "Failed"}),
            json!({"index": 0, "id": 11, "status": "Created", "success": true}),
        ];
        let placed = place(&results, &[vec![], vec![], vec![]]);
        assert_eq!(
            placed[0],
            Some(Item::Done {
                id: Some("11".into())
            })
        );
        assert_eq!(
            placed[1],
            Some(Item::Failed {
                code: "DuplicateValue".into(),
                message: "Email: b@x.com is already being used by another user (DuplicateValue)"
                    .into()
            })
        );
        assert_eq!(placed[2], None, "no result: the job said nothing of it");
        // results without an index are placed by the id or email they name
        let keys = [vec![("id", "7".to_string())], vec![("id", "8".to_string())]];
        let placed = place(
            &[
                json!({"id": 8, "status": "Deleted"}),
                json!({"id": 7, "status": "Deleted"}),
            ],
            &keys,
        );
        assert_eq!(
            placed[0],
            Some(Item::Done {
                id: Some("7".into())
            })
        );
        assert_eq!(
            placed[1],
            Some(Item::Done {
                id: Some("8".into())
            })
        );
        let keys = [
            vec![
                ("email", "a@x.com".to_string()),
                ("external_id", "12".into()),
            ],
            vec![("email", "b@x.com".to_string())],
        ];
        let placed = place(
            &[
                // id 12 is not the external id "12": only the same field counts
                json!({"id": 12, "status": "Created", "email": "B@x.com"}),
                json!({"id": 11, "status": "Updated", "email": "a@x.com"}),
            ],
            &keys,
        );
        assert_eq!(
            placed[0],
            Some(Item::Done {
                id: Some("11".into())
            })
        );
        assert_eq!(
            placed[1],
            Some(Item::Done {
                id: Some("12".into())
            })
        );
        let detailed = item(&json!({"error": "RecordInvalid",
            "details": {"name": [{"description": "Name: cannot be blank", "error": "BlankValue"}]}}));
        assert_eq!(
            detailed,
            Item::Failed {
                code: "RecordInvalid".into(),
                message: "name: Name: cannot be blank (BlankValue) (RecordInvalid)".into()
            }
        );
    }
}
