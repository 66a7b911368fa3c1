//! Salesforce simulator: running SOQL — resolving fields against the catalogue (400
//! `INVALID_FIELD` with Salesforce's located message), typing literals by field, filtering,
//! ordering, and the `/query` and `/queryAll` resources with `nextRecordsUrl` paging.

use std::cmp::Ordering;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::cursors::page_size;
use super::errors::ApiError;
use super::gate::Ctx;
use super::schema::{self, FieldDef, FieldType, ObjectDef};
use super::soql::{self, located, Expr, Lit, Name, Op, Select};
use super::store::{Rec, Store};
use super::values::Val;
use super::wire::{ok, parse_date, parse_datetime};
use super::{ids, Inner};
use crate::sim::core::lock;

enum Filter {
    All(Vec<Filter>),
    Any(Vec<Filter>),
    Not(Box<Filter>),
    Cmp(&'static FieldDef, Op, Val),
    In(&'static FieldDef, bool, Vec<Val>),
    Like(&'static FieldDef, Vec<char>),
}

struct Bound {
    def: &'static ObjectDef,
    /// None for `COUNT()`.
    fields: Option<Vec<&'static FieldDef>>,
    filter: Option<Filter>,
    order: Vec<(&'static FieldDef, bool, bool)>,
    limit: Option<usize>,
    offset: usize,
}

struct Binder<'a> {
    q: &'a str,
    def: &'static ObjectDef,
}

impl Binder<'_> {
    fn field(&self, n: &Name) -> Result<&'static FieldDef, ApiError> {
        self.def.field(&n.text).ok_or_else(|| {
            let msg = format!("No such column '{}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", n.text, self.def.name);
            ApiError::bad_request("INVALID_FIELD", located(self.q, n.pos, &msg))
        })
    }

    /// A literal read as a value of `f`'s type.
    fn value(&self, n: &Name, f: &FieldDef, lit: &Lit) -> Result<Val, ApiError> {
        let wrong = |ty: &str, quoted: bool| {
            let how = if quoted {
                "should be enclosed in quotes"
            } else {
                "should not be enclosed in quotes"
            };
            let msg = format!(
                "value of filter criterion for field '{}' must be of type {ty} and {how}",
                f.name
            );
            ApiError::bad_request("INVALID_FIELD", located(self.q, n.pos, &msg))
        };
        if *lit == Lit::Null {
            return Ok(Val::Null);
        }
        match (f.ty, lit) {
            (FieldType::Id | FieldType::Reference, Lit::Str(s)) => {
                ids::normalize(s).map(Val::Str).ok_or_else(|| {
                    let msg = format!("invalid ID field: {s}");
                    ApiError::bad_request(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        located(self.q, n.pos, &msg),
                    )
                })
            }
            (FieldType::Id | FieldType::Reference, _) => Err(wrong("id", true)),
            (t, Lit::Str(s)) if t.is_text() => Ok(Val::Str(s.clone())),
            (t, _) if t.is_text() => Err(wrong("string", true)),
            (FieldType::Currency, Lit::Num(x)) => Ok(Val::Num(*x)),
            (FieldType::Currency, _) => Err(wrong("double", false)),
            (FieldType::Boolean, Lit::Bool(b)) => Ok(Val::Bool(*b)),
            (FieldType::Boolean, _) => Err(wrong("boolean", false)),
            (FieldType::DateTime, Lit::Temporal(t)) if t.contains('T') => parse_datetime(t)
                .map(Val::DateTime)
                .ok_or_else(|| wrong("dateTime", false)),
            (FieldType::DateTime, _) => Err(wrong("dateTime", false)),
            (FieldType::Date, Lit::Temporal(t)) => parse_date(t)
                .map(Val::Date)
                .ok_or_else(|| wrong("date", false)),
            _ => Err(wrong("date", false)),
        }
    }

    fn filter(&self, e: &Expr) -> Result<Filter, ApiError> {
        Ok(match e {
            Expr::And(xs) => Filter::All(
                xs.iter()
                    .map(|x| self.filter(x))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(xs) => Filter::Any(
                xs.iter()
                    .map(|x| self.filter(x))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(x) => Filter::Not(Box::new(self.filter(x)?)),
            Expr::Cmp(n, op, lit) => {
                let f = self.field(n)?;
                Filter::Cmp(f, *op, self.value(n, f, lit)?)
            }
            Expr::In(n, negated, lits) => {
                let f = self.field(n)?;
                let vals = lits
                    .iter()
                    .map(|l| self.value(n, f, l))
                    .collect::<Result<_, _>>()?;
                Filter::In(f, *negated, vals)
            }
            Expr::Like(n, pattern) => {
                let f = self.field(n)?;
                if !f.ty.is_text() && f.ty != FieldType::Id {
                    let msg = format!("invalid operator on {} field: {}", f.ty.name(), f.name);
                    return Err(ApiError::bad_request(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        located(self.q, n.pos, &msg),
                    ));
                }
                Filter::Like(f, pattern.to_lowercase().chars().collect())
            }
        })
    }
}

fn bind(q: &str, s: &Select) -> Result<Bound, ApiError> {
    let Some(def) = schema::object(&s.object.text) else {
        let msg = format!("sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.", s.object.text);
        return Err(ApiError::bad_request(
            "INVALID_TYPE",
            located(q, s.object.pos, &msg),
        ));
    };
    let b = Binder { q, def };
    let fields = match &s.fields {
        None => None,
        Some(names) => {
            let mut out: Vec<&'static FieldDef> = Vec::with_capacity(names.len());
            for n in names {
                let f = b.field(n)?;
                if out.iter().any(|x| x.name == f.name) {
                    let msg = format!("duplicate field selected: {}", f.name);
                    return Err(ApiError::bad_request(
                        "MALFORMED_QUERY",
                        located(q, n.pos, &msg),
                    ));
                }
                out.push(f);
            }
            Some(out)
        }
    };
    let filter = s.filter.as_ref().map(|e| b.filter(e)).transpose()?;
    let order = s
        .order
        .iter()
        .map(|o| b.field(&o.field).map(|f| (f, o.desc, o.nulls_last)))
        .collect::<Result<_, _>>()?;
    Ok(Bound {
        def,
        fields,
        filter,
        order,
        limit: s.limit,
        offset: s.offset.unwrap_or(0),
    })
}

/// SQL `LIKE` with `%` and `_`, case-insensitive; `\%` and `\_` are literal.
fn like(text: &[char], pat: &[char]) -> bool {
    match pat.split_first() {
        None => text.is_empty(),
        Some(('%', rest)) => (0..=text.len()).any(|i| like(&text[i..], rest)),
        Some(('_', rest)) => !text.is_empty() && like(&text[1..], rest),
        Some(('\\', rest)) if !rest.is_empty() => {
            text.first() == rest.first() && like(&text[1..], &rest[1..])
        }
        Some((c, rest)) => text.first() == Some(c) && like(&text[1..], rest),
    }
}

fn eq(a: &Val, b: &Val) -> bool {
    a.compare(b) == Some(Ordering::Equal)
}

fn matches(f: &Filter, r: &Rec) -> bool {
    match f {
        Filter::All(xs) => xs.iter().all(|x| matches(x, r)),
        Filter::Any(xs) => xs.iter().any(|x| matches(x, r)),
        Filter::Not(x) => !matches(x, r),
        Filter::Cmp(f, op, v) => {
            let have = r.get(f.name);
            match (op, v.is_null(), have.is_null()) {
                (Op::Eq, true, h) => h,
                (Op::Ne, true, h) => !h,
                (Op::Eq, false, _) => eq(have, v),
                // SOQL's != keeps rows where the field is null
                (Op::Ne, false, _) => !eq(have, v),
                (_, true, _) | (_, _, true) => false,
                (op, false, false) => have.compare(v).is_some_and(|o| match op {
                    Op::Lt => o.is_lt(),
                    Op::Le => o.is_le(),
                    Op::Gt => o.is_gt(),
                    _ => o.is_ge(),
                }),
            }
        }
        Filter::In(f, negated, vals) => {
            let have = r.get(f.name);
            let hit = vals.iter().any(|v| {
                if v.is_null() {
                    have.is_null()
                } else {
                    eq(have, v)
                }
            });
            hit != *negated
        }
        Filter::Like(f, pat) => {
            let text: Vec<char> = match r.get(f.name) {
                Val::Str(s) => s.to_lowercase().chars().collect(),
                _ => return false,
            };
            like(&text, pat)
        }
    }
}

fn order_rows(rows: &mut [&Rec], order: &[(&'static FieldDef, bool, bool)]) {
    rows.sort_by(|a, b| {
        for (f, desc, nulls_last) in order {
            let (x, y) = (a.get(f.name), b.get(f.name));
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if *nulls_last {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (false, true) => {
                    if *nulls_last {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, false) => {
                    let o = x.compare(y).unwrap_or(Ordering::Equal);
                    if *desc {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// Runs `q` against `store`: the total and the rendered rows (none for `COUNT()`).
pub fn run(
    store: &Store,
    q: &str,
    all_rows: bool,
    version: &str,
) -> Result<(usize, Vec<Value>), ApiError> {
    let select = soql::parse(q)?;
    let b = bind(q, &select)?;
    let mut rows: Vec<&Rec> = store
        .rows(b.def)
        .filter(|r| all_rows || r.deleted_at.is_none())
        .filter(|r| b.filter.as_ref().is_none_or(|f| matches(f, r)))
        .collect();
    order_rows(&mut rows, &b.order);
    let rows: Vec<&Rec> = rows
        .into_iter()
        .skip(b.offset)
        .take(b.limit.unwrap_or(usize::MAX))
        .collect();
    Ok(match &b.fields {
        None => (rows.len(), Vec::new()),
        Some(fields) => (
            rows.len(),
            rows.iter()
                .map(|r| r.render(b.def, Some(fields), version))
                .collect(),
        ),
    })
}

/// `GET /query?q=` and `GET /queryAll?q=` (the latter with deleted rows).
pub fn query(inner: &Inner, ctx: &Ctx, all_rows: bool) -> Result<Response, ApiError> {
    let Some(q) = ctx.query.get("q").filter(|q| !q.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "MALFORMED_QUERY",
            "A query string has to be specified".into(),
        ));
    };
    if inner.faults.empty_listings() {
        return Ok(ok(json!({"totalSize": 0, "done": true, "records": []})));
    }
    let (total, rows) = run(&lock(&inner.store), q, all_rows, &ctx.version)?;
    let size = page_size(inner, ctx, None);
    Ok(inner
        .cursors
        .first_page(inner.now(), total, rows, size, &ctx.version))
}

/// `GET /query/{locator}-{offset}`: the next page of an earlier query.
pub fn more(inner: &Inner, ctx: &Ctx, locator: &str) -> Result<Response, ApiError> {
    inner.cursors.next_page(inner, ctx, locator).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        )
    })
}
