//! Simulator core: the controllable clock — wall time plus an offset that tests shift forward
//! or back, so record timestamps, rate windows and lag rules can be exercised without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Wall-clock time shifted by a run-time offset. Every timestamp a simulator records or
/// compares (record times, rate windows, export lag) comes from here.
#[derive(Debug, Default)]
pub struct SimClock {
    /// Offset from the wall clock, in milliseconds.
    offset_ms: AtomicI64,
}

impl SimClock {
    pub fn new() -> SimClock {
        SimClock::default()
    }

    /// The simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }

    /// The simulated now, truncated to whole seconds (for APIs that print seconds).
    pub fn now_secs(&self) -> DateTime<Utc> {
        let now = self.now();
        DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
    }

    /// The simulated now, truncated to whole milliseconds (for APIs that print milliseconds).
    pub fn now_millis(&self) -> DateTime<Utc> {
        let now = self.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.shift(TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX));
    }

    /// Moves the clock back.
    pub fn rewind(&self, by: Duration) {
        self.shift(-TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX));
    }

    /// Moves the clock by a signed amount.
    pub fn shift(&self, by: TimeDelta) {
        let ms = by.num_milliseconds();
        let _ = self
            .offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(ms))
            });
    }

    /// The current offset from the wall clock.
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Back to wall-clock time.
    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}

/// A benchmark's simulated day: the Salesforce connector paces its daily budget by the
/// simulator's clock, and looks again every 2 ms of real time while it waits.
impl crate::connectors::salesforce::PaceClock for SimClock {
    fn now(&self) -> Duration {
        (SimClock::now(self) - DateTime::<Utc>::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default()
    }
    fn nap(&self, d: Duration) -> Duration {
        d.min(Duration::from_millis(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_forward_and_back() {
        let c = SimClock::new();
        let wall = Utc::now();
        assert!((c.now() - wall).num_seconds().abs() <= 1);
        c.advance(Duration::from_secs(120));
        assert!(
            (c.now() - wall - TimeDelta::seconds(120))
                .num_seconds()
                .abs()
                <= 1
        );
        c.rewind(Duration::from_secs(300));
        assert_eq!(c.offset(), TimeDelta::seconds(-180));
        c.shift(TimeDelta::milliseconds(500));
        assert_eq!(c.offset(), TimeDelta::milliseconds(-179_500));
        assert_eq!(c.now_secs().timestamp_subsec_nanos(), 0);
        assert_eq!(c.now_millis().timestamp_subsec_nanos() % 1_000_000, 0);
        c.reset();
        assert_eq!(c.offset(), TimeDelta::zero());
    }
}
