//! Stripe simulator: tests (api).
