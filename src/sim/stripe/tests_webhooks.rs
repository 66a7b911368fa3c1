//! Stripe simulator: tests (webhooks).
