//! Reading arguments, and the error replies commands share, in Redis's words.

use std::fmt::Write;

use bytes::Bytes;

use super::Ctx;
use crate::error::{ApiError, ErrorCode};
use crate::resp::frame::Reply;
use crate::resp::number::parse_i64;

/// An error reply: its text, code first (`ERR syntax error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    /// An error with this text.
    pub fn new(text: impl Into<String>) -> Error {
        Error(text.into())
    }

    /// `ERR syntax error`.
    pub fn syntax() -> Error {
        Error::new("ERR syntax error")
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> Error {
        Error::new("ERR value is not an integer or out of range")
    }

    /// `ERR value is not a valid float`.
    pub fn not_float() -> Error {
        Error::new("ERR value is not a valid float")
    }

    /// `ERR increment or decrement would overflow`.
    pub fn overflow() -> Error {
        Error::new("ERR increment or decrement would overflow")
    }

    /// `ERR wrong number of arguments for 'get' command`.
    pub fn wrong_args(name: &str) -> Error {
        Error(format!(
            "ERR wrong number of arguments for '{name}' command"
        ))
    }

    /// `ERR unknown command 'FOO', with args beginning with: 'a' 'b' `, as Redis
    /// builds it: each part cut at a NUL byte and at 128 bytes, the arguments
    /// quoted while they take fewer than 128 bytes.
    pub fn unknown_command(args: &[Bytes]) -> Error {
        let name = args.first().map_or(&b""[..], |a| &a[..]);
        let mut quoted = String::new();
        for arg in args.iter().skip(1) {
            if quoted.len() >= 128 {
                break;
            }
            let room = 128 - quoted.len();
            let _ = write!(quoted, "'{}' ", c_text(arg, room));
        }
        Error(format!(
            "ERR unknown command '{}', with args beginning with: {quoted}",
            c_text(name, 128)
        ))
    }

    /// `ERR unknown subcommand 'x'. Try CLIENT HELP.`
    pub fn unknown_subcommand(command: &[u8], sub: &[u8]) -> Error {
        Error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            c_text(sub, 128),
            c_text(command, usize::MAX).to_ascii_uppercase()
        ))
    }

    /// `NOAUTH Authentication required.`
    pub fn noauth() -> Error {
        Error::new("NOAUTH Authentication required.")
    }

    /// Redis's answer to a write on a read-only replica.
    pub fn read_only() -> Error {
        Error::new("READONLY You can't write against a read only replica.")
    }

    /// `WRONGTYPE`, for commands of other types on string keys.
    pub fn wrong_type() -> Error {
        Error::new("WRONGTYPE Operation against a key holding the wrong kind of value")
    }

    /// The value would pass `--max-value-bytes`.
    pub fn too_large() -> Error {
        Error::new("ERR string exceeds maximum allowed size (--max-value-bytes)")
    }
}

/// Up to `max` bytes of `bytes` before any NUL, as text (invalid UTF-8 replaced),
/// which is how Redis prints an argument into a message.
fn c_text(bytes: &[u8], max: usize) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end.min(max)]).into_owned()
}

impl From<Error> for Reply {
    fn from(e: Error) -> Reply {
        Reply::error(e.0)
    }
}

/// The backend's errors, in Redis's terms where Redis has one.
impl From<ApiError> for Error {
    fn from(e: ApiError) -> Error {
        match e.code() {
            ErrorCode::ReadOnly => Error::read_only(),
            ErrorCode::NotAnInteger => Error::not_integer(),
            ErrorCode::PayloadTooLarge => Error(format!("ERR {}", e.message())),
            ErrorCode::InsufficientStorage => Error(format!("MISCONF {}", e.message())),
            ErrorCode::Unavailable | ErrorCode::OutcomeUnknown => {
                Error(format!("TRYAGAIN {}", e.message()))
            }
            // Over a Redis Cluster, with Redis's own code and first words; the HTTP
            // message's alternative (PUT /keys) is MSET here.
            ErrorCode::CrossSlot => Error::new(
                "CROSSSLOT Keys in request don't hash to the same slot of the Redis Cluster \
                 behind this server, where MSETNX is all-or-nothing only within one slot; \
                 nothing was written. Give the keys a common hash tag ({user:1}:name and \
                 {user:1}:cart share one), or use MSET, which is not all-or-nothing",
            ),
            ErrorCode::Internal => {
                // The client gets a plain error; the log gets the detail.
                tracing::error!(detail = e.detail().unwrap_or(""), "internal error");
                Error::new("ERR internal error; the server log has the detail")
            }
            _ => Error(format!("ERR {}", e.message())),
        }
    }
}

