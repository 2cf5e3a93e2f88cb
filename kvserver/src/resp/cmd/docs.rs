//! The arguments `COMMAND DOCS` reports, read from each command's syntax line.
//!
//! A syntax line is written as Redis's documentation displays one:
//!
//! - `key`, `seconds`: an argument, typed by its name (`key`, `pattern`, a number
//!   such as `seconds` or `offset`, a `unix-time-...`, else a string);
//! - `NX`: a word sent as it is (a pure token); `EX seconds`: a token followed by its
//!   value, one argument;
//! - `[...]`: optional; `<...>`: a required group; inside either, `a|b|c` are
//!   alternatives (one of) and words in a row form a block;
//! - `...` after an argument or group: it repeats.
//!
//! `redis-cli` builds its hints from what this produces (`SET key value [NX|XX]...`).

use super::super::frame::Reply;

/// One documented argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    name: String,
    kind: &'static str,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    children: Vec<Arg>,
}

impl Arg {
    /// The argument as a `COMMAND DOCS` map.
    pub fn to_reply(&self) -> Reply {
        let mut map = vec![
            (Reply::bulk_static("name"), Reply::bulk(self.name.clone())),
            (Reply::bulk_static("type"), Reply::bulk_static(self.kind)),
        ];
        if self.kind == "key" {
            map.push((Reply::bulk_static("key_spec_index"), Reply::Int(0)));
        }
        if let Some(token) = &self.token {
            map.push((Reply::bulk_static("token"), Reply::bulk(token.clone())));
        }
        let mut flags = Vec::new();
        if self.optional {
            flags.push(Reply::simple("optional"));
        }
        if self.multiple {
            flags.push(Reply::simple("multiple"));
        }
        if !flags.is_empty() {
            map.push((Reply::bulk_static("flags"), Reply::Set(flags)));
        }
        if !self.children.is_empty() {
            map.push((
                Reply::bulk_static("arguments"),
                Reply::Array(self.children.iter().map(Arg::to_reply).collect()),
            ));
        }
        Reply::Map(map)
    }

    /// How `redis-cli` shows the argument in a hint.
    #[cfg(test)]
    fn hint(&self) -> String {
        let token = self.token.clone().unwrap_or_default();
        let repeat = match self.kind {
            "oneof" => self
                .children
                .iter()
                .map(Arg::hint)
                .collect::<Vec<_>>()
                .join("|"),
            "block" => self
                .children
                .iter()
                .map(Arg::hint)
                .collect::<Vec<_>>()
                .join(" "),
            "pure-token" => String::new(),
            _ => self.name.clone(),
        };
        let mut out = String::new();
        if self.optional {
            out.push('[');
        }
        out.push_str(&token);
        if !token.is_empty() && self.kind != "pure-token" {
            out.push(' ');
        }
        out.push_str(&repeat);
        if self.multiple {
            out.push_str(&format!(" [{repeat} ...]"));
        }
        if self.optional {
            out.push(']');
        }
        out
    }
}

/// The type `COMMAND DOCS` gives an argument of this name.
fn kind_of(name: &str) -> &'static str {
    match name {
        "key" | "key1" | "key2" | "newkey" | "source" | "destination" => "key",
        "pattern" => "pattern",
        "seconds" | "milliseconds" | "count" | "offset" | "start" | "end" | "index"
        | "decrement" | "bit" | "min-match-len" | "client-id" | "destination-db" | "protover" => {
            "integer"
        }
        "increment" => "double",
        _ if name.starts_with("unix-time") => "unix-time",
        _ => "string",
    }
}

fn is_token(word: &str) -> bool {
    word.bytes().any(|b| b.is_ascii_uppercase())
        && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
}

/// The arguments a syntax line describes.
pub fn arguments(syntax: &str) -> Result<Vec<Arg>, String> {
    let chars: Vec<char> = syntax.chars().collect();
    let mut at = 0;
    let args = sequence(&chars, &mut at)?;
    if at != chars.len() {
        return Err(format!("unexpected {:?} at {at}", chars[at]));
    }
    Ok(args)
}

/// Alternatives separated by `|` up to the closing bracket (not consumed).
fn alternatives(chars: &[char], at: &mut usize) -> Result<Vec<Vec<Arg>>, String> {
    let mut out = vec![sequence(chars, at)?];
    while chars.get(*at) == Some(&'|') {
        *at += 1;
        out.push(sequence(chars, at)?);
    }
    Ok(out)
}

