//! Stripe simulator: the route table and the one place every operation runs — API requests
//! and app-side edits alike lock the mode's data, run the operation, apply `expand[]`, and
//! queue the events it made as webhooks in order.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value;

use super::gate::{gate, unrecognized, ReqCtx};
use super::invoices::expand_customer;
use super::params::{self, only, Params};
use super::store::{Ctx, Origin};
use super::wire::{json_response, Mode, StripeError};
use super::{customers, events, invoice_actions, invoice_ops, lists, Inner};

/// One operation of the simulated API.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    CustomerCreate,
    CustomerGet(String),
    CustomerUpdate(String),
    CustomerDelete(String),
    CustomerList,
    InvoiceCreate,
    InvoiceGet(String),
    InvoiceUpdate(String),
    InvoiceDelete(String),
    InvoiceFinalize(String),
    InvoicePay(String),
    InvoiceVoid(String),
    InvoiceMarkUncollectible(String),
    InvoiceList,
    ItemCreate,
    EventGet(String),
    EventList,
}

impl Op {
    /// The `expand[]` paths the operation's result accepts (lists check their own).
    fn expandable(&self) -> &'static [&'static str] {
        match self {
            Op::InvoiceCreate
            | Op::InvoiceGet(_)
            | Op::InvoiceUpdate(_)
            | Op::InvoiceFinalize(_)
            | Op::InvoicePay(_)
            | Op::InvoiceVoid(_)
            | Op::InvoiceMarkUncollectible(_) => &["customer"],
            _ => &[],
        }
    }

    fn is_list(&self) -> bool {
        matches!(self, Op::CustomerList | Op::InvoiceList | Op::EventList)
    }
}

/// Runs `op` in `mode` with `p`; `api` says whether it came over HTTP (counted as a write).
pub(crate) fn execute(
    inner: &Inner,
    mode: Mode,
    origin: Origin,
    op: &Op,
    p: &Params,
    api: bool,
) -> Result<Value, StripeError> {
    let expand = if op.is_list() {
        Vec::new()
    } else {
        params::expand(p, op.expandable())?
    };
    let now = inner.clock.now().timestamp();
    let ctx = Ctx {
        now,
        origin,
        api_version: inner.api_version.clone(),
        pending_webhooks: u32::from(inner.hooks.url().is_some()),
    };
    let empty = inner.faults.empty_listings();
    let mut data = crate::sim::core::lock(&inner.data);
    let store = match mode {
        Mode::Test => &mut data.test,
        Mode::Live => &mut data.live,
    };
    let result = match op {
        Op::CustomerCreate => customers::create(store, &ctx, p),
        Op::CustomerGet(id) => {
            only(p, &["expand"], "").and_then(|_| customers::retrieve(store, id))
        }
        Op::CustomerUpdate(id) => customers::update(store, &ctx, id, p),
        Op::CustomerDelete(id) => customers::delete(store, &ctx, id, p),
        Op::CustomerList => lists::customers(store, p, empty),
        Op::InvoiceCreate => invoice_ops::create(store, &ctx, p),
        Op::InvoiceGet(id) => {
            only(p, &["expand"], "").and_then(|_| invoice_ops::retrieve(store, id))
        }
        Op::InvoiceUpdate(id) => invoice_ops::update(store, &ctx, id, p),
        Op::InvoiceDelete(id) => invoice_ops::delete(store, &ctx, id, p),
        Op::InvoiceFinalize(id) => invoice_actions::finalize(store, &ctx, id, p),
        Op::InvoicePay(id) => invoice_actions::pay(store, &ctx, id, p),
        Op::InvoiceVoid(id) => invoice_actions::void(store, &ctx, id, p),
        Op::InvoiceMarkUncollectible(id) => invoice_actions::mark_uncollectible(store, &ctx, id, p),
        Op::InvoiceList => lists::invoices(store, p, empty),
        Op::ItemCreate => invoice_actions::create_item(store, &ctx, p),
        Op::EventGet(id) => only(p, &["expand"], "").and_then(|_| events::retrieve(store, id, now)),
        Op::EventList => lists::events(store, p, now, empty),
    };
    let writes = std::mem::take(&mut store.writes);
    let outbox = std::mem::take(&mut store.outbox);
    let mut out = result?;
    if expand.iter().any(|e| e == "customer") {
        expand_customer(store, &mut out);
    }
    if api {
        inner
            .counters
            .writes
            .fetch_add(writes, std::sync::atomic::Ordering::Relaxed);
    }
    // still under the data lock, so deliveries keep the order of the writes
    inner.publish(outbox);
    drop(data);
    Ok(out)
}

