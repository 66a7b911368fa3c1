//! Stripe simulator: list endpoints — `limit` (1–100, default 10), `starting_after` /
//! `ending_before` object-id cursors, newest-first order with a stable tiebreak, and the
//! filters of `GET /v1/customers`, `/v1/invoices` and `/v1/events` (30-day event window).

use serde_json::{json, Value};

use super::events::{retained, type_matcher};
use super::form::as_list;
use super::invoices::{expand_customer, Status};
use super::params::{self, only, Params, Range};
use super::store::Store;
use super::wire::StripeError;

/// Newest first: `created` then the creation sequence, both descending.
type Key = (i64, u64);

/// The paging a list request asks for.
struct Page {
    limit: usize,
    after: Option<String>,
    before: Option<String>,
}

fn page(p: &Params) -> Result<Page, StripeError> {
    let limit = match params::integer(p, "limit")? {
        None => 10,
        Some(n) if n < 1 => {
            return Err(StripeError::invalid(
                "limit",
                "This value must be greater than or equal to 1.".into(),
            ))
        }
        Some(n) if n > 100 => {
            return Err(StripeError::invalid(
                "limit",
                "This value must be less than or equal to 100.".into(),
            ))
        }
        Some(n) => n as usize,
    };
    let after = params::string(p, "starting_after")?.filter(|s| !s.is_empty());
    let before = params::string(p, "ending_before")?.filter(|s| !s.is_empty());
    if after.is_some() && before.is_some() {
        return Err(StripeError::invalid(
            "ending_before",
            "You may only specify one of these parameters: ending_before, starting_after.".into(),
        ));
    }
    Ok(Page {
        limit,
        after,
        before,
    })
}

impl Page {
    /// The cursor's position; an id `find` does not know is a 400 `resource_missing`.
    fn cursor(
        &self,
        what: &str,
        find: impl Fn(&str) -> Option<Key>,
    ) -> Result<Option<Key>, StripeError> {
        let (param, id) = match (&self.after, &self.before) {
            (Some(id), _) => ("starting_after", id),
            (_, Some(id)) => ("ending_before", id),
            _ => return Ok(None),
        };
        find(id)
            .map(Some)
            .ok_or_else(|| StripeError::no_such_param(what, id, param))
    }

    /// One page of `items` (already filtered) as a list object.
    fn render(&self, mut items: Vec<(Key, Value)>, cursor: Option<Key>, url: &str) -> Value {
        items.sort_by_key(|(k, _)| std::cmp::Reverse(*k));
        let (data, has_more) = match cursor {
            Some(k) if self.before.is_some() => {
                // the `limit` items just newer than the cursor, still newest first
                let newer: Vec<(Key, Value)> =
                    items.into_iter().filter(|(key, _)| *key > k).collect();
                let skip = newer.len().saturating_sub(self.limit);
                (
                    newer
                        .into_iter()
                        .skip(skip)
                        .map(|(_, v)| v)
                        .collect::<Vec<_>>(),
                    skip > 0,
                )
            }
            Some(k) => {
                let older: Vec<Value> = items
                    .into_iter()
                    .filter(|(key, _)| *key < k)
                    .map(|(_, v)| v)
                    .collect();
                let more = older.len() > self.limit;
                (older.into_iter().take(self.limit).collect(), more)
            }
            None => {
                let more = items.len() > self.limit;
                (
                    items.into_iter().take(self.limit).map(|(_, v)| v).collect(),
                    more,
                )
            }
        };
        json!({"object": "list", "data": data, "has_more": has_more, "url": url})
    }
}

const PAGING: [&str; 4] = ["limit", "starting_after", "ending_before", "expand"];

