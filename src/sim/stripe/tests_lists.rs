//! Stripe simulator: tests (lists).