fn respond(inner: &Inner, rc: &ReqCtx, op: Op) -> Response {
    let origin = Origin {
        request_id: Some(rc.request_id.clone()),
        idempotency_key: rc.idempotency_key.clone(),
    };
    match execute(inner, rc.mode, origin, &op, &rc.params, true) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

type S = State<Arc<Inner>>;
type X = Extension<ReqCtx>;

async fn customers_root(State(i): S, m: Method, Extension(rc): X) -> Response {
    let op = if m == Method::POST {
        Op::CustomerCreate
    } else {
        Op::CustomerList
    };
    respond(&i, &rc, op)
}

async fn customer(State(i): S, m: Method, Path(id): Path<String>, Extension(rc): X) -> Response {
    let op = match m {
        Method::POST => Op::CustomerUpdate(id),
        Method::DELETE => Op::CustomerDelete(id),
        _ => Op::CustomerGet(id),
    };
    respond(&i, &rc, op)
}

async fn invoices_root(State(i): S, m: Method, Extension(rc): X) -> Response {
    let op = if m == Method::POST {
        Op::InvoiceCreate
    } else {
        Op::InvoiceList
    };
    respond(&i, &rc, op)
}

async fn invoice(State(i): S, m: Method, Path(id): Path<String>, Extension(rc): X) -> Response {
    let op = match m {
        Method::POST => Op::InvoiceUpdate(id),
        Method::DELETE => Op::InvoiceDelete(id),
        _ => Op::InvoiceGet(id),
    };
    respond(&i, &rc, op)
}

async fn invoice_action(
    State(i): S,
    m: Method,
    uri: axum::http::Uri,
    Path((id, action)): Path<(String, String)>,
    Extension(rc): X,
) -> Response {
    let op = match action.as_str() {
        "finalize" => Op::InvoiceFinalize(id),
        "pay" => Op::InvoicePay(id),
        "void" => Op::InvoiceVoid(id),
        "mark_uncollectible" => Op::InvoiceMarkUncollectible(id),
        _ => return unrecognized(m, uri).await,
    };
    respond(&i, &rc, op)
}

async fn invoice_items(State(i): S, Extension(rc): X) -> Response {
    respond(&i, &rc, Op::ItemCreate)
}

async fn events_root(State(i): S, Extension(rc): X) -> Response {
    respond(&i, &rc, Op::EventList)
}

async fn event(State(i): S, Path(id): Path<String>, Extension(rc): X) -> Response {
    respond(&i, &rc, Op::EventGet(id))
}

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/v1/customers", get(customers_root).post(customers_root))
        .route(
            "/v1/customers/{id}",
            get(customer).post(customer).delete(customer),
        )
        .route("/v1/invoices", get(invoices_root).post(invoices_root))
        .route(
            "/v1/invoices/{id}",
            get(invoice).post(invoice).delete(invoice),
        )
        .route("/v1/invoices/{id}/{action}", post(invoice_action))
        .route("/v1/invoiceitems", post(invoice_items))
        .route("/v1/events", get(events_root))
        .route("/v1/events/{id}", get(event))
        .fallback(unrecognized)
        .method_not_allowed_fallback(unrecognized)
        .layer(middleware::from_fn_with_state(inner.clone(), gate))
        .with_state(inner)
}
