//! Stripe simulator: the invoice and invoice-item model — statuses, money fields in minor
//! units computed from the invoice's items, `status_transitions`, `lines`, the deletion stub
//! and `expand[]=customer`.

use serde_json::{json, Map, Value};

use super::store::Store;

pub(crate) const DEFAULT_CURRENCY: &str = "usd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Draft,
    Open,
    Paid,
    Uncollectible,
    Void,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Open => "open",
            Status::Paid => "paid",
            Status::Uncollectible => "uncollectible",
            Status::Void => "void",
        }
    }

    pub(crate) const NAMES: [&'static str; 5] = ["draft", "open", "paid", "uncollectible", "void"];
}

#[derive(Clone, Debug)]
pub(crate) struct Invoice {
    pub id: String,
    pub seq: u64,
    pub created: i64,
    pub customer: String,
    pub status: Status,
    pub currency: String,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    /// `charge_automatically` or `send_invoice`.
    pub collection_method: String,
    pub days_until_due: Option<i64>,
    pub due_date: Option<i64>,
    pub auto_advance: bool,
    pub number: Option<String>,
    pub amount_paid: i64,
    pub paid_out_of_band: bool,
    pub attempt_count: i64,
    pub finalized_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub marked_uncollectible_at: Option<i64>,
    /// The customer's email and name, frozen at finalization.
    pub frozen_customer: Option<(Value, Value)>,
    pub deleted: bool,
    /// Invoice item ids, in the order added.
    pub lines: Vec<String>,
}

/// An invoice item: pending (no invoice yet) or a line of a draft.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub id: String,
    /// The id of its line on the invoice (`il_...`).
    pub line_id: String,
    pub seq: u64,
    pub created: i64,
    pub customer: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub invoice: Option<String>,
    pub metadata: Map<String, Value>,
}

impl Item {
    pub(crate) fn render(&self, livemode: bool) -> Value {
        json!({
            "id": self.id, "object": "invoiceitem", "amount": self.amount,
            "currency": self.currency, "customer": self.customer, "date": self.created,
            "description": self.description, "discountable": true, "invoice": self.invoice,
            "livemode": livemode, "metadata": self.metadata,
            "period": {"start": self.created, "end": self.created},
            "proration": false, "quantity": 1, "unit_amount": self.amount,
        })
    }

    fn line(&self, livemode: bool) -> Value {
        json!({
            "id": self.line_id, "object": "line_item", "amount": self.amount,
            "currency": self.currency, "description": self.description, "discountable": true,
            "invoice": self.invoice, "invoice_item": self.id, "livemode": livemode,
            "metadata": self.metadata,
            "period": {"start": self.created, "end": self.created},
            "proration": false, "quantity": 1, "type": "invoiceitem",
        })
    }
}

impl Invoice {
    /// The sum of its items.
    pub(crate) fn total(&self, store: &Store) -> i64 {
        self.lines
            .iter()
            .filter_map(|id| store.items.get(id))
            .map(|i| i.amount)
            .sum()
    }

    pub(crate) fn render(&self, store: &Store) -> Value {
        if self.deleted {
            return json!({"id": self.id, "object": "invoice", "deleted": true});
        }
        let livemode = store.livemode();
        let total = self.total(store);
        let remaining = match self.status {
            Status::Paid | Status::Void => 0,
            _ => total - self.amount_paid,
        };
        let (email, name) = self.frozen_customer.clone().unwrap_or_else(|| {
            store
                .customers
                .get(&self.customer)
                .map_or((Value::Null, Value::Null), |c| {
                    let f = |k: &str| c.fields.get(k).cloned().unwrap_or(Value::Null);
                    (f("email"), f("name"))
                })
        });
        let lines: Vec<Value> = self
            .lines
            .iter()
            .filter_map(|id| store.items.get(id))
            .map(|i| i.line(livemode))
            .collect();
        json!({
            "id": self.id, "object": "invoice",
            "amount_due": total, "amount_paid": self.amount_paid, "amount_remaining": remaining,
            "attempt_count": self.attempt_count, "attempted": self.attempt_count > 0,
            "auto_advance": self.auto_advance, "billing_reason": "manual",
            "collection_method": self.collection_method, "created": self.created,
            "currency": self.currency, "customer": self.customer,
            "customer_email": email, "customer_name": name,
            "days_until_due": self.days_until_due, "description": self.description,
            "due_date": self.due_date, "ending_balance": self.finalized_at.map(|_| 0),
            "hosted_invoice_url": null, "invoice_pdf": null,
            "lines": {
                "object": "list", "data": lines, "has_more": false,
                "total_count": self.lines.len(), "url": format!("/v1/invoices/{}/lines", self.id),
            },
            "livemode": livemode, "metadata": self.metadata, "number": self.number,
            "paid": self.status == Status::Paid, "paid_out_of_band": self.paid_out_of_band,
            "period_end": self.created, "period_start": self.created,
            "starting_balance": 0, "status": self.status.as_str(),
            "status_transitions": {
                "finalized_at": self.finalized_at,
                "marked_uncollectible_at": self.marked_uncollectible_at,
                "paid_at": self.paid_at,
                "voided_at": self.voided_at,
            },
            "subtotal": total, "total": total, "webhooks_delivered_at": null,
        })
    }
}

/// Replaces `rendered["customer"]` (an id) with the customer object (or its deletion stub).
pub(crate) fn expand_customer(store: &Store, rendered: &mut Value) {
    let id = rendered
        .get("customer")
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(c) = id.and_then(|id| store.customers.get(&id)) {
        rendered["customer"] = c.render(store.mode);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::stripe::wire::Mode;

    #[test]
    fn money_fields_follow_items_and_status() {
        let mut store = Store::new(Mode::Test);
        let item = |id: &str, amount| Item {
            id: id.into(),
            line_id: format!("il_{id}"),
            seq: 1,
            created: 5,
            customer: "cus_1".into(),
            amount,
            currency: "eur".into(),
            description: None,
            invoice: Some("in_1".into()),
            metadata: Map::new(),
        };
        store.items.insert("ii_a".into(), item("ii_a", 1500));
        store.items.insert("ii_b".into(), item("ii_b", 250));
        let mut inv = Invoice {
            id: "in_1".into(),
            seq: 3,
            created: 5,
            customer: "cus_1".into(),
            status: Status::Open,
            currency: "eur".into(),
            description: None,
            metadata: Map::new(),
            collection_method: "charge_automatically".into(),
            days_until_due: None,
            due_date: None,
            auto_advance: false,
            number: None,
            amount_paid: 0,
            paid_out_of_band: false,
            attempt_count: 0,
            finalized_at: Some(5),
            paid_at: None,
            voided_at: None,
            marked_uncollectible_at: None,
            frozen_customer: None,
            deleted: false,
            lines: vec!["ii_a".into(), "ii_b".into()],
        };
        let r = inv.render(&store);
        assert_eq!(
            (r["amount_due"].as_i64(), r["amount_remaining"].as_i64()),
            (Some(1750), Some(1750))
        );
        assert_eq!(r["lines"]["data"][1]["id"], "il_ii_b");
        assert_eq!(r["lines"]["total_count"], 2);
        inv.status = Status::Paid;
        inv.amount_paid = 1750;
        let r = inv.render(&store);
        assert_eq!(
            (r["amount_paid"].as_i64(), r["amount_remaining"].as_i64()),
            (Some(1750), Some(0))
        );
        assert_eq!(r["paid"], true);
        inv.deleted = true;
        assert_eq!(
            inv.render(&store),
            json!({"id": "in_1", "object": "invoice", "deleted": true})
        );
    }
}
