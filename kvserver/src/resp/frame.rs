//! [`Reply`]: what a command answers, whatever the protocol version, and how a
//! connection writes it in RESP2 or RESP3 ([`Protocol`]).
//!
//! Commands build a `Reply`; the connection encodes it with the `redis-protocol`
//! crate's encoders for the version the client chose with `HELLO`. The two versions
//! differ only in the types RESP3 added: in RESP2 a map is a flat array of keys and
//! values, a set an array, a boolean the integer 1 or 0, a double its text as a bulk
//! string, and a null is the null bulk string `$-1`, as Redis writes them.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, FrameMap, VerbatimStringFormat};

/// The protocol version a connection speaks: RESP2 until `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, every connection's start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The version number (`2` or `3`), as `HELLO` reports it.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A simple string: `+OK`.
    Simple(Bytes),
    /// An error: its whole text, code first (`ERR syntax error`), without `-`.
    Error(String),
    /// An integer.
    Int(i64),
    /// A bulk string: any bytes.
    Bulk(Bytes),
    /// A bulk string of a stored value, written from the store's own buffer.
    Value(kvcore::Bytes),
    /// Nothing: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// An array.
    Array(Vec<Reply>),
    /// A map (RESP2: a flat array of keys and values).
    Map(Vec<(Reply, Reply)>),
    /// A set (RESP2: an array).
    Set(Vec<Reply>),
    /// A double (RESP2: its text as a bulk string).
    Double(f64),
    /// A boolean (RESP2: the integer 1 or 0).
    Bool(bool),
    /// Text meant for people, such as `INFO`'s (RESP2: a bulk string).
    Verbatim(Bytes),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(Bytes::from_static(b"OK"))
    }

    /// A simple string.
    pub fn simple(text: &'static str) -> Reply {
        Reply::Simple(Bytes::from_static(text.as_bytes()))
    }

    /// A simple string of owned text (one line).
    pub fn simple_owned(text: String) -> Reply {
        Reply::Simple(Bytes::from(text.replace(['\r', '\n'], " ")))
    }

    /// A bulk string of `text`.
    pub fn bulk(text: impl Into<Bytes>) -> Reply {
        Reply::Bulk(text.into())
    }

    /// A bulk string of a static text.
    pub fn bulk_static(text: &'static str) -> Reply {
        Reply::Bulk(Bytes::from_static(text.as_bytes()))
    }

    /// A bulk string, or `Null` for `None`.
    pub fn bulk_or_null(value: Option<Bytes>) -> Reply {
        value.map_or(Reply::Null, Reply::Bulk)
    }

    /// An error reply with the text `text` (`ERR ...`, `WRONGPASS ...`). Line breaks
    /// become spaces, since a RESP error is one line.
    pub fn error(text: impl Into<String>) -> Reply {
        let mut text = text.into();
        if text.contains(['\r', '\n']) {
            text = text.replace(['\r', '\n'], " ");
        }
        Reply::Error(text)
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the reply to `out` in `protocol`.
    pub fn encode(self, protocol: Protocol, out: &mut BytesMut) {
        // Fast paths for the replies of the busiest commands; the crate's encoders
        // write everything else (and these, in the tests, to check them against).
        match &self {
            Reply::Bulk(data) => return put_bulk(out, data),
            Reply::Value(data) => return put_bulk(out, data),
            Reply::Null if protocol == Protocol::Resp2 => return out.extend_from_slice(b"$-1\r\n"),
            Reply::Simple(text) if text.as_ref() == b"OK" => {
                return out.extend_from_slice(b"+OK\r\n");
            }
            Reply::Int(n) => return put_int(out, *n),
            _ => {}
        }
        self.encode_with_crate(protocol, out);
    }

    /// Appends the reply to `out` with the `redis-protocol` encoders only.
    pub fn encode_with_crate(self, protocol: Protocol, out: &mut BytesMut) {
        // The encoders fail only on frames they cannot write (streamed or `Hello`
        // frames), which are never built here.
        let written = match protocol {
            Protocol::Resp2 => {
                redis_protocol::resp2::encode::extend_encode(out, &self.into_resp2(), false)
                    .map(drop)
            }
            Protocol::Resp3 => redis_protocol::resp3::encode::complete::extend_encode(
                out,
                &self.into_resp3(),
                false,
            )
            .map(drop),
        };
        if let Err(e) = written {
            tracing::error!(%e, "a reply could not be encoded");
            out.extend_from_slice(b"-ERR internal error: a reply could not be encoded\r\n");
        }
    }

    fn into_resp2(self) -> Frame2 {
        match self {
            Reply::Simple(s) => Frame2::SimpleString(s),
            Reply::Error(e) => Frame2::Error(e.into()),
            Reply::Int(n) => Frame2::Integer(n),
            Reply::Bulk(b) | Reply::Verbatim(b) => Frame2::BulkString(b),
            Reply::Value(v) => Frame2::BulkString(Bytes::from_owner(v)),
            Reply::Null => Frame2::Null,
            Reply::Array(items) | Reply::Set(items) => {
                Frame2::Array(items.into_iter().map(Reply::into_resp2).collect())
            }
            Reply::Map(pairs) => Frame2::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [k.into_resp2(), v.into_resp2()])
                    .collect(),
            ),
            Reply::Double(d) => Frame2::BulkString(Bytes::from(format_double(d))),
            Reply::Bool(b) => Frame2::Integer(i64::from(b)),
        }
    }

    fn into_resp3(self) -> Frame3 {
        match self {
            Reply::Simple(data) => Frame3::SimpleString {
                data,
                attributes: None,
            },
            Reply::Error(e) => Frame3::SimpleError {
                data: e.into(),
                attributes: None,
            },
            Reply::Int(data) => Frame3::Number {
                data,
                attributes: None,
            },
            Reply::Bulk(data) => Frame3::BlobString {
                data,
                attributes: None,
            },
            Reply::Value(v) => Frame3::BlobString {
                data: Bytes::from_owner(v),
                attributes: None,
            },
            Reply::Null => Frame3::Null,
            Reply::Array(items) => Frame3::Array {
                data: items.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Set(items) => Frame3::Set {
                data: items.into_iter().map(Reply::into_resp3).collect(),
                attributes: None,
            },
            Reply::Map(pairs) => {
                let mut data = FrameMap::with_capacity(pairs.len());
                for (k, v) in pairs {
                    data.insert(k.into_resp3(), v.into_resp3());
                }
                Frame3::Map {
                    data,
                    attributes: None,
                }
            }
            Reply::Double(data) => Frame3::Double {
                data,
                attributes: None,
            },
            Reply::Bool(data) => Frame3::Boolean {
                data,
                attributes: None,
            },
            Reply::Verbatim(data) => Frame3::VerbatimString {
                data,
                format: VerbatimStringFormat::Text,
                attributes: None,
            },
        }
    }
}

