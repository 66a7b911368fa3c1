//! Salesforce connector, both directions: the org's daily API allocation. Every answer says
//! how much of it is used (`Sforce-Limit-Info: api-usage=N/M`, a rolling 24 hours shared with
//! every other integration of the org); ferry holds its calls while `N` (plus its own calls
//! still in flight) has reached its share of `M`, letting one call through now and then to
//! learn whether usage fell. A 403 `REQUEST_LIMIT_EXCEEDED` pauses the whole connection.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `api-usage=N/M` out of a `Sforce-Limit-Info` header (`api-usage=10/15000; api-bursts=1/750`).
pub fn parse_usage(header: &str) -> Option<(u64, u64)> {
    header.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        if k.trim() != "api-usage" {
            return None;
        }
        let (n, m) = v.split_once('/')?;
        Some((n.trim().parse().ok()?, m.trim().parse().ok()?))
    })
}

#[derive(Debug, Default)]
struct State {
    /// The last usage Salesforce reported, and its allocation (0: none seen yet).
    used: u64,
    max: u64,
    /// Calls sent whose answers have not come back (not in `used` yet).
    in_flight: u64,
    /// While held: when the next probe call may go.
    probe_at: Option<Instant>,
    /// A 403 `REQUEST_LIMIT_EXCEEDED` said stop until then.
    paused_until: Option<Instant>,
    /// The hold was logged (once per hold).
    hold_logged: bool,
}

/// One connection's share of the daily allocation.
#[derive(Debug)]
pub struct DailyBudget {
    name: String,
    share: f64,
    /// How long a held connection waits before it lets one call through to read the usage.
    probe_every: Duration,
    state: Mutex<State>,
}

/// A call admitted by the budget; its answer's usage goes back through [`DailyBudget::answered`].
pub struct Ticket<'a> {
    budget: &'a DailyBudget,
    open: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.open {
            let mut s = self.budget.state.lock().expect("budget lock");
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

impl Ticket<'_> {
    /// The call's answer came with `usage` (None: the header was missing).
    pub fn answered(mut self, usage: Option<(u64, u64)>) {
        self.open = false;
        let mut s = self.budget.state.lock().expect("budget lock");
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some((used, max)) = usage {
            s.used = used;
            s.max = max;
            if !self.budget.over(&s) && s.probe_at.is_some() {
                tracing::info!(connection = %self.budget.name, api_usage = used, api_limit = max, "salesforce API usage is below ferry's share again; calls resume");
                s.probe_at = None;
                s.hold_logged = false;
            }
        }
    }
}

impl DailyBudget {
    pub fn new(name: &str, share: f64, probe_every: Duration) -> DailyBudget {
        DailyBudget {
            name: name.to_string(),
            share,
            probe_every,
            state: Mutex::new(State::default()),
        }
    }

    /// The usage and allocation Salesforce reported last (None before the first answer).
    pub fn usage(&self) -> Option<(u64, u64)> {
        let s = self.state.lock().expect("budget lock");
        (s.max > 0).then_some((s.used, s.max))
    }

    /// Calls ferry may have counted against the allocation: `share` of it, at least one.
    fn allowed(&self, max: u64) -> u64 {
        ((self.share * max as f64).floor() as u64).max(1)
    }

    fn over(&self, s: &State) -> bool {
        s.max > 0 && s.used + s.in_flight >= self.allowed(s.max)
    }

    /// Waits until a call may go.
    pub async fn admit(&self) -> Ticket<'_> {
        loop {
            let wait = {
                let mut s = self.state.lock().expect("budget lock");
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        s.paused_until = None;
                        if !self.over(&s) {
                            s.in_flight += 1;
                            return Ticket {
                                budget: self,
                                open: true,
                            };
                        }
                        if !s.hold_logged {
                            s.hold_logged = true;
                            tracing::warn!(connection = %self.name, api_usage = s.used, api_limit = s.max, share = self.share, "salesforce API usage reached ferry's share of the daily allocation; calls are held until it falls");
                        }
                        match s.probe_at {
                            // one call at a time reads the usage again
                            Some(at) if at <= now && s.in_flight == 0 => {
                                s.probe_at = Some(now + self.probe_every);
                                s.in_flight += 1;
                                return Ticket {
                                    budget: self,
                                    open: true,
                                };
                            }
                            Some(at) if at > now => at - now,
                            Some(_) => Duration::from_millis(20),
                            None => {
                                s.probe_at = Some(now + self.probe_every);
                                self.probe_every
                            }
                        }
                    }
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Salesforce refused a call for the allocation: nobody sends for `d`.
    pub fn pause(&self, d: Duration) {
        let mut s = self.state.lock().expect("budget lock");
        let until = Instant::now() + d;
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_limit_header() {
        assert_eq!(parse_usage("api-usage=10/15000"), Some((10, 15000)));
        assert_eq!(
            parse_usage("api-usage=18/5000; api-bursts=1/750"),
            Some((18, 5000))
        );
        assert_eq!(parse_usage("api-bursts=1/750"), None);
        assert_eq!(parse_usage("api-usage=x/5"), None);
    }

    #[tokio::test]
    async fn holds_at_the_share_and_probes() {
        let b = DailyBudget::new("t", 0.5, Duration::from_millis(50));
        b.admit().await.answered(Some((4, 10)));
        // 4 of the 5 allowed: one more may go, the next waits for a probe
        let t = b.admit().await;
        let started = Instant::now();
        let waiter = b.admit();
        t.answered(Some((5, 10)));
        waiter.await.answered(Some((5, 10)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(b.usage(), Some((5, 10)));
    }
}
