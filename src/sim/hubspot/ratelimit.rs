//! HubSpot simulator: the rolling-window request limiter (`TEN_SECONDLY_ROLLING` policy) and
//! its `X-HubSpot-RateLimit-*` headers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

/// Outcome of one request against the limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed { remaining: u32 },
    Throttled { retry_after_secs: u64 },
}

pub(crate) struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<VecDeque<Instant>>,
    /// Off: every request is allowed (and not counted).
    enabled: AtomicBool,
}

impl RateLimiter {
    pub(crate) fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            hits: Mutex::new(VecDeque::with_capacity(max as usize)),
            enabled: AtomicBool::new(true),
        }
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub(crate) fn check(&self) -> Verdict {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Verdict {
        if !self.enabled.load(Ordering::Relaxed) {
            return Verdict::Allowed {
                remaining: self.max,
            };
        }
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        while hits
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            hits.pop_front();
        }
        if (hits.len() as u64) < u64::from(self.max) {
            hits.push_back(now);
            let remaining = self.max.saturating_sub(hits.len() as u32);
            return Verdict::Allowed { remaining };
        }
        let wait = hits
            .front()
            .map(|t| (*t + self.window).saturating_duration_since(now))
            .unwrap_or(self.window);
        let secs = wait.as_millis().div_ceil(1000).max(1);
        Verdict::Throttled {
            retry_after_secs: u64::try_from(secs).unwrap_or(u64::MAX),
        }
    }

    /// Adds the Max / Remaining / Interval headers.
    pub(crate) fn headers(&self, h: &mut HeaderMap, remaining: u32) {
        h.insert("x-hubspot-ratelimit-max", HeaderValue::from(self.max));
        h.insert(
            "x-hubspot-ratelimit-remaining",
            HeaderValue::from(remaining),
        );
        let ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        h.insert(
            "x-hubspot-ratelimit-interval-milliseconds",
            HeaderValue::from(ms),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_window() {
        let l = RateLimiter::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.check_at(t0), Verdict::Allowed { remaining: 1 });
        assert_eq!(
            l.check_at(t0 + Duration::from_secs(1)),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(
            l.check_at(t0 + Duration::from_secs(2)),
            Verdict::Throttled {
                retry_after_secs: 8
            }
        );
        assert_eq!(
            l.check_at(t0 + Duration::from_millis(9_999)),
            Verdict::Throttled {
                retry_after_secs: 1
            }
        );
        assert_eq!(
            l.check_at(t0 + Duration::from_secs(10)),
            Verdict::Allowed { remaining: 0 }
        );
    }
}
