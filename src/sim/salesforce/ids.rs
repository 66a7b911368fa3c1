//! Salesforce simulator: record ids — 15-character case-sensitive ids with the object's key
//! prefix, their 18-character case-insensitive form (a 3-character checksum suffix encoding
//! where the capitals are), and normalising whatever form a client sends.

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 3-character suffix of a 15-character id: one character per 5-character chunk, whose
/// bit `i` says whether the chunk's character `i` is a capital letter.
fn suffix(id15: &[u8]) -> String {
    id15.chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            char::from(SUFFIX_ALPHABET[bits & 31])
        })
        .collect()
}

/// The 18-character id of record number `n` of the object with key `prefix` (`003`...). The
/// counter is fixed-width base 62 in ASCII order, so ids sort in creation order.
pub(crate) fn make(prefix: &str, instance: &str, n: u64) -> String {
    let mut digits = [b'0'; 10];
    let mut rest = n;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id15 = String::with_capacity(18);
    id15.push_str(prefix);
    id15.push_str(instance);
    id15.push_str(std::str::from_utf8(&digits).unwrap_or("0000000000"));
    let tail = suffix(id15.as_bytes());
    id15.push_str(&tail);
    id15
}

/// The canonical 18-character form of a 15- or 18-character id, or None if `raw` is not an
/// id. The 18-character form is case-insensitive: its suffix restores the capitals.
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    if !b.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let id15: Vec<u8> = match b.len() {
        15 => b.to_vec(),
        18 => {
            let mut out = Vec::with_capacity(15);
            for (chunk, code) in b[..15].chunks(5).zip(&b[15..]) {
                let bits = SUFFIX_ALPHABET
                    .iter()
                    .position(|c| *c == code.to_ascii_uppercase())?;
                for (i, c) in chunk.iter().enumerate() {
                    out.push(if bits & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    });
                }
            }
            out
        }
        _ => return None,
    };
    let mut id = String::from_utf8(id15).ok()?;
    let tail = suffix(id.as_bytes());
    id.push_str(&tail);
    Some(id)
}

/// Whether `raw` has the shape of a 15- or 18-character id (letters and digits only).
pub(crate) fn looks_like_id(raw: &str) -> bool {
    matches!(raw.len(), 15 | 18) && raw.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_checksum() {
        // a well-known example pair of a 15- and an 18-character Account id
        assert_eq!(
            normalize("001A0000006Vm9r").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(
            normalize("001a0000006vm9riac").as_deref(),
            Some("001A0000006Vm9rIAC")
        );
        assert_eq!(normalize("001A0000006Vm9!"), None);
        assert_eq!(normalize("001A0000006Vm9rI@C"), None);
        assert_eq!(normalize("001"), None);
    }

    #[test]
    fn made_ids_are_canonical_and_ordered() {
        let a = make("003", "8d", 61);
        let b = make("003", "8d", 62);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("0038d"));
        assert!(a < b, "{a} < {b}");
        assert_eq!(normalize(&a).as_deref(), Some(a.as_str()));
        assert_eq!(normalize(&a[..15]).as_deref(), Some(a.as_str()));
        assert_eq!(normalize(&a.to_lowercase()).as_deref(), Some(a.as_str()));
        assert!(looks_like_id(&a) && !looks_like_id("Ext_Id__c"));
    }
}
