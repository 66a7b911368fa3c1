//! Simulator core: named rolling-window rate budgets (`N` requests per window) on the
//! simulator clock, answering the remaining count or how long to wait when exhausted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::lock;

/// A `--rate-limit` argument: `700/60s` as (requests, window); `none` / `off` as no limit.
pub fn limit_arg(spec: &str) -> std::io::Result<Option<(u32, Duration)>> {
    if matches!(spec.trim(), "none" | "off") {
        return Ok(None);
    }
    spec.parse::<crate::connectors::ratelimit::Budget>()
        .map(|b| Some((b.requests, b.window)))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Outcome of taking from a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counted; `remaining` requests are left in the current window.
    Allowed { remaining: u32 },
    /// Not counted; a slot frees up in `retry_after_secs` (at least 1).
    Exhausted { retry_after_secs: u64 },
}

/// `limit` requests per rolling `window`.
#[derive(Debug)]
pub struct RateBudget {
    limit: u32,
    window: Duration,
    hits: Mutex<VecDeque<DateTime<Utc>>>,
    /// Off: everything is allowed and nothing counted.
    enabled: AtomicBool,
}

impl RateBudget {
    pub fn new(limit: u32, window: Duration) -> RateBudget {
        RateBudget {
            limit,
            window,
            hits: Mutex::new(VecDeque::new()),
            enabled: AtomicBool::new(true),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Forgets every counted request.
    pub fn reset(&self) {
        lock(&self.hits).clear();
    }

    /// Takes one request at `now`.
    pub fn take(&self, now: DateTime<Utc>) -> Verdict {
        let mut hits = lock(&self.hits);
        self.take_locked(&mut hits, now, true)
    }

    /// What is left at `now`, without counting anything.
    pub fn remaining(&self, now: DateTime<Utc>) -> u32 {
        let mut hits = lock(&self.hits);
        self.prune(&mut hits, now);
        self.limit.saturating_sub(hits.len() as u32)
    }

    fn window_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.window).unwrap_or(TimeDelta::MAX)
    }

    fn prune(&self, hits: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>) {
        let window = self.window_delta();
        while hits.front().is_some_and(|t| now - *t >= window) {
            hits.pop_front();
        }
    }

    /// Checks (and with `count`, records) one request under the held lock.
    fn take_locked(
        &self,
        hits: &mut VecDeque<DateTime<Utc>>,
        now: DateTime<Utc>,
        count: bool,
    ) -> Verdict {
        if !self.enabled.load(Ordering::Relaxed) {
            return Verdict::Allowed {
                remaining: self.limit,
            };
        }
        self.prune(hits, now);
        if (hits.len() as u64) < u64::from(self.limit) {
            if count {
                hits.push_back(now);
            }
            let used = hits.len() as u32 + u32::from(!count);
            return Verdict::Allowed {
                remaining: self.limit.saturating_sub(used),
            };
        }
        let wait = hits
            .front()
            .map(|t| *t + self.window_delta() - now)
            .unwrap_or_else(|| self.window_delta());
        let secs = wait.num_milliseconds().max(0).div_euclid(1000)
            + i64::from(wait.num_milliseconds() % 1000 != 0);
        Verdict::Exhausted {
            retry_after_secs: u64::try_from(secs.max(1)).unwrap_or(1),
        }
    }
}

/// Named budgets, e.g. an account-wide one plus a tighter one for some endpoints.
#[derive(Debug, Default)]
pub struct RateBudgets {
    budgets: BTreeMap<String, RateBudget>,
}

impl RateBudgets {
    pub fn new() -> RateBudgets {
        RateBudgets::default()
    }

    /// Adds (or replaces) the budget `name`.
    pub fn with(mut self, name: &str, limit: u32, window: Duration) -> RateBudgets {
        self.budgets
            .insert(name.to_string(), RateBudget::new(limit, window));
        self
    }

    pub fn get(&self, name: &str) -> Option<&RateBudget> {
        self.budgets.get(name)
    }

    /// Switches every budget off or on.
    pub fn set_enabled(&self, on: bool) {
        for b in self.budgets.values() {
            b.set_enabled(on);
        }
    }

