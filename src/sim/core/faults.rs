//! Simulator core: fault knobs changeable at run time — added latency, a share of requests
//! answered 5xx, a share answered 429, a share of writes performed but answered 504 (lost
//! response), a share of webhook deliveries dropped, and listings that lie (an empty page).
//! The app renders its own bodies and decides which of its endpoints are listings.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A probability in `[0, 1]`; NaN and negatives become 0.
fn clamp(rate: f64) -> f64 {
    if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    }
}

/// One probability stored as `f64` bits.
#[derive(Debug)]
struct Rate(AtomicU64);

impl Rate {
    fn new(rate: f64) -> Rate {
        Rate(AtomicU64::new(clamp(rate).to_bits()))
    }

    fn set(&self, rate: f64) {
        self.0.store(clamp(rate).to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Whether this draw hits.
    fn roll(&self) -> bool {
        let rate = self.get();
        rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
    }
}

/// All fault knobs at once; rates are clamped to `[0, 1]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultSettings {
    /// Added before every API response.
    pub latency: Duration,
    /// Share of API requests answered 500, 502 or 503 without doing anything.
    pub error_rate: f64,
    /// Share of API requests answered 429 without doing anything.
    pub throttle_rate: f64,
    /// Share of writes performed (side effects included) but answered 504.
    pub lost_response_rate: f64,
    /// Share of webhook deliveries dropped instead of sent.
    pub webhook_drop_rate: f64,
    /// Listings answer one empty page, as an app in an outage or a token that lost its read
    /// rights can (the pages lie; reads by id still work). Honoured by apps that list.
    pub empty_listings: bool,
}

/// The live fault knobs of one simulator.
#[derive(Debug)]
pub struct Faults {
    latency_ms: AtomicU64,
    error: Rate,
    throttle: Rate,
    lost: Rate,
    webhook_drop: Rate,
    empty_listings: AtomicBool,
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Answer this 5xx (500, 502 or 503) without doing anything.
    ServerError(StatusCode),
    /// Answer a 429 without doing anything.
    Throttle,
    /// Do the write, then answer 504 instead of its response.
    LoseResponse,
}

impl Default for Faults {
    fn default() -> Self {
        Faults::new(&FaultSettings::default())
    }
}

impl Faults {
    pub fn new(s: &FaultSettings) -> Faults {
        let f = Faults {
            latency_ms: AtomicU64::new(0),
            error: Rate::new(0.0),
            throttle: Rate::new(0.0),
            lost: Rate::new(0.0),
            webhook_drop: Rate::new(0.0),
            empty_listings: AtomicBool::new(false),
        };
        f.set(s);
        f
    }

    /// Replaces every knob.
    pub fn set(&self, s: &FaultSettings) {
        self.set_latency(s.latency);
        self.set_rates(s.error_rate, s.throttle_rate, s.lost_response_rate);
        self.set_webhook_drop_rate(s.webhook_drop_rate);
        self.set_empty_listings(s.empty_listings);
    }

    /// The request fault rates only (latency and webhook drops unchanged).
    pub fn set_rates(&self, error_rate: f64, throttle_rate: f64, lost_response_rate: f64) {
        self.error.set(error_rate);
        self.throttle.set(throttle_rate);
        self.lost.set(lost_response_rate);
    }

    pub fn set_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.latency_ms.store(ms, Ordering::Relaxed);
    }

    pub fn set_webhook_drop_rate(&self, rate: f64) {
        self.webhook_drop.set(rate);
    }

    pub fn set_empty_listings(&self, on: bool) {
        self.empty_listings.store(on, Ordering::Relaxed);
    }

    /// Whether listings should answer one empty page.
    pub fn empty_listings(&self) -> bool {
        self.empty_listings.load(Ordering::Relaxed)
    }

    pub fn settings(&self) -> FaultSettings {
        FaultSettings {
            latency: self.latency(),
            error_rate: self.error.get(),
            throttle_rate: self.throttle.get(),
            lost_response_rate: self.lost.get(),
            webhook_drop_rate: self.webhook_drop.get(),
            empty_listings: self.empty_listings(),
        }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Draws the fault for one request: errors first, then throttles, then (writes only) lost
    /// responses.
    pub fn draw(&self, is_write: bool) -> Fault {
        if self.error.roll() {
            let status = match rand::random::<u8>() % 3 {
                0 => StatusCode::INTERNAL_SERVER_ERROR,
                1 => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            Fault::ServerError(status)
        } else if self.throttle.roll() {
            Fault::Throttle
        } else if is_write && self.lost.roll() {
            Fault::LoseResponse
        } else {
            Fault::None
        }
    }

    /// Whether the next webhook delivery is dropped.
    pub fn drop_webhook(&self) -> bool {
        self.webhook_drop.roll()
    }

    /// Sleeps the configured latency (no-op at zero).
    pub async fn delay(&self) {
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

/// A `text/plain` response, as gateways and proxies answer.
pub fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// What the client sees when the response to its write was lost on the way back.
pub fn gateway_timeout() -> Response {
    plain(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Timeout\n")
}

/// The fault knobs every `ferry sim <app>` takes on its command line.
#[derive(clap::Args, Debug, Clone)]
pub struct FaultArgs {
    /// Added latency per API response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of API calls answered 5xx (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of API calls answered with the app's throttling answer (429, or Salesforce's 403).
    #[arg(long, default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// Share of writes performed but answered 504, as if the response was lost.
    #[arg(long, default_value_t = 0.0)]
    pub lost_response_rate: f64,
}

impl FaultArgs {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_clamp_and_draw_in_order() {
        let f = Faults::new(&FaultSettings {
            error_rate: f64::NAN,
            throttle_rate: 7.0,
            lost_response_rate: -1.0,
            ..FaultSettings::default()
        });
        let s = f.settings();
        assert_eq!(
            (s.error_rate, s.throttle_rate, s.lost_response_rate),
            (0.0, 1.0, 0.0)
        );
        assert_eq!(f.draw(false), Fault::Throttle);
        f.set_rates(0.0, 0.0, 1.0);
        assert_eq!(f.draw(false), Fault::None, "reads are never lost");
        assert_eq!(f.draw(true), Fault::LoseResponse);
        f.set_rates(1.0, 1.0, 1.0);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            match f.draw(true) {
                Fault::ServerError(s) => {
                    seen.insert(s.as_u16());
                }
                other => panic!("errors come first, got {other:?}"),
            }
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [500, 502, 503]);
    }

    #[test]
    fn half_rate_hits_about_half() {
        let f = Faults::default();
        f.set_rates(0.0, 0.5, 0.0);
        let hits = (0..2000)
            .filter(|_| f.draw(false) == Fault::Throttle)
            .count();
        assert!((800..=1200).contains(&hits), "{hits} of 2000");
    }

    #[test]
    fn latency_and_webhook_drops() {
        let f = Faults::default();
        assert!(!f.drop_webhook());
        f.set_webhook_drop_rate(1.0);
        assert!(f.drop_webhook());
        f.set_latency(Duration::from_millis(25));
        assert_eq!(f.settings().latency, Duration::from_millis(25));
        assert_eq!(f.settings().webhook_drop_rate, 1.0);
        assert!(!f.empty_listings());
        f.set_empty_listings(true);
        assert!(f.empty_listings() && f.settings().empty_listings);
        f.set(&FaultSettings::default());
        assert_eq!(f.settings(), FaultSettings::default());
    }
}