/// An argument as the value to store: the same bytes.
pub fn stored(arg: &[u8]) -> kvcore::Bytes {
    kvcore::Bytes::from(arg)
}

/// A stored value as a bulk reply, without copying it.
pub fn bulk(value: kvcore::Bytes) -> Reply {
    Reply::Value(value)
}

/// An integer argument, or `ERR value is not an integer or out of range`.
pub fn int(arg: &[u8]) -> Result<i64, Error> {
    parse_i64(arg).ok_or_else(Error::not_integer)
}

/// Whether `arg` is `word`, in any case.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

impl Ctx<'_> {
    /// A key argument: UTF-8 text, not empty, at most `--max-key-bytes` long.
    pub fn key<'k>(&self, arg: &'k [u8]) -> Result<&'k str, Error> {
        let key =
            std::str::from_utf8(arg).map_err(|_| Error::new("ERR keys must be UTF-8 text here"))?;
        if key.is_empty() {
            return Err(Error::new("ERR keys must not be empty here"));
        }
        let max = self.state.limits().max_key_bytes;
        if key.len() > max {
            return Err(Error(format!(
                "ERR key is longer than {max} bytes (--max-key-bytes)"
            )));
        }
        Ok(key)
    }

    /// Refuses a value larger than `--max-value-bytes`.
    pub fn check_value_len(&self, len: usize) -> Result<(), Error> {
        if len > self.state.limits().max_value_bytes {
            return Err(Error::too_large());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&[u8]]) -> Vec<Bytes> {
        list.iter().map(|w| Bytes::copy_from_slice(w)).collect()
    }

    #[test]
    fn unknown_commands_are_quoted_as_redis_quotes_them() {
        let e = Error::unknown_command(&words(&[b"nope", b"a\0b", b"c\r\nd"]));
        assert_eq!(
            e.0,
            "ERR unknown command 'nope', with args beginning with: 'a' 'c\r\nd' "
        );
        // The reply makes the line breaks spaces.
        assert_eq!(
            Reply::from(e),
            Reply::Error(
                "ERR unknown command 'nope', with args beginning with: 'a' 'c  d' ".into()
            )
        );
        let long = vec![b'x'; 200];
        let e = Error::unknown_command(&words(&[&long, &long, b"more"]));
        let expected = format!(
            "ERR unknown command '{}', with args beginning with: '{}' ",
            "x".repeat(128),
            "x".repeat(128)
        );
        assert_eq!(e.0, expected);
        let e = Error::unknown_command(&words(&[b"f", b"aaaa", &[b'b'; 130]]));
        assert_eq!(
            e.0,
            format!(
                "ERR unknown command 'f', with args beginning with: 'aaaa' '{}' ",
                "b".repeat(121)
            )
        );
    }

    #[test]
    fn backend_errors_map_to_redis_codes() {
        assert_eq!(Error::from(ApiError::read_only()), Error::read_only());
        assert!(
            Error::from(ApiError::insufficient_storage("full"))
                .0
                .starts_with("MISCONF ")
        );
        assert!(
            Error::from(ApiError::unavailable("down", 1))
                .0
                .starts_with("TRYAGAIN ")
        );
        assert_eq!(
            Error::from(ApiError::internal("secret detail")).0,
            "ERR internal error; the server log has the detail"
        );
    }
}
