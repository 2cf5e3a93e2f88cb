//! The command-line grammar: splitting a line into arguments, and reading the
//! arguments commands share (values, seconds, dataset formats). Each command's own
//! arguments are parsed by its [`Spec`](crate::cmd::Spec) in [`crate::cmd`].
//!
//! The same grammar serves every mode: a one-shot command arrives already split into
//! arguments by the shell ([`Command::from_args`]), while the REPL and piped scripts
//! split each line themselves ([`split`], [`Command::parse_line`]). Splitting follows
//! the shell closely enough that a command pasted from one works in the other:
//!
//! - arguments are separated by whitespace;
//! - `"double quotes"` keep spaces and take backslash escapes (`\"`, `\\`, `\n`, `\t`,
//!   `\r`; any other backslash is kept as written);
//! - `'single quotes'` keep everything literally;
//! - an argument that starts with `{` or `[` runs to its matching bracket, so a JSON
//!   value may contain spaces and quotes without further quoting:
//!   `set user {"name": "Ada Lovelace"}`.
//!
//! Command names and the `ttl` keyword are case-insensitive. A line that is blank or
//! starts with `#` holds no command.
//!
//! [`Command::from_args`]: crate::Command::from_args
//! [`Command::parse_line`]: crate::Command::parse_line

use std::iter::Peekable;
use std::str::Chars;
use std::time::Duration;

use kvcore::dataset::Format;
use kvcore::{JsonText, MAX_TTL};

use crate::Error;

/// The value a `set` argument stands for: its JSON if it is JSON, else a string.
pub fn parse_value(text: &str) -> JsonText {
    JsonText::parse(text).unwrap_or_else(|_| JsonText::string(text))
}

/// Seconds, fractional allowed, from 0.001 up to kvcore's [`MAX_TTL`]
/// ([`kvcore::ttl::parse_seconds`], as kvserver reads them).
pub fn parse_seconds(text: &str) -> Result<Duration, Error> {
    kvcore::ttl::parse_seconds(text).map_err(|_| {
        Error::Usage(format!(
            "SECONDS must be a number from 0.001 to {}, not {text:?}",
            MAX_TTL.as_secs_f64()
        ))
    })
}

/// A dataset format name: json, jsonl (also jsonlines, ndjson) or csv.
pub fn parse_format(name: &str) -> Result<Format, String> {
    name.parse().map_err(|e| match e {
        kvcore::Error::Config(message) => message,
        other => other.to_string(),
    })
}

/// Splits a line into arguments (see the [module docs](self) for the rules).
///
/// ```
/// use kvcli::command::split;
///
/// assert_eq!(
///     split(r#"set "a key" {"x": [1, 2]} ttl 10"#)?,
///     ["set", "a key", r#"{"x": [1, 2]}"#, "ttl", "10"]
/// );
/// assert_eq!(split(r#"set k 'it''s' "say \"hi\"""#)?, ["set", "k", "its", r#"say "hi""#]);
/// assert!(split(r#"get "open"#).is_err());
/// # Ok::<(), kvcli::Error>(())
/// ```
pub fn split(line: &str) -> Result<Vec<String>, Error> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(args);
        };
        let mut arg = String::new();
        if first == '{' || first == '[' {
            take_json(&mut chars, &mut arg);
        }
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '"' => take_double_quoted(&mut chars, &mut arg)?,
                '\'' => take_single_quoted(&mut chars, &mut arg)?,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
}

/// Takes a bracketed JSON-like run up to its matching close bracket (or the end of
/// the line), leaving strings inside it as written.
fn take_json(chars: &mut Peekable<Chars<'_>>, arg: &mut String) {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in chars.by_ref() {
        arg.push(c);
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

fn take_double_quoted(chars: &mut Peekable<Chars<'_>>, arg: &mut String) -> Result<(), Error> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(()),
            '\\' => match chars.next() {
                Some('n') => arg.push('\n'),
                Some('t') => arg.push('\t'),
                Some('r') => arg.push('\r'),
                Some(c @ ('"' | '\\')) => arg.push(c),
                Some(c) => {
                    arg.push('\\');
                    arg.push(c);
                }
                None => break,
            },
            c => arg.push(c),
        }
    }
    Err(Error::Usage("unterminated double quote".into()))
}

fn take_single_quoted(chars: &mut Peekable<Chars<'_>>, arg: &mut String) -> Result<(), Error> {
    for c in chars.by_ref() {
        if c == '\'' {
            return Ok(());
        }
        arg.push(c);
    }
    Err(Error::Usage("unterminated single quote".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_with_json_runs() {
        assert_eq!(split("  a\tb  ").unwrap(), ["a", "b"]);
        assert_eq!(split(r#""""#).unwrap(), [""]);
        assert_eq!(split(r#"a"b c"d"#).unwrap(), ["ab cd"]);
        assert_eq!(split(r#""\n\t\\\x""#).unwrap(), ["\n\t\\\\x"]);
        assert_eq!(split("'a \"b\" \\n'").unwrap(), ["a \"b\" \\n"]);
        assert_eq!(
            split(r#"{"a}": "x \" ]", "b": [1, {}]} next"#).unwrap(),
            [r#"{"a}": "x \" ]", "b": [1, {}]}"#, "next"]
        );
        assert_eq!(split("[1, 2").unwrap(), ["[1, 2"]);
        assert_eq!(split("x{ y").unwrap(), ["x{", "y"]);
        assert!(split("'open").is_err());
        assert!(split("\"open\\").is_err());
    }
}
