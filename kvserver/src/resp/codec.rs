//! [`RespCodec`]: requests in, replies out, as a tokio-util codec.
//!
//! A request is either a RESP array of bulk strings (what every client library sends)
//! or an inline command: one line of words, as typed into `telnet`, with Redis's
//! quoting rules ([`super::inline`]). Replies are encoded in the version the
//! connection speaks ([`Protocol`]).
//!
//! # Limits, checked before anything is buffered for them
//!
//! The `redis-protocol` crate (which writes the replies) can parse a request, but it
//! cannot refuse one: given the header of a 4 GB bulk string it answers "incomplete"
//! and waits for the bytes, and it parses from the start again at every read. So the
//! codec walks each array's headers itself, as they arrive, keeping its place
//! between reads; once the whole array is in and within bounds, its arguments are
//! slices of the buffer, without a second parse (the tests check that the crate's
//! parser reads every request the same way). It refuses, as Redis does, with a
//! protocol error after which the connection is closed:
//!
//! - an argument count above [`RequestLimits::max_args`] (or not a number):
//!   `invalid multibulk length`;
//! - a bulk string longer than [`RequestLimits::max_request_bytes`], or a negative or
//!   malformed length: `invalid bulk length`; a request whose bulk strings together
//!   pass that bound: `request larger than N bytes (--max-body-bytes)`;
//! - an element that is not a bulk string: `expected '$', got 'x'`;
//! - a header line or inline command longer than 64 KiB without its line end:
//!   `too big mbulk count string`, `too big bulk count string`, `too big inline
//!   request`; unbalanced quotes in an inline command.
//!
//! Until a connection has authenticated on a server with a token, requests are held
//! to 10 arguments of at most 16 KiB each, as Redis holds them: enough for `AUTH` and
//! `HELLO`, too little for a stranger to make the server buffer much.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{Protocol, Reply};
use super::inline;
use super::number::parse_i64;

/// The longest header line or inline command (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const MAX_LINE: usize = 64 * 1024;
/// Most arguments of a request before the connection has authenticated.
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// Longest argument of a request before the connection has authenticated.
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;

/// How large a request may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most arguments, the command name included (`--resp-max-args`).
    pub max_args: usize,
    /// Most bytes of bulk strings in one request, and so the longest one
    /// (`--max-body-bytes`).
    pub max_request_bytes: usize,
}

/// A request: the command name and its arguments.
pub type Args = Vec<Bytes>;

/// Why the codec gave up on a connection.
#[derive(Debug)]
pub enum CodecError {
    /// The client broke the protocol; the error reply to send before closing.
    Protocol(String),
    /// Reading or writing the socket failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for CodecError {
    fn from(e: std::io::Error) -> Self {
        CodecError::Io(e)
    }
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Protocol(text) => f.write_str(text),
            CodecError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CodecError {}

fn protocol_error(what: impl std::fmt::Display) -> CodecError {
    CodecError::Protocol(format!("ERR Protocol error: {what}"))
}

/// Where the walk through an array's headers stands.
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// Arguments the array announced.
    args: usize,
    /// Arguments whose header and data are in the buffer.
    seen: usize,
    /// Offset of the next argument's header.
    pos: usize,
    /// Bytes of bulk data announced so far.
    bytes: usize,
}

/// The codec of one connection.
#[derive(Debug)]
pub struct RespCodec {
    limits: RequestLimits,
    /// Whether the connection is held to the limits of a stranger.
    strict: bool,
    walk: Option<Walk>,
    protocol: Protocol,
}

impl RespCodec {
    /// A codec for a new connection; `strict` until it authenticates, when the
    /// server has a token.
    pub fn new(limits: RequestLimits, strict: bool) -> RespCodec {
        RespCodec {
            limits,
            strict,
            walk: None,
            protocol: Protocol::Resp2,
        }
    }

    /// The protocol replies are written in.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Switches the protocol of the replies that follow.
    pub fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Holds requests to a stranger's limits, or releases them.
    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    fn max_args(&self) -> usize {
        if self.strict {
            UNAUTHENTICATED_MAX_ARGS.min(self.limits.max_args)
        } else {
            self.limits.max_args
        }
    }

    fn max_bulk(&self) -> usize {
        if self.strict {
            UNAUTHENTICATED_MAX_BULK.min(self.limits.max_request_bytes)
        } else {
            self.limits.max_request_bytes
        }
    }

