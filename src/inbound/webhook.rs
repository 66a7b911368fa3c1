//! Inbound path, first hop: the HTTP server. `POST /webhooks/<connection>` verifies the
//! app's signature, stores the events durably in ferry.inbox (one commit with the other
//! deliveries waiting, see `intake`), then answers 2xx; bad or unsigned deliveries get 401/400
//! and store nothing. Also `/healthz` and `/metrics` (Prometheus text, see crate::metrics).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::intake::{Incoming, Intake};
use crate::connectors::{WebhookError, WebhookRequest};
use crate::context::{Connections, Shared};
use crate::hub::Hub;

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Clone)]
struct AppState {
    hub: Hub,
    connections: Connections,
    public_url: String,
    shared: Arc<Shared>,
    intake: Intake,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    hub: Hub,
    connections: Connections,
    public_url: String,
    shared: Arc<Shared>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let state = AppState {
        intake: Intake::start(hub.clone()),
        hub,
        connections,
        public_url,
        shared: shared.clone(),
    };
    let app = Router::new()
        .route("/webhooks/{connection}", post(receive))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "webhook server stopped");
    }
}

async fn healthz(State(st): State<AppState>) -> (StatusCode, String) {
    match st.hub.client().await {
        Ok(c) => match c.query_one("select 1", &[]).await {
            Ok(_) => (
                StatusCode::OK,
                json!({"status": "ok", "replication_lag_bytes": st.shared.lag()}).to_string(),
            ),
            Err(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"status": "hub unreachable", "error": e.to_string()}).to_string(),
            ),
        },
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "hub unreachable", "error": e.to_string()}).to_string(),
        ),
    }
}

async fn metrics(
    State(st): State<AppState>,
) -> (
    StatusCode,
    [(axum::http::HeaderName, &'static str); 1],
    String,
) {
    const TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    match crate::metrics::metrics()
        .render(&st.hub, st.shared.lag())
        .await
    {
        Ok(body) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, TEXT)],
            body,
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::CONTENT_TYPE, "text/plain")],
            format!("hub unreachable: {e}"),
        ),
    }
}

async fn receive(
    State(st): State<AppState>,
    Path(connection): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let Some(conn) = st.connections.get(&connection) else {
        return (
            StatusCode::NOT_FOUND,
            format!("no connection named {connection}"),
        );
    };
    let url = format!(
        "{}{}",
        st.public_url,
        uri.path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(uri.path())
    );
    let request = WebhookRequest {
        method: "POST",
        url: &url,
        headers: &headers,
        body: &body,
    };
    let events = match conn
        .connector
        .parse_webhook(&request, conn.webhook_secret.as_deref())
    {
        Ok(e) => e,
        Err(e @ (WebhookError::Signature(_) | WebhookError::NoSecret)) => {
            crate::metrics::metrics().webhook(&connection, "refused");
            tracing::warn!(connection = %connection, error = %e, "webhook refused");
            return (StatusCode::UNAUTHORIZED, e.to_string());
        }
        Err(e @ WebhookError::Malformed(_)) => {
            crate::metrics::metrics().webhook(&connection, "refused");
            tracing::warn!(connection = %connection, error = %e, "webhook refused");
            return (StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    // an event whose ids PostgreSQL cannot hold names no record ferry could ever fetch: it
    // alone is dropped (and said), the delivery's other events are stored
    let (events, unusable): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| {
        !(e.remote_id.contains('\0')
            || e.object.contains('\0')
            || e.event_id.as_deref().is_some_and(|id| id.contains('\0')))
    });
    if !unusable.is_empty() {
        tracing::warn!(connection = %connection, events = unusable.len(), "webhook events whose record id holds a NUL character dropped");
    }
    if events.is_empty() {
        return (StatusCode::NO_CONTENT, String::new());
    }
    // an event PostgreSQL cannot hold as jsonb (a NUL character anywhere) is kept as the JSON
    // text it came as: stored all the same, never a 5xx for what the app sent
    let count = events.len() as u64;
    let incoming = events
        .into_iter()
        .map(|e| {
            let (payload, raw) = if crate::inbound::screen::holds_nul(&e.raw) {
                (None, Some(e.raw.to_string()))
            } else {
                (Some(e.raw), None)
            };
            Incoming {
                event_id: e.event_id,
                object: e.object,
                remote_id: e.remote_id,
                kind: if e.deleted { "deleted" } else { "changed" },
                payload,
                raw,
            }
        })
        .collect();
    // stored with the other deliveries waiting (one commit for all), answered once durable
    let stored = st.intake.store(&connection, incoming).await;
    match stored {
        Ok(stored) => {
            let replayed = count - stored;
            crate::metrics::metrics()
                .webhook(&connection, if stored > 0 { "stored" } else { "duplicate" });
            if replayed > 0 {
                tracing::info!(connection = %connection, replayed, "replayed webhook events dropped");
            }
            st.shared.inbox_ready.notify_waiters();
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(e) => {
            // not stored: a 5xx makes the app retry the delivery
            tracing::error!(connection = %connection, error = %e, "cannot store webhook events");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot store the events now; retry".into(),
            )
        }
    }
}
