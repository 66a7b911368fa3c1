//! Outbound/inbound edge: a per-connection API budget (e.g. HubSpot's 190 requests per rolling
//! 10 s), shared by every task of the process that talks to that app.
//!
//! A request holds a slot from the moment it is sent until `window` after its response arrived.
//! The server counts a request somewhere between those two instants, so this window always
//! covers the server's: the budget is used up to its last request and never beyond it. A 429
//! pauses the whole connection for the server's hint instead of letting every worker find out.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `requests` per rolling `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub requests: u32,
    pub window: Duration,
}

impl FromStr for Budget {
    type Err = String;
    /// `190/10s`, `100/1s`, `5000/60s`.
    fn from_str(s: &str) -> Result<Budget, String> {
        let bad = || format!("rate limit `{s}` must look like 190/10s");
        let (n, w) = s.split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        let secs: f64 = w.trim().trim_end_matches('s').parse().map_err(|_| bad())?;
        if requests == 0 || !secs.is_finite() || secs <= 0.0 {
            return Err(bad());
        }
        Ok(Budget {
            requests,
            window: Duration::from_secs_f64(secs),
        })
    }
}

#[derive(Debug)]
struct State {
    in_flight: u32,
    /// Response times of finished requests still inside the window, oldest first.
    finished: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Budget {
    /// The connection's `rate_limit` (`700/60s`), if it sets one.
    pub fn of(connection: &crate::config::ConnectionConfig) -> Result<Option<Budget>, String> {
        connection.rate_limit.as_deref().map(str::parse).transpose()
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    budget: Budget,
    state: Mutex<State>,
    /// Callers of [`RateLimiter::acquire_first`] waiting now: others leave free slots to them.
    first_waiting: std::sync::atomic::AtomicUsize,
}

/// Counts one waiting first-in-line caller for as long as it waits (dropped futures too).
struct FirstInLine<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for FirstInLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A slot held by one request; give it back with [`Permit::done`] (dropping also releases it).
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    released: bool,
}

impl Permit<'_> {
    pub fn done(mut self) {
        self.release();
    }
    fn release(&mut self) {
        if !self.released {
            self.released = true;
            let mut s = self.limiter.state.lock().expect("limiter lock");
            s.in_flight -= 1;
            s.finished.push_back(Instant::now());
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

impl RateLimiter {
    pub fn new(budget: Budget) -> RateLimiter {
        RateLimiter {
            budget,
            state: Mutex::new(State {
                in_flight: 0,
                finished: VecDeque::new(),
                paused_until: None,
            }),
            first_waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Waits for a slot.
    pub async fn acquire(&self) -> Permit<'_> {
        self.acquire_as(false).await
    }

    /// Waits for a slot ahead of every [`RateLimiter::acquire`] caller: for a call that
    /// unblocks others (a bulk job's status check that several writers wait for), which would
    /// otherwise lose the race for each freed slot to the writers queued behind the budget.
    pub async fn acquire_first(&self) -> Permit<'_> {
        self.first_waiting
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let _line = FirstInLine(&self.first_waiting);
        self.acquire_as(true).await
    }

    async fn acquire_as(&self, first: bool) -> Permit<'_> {
        loop {
            let wait = {
                let mut s = self.state.lock().expect("limiter lock");
                let now = Instant::now();
                self.forget_old(&mut s, now);
                match s.paused_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        s.paused_until = None;
                        let yielding = !first
                            && self
                                .first_waiting
                                .load(std::sync::atomic::Ordering::Acquire)
                                > 0;
                        if yielding {
                            // a first-in-line caller takes the next slot
                            Duration::from_millis(2)
                        } else if s.in_flight + (s.finished.len() as u32) < self.budget.requests {
                            s.in_flight += 1;
                            return Permit {
                                limiter: self,
                                released: false,
                            };
                        } else {
                            match s.finished.front() {
                                Some(oldest) => {
                                    (*oldest + self.budget.window).saturating_duration_since(now)
                                }
                                // everything is in flight: wait for a response
                                None => Duration::from_millis(5),
                            }
                        }
                    }
                }
            };
            tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
        }
    }

    /// Drops the finished requests that left the window.
    fn forget_old(&self, s: &mut State, now: Instant) {
        while s
            .finished
            .front()
            .is_some_and(|t| *t + self.budget.window <= now)
        {
            s.finished.pop_front();
        }
    }

    /// Whether three quarters or more of the window's requests are spent (or it is paused):
    /// a caller with optional calls (status checks) spaces them out then.
    pub fn binding(&self) -> bool {
        let mut s = self.state.lock().expect("limiter lock");
        let now = Instant::now();
        self.forget_old(&mut s, now);
        s.paused_until.is_some_and(|p| p > now)
            || (s.in_flight + s.finished.len() as u32) * 4 >= self.budget.requests * 3
    }

    /// The server said "slow down": nobody sends for `d`.
    pub fn pause(&self, d: Duration) {
        let mut s = self.state.lock().expect("limiter lock");
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
    fn parses_budgets() {
        assert_eq!(
            "190/10s".parse::<Budget>().unwrap(),
            Budget {
                requests: 190,
                window: Duration::from_secs(10)
            }
        );
        assert!("190".parse::<Budget>().is_err());
        assert!("0/1s".parse::<Budget>().is_err());
        // a window that is not a positive finite number is refused, not a panic later
        assert!("10/infs".parse::<Budget>().is_err());
        assert!("10/NaNs".parse::<Budget>().is_err());
        assert!("10/0s".parse::<Budget>().is_err());
    }

    #[tokio::test]
    async fn never_more_than_the_budget_in_a_window() {
        let window = Duration::from_millis(100);
        let limiter = RateLimiter::new(Budget {
            requests: 5,
            window,
        });
        let start = Instant::now();
        let mut sent = vec![];
        for _ in 0..12 {
            let p = limiter.acquire().await;
            sent.push(Instant::now() - start);
            p.done();
        }
        // 5 at once, 5 after one window, 2 after two
        assert!(sent[4] < window, "{sent:?}");
        assert!(sent[5] >= window && sent[9] < 2 * window, "{sent:?}");
        assert!(sent[10] >= 2 * window, "{sent:?}");
    }

    #[tokio::test]
    async fn pause_holds_everyone() {
        let limiter = RateLimiter::new(Budget {
            requests: 100,
            window: Duration::from_secs(1),
        });
        limiter.pause(Duration::from_millis(150));
        let start = Instant::now();
        limiter.acquire().await.done();
        assert!(Instant::now() - start >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn a_first_in_line_caller_takes_the_next_slot() {
        let window = Duration::from_millis(200);
        let limiter = std::sync::Arc::new(RateLimiter::new(Budget {
            requests: 2,
            window,
        }));
        // the window is spent; four ordinary callers queue, then one first-in-line
        limiter.acquire().await.done();
        limiter.acquire().await.done();
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = vec![];
        for n in 0..4 {
            let (l, o) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                l.acquire().await.done();
                o.lock().unwrap().push(format!("writer {n}"));
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (l, o) = (limiter.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            l.acquire_first().await.done();
            o.lock().unwrap().push("check".to_string());
        }));
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "check", "{order:?}");
        assert_eq!(order.len(), 5);
    }
}