    pub fn reset(&self) {
        for b in self.budgets.values() {
            b.reset();
        }
    }

    /// Takes one request from each named budget, all or none: `Ok` has each budget's
    /// remaining count in the order given, `Err` names the first exhausted budget and its
    /// wait (nothing is counted then). Unknown names are ignored.
    pub fn take_all(
        &self,
        names: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u32)>, (String, u64)> {
        // locks are taken in name order, so concurrent callers cannot deadlock
        let mut picked: Vec<(&String, &RateBudget)> = self
            .budgets
            .iter()
            .filter(|(n, _)| names.contains(&n.as_str()))
            .collect();
        picked.sort_by(|a, b| a.0.cmp(b.0));
        let mut guards: Vec<_> = picked.iter().map(|(_, b)| lock(&b.hits)).collect();
        for ((name, budget), hits) in picked.iter().zip(guards.iter_mut()) {
            if let Verdict::Exhausted { retry_after_secs } = budget.take_locked(hits, now, false) {
                return Err(((*name).clone(), retry_after_secs));
            }
        }
        let mut taken = Vec::with_capacity(picked.len());
        for ((name, budget), hits) in picked.iter().zip(guards.iter_mut()) {
            if let Verdict::Allowed { remaining } = budget.take_locked(hits, now, true) {
                taken.push(((*name).clone(), remaining));
            }
        }
        drop(guards);
        taken.sort_by_key(|(n, _)| names.iter().position(|x| x == n));
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    #[test]
    fn rolling_window() {
        let b = RateBudget::new(2, Duration::from_secs(60));
        let t = t0();
        assert_eq!(b.take(t), Verdict::Allowed { remaining: 1 });
        assert_eq!(
            b.take(t + TimeDelta::seconds(1)),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(
            b.take(t + TimeDelta::seconds(2)),
            Verdict::Exhausted {
                retry_after_secs: 58
            }
        );
        assert_eq!(
            b.take(t + TimeDelta::milliseconds(59_999)),
            Verdict::Exhausted {
                retry_after_secs: 1
            }
        );
        assert_eq!(b.remaining(t + TimeDelta::seconds(60)), 1);
        assert_eq!(
            b.take(t + TimeDelta::seconds(60)),
            Verdict::Allowed { remaining: 0 }
        );
        b.reset();
        assert_eq!(b.remaining(t + TimeDelta::seconds(60)), 2);
        b.set_enabled(false);
        for _ in 0..10 {
            assert_eq!(b.take(t), Verdict::Allowed { remaining: 2 });
        }
    }

    #[test]
    fn clock_going_back_never_frees_slots_early() {
        let b = RateBudget::new(1, Duration::from_secs(10));
        let t = t0();
        assert_eq!(b.take(t), Verdict::Allowed { remaining: 0 });
        assert!(matches!(
            b.take(t - TimeDelta::seconds(30)),
            Verdict::Exhausted { .. }
        ));
    }

    #[test]
    fn take_all_is_all_or_nothing() {
        let budgets = RateBudgets::new()
            .with("account", 5, Duration::from_secs(60))
            .with("incremental", 1, Duration::from_secs(60));
        let t = t0();
        assert_eq!(
            budgets.take_all(&["incremental", "account"], t),
            Ok(vec![("incremental".into(), 0), ("account".into(), 4)])
        );
        assert_eq!(
            budgets.take_all(&["account", "incremental"], t + TimeDelta::seconds(15)),
            Err(("incremental".into(), 45))
        );
        // the refused call took nothing from the account budget
        assert_eq!(budgets.get("account").map(|b| b.remaining(t)), Some(4));
        assert_eq!(
            budgets.take_all(&["account", "nonexistent"], t),
            Ok(vec![("account".into(), 3)])
        );
        budgets.set_enabled(false);
        assert!(budgets.take_all(&["incremental"], t).is_ok());
        budgets.set_enabled(true);
        budgets.reset();
        assert!(budgets.take_all(&["incremental"], t).is_ok());
    }
}