/// `$<len>\r\n<data>\r\n`.
fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    let mut digits = itoa::Buffer::new();
    let len = digits.format(data.len());
    out.reserve(len.len() + data.len() + 5);
    out.extend_from_slice(b"$");
    out.extend_from_slice(len.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// `:<n>\r\n`.
fn put_int(out: &mut BytesMut, n: i64) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n);
    out.reserve(text.len() + 3);
    out.extend_from_slice(b":");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A double as Redis writes one in RESP2: `inf`, `-inf`, `nan`, else the shortest
/// decimal text that reads back as the same double.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        reply.encode(protocol, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn crate_wire(reply: Reply, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        reply.encode_with_crate(protocol, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn the_fast_paths_write_what_the_crate_writes() {
        let cases = [
            Reply::ok(),
            Reply::Int(0),
            Reply::Int(-42),
            Reply::Int(i64::MIN),
            Reply::bulk_static(""),
            Reply::bulk(Bytes::from_static(b"a\0\xff\r\nb")),
            Reply::Value(kvcore::Bytes::from(&b"v\0\xff"[..])),
            Reply::Null,
        ];
        for reply in cases {
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                assert_eq!(
                    wire(reply.clone(), protocol),
                    crate_wire(reply.clone(), protocol),
                    "{reply:?} in {protocol:?}"
                );
            }
        }
    }

    #[test]
    fn resp2_flattens_what_resp3_types() {
        let map = Reply::Map(vec![
            (Reply::bulk_static("proto"), Reply::Int(2)),
            (Reply::bulk_static("modules"), Reply::Array(vec![])),
        ]);
        assert_eq!(
            wire(map.clone(), Protocol::Resp2),
            "*4\r\n$5\r\nproto\r\n:2\r\n$7\r\nmodules\r\n*0\r\n"
        );
        assert_eq!(
            wire(map, Protocol::Resp3),
            "%2\r\n$5\r\nproto\r\n:2\r\n$7\r\nmodules\r\n*0\r\n"
        );
        assert_eq!(wire(Reply::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(wire(Reply::Null, Protocol::Resp3), "_\r\n");
        assert_eq!(wire(Reply::Bool(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(wire(Reply::Bool(false), Protocol::Resp3), "#f\r\n");
        assert_eq!(wire(Reply::Double(1.5), Protocol::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(wire(Reply::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        assert_eq!(
            wire(Reply::Set(vec![Reply::bulk_static("a")]), Protocol::Resp2),
            "*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            wire(Reply::Set(vec![Reply::bulk_static("a")]), Protocol::Resp3),
            "~1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            wire(Reply::Verbatim(Bytes::from_static(b"x:1")), Protocol::Resp3),
            "=7\r\ntxt:x:1\r\n"
        );
    }

    #[test]
    fn errors_are_one_line() {
        assert_eq!(
            wire(Reply::error("ERR a\r\nb"), Protocol::Resp2),
            "-ERR a  b\r\n"
        );
        assert_eq!(
            wire(Reply::error("WRONGPASS x"), Protocol::Resp3),
            "-WRONGPASS x\r\n"
        );
        assert!(Reply::error("ERR x").is_error());
    }

    #[test]
    fn doubles_read_back() {
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(format_double(0.1), "0.1");
        assert_eq!(format_double(3.0), "3");
    }
}
