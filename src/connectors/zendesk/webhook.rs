//! Inbound edge: Zendesk webhook deliveries (event subscriptions; one signed JSON event per
//! delivery, an array tolerated) → change events. `zen:event-type:user.*` events name users,
//! `organization.*` organizations; a type ending in `.deleted` is a deletion. Other events
//! (tickets, help center...) are ignored. Events carry partial details, so the engine fetches
//! the record afterwards.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::mapping::id_text;
use super::signature::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::connectors::{ChangeEvent, WebhookError, WebhookRequest};

const TYPE_PREFIX: &str = "zen:event-type:";

pub fn parse(
    request: &WebhookRequest<'_>,
    secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ChangeEvent>, WebhookError> {
    let secret = secret.ok_or(WebhookError::NoSecret)?;
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    verify(
        secret.as_bytes(),
        request.body,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        now,
    )
    .map_err(|e| WebhookError::Signature(e.to_string()))?;
    let body: Value = serde_json::from_slice(request.body)
        .map_err(|e| WebhookError::Malformed(format!("expected a JSON event: {e}")))?;
    let events = match body {
        Value::Array(events) => events,
        one => vec![one],
    };
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        if let Some(event) = change_event(e)? {
            out.push(event);
        }
    }
    Ok(out)
}

/// One event as a change; None for events of records ferry does not map.
fn change_event(e: Value) -> Result<Option<ChangeEvent>, WebhookError> {
    let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
    let Some(kind) = kind.strip_prefix(TYPE_PREFIX) else {
        return Ok(None);
    };
    let (object, subject_kind) = match kind.split_once('.').map(|(o, _)| o) {
        Some("user") => ("users", "user"),
        Some("organization") => ("organizations", "organization"),
        _ => return Ok(None),
    };
    let deleted = kind.ends_with(".deleted");
    // `detail.id` (a string); the `subject` (`zen:user:123`) names it too
    let remote_id = e
        .pointer("/detail/id")
        .and_then(id_text)
        .or_else(|| {
            let subject = e.get("subject")?.as_str()?;
            let id = subject.strip_prefix(&format!("zen:{subject_kind}:"))?;
            (!id.is_empty()).then(|| id.to_string())
        })
        .ok_or_else(|| WebhookError::Malformed(format!("{kind} event without a record id")))?;
    let event_id = e.get("id").and_then(id_text);
    Ok(Some(ChangeEvent {
        event_id,
        object: object.to_string(),
        remote_id,
        deleted,
        raw: e,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;
    use serde_json::json;

    fn deliver(
        body: &[u8],
        secret: Option<&str>,
        at: &str,
    ) -> Result<Vec<ChangeEvent>, WebhookError> {
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, at.parse().unwrap());
        headers.insert(
            SIGNATURE_HEADER,
            super::super::signature::sign(b"s3cret", at, body)
                .parse()
                .unwrap(),
        );
        let request = WebhookRequest {
            method: "POST",
            url: "http://ferry/webhooks/zendesk",
            headers: &headers,
            body,
        };
        let now = DateTime::parse_from_rfc3339("2024-04-17T17:18:40Z")
            .unwrap()
            .with_timezone(&Utc);
        parse(&request, secret, now)
    }

    #[test]
    fn events_become_changes() {
        let at = "2024-04-17T17:18:10Z";
        let body = json!({"type": "zen:event-type:user.deleted", "id": "2b24ef10-aaaa",
            "subject": "zen:user:6596848315901", "detail": {"id": "6596848315901"}, "event": {}});
        let got = deliver(body.to_string().as_bytes(), Some("s3cret"), at).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].object.as_str(),
                got[0].remote_id.as_str(),
                got[0].deleted
            ),
            ("users", "6596848315901", true)
        );
        assert_eq!(got[0].event_id.as_deref(), Some("2b24ef10-aaaa"));
        assert_eq!(got[0].raw, body);
        // organizations, a subject without detail, an array of events
        let batch = json!([
            {"type": "zen:event-type:organization.name_changed", "id": "e1", "subject": "zen:organization:42"},
            {"type": "zen:event-type:ticket.created", "id": "e2", "detail": {"id": "9"}},
        ]);
        let got = deliver(batch.to_string().as_bytes(), Some("s3cret"), at).unwrap();
        assert_eq!(got.len(), 1, "ticket events are not ferry's");
        assert_eq!(
            (
                got[0].object.as_str(),
                got[0].remote_id.as_str(),
                got[0].deleted
            ),
            ("organizations", "42", false)
        );
        let other = json!({"type": "zen:event-type:ticket.status_changed", "detail": {"id": "1"}});
        assert!(deliver(other.to_string().as_bytes(), Some("s3cret"), at)
            .unwrap()
            .is_empty());
        let no_id = json!({"type": "zen:event-type:user.created", "detail": {}});
        assert!(matches!(
            deliver(no_id.to_string().as_bytes(), Some("s3cret"), at),
            Err(WebhookError::Malformed(_))
        ));
    }

    #[test]
    fn unsigned_stale_or_secretless_deliveries_are_refused() {
        let body = br#"{"type":"zen:event-type:user.created","detail":{"id":"1"}}"#;
        assert!(matches!(
            deliver(body, None, "2024-04-17T17:18:10Z"),
            Err(WebhookError::NoSecret)
        ));
        assert!(matches!(
            deliver(body, Some("wrong"), "2024-04-17T17:18:10Z"),
            Err(WebhookError::Signature(_))
        ));
        assert!(matches!(
            deliver(body, Some("s3cret"), "2024-04-17T17:10:00Z"),
            Err(WebhookError::Signature(m)) if m.contains("tolerance")
        ));
        let headers = HeaderMap::new();
        let request = WebhookRequest {
            method: "POST",
            url: "http://ferry/webhooks/zendesk",
            headers: &headers,
            body,
        };
        assert!(matches!(
            parse(&request, Some("s3cret"), Utc::now()),
            Err(WebhookError::Signature(m)) if m.contains("missing")
        ));
    }
}
