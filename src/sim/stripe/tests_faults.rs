//! Stripe simulator: tests (faults).
