//! Inbound path, before SQL: a remote value PostgreSQL can never store (a NUL character,
//! U+0000, refused by `text` and `jsonb` alike) or one over [`MAX_VALUE_BYTES`] is set aside
//! here, field by field, so it refuses only itself: the record's other fields still go to
//! `ferry.apply`, which records the set-aside value as the record's "faults" (one dead letter
//! per record and field). Values that reach SQL but do not cast to their column (an integer out
//! of range, a malformed date) are set aside the same way inside `ferry.apply`.

use serde_json::{json, Value};

use crate::hub::catalog::Field;

/// Largest remote value ferry stores in a column: 256 KiB of UTF-8. Far beyond what the apps'
/// own fields hold (HubSpot: 65,536 characters a property), small enough that one runaway
/// value cannot bloat a batch, a link's base and the WAL.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;

/// Characters of an offending value kept in its dead letter.
const PREVIEW_CHARS: usize = 120;

/// Why `value` cannot be stored in the field's column, if it cannot.
pub fn refusal(value: &str) -> Option<String> {
    if value.len() > MAX_VALUE_BYTES {
        Some(format!(
            "{} bytes, over ferry's limit of {MAX_VALUE_BYTES} bytes a value",
            value.len()
        ))
    } else if value.contains('\0') {
        Some(
            "holds a NUL character (U+0000), which PostgreSQL cannot store in text or jsonb".into(),
        )
    } else {
        None
    }
}

/// Why a record's id cannot be stored (then the record is refused whole, and said under
/// [`printable`]).
pub fn id_refusal(id: &str) -> Option<String> {
    id.contains('\0').then(|| {
        "the app's id for the record holds a NUL character (U+0000), which PostgreSQL cannot store: the record is skipped".into()
    })
}

/// A text as ferry can store and show it: NUL written `\u0000`.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\\u0000"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Why a typed remote value cannot be stored: a string as [`refusal`] says; an array or object
/// holding a NUL anywhere, or over [`MAX_VALUE_BYTES`] as JSON text.
pub fn value_refusal(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => refusal(s),
        Value::Array(_) | Value::Object(_) => {
            if holds_nul(value) {
                return refusal("\0");
            }
            let len = value.to_string().len();
            (len > MAX_VALUE_BYTES).then(|| {
                format!("{len} bytes, over ferry's limit of {MAX_VALUE_BYTES} bytes a value")
            })
        }
        _ => None,
    }
}

/// The fault ferry.apply records for `field`'s refused `value` (see sql/functions/apply.sql).
pub fn fault(field: &Field, value: &Value, reason: String) -> Value {
    let text = match value {
        Value::String(s) => preview(s),
        other => preview(&other.to_string()),
    };
    json!({
        "field": field.column,
        "type": field.ty,
        "value": text,
        "error": reason,
    })
}

/// The start of a value, printable: NUL shown as `\u0000` (as [`printable`]), cut after
/// [`PREVIEW_CHARS`].
pub fn preview(value: &str) -> String {
    let start: String = value.chars().take(PREVIEW_CHARS).collect();
    let mut out = printable(&start).into_owned();
    if value.chars().nth(PREVIEW_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Whether a JSON document holds a string (or key) with a NUL character: PostgreSQL refuses
/// such a document as jsonb.
pub fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(holds_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_nul_and_oversized_values_only() {
        assert_eq!(refusal("plain"), None);
        assert_eq!(refusal(""), None);
        assert!(refusal("a\0b").unwrap().contains("NUL"));
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(refusal(&big).unwrap().contains("limit"));
        assert_eq!(refusal(&"x".repeat(MAX_VALUE_BYTES)), None);
    }

    #[test]
    fn previews_are_short_and_printable() {
        assert_eq!(preview("a\0b"), "a\\u0000b");
        let p = preview(&"é".repeat(500));
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
    }

    #[test]
    fn finds_nul_anywhere_in_a_document() {
        assert!(!holds_nul(&json!({"a": ["b", {"c": 1}]})));
        assert!(holds_nul(&json!({"a": ["b", {"c": "x\u{0}"}]})));
        assert!(holds_nul(&json!({"a\u{0}": 1})));
    }
}
