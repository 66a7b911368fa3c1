//! Salesforce connector, both directions: the org's daily API allocation. Every answer says
//! how much of it is used (`Sforce-Limit-Info: api-usage=N/M`, a rolling 24 hours shared with
//! every other integration of the org). ferry paces itself against its share of `M`: below
//! a quarter of the share calls go freely; above, they are spaced further apart the closer
//! usage gets to the share (at five eighths, one call per `24 h / share`, the pace the
//! allocation sustains), so a busy day slows sync rather than stopping it and leaves room for
//! the org's other integrations; at the share, calls are held and one goes now and then to
//! learn whether usage fell. A 403 `REQUEST_LIMIT_EXCEEDED`
//! pauses the whole connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The day the allocation rolls over.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Below this part of the share, calls are not spaced.
const FREE: f64 = 0.25;

/// The longest a call waits for the budget; a longer wait is handed back to the caller.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// Why a call was deferred (the `policy` of the caller's `RateLimited`).
const PAUSED: &str = "daily allocation: paused after REQUEST_LIMIT_EXCEEDED";
const HELD: &str = "daily allocation: ferry's share is spent";
const PACING: &str = "daily allocation: pacing ferry's share";

/// A call the budget will not let through for a while: retry after `retry_after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub retry_after: Duration,
    pub why: &'static str,
}

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

/// Where the budget reads the time, and how long it really sleeps for a wait on that time:
/// the wall clock in production; a simulator's clock (a day in seconds) in benchmarks.
pub trait PaceClock: Send + Sync + std::fmt::Debug {
    /// Time since a fixed point of this clock.
    fn now(&self) -> Duration;
    /// The real sleep before looking again when the budget waits `d` of this clock's time.
    fn nap(&self, d: Duration) -> Duration {
        d
    }
}

/// The wall clock (tokio's, so paused test runtimes see their own time).
#[derive(Debug)]
struct Wall(tokio::time::Instant);

impl PaceClock for Wall {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

#[derive(Debug, Default)]
struct State {
    /// The last usage Salesforce reported, and its allocation (0: none seen yet).
    used: u64,
    max: u64,
    /// Calls sent whose answers have not come back (not in `used` yet).
    in_flight: u64,
    /// When the last call was let through (pacing).
    last_sent: Option<Duration>,
    /// While held: when the next probe call may go.
    probe_at: Option<Duration>,
    /// A 403 `REQUEST_LIMIT_EXCEEDED` said stop until then.
    paused_until: Option<Duration>,
    /// The hold was logged (once per hold); so was the pacing (once per slow spell).
    hold_logged: bool,
    pace_logged: bool,
}

/// One connection's share of the daily allocation.
#[derive(Debug)]
pub struct DailyBudget {
    name: String,
    share: f64,
    /// How long a held connection waits before it lets one call through to read the usage.
    probe_every: Duration,
    /// Calls are spaced out past a quarter of the share (off: they go freely until the share).
    pacing: bool,
    clock: Arc<dyn PaceClock>,
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
        let b = self.budget;
        let mut s = b.state.lock().expect("budget lock");
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some((used, max)) = usage {
            s.used = used;
            s.max = max;
            if !b.over(&s) && s.probe_at.is_some() {
                tracing::info!(connection = %b.name, api_usage = used, api_limit = max, "salesforce API usage is below ferry's share again; calls resume");
                s.probe_at = None;
                s.hold_logged = false;
            }
            // logged again once usage has fallen well below the pacing line
            if s.max > 0 && ((used as f64) < FREE * 0.8 * b.allowed(max) as f64) {
                s.pace_logged = false;
            }
        }
    }
}