fn allowed(extra: &[&'static str]) -> Vec<&'static str> {
    PAGING.iter().chain(extra).copied().collect()
}

pub(crate) fn customers(store: &Store, p: &Params, empty: bool) -> Result<Value, StripeError> {
    only(p, &allowed(&["email", "created"]), "")?;
    params::expand(p, &[])?;
    let page = page(p)?;
    let email = params::string(p, "email")?;
    let created = Range::parse(p, "created")?;
    let cursor = page.cursor("customer", |id| {
        store.customers.get(id).map(|c| (c.created, c.seq))
    })?;
    let items = store
        .customers
        .values()
        .filter(|c| !c.deleted && !empty && created.contains(c.created))
        .filter(|c| {
            email
                .as_ref()
                .is_none_or(|e| c.fields.get("email") == Some(&json!(e)))
        })
        .map(|c| ((c.created, c.seq), c.render(store.mode)))
        .collect();
    Ok(page.render(items, cursor, "/v1/customers"))
}

pub(crate) fn invoices(store: &Store, p: &Params, empty: bool) -> Result<Value, StripeError> {
    only(
        p,
        &allowed(&["customer", "status", "created", "collection_method"]),
        "",
    )?;
    let expand = params::expand(p, &["data.customer"])?;
    let page = page(p)?;
    let customer = params::string(p, "customer")?;
    let status = params::one_of(p, "status", &Status::NAMES)?;
    let method = params::one_of(
        p,
        "collection_method",
        &["charge_automatically", "send_invoice"],
    )?;
    let created = Range::parse(p, "created")?;
    let cursor = page.cursor("invoice", |id| {
        store
            .invoices
            .get(id)
            .filter(|i| !i.deleted)
            .map(|i| (i.created, i.seq))
    })?;
    let items = store
        .invoices
        .values()
        .filter(|i| !i.deleted && !empty && created.contains(i.created))
        .filter(|i| customer.as_ref().is_none_or(|c| *c == i.customer))
        .filter(|i| status.as_ref().is_none_or(|s| s == i.status.as_str()))
        .filter(|i| method.as_ref().is_none_or(|m| *m == i.collection_method))
        .map(|i| {
            let mut v = i.render(store);
            if !expand.is_empty() {
                expand_customer(store, &mut v);
            }
            ((i.created, i.seq), v)
        })
        .collect();
    Ok(page.render(items, cursor, "/v1/invoices"))
}

pub(crate) fn events(
    store: &Store,
    p: &Params,
    now: i64,
    empty: bool,
) -> Result<Value, StripeError> {
    only(
        p,
        &allowed(&["type", "types", "created", "delivery_success"]),
        "",
    )?;
    params::expand(p, &[])?;
    let page = page(p)?;
    let created = Range::parse(p, "created")?;
    let ty = params::string(p, "type")?;
    let types = match p.get("types") {
        None => None,
        Some(v) => {
            let list = as_list(v).ok_or_else(|| {
                StripeError::invalid("types", "Invalid array: types must be an array".into())
            })?;
            if list.len() > 20 {
                return Err(StripeError::invalid(
                    "types",
                    format!(
                        "You may pass at most 20 event types, but you passed {}.",
                        list.len()
                    ),
                ));
            }
            Some(list.iter().filter_map(params::text).collect::<Vec<_>>())
        }
    };
    if ty.is_some() && types.is_some() {
        return Err(StripeError::invalid(
            "types",
            "You may only specify one of these parameters: type, types.".into(),
        ));
    }
    let delivered = params::boolean(p, "delivery_success")?;
    let matches = type_matcher(ty, types);
    let cursor = page.cursor("event", |id| {
        store
            .event(id)
            .filter(|e| retained(e.created, now))
            .map(|e| (e.created, e.seq))
    })?;
    let items = store
        .events
        .iter()
        .filter(|e| !empty && retained(e.created, now) && created.contains(e.created))
        .filter(|e| matches(&e.kind))
        // every delivery the simulator attempts counts as a success
        .filter(|_| delivered != Some(false))
        .map(|e| ((e.created, e.seq), e.body.clone()))
        .collect();
    Ok(page.render(items, cursor, "/v1/events"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn items(n: u64) -> Vec<(Key, Value)> {
        // two per second, so the sequence breaks ties
        (1..=n).map(|i| (((i / 2) as i64, i), json!(i))).collect()
    }

    fn page_of(limit: usize, after: Option<&str>, before: Option<&str>) -> Page {
        Page {
            limit,
            after: after.map(str::to_string),
            before: before.map(str::to_string),
        }
    }

    #[test]
    fn pages_newest_first_both_ways() {
        let p = page_of(3, None, None);
        assert_eq!(
            p.render(items(7), None, "/u"),
            json!({"object": "list", "data": [7, 6, 5], "has_more": true, "url": "/u"})
        );
        let p = page_of(3, Some("x"), None);
        assert_eq!(
            p.render(items(7), Some((2, 5)), "/u")["data"],
            json!([4, 3, 2])
        );
        assert_eq!(
            p.render(items(7), Some((1, 2)), "/u"),
            json!({"object": "list", "data": [1], "has_more": false, "url": "/u"})
        );
        let p = page_of(2, None, Some("x"));
        let r = p.render(items(7), Some((1, 3)), "/u");
        assert_eq!(
            (r["data"].clone(), r["has_more"].clone()),
            (json!([5, 4]), json!(true))
        );
        let r = p.render(items(7), Some((2, 5)), "/u");
        assert_eq!(
            (r["data"].clone(), r["has_more"].clone()),
            (json!([7, 6]), json!(false))
        );
    }

    #[test]
    fn limit_and_cursor_errors() {
        let m = |v: Value| v.as_object().cloned().unwrap_or_else(Map::new);
        for (v, msg) in [
            (
                json!({"limit": "0"}),
                "This value must be greater than or equal to 1.",
            ),
            (
                json!({"limit": "101"}),
                "This value must be less than or equal to 100.",
            ),
            (
                json!({"starting_after": "a", "ending_before": "b"}),
                "You may only specify one of these parameters: ending_before, starting_after.",
            ),
        ] {
            assert_eq!(page(&m(v)).err().map(|e| e.message), Some(msg.to_string()));
        }
        let p = page(&m(json!({"ending_before": "cus_x"}))).expect("page");
        let e = p.cursor("customer", |_| None).expect_err("unknown");
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref(), e.code),
            (400, Some("ending_before"), Some("resource_missing"))
        );
        assert_eq!(e.message, "No such customer: 'cus_x'");
    }
}