/// Arguments in a row, up to `|`, a closing bracket or the end.
fn sequence(chars: &[char], at: &mut usize) -> Result<Vec<Arg>, String> {
    let mut out: Vec<Arg> = Vec::new();
    // Whether the last argument was a token word, which the next value completes.
    let mut after_token = false;
    loop {
        while chars.get(*at) == Some(&' ') {
            *at += 1;
        }
        let Some(&c) = chars.get(*at) else {
            return Ok(out);
        };
        let arg = match c {
            '|' | ']' | '>' => return Ok(out),
            '[' | '<' => {
                *at += 1;
                let alts = alternatives(chars, at)?;
                let close = if c == '[' { ']' } else { '>' };
                if chars.get(*at) != Some(&close) {
                    return Err(format!("{c} not closed"));
                }
                *at += 1;
                let mut group = group(alts);
                group.optional |= c == '[';
                group
            }
            _ => {
                let start = *at;
                while chars
                    .get(*at)
                    .is_some_and(|c| !matches!(c, ' ' | '|' | '[' | ']' | '<' | '>'))
                {
                    *at += 1;
                }
                let word: String = chars[start..*at].iter().collect();
                let name = word.trim_end_matches("...");
                if is_token(name) {
                    Arg {
                        name: name.to_ascii_lowercase(),
                        kind: "pure-token",
                        token: Some(name.to_owned()),
                        optional: false,
                        multiple: false,
                        children: Vec::new(),
                    }
                } else {
                    Arg {
                        name: name.to_owned(),
                        kind: kind_of(name),
                        token: None,
                        optional: false,
                        multiple: false,
                        children: Vec::new(),
                    }
                }
            }
        };
        let mut arg = arg;
        if chars[*at..].starts_with(&['.', '.', '.']) {
            *at += 3;
        }
        if chars[..*at].ends_with(&['.', '.', '.']) {
            arg.multiple = true;
        }
        let bare_token = arg.kind == "pure-token" && !arg.optional && c != '<';
        // A token word followed by its value is one argument.
        match out.last_mut() {
            Some(prev) if after_token && arg.kind != "pure-token" && arg.token.is_none() => {
                after_token = false;
                prev.name = if arg.kind == "oneof" || arg.kind == "block" {
                    prev.name.clone()
                } else {
                    arg.name.clone()
                };
                prev.kind = arg.kind;
                prev.children = arg.children;
                prev.multiple = arg.multiple;
                prev.optional |= arg.optional;
            }
            _ => {
                after_token = bare_token;
                out.push(arg);
            }
        }
    }
}

/// One argument standing for a bracketed group.
fn group(mut alts: Vec<Vec<Arg>>) -> Arg {
    if alts.len() == 1 {
        let mut seq = alts.remove(0);
        if seq.len() == 1 {
            return seq.remove(0);
        }
        let name = seq
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>()
            .join("-");
        return Arg {
            name,
            kind: "block",
            token: None,
            optional: false,
            multiple: false,
            children: seq,
        };
    }
    let children: Vec<Arg> = alts.into_iter().map(|seq| group(vec![seq])).collect();
    let name = children
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join("-");
    Arg {
        name,
        kind: "oneof",
        token: None,
        optional: false,
        multiple: false,
        children,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(syntax: &str) -> String {
        arguments(syntax)
            .unwrap()
            .iter()
            .map(Arg::hint)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn hints_read_as_the_syntax_line() {
        assert_eq!(
            hint("key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]"),
            "key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]"
        );
        assert_eq!(hint("key..."), "key [key ...]");
        assert_eq!(hint("<key value>..."), "key value [key value ...]");
        assert_eq!(hint("[section...]"), "[section [section ...]]");
        assert_eq!(
            hint("key [start end [BYTE|BIT]]"),
            "key [start end [BYTE|BIT]]"
        );
        assert_eq!(
            hint("cursor [MATCH pattern] [COUNT count] [TYPE type]"),
            "cursor [MATCH pattern] [COUNT count] [TYPE type]"
        );
        assert_eq!(
            hint("[TYPE <NORMAL|MASTER>] [ID client-id...]"),
            "[TYPE NORMAL|MASTER] [ID client-id [client-id ...]]"
        );
        assert_eq!(hint(""), "");
        assert_eq!(
            hint("key [GET] [EX seconds|KEEPTTL]"),
            "key [GET] [EX seconds|KEEPTTL]"
        );
        assert_eq!(
            hint("[protover [AUTH username password] [SETNAME clientname]]"),
            "[protover [AUTH username password] [SETNAME clientname]]"
        );
    }

    #[test]
    fn arguments_are_typed_by_name() {
        let args = arguments("key seconds unix-time-seconds pattern value").unwrap();
        let kinds: Vec<&str> = args.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["key", "integer", "unix-time", "pattern", "string"]);
    }

    #[test]
    fn unbalanced_lines_are_refused() {
        assert!(arguments("[NX").is_err());
        assert!(arguments("NX]").is_err());
        assert!(arguments("<a|b]").is_err());
    }
}
