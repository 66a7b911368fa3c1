//! Simulator core: query strings — decoding (repeated keys kept, `+` and `%XX` understood)
//! and encoding values for the links a simulator prints.

/// A decoded query string.
#[derive(Clone, Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// All comma-separated values of a possibly repeated key; None if the key is absent.
    pub fn list(&self, key: &str) -> Option<Vec<&str>> {
        let mut found = false;
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            if k == key {
                found = true;
                out.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()));
            }
        }
        found.then_some(out)
    }
}

/// Percent-decodes one query component (`+` is a space).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(x) => {
                        out.push(x);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes one query component (everything but RFC 3986 unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repeated_and_encoded_keys() {
        let q = Query::parse(Some(
            "page%5Bsize%5D=2&ids=1,2&ids=3&query=email%3Aa%40x.com&name=a+b&bad=%zz&end=%4",
        ));
        assert_eq!(q.get("page[size]"), Some("2"));
        assert_eq!(q.list("ids"), Some(vec!["1", "2", "3"]));
        assert_eq!(q.get("query"), Some("email:a@x.com"));
        assert_eq!(q.get("name"), Some("a b"));
        assert_eq!(q.get("bad"), Some("%zz"));
        assert_eq!(q.get("end"), Some("%4"));
        assert!(q.has("ids") && !q.has("nope"));
        assert_eq!(q.list("nope"), None);
    }

    #[test]
    fn encode_round_trips() {
        let raw = "MTU3Ng==|a b&c[d]";
        let enc = encode(raw);
        assert_eq!(enc, "MTU3Ng%3D%3D%7Ca%20b%26c%5Bd%5D");
        assert_eq!(decode(&enc), raw);
    }
}
