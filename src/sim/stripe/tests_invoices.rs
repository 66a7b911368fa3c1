//! Stripe simulator: tests (invoices).
