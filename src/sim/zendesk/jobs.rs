//! Zendesk simulator: bulk jobs — the job_status registry (latest 100 kept, at most 30 queued
//! or running: Zendesk's job limit), the runner that starts each queued job the configured
//! delay after it was queued (several run at once, as on Zendesk), and
//! `GET /api/v2/job_statuses/{id}` and `/show_many?ids=`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::bulk::{self, JobOp};
use super::wire::{bad_request, error, not_found, ok};
use super::Inner;
use crate::sim::core::{lock, Query};

/// Finished job statuses kept; older ones answer 404.
const KEEP: usize = 100;
/// Jobs an account may have queued or running at once; another bulk request answers 429.
pub(crate) const MAX_ACTIVE: usize = 30;
/// Ids one `show_many` takes.
const SHOW_MANY: usize = 100;

struct Job {
    id: String,
    total: usize,
    status: &'static str,
    progress: Option<usize>,
    message: Option<String>,
    results: Option<Vec<Value>>,
    /// Taken by the runner when the job starts.
    op: Option<JobOp>,
    queued_at: tokio::time::Instant,
    /// Handed to a task that starts it at `queued_at` + the delay.
    dispatched: bool,
}

impl Job {
    fn render(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "url": format!("{base_url}/api/v2/job_statuses/{}.json", self.id),
            "total": self.total,
            "progress": self.progress,
            "status": self.status,
            "message": self.message,
            "results": self.results,
        })
    }
}

pub(crate) struct Jobs {
    table: Mutex<VecDeque<Job>>,
    notify: Notify,
    /// How long a job stays queued, in microseconds (changeable while running).
    delay: std::sync::atomic::AtomicU64,
}

fn job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Jobs {
    pub(crate) fn new(delay: Duration) -> Jobs {
        Jobs {
            table: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            delay: std::sync::atomic::AtomicU64::new(delay.as_micros() as u64),
        }
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.delay
            .store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay.load(Ordering::Relaxed))
    }

    /// Queues `op`; returns its `job_status` object (status `queued`), or None when
    /// [`MAX_ACTIVE`] jobs are queued or running already.
    pub(crate) fn submit(&self, op: JobOp, base_url: &str) -> Option<Value> {
        let mut table = lock(&self.table);
        let active = table
            .iter()
            .filter(|j| matches!(j.status, "queued" | "working"))
            .count();
        if active >= MAX_ACTIVE {
            return None;
        }
        let job = Job {
            id: job_id(),
            total: op.len(),
            status: "queued",
            progress: None,
            message: None,
            results: None,
            op: Some(op),
            queued_at: tokio::time::Instant::now(),
            dispatched: false,
        };
        let shown = job.render(base_url);
        table.push_back(job);
        trim(&mut table);
        drop(table);
        self.notify.notify_one();
        Some(shown)
    }

    pub(crate) fn show(&self, id: &str, base_url: &str) -> Option<Value> {
        lock(&self.table)
            .iter()
            .find(|j| j.id == id)
            .map(|j| j.render(base_url))
    }

    /// The oldest queued job no task has taken yet, now taken, and when it was queued.
    fn next_undispatched(&self) -> Option<(String, tokio::time::Instant)> {
        let mut table = lock(&self.table);
        let job = table
            .iter_mut()
            .find(|j| j.status == "queued" && !j.dispatched)?;
        job.dispatched = true;
        Some((job.id.clone(), job.queued_at))
    }

    /// Marks the job working and hands over its operation (None if it was evicted).
    fn start(&self, id: &str) -> Option<JobOp> {
        let mut table = lock(&self.table);
        let job = table.iter_mut().find(|j| j.id == id)?;
        job.status = "working";
        job.progress = Some(0);
        job.op.take()
    }

    fn finish(&self, id: &str, results: Vec<Value>, at: DateTime<Utc>) {
        let mut table = lock(&self.table);
        if let Some(job) = table.iter_mut().find(|j| j.id == id) {
            job.status = "completed";
            job.progress = Some(results.len());
            job.message = Some(format!(
                "Completed at {}",
                at.format("%Y-%m-%d %H:%M:%S +0000")
            ));
            job.results = Some(results);
        }
        trim(&mut table);
    }
}

/// Drops the oldest finished statuses beyond `KEEP`; a job not run yet is never dropped.
fn trim(table: &mut VecDeque<Job>) {
    while table.len() > KEEP {
        match table.iter().position(|j| j.status == "completed") {
            Some(i) => {
                table.remove(i);
            }
            None => break,
        }
    }
}

/// Starts every queued job the configured delay after it was queued, until the simulator
/// shuts down.
pub(crate) fn spawn_runner(inner: Arc<Inner>) {
    let shutdown = inner.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = run(inner) => {}
            _ = shutdown.wait() => {}
        }
    });
}

async fn run(inner: Arc<Inner>) {
    loop {
        let notified = inner.jobs.notify.notified();
        let Some((id, queued_at)) = inner.jobs.next_undispatched() else {
            notified.await;
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(queued_at + inner.jobs.delay()).await;
            execute(&inner, &id);
        });
    }
}

/// Runs one job against the store (the store's lock makes each job atomic).
fn execute(inner: &Inner, id: &str) {
    let jobs = &inner.jobs;
    let Some(op) = jobs.start(id) else {
        return;
    };
    let now = inner.now();
    let results = {
        let mut store = lock(&inner.store);
        let (results, changes, written) = bulk::run(&mut store, op, now);
        inner.emit(&changes);
        inner
            .counters
            .records_written
            .fetch_add(written, Ordering::Relaxed);
        results
    };
    jobs.finish(id, results, now);
    inner
        .counters
        .jobs_completed
        .fetch_add(1, Ordering::Relaxed);
}

/// 429 for a bulk request beyond [`MAX_ACTIVE`] active jobs.
pub(crate) fn too_many_jobs() -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyJobs",
        &format!(
            "Number of allowed bulk jobs exceeded: at most {MAX_ACTIVE} may be queued or running"
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// `GET /api/v2/job_statuses/{id}`.
pub(crate) async fn show(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let id = id.strip_suffix(".json").unwrap_or(&id);
    match inner.jobs.show(id, &inner.base_url) {
        Some(job) => ok(json!({ "job_status": job })),
        None => not_found(),
    }
}

/// `GET /api/v2/job_statuses/show_many?ids=a,b`: the statuses of the jobs still kept (an
/// unknown or expired id is left out).
pub(crate) async fn show_many(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = Query::parse(raw.as_deref());
    let Some(ids) = q.get("ids").filter(|v| !v.trim().is_empty()) else {
        return bad_request("InvalidValue", "ids is required");
    };
    let ids: Vec<&str> = ids.split(',').map(str::trim).collect();
    if ids.len() > SHOW_MANY {
        return bad_request(
            "InvalidValue",
            &format!("at most {SHOW_MANY} ids may be given"),
        );
    }
    let shown: Vec<Value> = ids
        .iter()
        .filter_map(|id| inner.jobs.show(id, &inner.base_url))
        .collect();
    ok(json!({ "job_statuses": shown }))
}