impl DailyBudget {
    /// The connection `name`'s budget: `daily_share`, `probe_every`, `pacing` and
    /// `pace_clock` (None: the wall clock) of its options.
    pub fn new(name: &str, options: &super::Options) -> DailyBudget {
        DailyBudget {
            name: name.to_string(),
            share: options.daily_share,
            probe_every: options.probe_every,
            pacing: options.pacing,
            clock: options
                .pace_clock
                .clone()
                .unwrap_or_else(|| Arc::new(Wall(tokio::time::Instant::now()))),
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

    /// The least time between two calls at this usage: none below a quarter of the share,
    /// then `(f - ¼) / (1 - f)` times the sustainable spacing (`24 h / share`) at fraction `f`.
    fn gap(&self, s: &State) -> Duration {
        if s.max == 0 || !self.pacing {
            return Duration::ZERO;
        }
        let allowed = self.allowed(s.max) as f64;
        let f = (s.used + s.in_flight) as f64 / allowed;
        if f < FREE {
            return Duration::ZERO;
        }
        let brake = ((f - FREE) / (1.0 - f).max(1e-3)).min(1e4);
        DAY.div_f64(allowed).mul_f64(brake)
    }

    /// Waits until a call may go, as long as that is at most [`MAX_WAIT`] away; a longer wait
    /// (a pause, a hold at the share, a long pacing gap) comes back as [`Deferred`] at once,
    /// so that no shared worker sleeps on one connection's allocation: the caller retries then.
    pub async fn admit(&self) -> Result<Ticket<'_>, Deferred> {
        loop {
            let wait = match self.try_admit() {
                Ok(()) => {
                    return Ok(Ticket {
                        budget: self,
                        open: true,
                    })
                }
                Err(wait) => wait,
            };
            if wait.1 > MAX_WAIT {
                return Err(Deferred {
                    retry_after: wait.1,
                    why: wait.0,
                });
            }
            tokio::time::sleep(self.clock.nap(wait.1).max(Duration::from_millis(1))).await;
        }
    }

    /// Lets a call through now, or says why not and how long (on the budget's clock) to wait.
    fn try_admit(&self) -> Result<(), (&'static str, Duration)> {
        let mut s = self.state.lock().expect("budget lock");
        let now = self.clock.now();
        if let Some(until) = s.paused_until.filter(|u| *u > now) {
            return Err((PAUSED, until - now));
        }
        s.paused_until = None;
        if !self.over(&s) {
            let gap = self.gap(&s);
            if let Some(next) = s.last_sent.map(|l| l + gap).filter(|n| *n > now) {
                if !s.pace_logged {
                    s.pace_logged = true;
                    tracing::info!(connection = %self.name, api_usage = s.used, api_limit = s.max, share = self.share, gap_ms = gap.as_millis() as u64, "salesforce API usage passed a quarter of ferry's share of the daily allocation; calls are spaced out to make the share last");
                }
                return Err((PACING, next - now));
            }
            s.in_flight += 1;
            s.last_sent = Some(now);
            return Ok(());
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
                s.last_sent = Some(now);
                Ok(())
            }
            Some(at) if at > now => Err((HELD, at - now)),
            Some(_) => Err((HELD, Duration::from_millis(20))),
            None => {
                s.probe_at = Some(now + self.probe_every);
                Err((HELD, self.probe_every))
            }
        }
    }

    /// Salesforce refused a call for the allocation: nobody sends for `d`.
    pub fn pause(&self, d: Duration) {
        let mut s = self.state.lock().expect("budget lock");
        let until = self.clock.now() + d;
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::salesforce::Options;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::time::{timeout, Instant};

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
        let b = DailyBudget::new(
            "t",
            &Options {
                daily_share: 0.5,
                probe_every: Duration::from_millis(50),
                pacing: false,
                ..Options::default()
            },
        );
        b.admit().await.unwrap().answered(Some((4, 10)));
        // 4 of the 5 allowed: one more may go, the next waits for a probe
        let t = b.admit().await.unwrap();
        let started = Instant::now();
        let waiter = b.admit();
        t.answered(Some((5, 10)));
        waiter.await.unwrap().answered(Some((5, 10)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(b.usage(), Some((5, 10)));
    }

    /// A clock the test moves by hand.
    #[derive(Debug, Default)]
    struct Hand(AtomicU64);

    impl PaceClock for Hand {
        fn now(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::Relaxed))
        }
        fn nap(&self, _: Duration) -> Duration {
            Duration::from_millis(1)
        }
    }

    #[tokio::test]
    async fn spaces_calls_past_a_quarter_of_the_share() {
        let clock = Arc::new(Hand::default());
        let at = |d: Duration| clock.0.store(d.as_millis() as u64, Ordering::Relaxed);
        let b = DailyBudget::new(
            "t",
            &Options {
                daily_share: 0.5,
                pace_clock: Some(clock.clone()),
                ..Options::default()
            },
        );
        // 200 of the 1,000 allowed: free
        b.admit().await.unwrap().answered(Some((200, 2000)));
        b.admit().await.unwrap().answered(Some((201, 2000)));
        // 625 of 1,000: one call per 24 h / 1,000 = 86.4 s, handed back to the caller
        b.admit().await.unwrap().answered(Some((625, 2000)));
        let gap = Duration::from_millis(86_400);
        let d = b.admit().await.err().expect("deferred");
        assert_eq!(d.why, PACING);
        assert_eq!(d.retry_after, gap);
        at(gap - Duration::from_secs(1));
        // a second before: within MAX_WAIT, so the call waits for it
        let b = Arc::new(b);
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move { b.admit().await.unwrap().answered(Some((626, 2000))) })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiter.is_finished(), "spaced");
        at(gap);
        timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        // 900 of 1,000: 6.5 times the sustainable spacing
        let t0 = gap * 100;
        at(t0);
        b.admit().await.unwrap().answered(Some((900, 2000)));
        at(t0 + gap.mul_f64(6.5) - Duration::from_secs(10));
        let d = b.admit().await.err().expect("deferred");
        assert_eq!(d.retry_after, Duration::from_secs(10));
        at(t0 + gap.mul_f64(6.5));
        b.admit().await.unwrap().answered(None);
    }

    #[tokio::test]
    async fn a_pause_is_handed_back_to_the_caller() {
        let b = DailyBudget::new("t", &Options::default());
        b.pause(Duration::from_secs(900));
        let d = b.admit().await.err().expect("deferred");
        assert_eq!(d.why, PAUSED);
        assert!(d.retry_after > Duration::from_secs(899));
    }
}
