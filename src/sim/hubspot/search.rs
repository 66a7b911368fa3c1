//! HubSpot simulator: the search endpoint (`POST /crm/v3/objects/{type}/search`) — filter
//! groups, one sort, free-text query, offset paging capped at 10,000 results.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::http::{self, bad_request, render, selection};
use super::routes::kind_or_400;
use super::schema::{parse_time_ms, ObjectKind, PropType};
use super::state::Rec;
use super::{lock, Counters, Inner};

const MAX_LIMIT: usize = 200;
const MAX_RESULTS: usize = 10_000;
const MAX_GROUPS: usize = 5;
const MAX_PER_GROUP: usize = 10;
const MAX_FILTERS: usize = 25;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    NotIn,
    Has,
    NotHas,
}

struct Filter {
    prop: &'static str,
    op: Op,
    /// Numeric form of `value`/`highValue` for range comparisons.
    low: f64,
    high: f64,
    /// Lower-cased string values for equality comparisons.
    values: Vec<String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether a property compares as a number (epoch ms for dates).
fn is_numeric(kind: ObjectKind, prop: &str) -> bool {
    kind.read_only().contains(&prop)
        || matches!(
            kind.writable_type(prop),
            Some((_, PropType::Number | PropType::Integer | PropType::Date))
        )
}

fn to_number(raw: &str) -> Option<f64> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .or_else(|| parse_time_ms(raw).map(|ms| ms as f64))
}

fn rec_number(kind: ObjectKind, rec: &Rec, prop: &str) -> Option<f64> {
    match rec.numeric(kind, prop) {
        Some(n) => Some(n as f64),
        None => rec.props.get(prop).and_then(|v| to_number(v)),
    }
}

fn parse_filter(kind: ObjectKind, f: &Value) -> Result<Filter, String> {
    let name = f
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or("each filter needs a propertyName")?;
    let prop = kind
        .canonical(name)
        .ok_or_else(|| format!("Property \"{name}\" does not exist on {}", kind.name()))?;
    let op_name = f.get("operator").and_then(Value::as_str).unwrap_or("EQ");
    let op = match op_name {
        "EQ" => Op::Eq,
        "NEQ" => Op::Neq,
        "LT" => Op::Lt,
        "LTE" => Op::Lte,
        "GT" => Op::Gt,
        "GTE" => Op::Gte,
        "BETWEEN" => Op::Between,
        "IN" => Op::In,
        "NOT_IN" => Op::NotIn,
        "HAS_PROPERTY" => Op::Has,
        "NOT_HAS_PROPERTY" => Op::NotHas,
        other => return Err(format!("Unsupported filter operator {other} (simulator supports EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY)")),
    };
    let numeric = is_numeric(kind, prop);
    let mut filter = Filter {
        prop,
        op,
        low: 0.0,
        high: 0.0,
        values: Vec::new(),
    };
    let need = |key: &str| {
        f.get(key)
            .and_then(scalar)
            .ok_or_else(|| format!("operator {op_name} on {name} needs a \"{key}\""))
    };
    let num = |raw: &str| {
        to_number(raw).ok_or_else(|| format!("\"{raw}\" is not a valid value for {name}"))
    };
    match op {
        Op::Has | Op::NotHas => {}
        Op::In | Op::NotIn => {
            let vals = f
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("operator {op_name} needs \"values\""))?;
            filter.values = vals
                .iter()
                .filter_map(scalar)
                .map(|s| s.to_lowercase())
                .collect();
        }
        Op::Eq | Op::Neq => {
            let v = need("value")?;
            if numeric {
                filter.low = num(&v)?;
            }
            filter.values = vec![v.to_lowercase()];
        }
        Op::Lt | Op::Lte | Op::Gt | Op::Gte | Op::Between => {
            if !numeric {
                return Err(format!("operator {op_name} is only supported on number and date properties, not {name}"));
            }
            filter.low = num(&need("value")?)?;
            if op == Op::Between {
                filter.high = num(&need("highValue")?)?;
            }
        }
    }
    Ok(filter)
}

fn matches(kind: ObjectKind, rec: &Rec, f: &Filter) -> bool {
    let numeric = is_numeric(kind, f.prop);
    match f.op {
        Op::Has => rec.value(kind, f.prop).is_some_and(|v| !v.is_empty()),
        Op::NotHas => rec.value(kind, f.prop).is_none_or(|v| v.is_empty()),
        Op::In | Op::NotIn => {
            let hit = rec
                .value(kind, f.prop)
                .is_some_and(|v| f.values.contains(&v.to_lowercase()));
            hit == (f.op == Op::In)
        }
        Op::Eq | Op::Neq => {
            let eq = if numeric {
                rec_number(kind, rec, f.prop) == Some(f.low)
            } else {
                rec.value(kind, f.prop)
                    .is_some_and(|v| f.values.first() == Some(&v.to_lowercase()))
            };
            eq == (f.op == Op::Eq)
        }
        op => match rec_number(kind, rec, f.prop) {
            None => false,
            Some(x) => match op {
                Op::Lt => x < f.low,
                Op::Lte => x <= f.low,
                Op::Gt => x > f.low,
                Op::Gte => x >= f.low,
                _ => x >= f.low && x <= f.high,
            },
        },
    }
}