    /// Reads an array's header (`*N\r\n`); `Ok(None)` until its line is in.
    fn start_array(&mut self, src: &mut BytesMut) -> Result<Option<Walk>, CodecError> {
        let Some(end) = line_end(src, 0) else {
            if src.len() > MAX_LINE {
                return Err(protocol_error("too big mbulk count string"));
            }
            return Ok(None);
        };
        let count =
            parse_i64(&src[1..end]).ok_or_else(|| protocol_error("invalid multibulk length"))?;
        if count > i64::from(i32::MAX) {
            return Err(protocol_error("invalid multibulk length"));
        }
        let count = usize::try_from(count).unwrap_or(0);
        if count > self.max_args() {
            return Err(protocol_error("invalid multibulk length"));
        }
        Ok(Some(Walk {
            args: count,
            seen: 0,
            pos: end + 2,
            bytes: 0,
        }))
    }

    /// Walks the headers of the array being read; `Ok(true)` once all of it is in.
    fn walk(&mut self, src: &mut BytesMut, walk: &mut Walk) -> Result<bool, CodecError> {
        while walk.seen < walk.args {
            let Some(&kind) = src.get(walk.pos) else {
                return Ok(false);
            };
            if kind != b'$' {
                return Err(protocol_error(format_args!(
                    "expected '$', got '{}'",
                    char::from(kind)
                )));
            }
            let Some(end) = line_end(src, walk.pos) else {
                if src.len() - walk.pos > MAX_LINE {
                    return Err(protocol_error("too big bulk count string"));
                }
                return Ok(false);
            };
            let len = parse_i64(&src[walk.pos + 1..end])
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= self.max_bulk())
                .ok_or_else(|| protocol_error("invalid bulk length"))?;
            let bytes = walk.bytes + len;
            if bytes > self.limits.max_request_bytes {
                return Err(protocol_error(format_args!(
                    "request larger than {} bytes (--max-body-bytes)",
                    self.limits.max_request_bytes
                )));
            }
            let next = end + 2 + len + 2;
            if src.len() < next {
                // Room for the rest of this argument at once, rather than doubling
                // the buffer read by read.
                src.reserve(next - src.len());
                return Ok(false);
            }
            walk.pos = next;
            walk.bytes = bytes;
            walk.seen += 1;
        }
        Ok(true)
    }

    /// Takes the complete array of `len` bytes at the start of `src`, whose headers
    /// [`RespCodec::walk`] checked: each argument is a slice of the one buffer the
    /// request is cut into, not a copy.
    fn take_array(src: &mut BytesMut, walk: &Walk) -> Args {
        let frame = src.split_to(walk.pos).freeze();
        let mut args = Vec::with_capacity(walk.args);
        // Past the count line, then each `$len\r\n` header and its data.
        let mut at = line_end(&frame, 0).map_or(frame.len(), |end| end + 2);
        for _ in 0..walk.args {
            let Some(end) = line_end(&frame, at) else {
                break;
            };
            let len = parse_i64(&frame[at + 1..end])
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            let data = end + 2;
            if data + len > frame.len() {
                break;
            }
            args.push(frame.slice(data..data + len));
            at = data + len + 2;
        }
        args
    }
}

/// The offset of the `\r` of the first `\r\n` at or after `from`.
fn line_end(src: &[u8], from: usize) -> Option<usize> {
    let rest = src.get(from..)?;
    let mut at = 0;
    while let Some(i) = rest[at..].iter().position(|&b| b == b'\r') {
        let r = at + i;
        match rest.get(r + 1) {
            Some(b'\n') => return Some(from + r),
            Some(_) => at = r + 1,
            None => return None,
        }
    }
    None
}

impl Decoder for RespCodec {
    type Item = Args;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Args>, CodecError> {
        loop {
            let mut walk = match self.walk.take() {
                Some(walk) => walk,
                None => {
                    let Some(&first) = src.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        match inline::take(src, self.max_args())? {
                            Some(args) if args.is_empty() => continue,
                            taken => return Ok(taken),
                        }
                    }
                    match self.start_array(src)? {
                        Some(walk) => walk,
                        None => return Ok(None),
                    }
                }
            };
            if walk.args == 0 {
                // `*0` and negative counts are empty requests: skipped, unanswered.
                let _ = src.split_to(walk.pos);
                continue;
            }
            if !self.walk(src, &mut walk)? {
                self.walk = Some(walk);
                return Ok(None);
            }
            return Ok(Some(Self::take_array(src, &walk)));
        }
    }
}

impl Encoder<Reply> for RespCodec {
    type Error = CodecError;

    fn encode(&mut self, reply: Reply, dst: &mut BytesMut) -> Result<(), CodecError> {
        reply.encode(self.protocol, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
