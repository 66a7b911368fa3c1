//! Connector edge: what every connector's HTTP wire shares — percent-encoding of one query or
//! form component.

/// Percent-encodes one query or form component (everything but RFC 3986 unreserved
/// characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_all_but_unreserved() {
        assert_eq!(super::encode("a b'c/é~-._"), "a%20b%27c%2F%C3%A9~-._");
    }
}
