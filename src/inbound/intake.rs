//! Inbound path, first hop's store: the webhook server's group commit. Every delivery's
//! events must be durable in ferry.inbox before its 2xx; one commit per delivery would cap
//! an app that sends one event per request (GitHub, Strapi, Svix-based senders) at the disk's
//! commit rate. So one writer stores the events of every delivery waiting, in one
//! transaction (`ferry.store_webhook_events`), and answers each delivery once that
//! transaction has committed: deliveries arriving meanwhile wait for the next commit,
//! together.
//!
//! Contract: `store` returns only after the events are committed (or with the error that
//! kept them out, then nothing of that batch was stored); an event id seen before is dropped
//! as a replay, across deliveries of the same batch too; each delivery's events keep their
//! order in the inbox.

use tokio::sync::{mpsc, oneshot};

use crate::hub::{Hub, HubError};

/// Events one transaction takes at most (a delivery is never split).
const BATCH_EVENTS: usize = 5000;
/// Deliveries waiting for the writer before a new one waits for room.
const QUEUE: usize = 1024;

/// One event as ferry.inbox stores it.
pub struct Incoming {
    pub event_id: Option<String>,
    pub object: String,
    pub remote_id: String,
    /// `changed` or `deleted`.
    pub kind: &'static str,
    /// The event as JSON, or None when PostgreSQL cannot hold it as jsonb (then `raw`).
    pub payload: Option<serde_json::Value>,
    pub raw: Option<String>,
}

struct Delivery {
    connection: String,
    events: Vec<Incoming>,
    answer: oneshot::Sender<Result<u64, IntakeError>>,
}

/// Why a delivery's events were not stored: the app is answered 5xx and delivers again.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IntakeError {
    #[error("storing webhook events: {0}")]
    Hub(String),
    #[error("the webhook store has stopped")]
    Stopped,
}

/// The handle deliveries are stored through; the writer stops when every handle is dropped.
#[derive(Clone)]
pub struct Intake {
    queue: mpsc::Sender<Delivery>,
}

impl Intake {
    pub fn start(hub: Hub) -> Intake {
        let (queue, deliveries) = mpsc::channel(QUEUE);
        tokio::spawn(write(hub, deliveries));
        Intake { queue }
    }

    /// Stores one delivery's events; returns how many were new (the rest were replays).
    pub async fn store(&self, connection: &str, events: Vec<Incoming>) -> Result<u64, IntakeError> {
        let (answer, stored) = oneshot::channel();
        let delivery = Delivery {
            connection: connection.to_string(),
            events,
            answer,
        };
        self.queue
            .send(delivery)
            .await
            .map_err(|_| IntakeError::Stopped)?;
        stored.await.map_err(|_| IntakeError::Stopped)?
    }
}

async fn write(hub: Hub, mut deliveries: mpsc::Receiver<Delivery>) {
    while let Some(first) = deliveries.recv().await {
        let mut events = first.events.len();
        let mut batch = vec![first];
        while events < BATCH_EVENTS {
            match deliveries.try_recv() {
                Ok(next) => {
                    events += next.events.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        match store_batch(&hub, &batch).await {
            Ok(stored) => {
                for (delivery, stored) in batch.into_iter().zip(stored) {
                    let _ = delivery.answer.send(Ok(stored));
                }
            }
            Err(e) => {
                let e = IntakeError::Hub(e.to_string());
                for delivery in batch {
                    let _ = delivery.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// One transaction for the batch; per delivery, how many of its events were stored.
async fn store_batch(hub: &Hub, batch: &[Delivery]) -> Result<Vec<u64>, HubError> {
    let n: usize = batch.iter().map(|d| d.events.len()).sum();
    let mut connections = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(n);
    let mut objects = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut raws = Vec::with_capacity(n);
    let mut numbers: Vec<i32> = Vec::with_capacity(n);
    for (i, delivery) in batch.iter().enumerate() {
        for e in &delivery.events {
            connections.push(delivery.connection.as_str());
            event_ids.push(e.event_id.as_deref());
            objects.push(e.object.as_str());
            ids.push(e.remote_id.as_str());
            kinds.push(e.kind);
            payloads.push(e.payload.as_ref());
            raws.push(e.raw.as_deref());
            numbers.push(i as i32);
        }
    }
    let client = hub.client().await?;
    let statement = client
        .prepare_cached(
            "select delivery, stored
               from ferry.store_webhook_events($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    let rows = client
        .query(
            &statement,
            &[
                &connections,
                &event_ids,
                &objects,
                &ids,
                &kinds,
                &payloads,
                &raws,
                &numbers,
            ],
        )
        .await?;
    let mut stored = vec![0u64; batch.len()];
    for r in rows {
        let (delivery, count): (i32, i64) = (r.get(0), r.get(1));
        if let Some(s) = stored.get_mut(delivery as usize) {
            *s = count as u64;
        }
    }
    Ok(stored)
}
