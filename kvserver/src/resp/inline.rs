//! Inline commands: a request as one line of words, `SET greeting "hello world"\r\n`,
//! the way people type into `telnet` or `nc`.
//!
//! The line ends at `\n` (a `\r` before it is dropped). Words are split as Redis
//! splits them (its `sdssplitargs`): runs of whitespace separate words; a word in
//! double quotes may hold spaces and the escapes `\n`, `\r`, `\t`, `\b`, `\a`, `\\`,
//! `\"` and `\xHH`; in single quotes only `\'` is an escape. A closing quote must be
//! followed by whitespace or the end of the line, else the quotes are unbalanced. An
//! empty line is skipped.

use bytes::{Bytes, BytesMut};

use super::codec::{Args, CodecError, MAX_LINE};

/// Takes one inline command off the front of `src`: `Ok(None)` until its line is in,
/// `Ok(Some(vec![]))` for an empty line (to skip).
pub fn take(src: &mut BytesMut, max_args: usize) -> Result<Option<Args>, CodecError> {
    let Some(newline) = src.iter().position(|&b| b == b'\n') else {
        if src.len() > MAX_LINE {
            return Err(CodecError::Protocol(
                "ERR Protocol error: too big inline request".into(),
            ));
        }
        return Ok(None);
    };
    if newline > MAX_LINE {
        return Err(CodecError::Protocol(
            "ERR Protocol error: too big inline request".into(),
        ));
    }
    let line = src.split_to(newline + 1);
    let text = line.strip_suffix(b"\n").unwrap_or(&line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let args = split(text).ok_or_else(|| {
        CodecError::Protocol("ERR Protocol error: unbalanced quotes in request".into())
    })?;
    if args.len() > max_args {
        return Err(CodecError::Protocol(
            "ERR Protocol error: invalid multibulk length".into(),
        ));
    }
    Ok(Some(args.into_iter().map(Bytes::from).collect()))
}

/// Splits a line into words as Redis does; `None` when quotes are unbalanced.
pub fn split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis reads the line as C text, which ends at a NUL byte.
    let line = line.split(|&b| b == 0).next().unwrap_or_default();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while line.get(i).is_some_and(|&b| is_space(b)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(words);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        loop {
            let c = line.get(i).copied();
            let mut done = false;
            match (quote, c) {
                (Some(_), None) => return None,
                (Some(b'"'), Some(b'\\')) => match line.get(i + 1).copied() {
                    Some(b'x')
                        if line.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                            && line.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
                    {
                        word.push(hex(line[i + 2]) << 4 | hex(line[i + 3]));
                        i += 3;
                    }
                    Some(escaped) => {
                        word.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 1;
                    }
                    None => word.push(b'\\'),
                },
                (Some(b'\''), Some(b'\\')) if line.get(i + 1) == Some(&b'\'') => {
                    word.push(b'\'');
                    i += 1;
                }
                (Some(q), Some(c)) if c == q => {
                    // A closing quote must end the word.
                    if line.get(i + 1).is_some_and(|&b| !is_space(b)) {
                        return None;
                    }
                    done = true;
                }
                (Some(_), Some(c)) => word.push(c),
                (None, None | Some(b' ' | b'\n' | b'\r' | b'\t')) => done = true,
                (None, Some(q @ (b'"' | b'\''))) => quote = Some(q),
                (None, Some(c)) => word.push(c),
            }
            if c.is_some() {
                i += 1;
            }
            if done {
                break;
            }
        }
        words.push(word);
    }
}

/// C's `isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Option<Vec<String>> {
        split(line.as_bytes()).map(|w| {
            w.into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect()
        })
    }

    #[test]
    fn words_split_as_redis_splits_them() {
        assert_eq!(words("PING").unwrap(), ["PING"]);
        assert_eq!(words("  set  a\tb ").unwrap(), ["set", "a", "b"]);
        assert_eq!(words("").unwrap(), Vec::<String>::new());
        assert_eq!(
            words(r#"set k "hello world""#).unwrap(),
            ["set", "k", "hello world"]
        );
        assert_eq!(words(r#""a\x41\n\"""#).unwrap(), ["aA\n\""]);
        assert_eq!(words(r#""\xzz""#).unwrap(), ["xzz"]);
        assert_eq!(words(r"'it\'s' x").unwrap(), ["it's", "x"]);
        assert_eq!(words(r"'a\nb'").unwrap(), [r"a\nb"]);
        assert_eq!(words(r#""""#).unwrap(), [""]);
        // A quote inside a word opens a quoted part of it, as in Redis.
        assert_eq!(words(r#"a"b c" d"#).unwrap(), ["ab c", "d"]);
        // The line is C text: it ends at a NUL.
        assert_eq!(words("a b\0c").unwrap(), ["a", "b"]);
    }

    #[test]
    fn unbalanced_quotes_are_refused() {
        for bad in [r#""open"#, "'open", r#""a"b"#, "'a'b", r#"""x"#] {
            assert_eq!(words(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_line_is_taken_whole_when_it_has_ended() {
        let mut buf = BytesMut::from(&b"SET a b\r\nGET"[..]);
        let args = take(&mut buf, 10).unwrap().unwrap();
        assert_eq!(args, [&b"SET"[..], b"a", b"b"]);
        assert_eq!(&buf[..], b"GET");
        assert_eq!(take(&mut buf, 10).unwrap(), None);
        buf.extend_from_slice(b" a\n\r\n");
        assert_eq!(take(&mut buf, 10).unwrap().unwrap(), [&b"GET"[..], b"a"]);
        assert_eq!(take(&mut buf, 10).unwrap().unwrap(), Vec::<Bytes>::new());
        assert!(buf.is_empty());
    }

    #[test]
    fn long_lines_and_many_words_are_refused() {
        let mut buf = BytesMut::from(vec![b'a'; MAX_LINE + 1].as_slice());
        assert!(
            matches!(take(&mut buf, 10), Err(CodecError::Protocol(e)) if e.contains("too big inline"))
        );
        let mut buf = BytesMut::from(&b"a b c\n"[..]);
        assert!(
            matches!(take(&mut buf, 2), Err(CodecError::Protocol(e)) if e.contains("multibulk"))
        );
    }
}