fn text_fields(kind: ObjectKind) -> &'static [&'static str] {
    match kind {
        ObjectKind::Contacts => &["email", "firstname", "lastname", "phone", "company"],
        ObjectKind::Companies => &["name", "domain", "website", "phone"],
        ObjectKind::Deals => &["dealname"],
    }
}

fn usize_field(body: &Value, key: &str) -> Result<Option<usize>, Response> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match scalar(v).and_then(|s| s.trim().parse::<usize>().ok()) {
            Some(n) => Ok(Some(n)),
            None => Err(bad_request(&format!(
                "\"{key}\" must be a non-negative integer"
            ))),
        },
    }
}

pub(crate) async fn search(
    State(inner): State<Arc<Inner>>,
    Path(object): Path<String>,
    body: Bytes,
) -> Response {
    let kind = kind_or_400!(object);
    Counters::add(&inner.counters.read_requests, 1);
    let body = match http::parse_body(&body) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let limit = match usize_field(&body, "limit") {
        Ok(l) => l.unwrap_or(10),
        Err(resp) => return resp,
    };
    if limit > MAX_LIMIT {
        return bad_request(&format!("limit must be at most {MAX_LIMIT}"));
    }
    let offset = match usize_field(&body, "after") {
        Ok(a) => a.unwrap_or(0),
        Err(resp) => return resp,
    };
    if offset >= MAX_RESULTS {
        return bad_request(&format!("Search results are limited to {MAX_RESULTS}; narrow the query instead of paging past it"));
    }
    let mut groups = Vec::new();
    if let Some(g) = body.get("filterGroups").filter(|v| !v.is_null()) {
        let Some(g) = g.as_array() else {
            return bad_request("filterGroups must be an array");
        };
        let total: usize = g
            .iter()
            .map(|g| {
                g.get("filters")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum();
        if g.len() > MAX_GROUPS || total > MAX_FILTERS {
            return bad_request(&format!("Too many filters: at most {MAX_GROUPS} filterGroups and {MAX_FILTERS} filters in total"));
        }
        for group in g {
            let filters = group
                .get("filters")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if filters.len() > MAX_PER_GROUP {
                return bad_request(&format!(
                    "Too many filters: at most {MAX_PER_GROUP} per filterGroup"
                ));
            }
            match filters
                .iter()
                .map(|f| parse_filter(kind, f))
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(fs) => groups.push(fs),
                Err(msg) => return bad_request(&msg),
            }
        }
    }
    let sort = match body
        .get("sorts")
        .and_then(Value::as_array)
        .and_then(|s| s.first())
    {
        None => None,
        Some(s) => {
            let name = s.get("propertyName").and_then(Value::as_str).unwrap_or("");
            let Some(prop) = kind.canonical(name) else {
                return bad_request(&format!("Cannot sort on unknown property \"{name}\""));
            };
            match s
                .get("direction")
                .and_then(Value::as_str)
                .unwrap_or("ASCENDING")
            {
                "ASCENDING" => Some((prop, false)),
                "DESCENDING" => Some((prop, true)),
                d => {
                    return bad_request(&format!(
                        "Invalid sort direction {d} (ASCENDING or DESCENDING)"
                    ))
                }
            }
        }
    };
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .filter(|q| !q.is_empty());
    let requested: Option<Vec<&str>> = body
        .get("properties")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let sel = selection(kind, requested);

    let store = lock(&inner.store);
    let mut hits: Vec<&Rec> = store
        .table(kind)
        .recs
        .values()
        .filter(|r| r.live())
        .filter(|r| {
            groups.is_empty() || groups.iter().any(|g| g.iter().all(|f| matches(kind, r, f)))
        })
        .filter(|r| {
            query.as_ref().is_none_or(|q| {
                text_fields(kind).iter().any(|p| {
                    r.props
                        .get(*p)
                        .is_some_and(|v| v.to_lowercase().contains(q.as_str()))
                })
            })
        })
        .collect();
    if let Some((prop, desc)) = sort {
        let numeric = is_numeric(kind, prop);
        hits.sort_by(|a, b| {
            let o = if numeric {
                let (x, y) = (rec_number(kind, a, prop), rec_number(kind, b, prop));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            } else {
                a.value(kind, prop).cmp(&b.value(kind, prop))
            };
            let o = if desc { o.reverse() } else { o };
            o.then(a.id.cmp(&b.id))
        });
    }
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| render(kind, r, &sel, None))
        .collect();
    drop(store);
    let mut out = json!({"total": total, "results": results});
    let next = offset + limit;
    if limit > 0 && next < total {
        out["paging"] =
            json!({"next": {"after": next.to_string(), "link": format!("?after={next}")}});
    }
    http::json_response(StatusCode::OK, &out)
}
