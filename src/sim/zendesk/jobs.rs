//! Zendesk simulator: bulk jobs — the job_status registry (latest 100 kept), the runner that
//! takes queued jobs in order after the configured delay, and `GET /api/v2/job_statuses/{id}`.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::bulk::{self, JobOp};
use super::wire::{not_found, ok};
use super::Inner;
use crate::sim::core::lock;

/// Finished job statuses kept; older ones answer 404.
const KEEP: usize = 100;

struct Job {
    id: String,
    total: usize,
    status: &'static str,
    progress: Option<usize>,
    message: Option<String>,
    results: Option<Vec<Value>>,
    /// Taken by the runner when the job starts.
    op: Option<JobOp>,
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
    delay: Duration,
}

fn job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Jobs {
    pub(crate) fn new(delay: Duration) -> Jobs {
        Jobs {
            table: Mutex::new(VecDeque::new()),
            notify: Notify::new(),
            delay,
        }
    }

    /// Queues `op`; returns its `job_status` object (status `queued`).
    pub(crate) fn submit(&self, op: JobOp, base_url: &str) -> Value {
        let job = Job {
            id: job_id(),
            total: op.len(),
            status: "queued",
            progress: None,
            message: None,
            results: None,
            op: Some(op),
        };
        let shown = job.render(base_url);
        let mut table = lock(&self.table);
        table.push_back(job);
        trim(&mut table);
        drop(table);
        self.notify.notify_one();
        shown
    }

    pub(crate) fn show(&self, id: &str, base_url: &str) -> Option<Value> {
        lock(&self.table)
            .iter()
            .find(|j| j.id == id)
            .map(|j| j.render(base_url))
    }

    fn oldest_queued(&self) -> Option<String> {
        lock(&self.table)
            .iter()
            .find(|j| j.status == "queued")
            .map(|j| j.id.clone())
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

/// Runs queued jobs one after another until the simulator shuts down.
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
    let jobs = &inner.jobs;
    loop {
        let notified = jobs.notify.notified();
        let Some(id) = jobs.oldest_queued() else {
            notified.await;
            continue;
        };
        if !jobs.delay.is_zero() {
            tokio::time::sleep(jobs.delay).await;
        }
        let Some(op) = jobs.start(&id) else {
            continue;
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
        jobs.finish(&id, results, now);
        inner
            .counters
            .jobs_completed
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// `GET /api/v2/job_statuses/{id}`.
pub(crate) async fn show(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let id = id.strip_suffix(".json").unwrap_or(&id);
    match inner.jobs.show(id, &inner.base_url) {
        Some(job) => ok(json!({ "job_status": job })),
        None => not_found(),
    }
}
