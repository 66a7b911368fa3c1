//! Stripe simulator: invoice operations — create (a draft, optionally pulling the customer's
//! pending items), retrieve, update and delete (drafts only), each emitting its `invoice.*`
//! event; the state changes and invoice items are in `invoice_actions`.

use serde_json::{json, Map, Value};

use super::customers;
use super::invoices::{Invoice, Item, Status, DEFAULT_CURRENCY};
use super::params::{self, apply_metadata, only, Params};
use super::store::{Ctx, Store};
use super::wire::{random_id, StripeError};

pub(crate) fn find<'a>(store: &'a mut Store, id: &str) -> Result<&'a mut Invoice, StripeError> {
    match store.invoices.get_mut(id) {
        Some(i) if !i.deleted => Ok(i),
        _ => Err(StripeError::no_such("invoice", id)),
    }
}

pub(crate) fn retrieve(store: &Store, id: &str) -> Result<Value, StripeError> {
    match store.invoices.get(id) {
        Some(i) if !i.deleted => Ok(i.render(store)),
        _ => Err(StripeError::no_such("invoice", id)),
    }
}

pub(crate) fn currency(p: &Params) -> Result<Option<String>, StripeError> {
    match params::string(p, "currency")? {
        None => Ok(None),
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
            Ok(Some(c.to_ascii_lowercase()))
        }
        Some(c) => Err(StripeError::invalid(
            "currency",
            format!("Invalid currency: {c}"),
        )),
    }
}

