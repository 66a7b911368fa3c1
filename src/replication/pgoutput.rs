//! Outbound path, second hop: decoding pgoutput (protocol version 1) messages.

use bytes::{Buf, Bytes};

/// A column of a published relation.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Part of the replica identity (the key sent with UPDATE/DELETE).
    pub key: bool,
    pub type_oid: u32,
}

#[derive(Debug, Clone)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub table: String,
    pub columns: Vec<Column>,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Null,
    /// Unchanged TOASTed value, not sent.
    Unchanged,
    Text(Bytes),
}

pub type Tuple = Vec<Datum>;

#[derive(Debug)]
pub enum Message {
    Begin {
        final_lsn: u64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
    },
    Origin {
        name: String,
    },
    Relation(Relation),
    Insert {
        relation: u32,
        new: Tuple,
    },
    /// `old` is the key (`K`) or full old row (`O`) when sent.
    Update {
        relation: u32,
        old: Option<Tuple>,
        new: Tuple,
    },
    Delete {
        relation: u32,
        old: Tuple,
    },
    Truncate {
        relations: Vec<u32>,
    },
    Message {
        prefix: String,
        content: Bytes,
    },
    Type,
}

#[derive(Debug, thiserror::Error)]
#[error("pgoutput: {0}")]
pub struct DecodeError(String);

fn need(b: &Bytes, n: usize, what: &str) -> Result<(), DecodeError> {
    if b.remaining() < n {
        return Err(DecodeError(format!("truncated {what}")));
    }
    Ok(())
}

fn cstring(b: &mut Bytes) -> Result<String, DecodeError> {
    let end = b
        .iter()
        .position(|c| *c == 0)
        .ok_or_else(|| DecodeError("unterminated string".into()))?;
    let s = String::from_utf8_lossy(&b[..end]).to_string();
    b.advance(end + 1);
    Ok(s)
}

fn tuple(b: &mut Bytes) -> Result<Tuple, DecodeError> {
    need(b, 2, "tuple")?;
    let n = b.get_i16().max(0) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        need(b, 1, "column")?;
        match b.get_u8() {
            b'n' => out.push(Datum::Null),
            b'u' => out.push(Datum::Unchanged),
            b't' | b'b' => {
                need(b, 4, "column length")?;
                let len = b.get_i32().max(0) as usize;
                need(b, len, "column value")?;
                out.push(Datum::Text(b.split_to(len)));
            }
            other => return Err(DecodeError(format!("unknown column kind {other}"))),
        }
    }
    Ok(out)
}

/// Decodes one pgoutput message.
pub fn decode(mut b: Bytes) -> Result<Message, DecodeError> {
    need(&b, 1, "message")?;
    let tag = b.get_u8();
    Ok(match tag {
        b'B' => {
            need(&b, 20, "Begin")?;
            let final_lsn = b.get_u64();
            b.advance(8);
            Message::Begin {
                final_lsn,
                xid: b.get_u32(),
            }
        }
        b'C' => {
            need(&b, 25, "Commit")?;
            b.advance(1);
            let commit_lsn = b.get_u64();
            let end_lsn = b.get_u64();
            Message::Commit {
                commit_lsn,
                end_lsn,
            }
        }
        b'O' => {
            need(&b, 8, "Origin")?;
            b.advance(8);
            Message::Origin {
                name: cstring(&mut b)?,
            }
        }
        b'R' => {
            need(&b, 4, "Relation")?;
            let id = b.get_u32();
            let schema = cstring(&mut b)?;
            let table = cstring(&mut b)?;
            need(&b, 3, "Relation")?;
            b.advance(1); // replica identity setting
            let n = b.get_i16().max(0) as usize;
            let mut columns = Vec::with_capacity(n);
            for _ in 0..n {
                need(&b, 1, "column flags")?;
                let flags = b.get_u8();
                let name = cstring(&mut b)?;
                need(&b, 8, "column type")?;
                let type_oid = b.get_u32();
                b.advance(4);
                columns.push(Column {
                    name,
                    key: flags & 1 == 1,
                    type_oid,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                table,
                columns,
            })
        }
        b'Y' => Message::Type,
        b'I' => {
            need(&b, 5, "Insert")?;
            let relation = b.get_u32();
            b.advance(1); // 'N'
            Message::Insert {
                relation,
                new: tuple(&mut b)?,
            }
        }
        b'U' => {
            need(&b, 5, "Update")?;
            let relation = b.get_u32();
            let mut kind = b.get_u8();
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some(tuple(&mut b)?);
                need(&b, 1, "Update")?;
                kind = b.get_u8();
            }
            if kind != b'N' {
                return Err(DecodeError(format!("Update without new tuple ({kind})")));
            }
            Message::Update {
                relation,
                old,
                new: tuple(&mut b)?,
            }
        }
        b'D' => {
            need(&b, 5, "Delete")?;
            let relation = b.get_u32();
            b.advance(1); // 'K' or 'O'
            Message::Delete {
                relation,
                old: tuple(&mut b)?,
            }
        }
        b'T' => {
            need(&b, 5, "Truncate")?;
            let n = b.get_u32() as usize;
            b.advance(1);
            need(&b, 4 * n, "Truncate")?;
            Message::Truncate {
                relations: (0..n).map(|_| b.get_u32()).collect(),
            }
        }
        b'M' => {
            need(&b, 9, "Message")?;
            b.advance(9);
            let prefix = cstring(&mut b)?;
            need(&b, 4, "Message")?;
            let len = b.get_u32() as usize;
            need(&b, len, "Message")?;
            Message::Message {
                prefix,
                content: b.split_to(len),
            }
        }
        other => {
            return Err(DecodeError(format!(
                "unknown message tag {:?}",
                other as char
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn decodes_relation_and_insert() {
        let mut r = bytes::BytesMut::new();
        r.put_u8(b'R');
        r.put_u32(42);
        r.put_slice(b"hubspot\0contacts\0");
        r.put_u8(b'd');
        r.put_i16(2);
        r.put_u8(1);
        r.put_slice(b"id\0");
        r.put_u32(20);
        r.put_i32(-1);
        r.put_u8(0);
        r.put_slice(b"email\0");
        r.put_u32(25);
        r.put_i32(-1);
        let Message::Relation(rel) = decode(r.freeze()).unwrap() else {
            panic!("not a relation")
        };
        assert_eq!(
            (rel.schema.as_str(), rel.table.as_str(), rel.columns.len()),
            ("hubspot", "contacts", 2)
        );
        assert!(rel.columns[0].key && !rel.columns[1].key);

        let mut i = bytes::BytesMut::new();
        i.put_u8(b'I');
        i.put_u32(42);
        i.put_u8(b'N');
        i.put_i16(2);
        i.put_u8(b't');
        i.put_i32(2);
        i.put_slice(b"17");
        i.put_u8(b'n');
        let Message::Insert { relation, new } = decode(i.freeze()).unwrap() else {
            panic!("not an insert")
        };
        assert_eq!(relation, 42);
        assert_eq!(
            new,
            vec![Datum::Text(Bytes::from_static(b"17")), Datum::Null]
        );
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(decode(Bytes::from_static(b"I\0\0")).is_err());
    }
}
