//! Redis-style glob patterns for key scans.
//!
//! A [`Pattern`] is compiled once with [`Pattern::new`] (or [`str::parse`]) and then
//! tested against many keys with [`Pattern::matches`]. Matching works on Unicode
//! scalar values (`char`s), not bytes, so `?` matches one character however many bytes
//! it takes, and it always runs in time proportional to pattern length × key length:
//! no pattern can make it backtrack exponentially.
//!
//! # Syntax
//!
//! | Pattern    | Matches                                                            |
//! |------------|--------------------------------------------------------------------|
//! | `*`        | any run of characters, including none                              |
//! | `$`        | the same as `*`                                                    |
//! | `?`        | exactly one character                                              |
//! | `[abc]`    | one of the listed characters                                       |
//! | `[a-z]`    | one character in the inclusive range (`[z-a]` means `[a-z]`)       |
//! | `[^a]`     | one character *not* in the class; `[!a]` is the same               |
//! | `[a-cx_]`  | ranges and single characters combine freely                        |
//! | `\c`       | the character `c` literally, e.g. `\*`, `\$`, `\?`, `\[`, `\\`     |
//! | any other  | itself                                                             |
//!
//! Inside a class, `\` escapes the next character (`[\]]` matches `]`), and a `-` that
//! comes first or last is literal (`[-a]`, `[a-]`). A pattern must match the whole key;
//! the empty pattern matches only the empty key.
//!
//! A pattern is refused with [`Error::InvalidPattern`] when a `[` is never closed, when
//! it ends with a lone `\`, when a class is empty (`[]`, `[^]`, `[!]`), or when it is
//! longer than 1024 bytes.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The longest pattern, in bytes, that [`Pattern::new`] accepts.
const MAX_PATTERN_LEN: usize = 1024;

/// A compiled glob pattern.
///
/// Two patterns are equal when they were compiled from the same text.
///
/// ```
/// use kvcore::Pattern;
///
/// let pattern: Pattern = "user:[0-9]*".parse()?;
/// assert!(pattern.matches("user:42"));
/// assert!(!pattern.matches("user:alice"));
/// assert_eq!(pattern.to_string(), "user:[0-9]*");
/// # Ok::<(), kvcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The text the pattern was compiled from.
    text: String,
    /// The compiled instructions; consecutive `*`s are collapsed into one.
    tokens: Vec<Token>,
    /// The unescaped literal characters the pattern starts with.
    prefix: String,
}

/// One compiled instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// Any one character (`?`).
    AnyOne,
    /// Any run of characters, including none (`*` or `$`).
    AnyRun,
    /// One character in (or, when `negated`, not in) any of the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this single-character token accepts `c`. `AnyRun` is handled by the
    /// matcher itself and never reaches here.
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne | Token::AnyRun => true,
            Token::Class { negated, ranges } => {
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated
            }
        }
    }
}

