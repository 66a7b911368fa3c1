//! Benchmarks: where the CPU went during a timed phase — this process (engine, simulator, load
//! generator) and each kind of PostgreSQL process — read from /proc, so a missed target says
//! which side to work on.

use std::collections::HashMap;
use std::time::Instant;

use crate::hub::Hub;

/// CPU seconds of every PostgreSQL process and of this process at one moment.
pub struct CpuSnapshot {
    at: Instant,
    own: f64,
    postgres: HashMap<i32, f64>,
    /// other processes of the run (the simulator when it runs as a child), by label
    extra: Vec<(String, u32, f64)>,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// (comm, utime + stime in seconds) of one process, from /proc/<pid>/stat.
fn process_cpu(pid: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat[open + 1..close].to_string();
    // fields after the comm: state is field 3, utime 14, stime 15
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    Some((comm, (utime + stime) / ticks_per_second()))
}

impl CpuSnapshot {
    pub fn take() -> CpuSnapshot {
        CpuSnapshot::take_with(&[])
    }

    /// Also counts the given processes (label, pid) under their own label.
    pub fn take_with(extra: &[(&str, u32)]) -> CpuSnapshot {
        let extra = extra
            .iter()
            .map(|(label, pid)| {
                (
                    label.to_string(),
                    *pid,
                    process_cpu(&pid.to_string()).map_or(0.0, |(_, s)| s),
                )
            })
            .collect();
        let own = process_cpu("self").map(|(_, s)| s).unwrap_or(0.0);
        let mut postgres = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let Ok(pid) = name.parse::<i32>() else {
                    continue;
                };
                if let Some((comm, secs)) = process_cpu(&name) {
                    if comm == "postgres" {
                        postgres.insert(pid, secs);
                    }
                }
            }
        }
        CpuSnapshot {
            at: Instant::now(),
            own,
            postgres,
            extra,
        }
    }

    /// The CPU spent since `self`, by consumer, as one printable line. PostgreSQL processes are
    /// classified by `pg_stat_activity` (walsender = decoding; client backend = SQL work).
    pub async fn report_since(&self, hub: &Hub) -> String {
        let pids: Vec<(&str, u32)> = self
            .extra
            .iter()
            .map(|(l, p, _)| (l.as_str(), *p))
            .collect();
        let now = CpuSnapshot::take_with(&pids);
        let wall = now.at.duration_since(self.at).as_secs_f64();
        let mut kinds: HashMap<i32, String> = HashMap::new();
        if let Ok(c) = hub.client().await {
            if let Ok(rows) = c
                .query(
                    "select pid, coalesce(backend_type, '') from pg_stat_activity",
                    &[],
                )
                .await
            {
                for r in rows {
                    kinds.insert(r.get(0), r.get(1));
                }
            }
        }
        let mut by_kind: HashMap<String, f64> = HashMap::new();
        for (pid, secs) in &now.postgres {
            let spent = secs - self.postgres.get(pid).copied().unwrap_or(0.0);
            let kind = match kinds.get(pid).map(String::as_str) {
                Some("walsender") => "walsender (decoding)",
                Some("client backend") => "SQL backends",
                _ => "other PostgreSQL (wal writer, checkpointer, autovacuum, exited backends)",
            };
            *by_kind.entry(kind.to_string()).or_default() += spent.max(0.0);
        }
        let own = now.own - self.own;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        let mut parts: Vec<(String, f64)> = by_kind.into_iter().collect();
        let label = if self.extra.is_empty() {
            "ferry process (engine, simulator, load)"
        } else {
            "ferry process"
        };
        parts.push((label.into(), own));
        for ((label, _, before), (_, _, after)) in self.extra.iter().zip(&now.extra) {
            parts.push((label.clone(), (after - before).max(0.0)));
        }
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let used: f64 = parts.iter().map(|p| p.1).sum();
        let list: Vec<String> = parts
            .iter()
            .map(|(k, s)| format!("{k} {s:.1} s ({:.0}%)", 100.0 * s / (wall * cores)))
            .collect();
        format!(
            "CPU over {wall:.1} s on {cores:.0} cores ({:.1} core-s): {}; idle {:.1} s",
            wall * cores,
            list.join(", "),
            (wall * cores - used).max(0.0)
        )
    }
}
