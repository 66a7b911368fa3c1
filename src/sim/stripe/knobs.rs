//! Stripe simulator: its own knobs and counters on top of the core's faults — the
//! `lock_timeout` share of writes, duplicated and reordered webhook deliveries, and counts of
//! writes, lock timeouts and idempotent replays.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::sim::core::lock;

/// A probability in `[0, 1]`, stored as `f64` bits.
#[derive(Debug, Default)]
pub(crate) struct Rate(AtomicU64);

impl Rate {
    pub(crate) fn set(&self, rate: f64) {
        let rate = if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        };
        self.0.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn roll(&self) -> bool {
        let rate = self.get();
        rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Knobs {
    /// Share of writes answered 429 `lock_timeout` without doing anything.
    pub lock_timeout: Rate,
    /// Share of events delivered twice.
    pub duplicate: Rate,
    /// Share of events held back and delivered after the next one.
    pub reorder: Rate,
    /// Milliseconds a write with an idempotency key runs before it is done (its key stays in
    /// use meanwhile: a retry then is 409 `idempotency_key_in_use`).
    pub keyed_write_ms: AtomicU64,
    held: Mutex<Vec<Value>>,
}

impl Knobs {
    /// The deliveries for `events` in sending order, after the duplicate and reorder knobs.
    pub(crate) fn shape(&self, events: Vec<Value>) -> Vec<Value> {
        let mut held = lock(&self.held);
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if self.reorder.roll() {
                held.push(e);
                continue;
            }
            if self.duplicate.roll() {
                out.push(e.clone());
            }
            out.push(e);
            out.append(&mut held);
        }
        out
    }

    /// Events still held back (released when the reorder knob is turned off).
    pub(crate) fn release(&self) -> Vec<Value> {
        std::mem::take(&mut *lock(&self.held))
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub lock_timeouts: AtomicU64,
    pub replays: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    pub(crate) fn reset(&self) {
        for c in [&self.writes, &self.lock_timeouts, &self.replays] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_and_reorders() {
        let k = Knobs::default();
        assert_eq!(k.shape(vec![json!(1), json!(2)]), [json!(1), json!(2)]);
        k.duplicate.set(1.0);
        assert_eq!(k.shape(vec![json!(1)]), [json!(1), json!(1)]);
        k.duplicate.set(0.0);
        k.reorder.set(1.0);
        assert!(k.shape(vec![json!(1)]).is_empty());
        k.reorder.set(0.0);
        assert_eq!(k.shape(vec![json!(2)]), [json!(2), json!(1)]);
        k.reorder.set(1.0);
        assert!(k.shape(vec![json!(3)]).is_empty());
        assert_eq!(k.release(), [json!(3)]);
        let r = Rate::default();
        r.set(f64::NAN);
        assert_eq!(r.get(), 0.0);
        r.set(3.0);
        assert_eq!(r.get(), 1.0);
    }
}
