//! Stripe simulator: invoice state changes — finalize (number, `finalized_at`), pay, void and
//! mark uncollectible with their wrong-state errors and `invoice.*` events — and invoice items
//! (`POST /v1/invoiceitems`), pending or added to a draft.

use serde_json::{json, Map, Value};

use super::customers;
use super::invoice_ops::{change, currency, find};
use super::invoices::{Item, Status, DEFAULT_CURRENCY};
use super::params::{self, apply_metadata, only, Params};
use super::store::{Ctx, Store};
use super::wire::{random_id, StripeError};

fn wrong_state(action: &str, allowed: &str, status: Status) -> StripeError {
    StripeError::state(format!(
        "You can only {action} {allowed} invoices; this invoice is {}.",
        status.as_str()
    ))
}

pub(crate) fn finalize(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &["auto_advance", "expand"], "")?;
    let auto_advance = params::boolean(p, "auto_advance")?;
    let inv = find(store, id)?;
    if inv.status != Status::Draft {
        return Err(wrong_state("finalize", "draft", inv.status));
    }
    let customer = inv.customer.clone();
    let (number, frozen) = match store.customers.get_mut(&customer) {
        Some(c) => {
            let prefix = c
                .fields
                .get("invoice_prefix")
                .and_then(Value::as_str)
                .unwrap_or("INV")
                .to_string();
            let seq = c
                .fields
                .get("next_invoice_sequence")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            c.fields
                .insert("next_invoice_sequence".into(), json!(seq + 1));
            let f = |k: &str| c.fields.get(k).cloned().unwrap_or(Value::Null);
            (format!("{prefix}-{seq:04}"), (f("email"), f("name")))
        }
        None => (
            format!("INV-{:04}", store.invoices.len()),
            (Value::Null, Value::Null),
        ),
    };
    change(store, ctx, id, Some("invoice.finalized"), |inv, ctx| {
        inv.status = Status::Open;
        inv.number = Some(number);
        inv.finalized_at = Some(ctx.now);
        inv.frozen_customer = Some(frozen);
        if let Some(a) = auto_advance {
            inv.auto_advance = a;
        }
        if let (Some(days), None) = (inv.days_until_due, inv.due_date) {
            inv.due_date = Some(ctx.now + days * 86_400);
        }
        Ok(())
    })
}

pub(crate) fn pay(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &["paid_out_of_band", "expand"], "")?;
    let out_of_band = params::boolean(p, "paid_out_of_band")?.unwrap_or(false);
    match find(store, id)?.status {
        Status::Open | Status::Uncollectible => {}
        Status::Paid => return Err(StripeError::state("Invoice is already paid".into())),
        other => return Err(wrong_state("pay", "open or uncollectible", other)),
    }
    let total = store.invoices.get(id).map_or(0, |i| i.total(store));
    let after = change(store, ctx, id, Some("invoice.paid"), |inv, ctx| {
        inv.status = Status::Paid;
        inv.amount_paid = total;
        inv.paid_out_of_band = out_of_band;
        inv.attempt_count += i64::from(!out_of_band);
        inv.paid_at = Some(ctx.now);
        Ok(())
    })?;
    if !out_of_band {
        store.emit(ctx, "invoice.payment_succeeded", after.clone(), None);
    }
    Ok(after)
}

pub(crate) fn void(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &["expand"], "")?;
    let inv = find(store, id)?;
    if !matches!(inv.status, Status::Open | Status::Uncollectible) {
        return Err(wrong_state("void", "open or uncollectible", inv.status));
    }
    change(store, ctx, id, Some("invoice.voided"), |inv, ctx| {
        inv.status = Status::Void;
        inv.voided_at = Some(ctx.now);
        Ok(())
    })
}

pub(crate) fn mark_uncollectible(
    store: &mut Store,
    ctx: &Ctx,
    id: &str,
    p: &Params,
) -> Result<Value, StripeError> {
    only(p, &["expand"], "")?;
    let inv = find(store, id)?;
    if inv.status != Status::Open {
        return Err(wrong_state("mark as uncollectible", "open", inv.status));
    }
    change(
        store,
        ctx,
        id,
        Some("invoice.marked_uncollectible"),
        |inv, ctx| {
            inv.status = Status::Uncollectible;
            inv.marked_uncollectible_at = Some(ctx.now);
            Ok(())
        },
    )
}

const ITEM: &[&str] = &[
    "customer",
    "amount",
    "currency",
    "description",
    "invoice",
    "metadata",
    "expand",
];

/// `POST /v1/invoiceitems`: a pending item, or a line of the draft named by `invoice`.
pub(crate) fn create_item(store: &mut Store, ctx: &Ctx, p: &Params) -> Result<Value, StripeError> {
    only(p, ITEM, "")?;
    let customer =
        params::string(p, "customer")?.ok_or_else(|| StripeError::missing_param("customer"))?;
    let amount =
        params::integer(p, "amount")?.ok_or_else(|| StripeError::missing_param("amount"))?;
    let cur = currency(p)?;
    let description =
        params::nullable(p, "description", 5000)?.and_then(|v| v.as_str().map(str::to_string));
    let metadata = apply_metadata(p, &Map::new())?.unwrap_or_default();
    let invoice = params::string(p, "invoice")?;
    customers::live(store, &customer)
        .map_err(|_| StripeError::no_such_param("customer", &customer, "customer"))?;
    let mut currency = cur.clone().unwrap_or_else(|| DEFAULT_CURRENCY.into());
    if let Some(inv_id) = &invoice {
        let inv = find(store, inv_id)
            .map_err(|_| StripeError::no_such_param("invoice", inv_id, "invoice"))?;
        if inv.customer != customer {
            return Err(StripeError::state(
                "The invoice item and the invoice must belong to the same customer.".into(),
            )
            .param("invoice"));
        }
        if inv.status != Status::Draft {
            return Err(StripeError::state(format!(
                "You can only add items to draft invoices; this invoice is {}.",
                inv.status.as_str()
            ))
            .code("invoice_not_editable")
            .param("invoice"));
        }
        if cur.as_ref().is_some_and(|c| *c != inv.currency) {
            return Err(StripeError::state(format!(
                "The currency of the item must match the invoice's currency ({}).",
                inv.currency
            ))
            .param("currency"));
        }
        currency.clone_from(&inv.currency);
    }
    let id = random_id("ii_", 24);
    let item = Item {
        id: id.clone(),
        line_id: random_id("il_", 24),
        seq: store.next_seq(),
        created: ctx.now,
        customer,
        amount,
        currency,
        description,
        invoice: invoice.clone(),
        metadata,
    };
    let out = item.render(store.livemode());
    store.items.insert(id.clone(), item);
    store.emit(ctx, "invoiceitem.created", out.clone(), None);
    store.writes += 1;
    if let Some(inv_id) = invoice {
        change(store, ctx, &inv_id, None, |inv, _| {
            inv.lines.push(id);
            Ok(())
        })?;
    }
    Ok(out)
}
