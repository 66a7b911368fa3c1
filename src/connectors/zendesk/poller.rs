//! Outbound path: waiting for Zendesk's bulk jobs. One poller a connection asks for every
//! waiting job at once (`GET /api/v2/job_statuses/show_many?ids=`), so the status checks cost
//! one call however many jobs are in flight; while the account budget binds it asks at most
//! every [`binding_gap`], leaving the budget to the writes themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::client::Client;
use super::jobs::JobStatus;
use crate::connectors::ConnectorError;

/// The first wait before asking for a job's status, doubled up to [`MAX_STEP`].
const FIRST_STEP: Duration = Duration::from_millis(100);
const MAX_STEP: Duration = Duration::from_secs(2);
/// Ids one `show_many` takes (Zendesk keeps 100 job statuses, allows 30 active jobs).
const SHOW_MANY: usize = 100;

type Answer = Result<JobStatus, ConnectorError>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Waiter {
    due: Instant,
    step: Duration,
    answer: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct State {
    waiting: Mutex<HashMap<String, Waiter>>,
    wake: Notify,
    running: std::sync::atomic::AtomicBool,
}

/// The connection's job poller; cheap to share, its task starts with the first job.
pub struct Poller {
    client: Arc<Client>,
    state: Arc<State>,
}

#[derive(Deserialize, Default)]
struct Many {
    #[serde(default)]
    job_statuses: Vec<JobStatus>,
}

/// Between two status checks while the account budget binds: twelve calls' worth of the
/// budget, so the checks take about one call in thirteen (never less than [`FIRST_STEP`]).
fn binding_gap(client: &Client) -> Duration {
    client
        .account_budget()
        .map(|b| b.window.div_f64(f64::from(b.requests)) * 12)
        .unwrap_or(FIRST_STEP)
        .max(FIRST_STEP)
}

impl Poller {
    pub fn new(client: Arc<Client>) -> Poller {
        Poller {
            client,
            state: Arc::new(State::default()),
        }
    }

    /// Waits until `job` has finished (completed, failed or killed), at most `wait`.
    pub async fn finished(&self, job: JobStatus, wait: Duration) -> Answer {
        if job.is_finished() {
            return Ok(job);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.state.waiting).insert(
            job.id.clone(),
            Waiter {
                due: Instant::now() + FIRST_STEP,
                step: FIRST_STEP,
                answer: tx,
            },
        );
        self.start();
        self.state.wake.notify_one();
        let started = std::time::Instant::now();
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ConnectorError::Transient(format!(
                "bulk job {}: its poller stopped",
                job.id
            ))),
            Err(_) => {
                lock(&self.state.waiting).remove(&job.id);
                tracing::warn!(connection = %self.client.name(), job = %job.id, waited_ms = started.elapsed().as_millis() as u64, "zendesk bulk job did not finish in time");
                Err(ConnectorError::Transient(format!(
                    "bulk job {} still {} after {:.1}s",
                    job.id,
                    job.status,
                    wait.as_secs_f64()
                )))
            }
        }
    }

    fn start(&self) {
        use std::sync::atomic::Ordering;
        if !self.state.running.swap(true, Ordering::AcqRel) {
            tokio::spawn(run(Arc::downgrade(&self.state), self.client.clone()));
        }
    }
}

/// The poller's task: ends once its connector is gone.
async fn run(state: Weak<State>, client: Arc<Client>) {
    let mut last_poll: Option<Instant> = None;
    loop {
        let Some(st) = state.upgrade() else { return };
        let now = Instant::now();
        let earliest = lock(&st.waiting).values().map(|w| w.due).min();
        let mut at = match earliest {
            Some(due) => due,
            None => now + Duration::from_secs(1),
        };
        if earliest.is_some() && client.budget_binding() {
            if let Some(last) = last_poll {
                at = at.max(last + binding_gap(&client));
            }
        }
        if at > now {
            let wake = st.wake.notified();
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep_until(at.min(now + Duration::from_secs(1))) => {}
            }
            continue;
        }
        last_poll = Some(now);
        poll(&st, &client).await;
    }
}

/// One `show_many` of the waiting jobs (the longest-waiting first when more than 100 wait).
async fn poll(st: &State, client: &Client) {
    let mut ids: Vec<(Instant, String)> = lock(&st.waiting)
        .iter()
        .map(|(id, w)| (w.due, id.clone()))
        .collect();
    ids.sort();
    ids.truncate(SHOW_MANY);
    let ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    let path = format!("/api/v2/job_statuses/show_many.json?ids={}", ids.join(","));
    let answer = match client.call_first(Method::GET, &path).await {
        Ok(resp) => resp.parse::<Many>().map(|m| m.job_statuses),
        Err(e) => Err(e),
    };
    let now = Instant::now();
    let mut waiting = lock(&st.waiting);
    match answer {
        Ok(statuses) => {
            let mut seen: HashMap<String, JobStatus> =
                statuses.into_iter().map(|j| (j.id.clone(), j)).collect();
            for id in &ids {
                match seen.remove(id) {
                    Some(job) if job.is_finished() => {
                        if let Some(w) = waiting.remove(id) {
                            let _ = w.answer.send(Ok(job));
                        }
                    }
                    Some(_) => backoff(waiting.get_mut(id), now, None),
                    // Zendesk keeps the latest 100 statuses for about an hour
                    None => {
                        if let Some(w) = waiting.remove(id) {
                            let _ = w.answer.send(Err(ConnectorError::Transient(format!(
                                "bulk job {id} vanished before it finished"
                            ))));
                        }
                    }
                }
            }
        }
        // asking again is all there is to do: the writes happen whatever this side sees
        Err(ConnectorError::RateLimited { retry_after, .. }) => {
            for id in &ids {
                backoff(waiting.get_mut(id), now, Some(retry_after));
            }
        }
        Err(ConnectorError::Transient(_)) | Err(ConnectorError::NotFound) => {
            for id in &ids {
                backoff(waiting.get_mut(id), now, None);
            }
        }
        Err(e) => {
            for id in &ids {
                if let Some(w) = waiting.remove(id) {
                    let _ = w.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

fn backoff(waiter: Option<&mut Waiter>, now: Instant, at_least: Option<Duration>) {
    if let Some(w) = waiter {
        w.step = (w.step * 2).min(MAX_STEP);
        w.due = now + w.step.max(at_least.unwrap_or_default());
    }
}