/// The collection settings after applying `p` to (method, days, due): send_invoice needs one
/// of them, charge_automatically neither.
fn collection(
    p: &Params,
    cur: (String, Option<i64>, Option<i64>),
) -> Result<(String, Option<i64>, Option<i64>), StripeError> {
    let method = params::one_of(
        p,
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?
    .unwrap_or(cur.0);
    let days = params::integer(p, "days_until_due")?.or(cur.1);
    let due = params::integer(p, "due_date")?.or(cur.2);
    if method == "send_invoice" && days.is_none() && due.is_none() {
        return Err(StripeError::invalid(
            "days_until_due",
            "Invoices with `collection_method=send_invoice` must have `days_until_due` or `due_date` set.".into(),
        ));
    }
    if method == "charge_automatically" && (days.is_some() || due.is_some()) {
        let param = if days.is_some() {
            "days_until_due"
        } else {
            "due_date"
        };
        return Err(StripeError::invalid(
            param,
            format!("You cannot set `{param}` on an invoice with `collection_method=charge_automatically`."),
        ));
    }
    Ok((method, days, due))
}

const CREATE: &[&str] = &[
    "customer",
    "auto_advance",
    "collection_method",
    "currency",
    "days_until_due",
    "description",
    "due_date",
    "metadata",
    "pending_invoice_items_behavior",
    "expand",
];

pub(crate) fn create(store: &mut Store, ctx: &Ctx, p: &Params) -> Result<Value, StripeError> {
    only(p, CREATE, "")?;
    let customer =
        params::string(p, "customer")?.ok_or_else(|| StripeError::missing_param("customer"))?;
    let cur = currency(p)?;
    let description =
        params::nullable(p, "description", 5000)?.and_then(|v| v.as_str().map(str::to_string));
    let auto_advance = params::boolean(p, "auto_advance")?.unwrap_or(false);
    let (method, days, due) = collection(p, ("charge_automatically".into(), None, None))?;
    let pull = params::one_of(p, "pending_invoice_items_behavior", &["exclude", "include"])?;
    let metadata = apply_metadata(p, &Map::new())?.unwrap_or_default();
    let c = customers::live(store, &customer)
        .map_err(|_| StripeError::no_such_param("customer", &customer, "customer"))?;
    let currency = cur
        .or_else(|| {
            c.fields
                .get("currency")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| DEFAULT_CURRENCY.into());
    let id = random_id("in_", 24);
    let mut lines = Vec::new();
    if pull.as_deref() == Some("include") {
        let mut pending: Vec<&mut Item> = store
            .items
            .values_mut()
            .filter(|i| i.invoice.is_none() && i.customer == customer && i.currency == currency)
            .collect();
        pending.sort_by_key(|i| i.seq);
        for item in pending {
            item.invoice = Some(id.clone());
            lines.push(item.id.clone());
        }
    }
    let inv = Invoice {
        id: id.clone(),
        seq: store.next_seq(),
        created: ctx.now,
        customer,
        status: Status::Draft,
        currency,
        description,
        metadata,
        collection_method: method,
        days_until_due: days,
        due_date: due,
        auto_advance,
        number: None,
        amount_paid: 0,
        paid_out_of_band: false,
        attempt_count: 0,
        finalized_at: None,
        paid_at: None,
        voided_at: None,
        marked_uncollectible_at: None,
        frozen_customer: None,
        deleted: false,
        lines,
    };
    let out = inv.render(store);
    store.invoices.insert(id, inv);
    store.emit(ctx, "invoice.created", out.clone(), None);
    store.writes += 1;
    Ok(out)
}

/// Applies `change` to a live invoice and emits `extra` (if any) then `invoice.updated`.
pub(crate) fn change(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    extra: Option<&str>,
    apply: impl FnOnce(&mut Invoice, &Ctx) -> Result<(), StripeError>,
) -> Result<Value, StripeError> {
    let before = retrieve(store, id)?;
    apply(find(store, id)?, ctx)?;
    let after = retrieve(store, id)?;
    if let Some(kind) = extra {
        store.emit(ctx, kind, after.clone(), None);
    }
    if store.emit_updated(ctx, "invoice.updated", &before, &after) {
        store.writes += 1;
    }
    Ok(after)
}

const UPDATE: &[&str] = &[
    "auto_advance",
    "collection_method",
    "days_until_due",
    "description",
    "due_date",
    "metadata",
    "expand",
];

pub(crate) fn update(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, UPDATE, "")?;
    let description = params::nullable(p, "description", 5000)?;
    let auto_advance = params::boolean(p, "auto_advance")?;
    let inv = find(store, id)?;
    let metadata = apply_metadata(p, &inv.metadata)?;
    let draft_only = [
        "auto_advance",
        "collection_method",
        "days_until_due",
        "due_date",
    ];
    if inv.status != Status::Draft {
        if let Some(k) = draft_only.iter().find(|k| p.contains_key(**k)) {
            return Err(StripeError::state(format!(
                "You can only update `{k}` on a draft invoice; this invoice is {}.",
                inv.status.as_str()
            ))
            .code("invoice_not_editable")
            .param(k));
        }
    }
    let settings = (
        inv.collection_method.clone(),
        inv.days_until_due,
        inv.due_date,
    );
    let (method, days, due) = if inv.status == Status::Draft {
        collection(p, settings)?
    } else {
        settings
    };
    change(store, ctx, id, None, |inv, _| {
        if let Some(d) = description {
            inv.description = d.as_str().map(str::to_string);
        }
        if let Some(m) = metadata {
            inv.metadata = m;
        }
        if let Some(a) = auto_advance {
            inv.auto_advance = a;
        }
        (inv.collection_method, inv.days_until_due, inv.due_date) = (method, days, due);
        Ok(())
    })
}

pub(crate) fn delete(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &[], "")?;
    let inv = find(store, id)?;
    if inv.status != Status::Draft {
        return Err(StripeError::state(format!(
            "You can only delete draft invoices. This invoice is {}; void it instead.",
            inv.status.as_str()
        )));
    }
    let snapshot = retrieve(store, id)?;
    let inv = find(store, id)?;
    inv.deleted = true;
    for item in std::mem::take(&mut inv.lines) {
        store.items.remove(&item);
    }
    store.emit(ctx, "invoice.deleted", snapshot, None);
    store.writes += 1;
    Ok(json!({"id": id, "object": "invoice", "deleted": true}))
}