impl Pattern {
    /// Compiles `pattern`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPattern`] when the pattern has an unclosed `[`, ends with an
    /// unescaped `\`, contains an empty class (`[]`, `[^]`, `[!]`), or is longer than
    /// 1024 bytes. The reason names the problem and, where there is one, its position
    /// (counted in characters from 0).
    ///
    /// ```
    /// use kvcore::Pattern;
    ///
    /// let pattern = Pattern::new("session:*")?;
    /// assert_eq!(pattern.as_str(), "session:*");
    /// assert_eq!(pattern.literal_prefix(), "session:");
    ///
    /// assert!(Pattern::new("session:[abc").is_err());
    /// assert!(Pattern::new("trailing\\").is_err());
    /// assert!(Pattern::new("empty[]").is_err());
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn new(pattern: &str) -> Result<Pattern> {
        let invalid = |reason: String| Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        };
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(invalid(format!(
                "pattern is {} bytes long, more than the limit of {MAX_PATTERN_LEN} bytes",
                pattern.len()
            )));
        }

        let mut tokens = Vec::new();
        let mut chars = pattern.chars().enumerate().peekable();
        while let Some((pos, c)) = chars.next() {
            let token = match c {
                '*' | '$' => {
                    if tokens.last() == Some(&Token::AnyRun) {
                        continue;
                    }
                    Token::AnyRun
                }
                '?' => Token::AnyOne,
                '\\' => match chars.next() {
                    Some((_, escaped)) => Token::Literal(escaped),
                    None => {
                        return Err(invalid(
                            "pattern ends with an unescaped backslash".to_owned(),
                        ));
                    }
                },
                '[' => {
                    let unclosed = || {
                        invalid(format!(
                            "unclosed character class starting at position {pos}"
                        ))
                    };
                    let negated = matches!(chars.peek(), Some(&(_, '^' | '!')));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    loop {
                        let lo = match chars.next() {
                            None => return Err(unclosed()),
                            Some((_, ']')) if ranges.is_empty() => {
                                return Err(invalid(format!(
                                    "empty character class at position {pos}"
                                )));
                            }
                            Some((_, ']')) => break,
                            Some((_, '\\')) => match chars.next() {
                                Some((_, escaped)) => escaped,
                                None => return Err(unclosed()),
                            },
                            Some((_, other)) => other,
                        };
                        // `lo-hi` is a range unless the `-` is the last thing in the class.
                        let mut hi = lo;
                        if chars.peek().map(|&(_, next)| next) == Some('-') {
                            let mut ahead = chars.clone();
                            ahead.next();
                            match ahead.next() {
                                None => return Err(unclosed()),
                                Some((_, ']')) => {}
                                Some((_, '\\')) => match ahead.next() {
                                    Some((_, escaped)) => {
                                        hi = escaped;
                                        chars = ahead;
                                    }
                                    None => return Err(unclosed()),
                                },
                                Some((_, other)) => {
                                    hi = other;
                                    chars = ahead;
                                }
                            }
                        }
                        ranges.push((lo.min(hi), lo.max(hi)));
                    }
                    Token::Class { negated, ranges }
                }
                other => Token::Literal(other),
            };
            tokens.push(token);
        }

        let prefix = tokens
            .iter()
            .map_while(|token| match token {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        Ok(Pattern {
            text: pattern.to_owned(),
            tokens,
            prefix,
        })
    }

    /// The pattern text exactly as it was given to [`Pattern::new`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `key` matches the whole pattern.
    ///
    /// Runs in O(pattern length × key length) time at worst, whatever the pattern.
    ///
    /// ```
    /// use kvcore::Pattern;
    ///
    /// let pattern = Pattern::new("h?llo:[^0-9]*")?;
    /// assert!(pattern.matches("hello:world"));
    /// assert!(pattern.matches("hällo:x"));
    /// assert!(!pattern.matches("hello:1st"));
    /// assert!(!pattern.matches("hello"));
    ///
    /// let literal = Pattern::new(r"price\$")?;
    /// assert!(literal.matches("price$"));
    /// assert!(!literal.matches("prices"));
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn matches(&self, key: &str) -> bool {
        if !key.starts_with(self.prefix.as_str()) {
            return false;
        }
        // Greedy two-pointer matching with a single backtrack point: the most recent
        // `*`. On a mismatch, that `*` absorbs one more character and matching resumes
        // just after it. Earlier `*`s never need revisiting, because anything they
        // could absorb the latest one can absorb too, so each key position is retried
        // at most once per pattern position.
        let tokens = self.tokens.as_slice();
        let mut t = 0; // index into `tokens`
        let mut k = 0; // byte offset into `key`, always on a char boundary
        // (token index just after the latest `*`, key offset that `*` stops before)
        let mut star: Option<(usize, usize)> = None;
        loop {
            let next_char = key.get(k..).and_then(|rest| rest.chars().next());
            match tokens.get(t) {
                Some(Token::AnyRun) => {
                    t += 1;
                    star = Some((t, k));
                    continue;
                }
                Some(token) => {
                    if let Some(c) = next_char
                        && token.accepts(c)
                    {
                        t += 1;
                        k += c.len_utf8();
                        continue;
                    }
                }
                None => {
                    if next_char.is_none() {
                        return true;
                    }
                }
            }
            // Mismatch: let the latest `*` absorb one more character, if there is one.
            let Some((star_t, star_k)) = star else {
                return false;
            };
            let Some(absorbed) = key.get(star_k..).and_then(|rest| rest.chars().next()) else {
                return false;
            };
            let resume = star_k + absorbed.len_utf8();
            star = Some((star_t, resume));
            t = star_t;
            k = resume;
        }
    }

    /// The literal text every matching key starts with, or `""` when the pattern
    /// starts with a wildcard or class. Escapes are resolved: the prefix of `a\*b*` is
    /// `a*b`. Useful to skip keys (or ranges of sorted keys) without matching them.
    ///
    /// ```
    /// use kvcore::Pattern;
    ///
    /// assert_eq!(Pattern::new("user:*:name")?.literal_prefix(), "user:");
    /// assert_eq!(Pattern::new("*:name")?.literal_prefix(), "");
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// True when the pattern matches every string, including the empty one: `*`, `$`,
    /// `**`, and any other run of only `*` and `$`.
    ///
    /// ```
    /// use kvcore::Pattern;
    ///
    /// assert!(Pattern::new("**")?.matches_all());
    /// assert!(!Pattern::new("?*")?.matches_all());
    /// # Ok::<(), kvcore::Error>(())
    /// ```
    pub fn matches_all(&self) -> bool {
        matches!(self.tokens.as_slice(), [Token::AnyRun])
    }
}

impl FromStr for Pattern {
    type Err = Error;

    /// The same as [`Pattern::new`].
    fn from_str(s: &str) -> Result<Pattern> {
        Pattern::new(s)
    }
}

impl fmt::Display for Pattern {
    /// Writes the pattern text as it was given.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests;
