//! Stripe simulator: idempotent requests — the first executed response to a POST with an
//! `Idempotency-Key` (status and body, errors included) is kept per mode and key for 24 hours
//! of simulator time and replayed; other parameters are an `idempotency_error`, and a key
//! whose first request is still running is a 409.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use bytes::Bytes;

use super::wire::Mode;
use crate::sim::core::lock;

/// Keys are forgotten 24 hours after their first request.
pub(crate) const TTL_SECS: i64 = 24 * 3600;

/// A stored response.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub status: StatusCode,
    pub body: Bytes,
    /// The `Request-Id` of the request that executed.
    pub request_id: String,
}

#[derive(Debug)]
enum Entry {
    Running,
    Done {
        fingerprint: String,
        at: i64,
        response: Stored,
    },
}

type Entries = Arc<Mutex<HashMap<(Mode, String), Entry>>>;

#[derive(Debug, Default)]
pub(crate) struct Keys {
    entries: Entries,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub(crate) enum Claim {
    /// First use: run it, then [`Running::finish`].
    Run(Running),
    Replay(Stored),
    /// The first request with this key is still running.
    InUse,
    /// The key was first used with other parameters.
    Mismatch,
}

/// A claimed key; dropped without `finish` (client gone, validation failure) it is released.
#[derive(Debug)]
pub(crate) struct Running {
    entries: Entries,
    key: (Mode, String),
    fingerprint: String,
    done: bool,
}

impl Running {
    /// Stores the response (`Some`) or releases the key (`None`: nothing executed).
    pub(crate) fn finish(mut self, response: Option<Stored>, now: i64) {
        let mut map = lock(&self.entries);
        match response {
            Some(response) => {
                let fingerprint = std::mem::take(&mut self.fingerprint);
                map.insert(
                    self.key.clone(),
                    Entry::Done {
                        fingerprint,
                        at: now,
                        response,
                    },
                );
            }
            None => {
                map.remove(&self.key);
            }
        }
        self.done = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.entries).remove(&self.key);
        }
    }
}

impl Keys {
    /// Looks `key` up for a request whose parameters hash to `fingerprint`.
    pub(crate) fn claim(&self, mode: Mode, key: &str, fingerprint: String, now: i64) -> Claim {
        let mut map = lock(&self.entries);
        map.retain(|_, e| !matches!(e, Entry::Done { at, .. } if now - *at >= TTL_SECS));
        let k = (mode, key.to_string());
        match map.get(&k) {
            Some(Entry::Running) => Claim::InUse,
            Some(Entry::Done {
                fingerprint: f,
                response,
                ..
            }) => {
                if *f == fingerprint {
                    Claim::Replay(response.clone())
                } else {
                    Claim::Mismatch
                }
            }
            None => {
                map.insert(k.clone(), Entry::Running);
                Claim::Run(Running {
                    entries: self.entries.clone(),
                    key: k,
                    fingerprint,
                    done: false,
                })
            }
        }
    }

    /// Keys whose first request is still running.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        lock(&self.entries)
            .values()
            .filter(|e| matches!(e, Entry::Running))
            .count()
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// The request's identity for key reuse: method, path and its parameters in sorted order.
pub(crate) fn fingerprint(method: &str, path: &str, raw: &str) -> String {
    let mut pairs: Vec<String> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            format!(
                "{}={}",
                crate::sim::core::query::decode(k),
                crate::sim::core::query::decode(v)
            )
        })
        .collect();
    pairs.sort();
    format!("{method} {path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(body: &'static str) -> Stored {
        Stored {
            status: StatusCode::OK,
            body: Bytes::from_static(body.as_bytes()),
            request_id: "req_1".into(),
        }
    }

    #[test]
    fn claim_replay_mismatch_in_use_and_expiry() {
        let keys = Keys::default();
        let f = fingerprint("POST", "/v1/customers", "b=2&a=%31");
        assert_eq!(f, fingerprint("POST", "/v1/customers", "a=1&b=2"));
        let Claim::Run(run) = keys.claim(Mode::Test, "k", f.clone(), 100) else {
            panic!("run")
        };
        assert!(matches!(
            keys.claim(Mode::Test, "k", f.clone(), 100),
            Claim::InUse
        ));
        assert!(
            matches!(keys.claim(Mode::Live, "k", f.clone(), 100), Claim::Run(_)),
            "per mode"
        );
        run.finish(Some(stored("{}")), 100);
        assert!(
            matches!(keys.claim(Mode::Test, "k", f.clone(), 200), Claim::Replay(s) if s.body == "{}")
        );
        assert!(matches!(
            keys.claim(Mode::Test, "k", "other".into(), 200),
            Claim::Mismatch
        ));
        assert!(matches!(
            keys.claim(Mode::Test, "k", "other".into(), 100 + TTL_SECS),
            Claim::Run(_)
        ));
        // a dropped claim releases the key
        {
            let _run = keys.claim(Mode::Test, "gone", f.clone(), 0);
        }
        assert!(matches!(
            keys.claim(Mode::Test, "gone", f, 0),
            Claim::Run(_)
        ));
    }
}
