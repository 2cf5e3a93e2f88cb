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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pat(text: &str) -> Pattern {
        match Pattern::new(text) {
            Ok(pattern) => pattern,
            Err(e) => panic!("pattern {text:?} should compile: {e}"),
        }
    }

    fn is_match(pattern: &str, key: &str) -> bool {
        pat(pattern).matches(key)
    }

    /// The reason of the `InvalidPattern` error `text` must produce.
    fn reason(text: &str) -> String {
        match Pattern::new(text) {
            Err(Error::InvalidPattern { pattern, reason }) => {
                assert_eq!(pattern, text, "the error must carry the pattern as given");
                reason
            }
            Err(other) => panic!("pattern {text:?}: wrong error {other:?}"),
            Ok(p) => panic!("pattern {text:?} should be refused, compiled to {p:?}"),
        }
    }

    /// Backslash-escapes every character that is special outside a class.
    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len() * 2);
        for c in s.chars() {
            if matches!(c, '*' | '?' | '$' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// A slow but obviously correct matcher over the same tokens, for cross-checking.
    fn reference_match(tokens: &[Token], key: &[char]) -> bool {
        // can[i][j]: tokens[i..] matches key[j..]
        let mut can = vec![vec![false; key.len() + 1]; tokens.len() + 1];
        can[tokens.len()][key.len()] = true;
        for i in (0..tokens.len()).rev() {
            for j in (0..=key.len()).rev() {
                can[i][j] = match &tokens[i] {
                    Token::AnyRun => can[i + 1][j] || (j < key.len() && can[i][j + 1]),
                    token => j < key.len() && token.accepts(key[j]) && can[i + 1][j + 1],
                };
            }
        }
        can[0][0]
    }

    #[test]
    fn plain_literals_match_exactly() {
        assert!(is_match("hello", "hello"));
        assert!(!is_match("hello", "hell"));
        assert!(!is_match("hello", "hello!"));
        assert!(!is_match("hello", "Hello"));
        assert!(!is_match("hello", ""));
    }

    #[test]
    fn empty_pattern_matches_only_empty_key() {
        assert!(is_match("", ""));
        assert!(!is_match("", "a"));
        assert!(!is_match("", " "));
    }

    #[test]
    fn star_matches_any_run() {
        assert!(is_match("*", ""));
        assert!(is_match("*", "anything at all"));
        assert!(is_match("a*", "a"));
        assert!(is_match("a*", "abc"));
        assert!(!is_match("a*", "ba"));
        assert!(is_match("*c", "abc"));
        assert!(is_match("*c", "c"));
        assert!(!is_match("*c", "cb"));
        assert!(is_match("a*c", "ac"));
        assert!(is_match("a*c", "abbbc"));
        assert!(is_match("a*c", "acbc"));
        assert!(!is_match("a*c", "acb"));
        assert!(is_match("a*b*c", "aXbYc"));
        assert!(is_match("a*b*c", "abc"));
        assert!(!is_match("a*b*c", "acb"));
        assert!(is_match("*ab*", "xxaabyy"));
    }

    #[test]
    fn consecutive_stars_collapse() {
        assert_eq!(pat("a***b").tokens, pat("a*b").tokens);
        assert_eq!(pat("a*$*b").tokens, pat("a*b").tokens);
        assert!(is_match("a**b", "ab"));
        assert!(is_match("a**b", "axyb"));
        // An escaped star in between does not collapse.
        assert_eq!(pat(r"*\**").tokens.len(), 3);
    }

    #[test]
    fn dollar_is_a_star() {
        assert!(is_match("wo$d", "wod"));
        assert!(is_match("wo$d", "word"));
        assert!(is_match("wo$d", "world"));
        assert!(!is_match("wo$d", "wo$"));
        assert!(is_match("$", ""));
        assert!(is_match("$", "xyz"));
        assert!(is_match("a$b*c", "a1b2c"));
    }

    #[test]
    fn question_mark_matches_one_char() {
        assert!(is_match("?", "a"));
        assert!(!is_match("?", ""));
        assert!(!is_match("?", "ab"));
        assert!(is_match("h?llo", "hello"));
        assert!(is_match("h?llo", "hallo"));
        assert!(!is_match("h?llo", "hllo"));
        assert!(!is_match("h?llo", "heello"));
        assert!(is_match("??", "ab"));
        assert!(is_match("?*?", "ab"));
        assert!(!is_match("?*?", "a"));
    }

    #[test]
    fn class_of_listed_chars() {
        assert!(is_match("h[ae]llo", "hello"));
        assert!(is_match("h[ae]llo", "hallo"));
        assert!(!is_match("h[ae]llo", "hillo"));
        assert!(!is_match("h[ae]llo", "hllo"));
        assert!(!is_match("h[ae]llo", "haello"));
        assert!(is_match("[a]", "a"));
    }

    #[test]
    fn class_ranges() {
        assert!(is_match("[a-z]", "a"));
        assert!(is_match("[a-z]", "m"));
        assert!(is_match("[a-z]", "z"));
        assert!(!is_match("[a-z]", "A"));
        assert!(!is_match("[a-z]", "{"));
        assert!(is_match("id:[0-9][0-9]", "id:42"));
        assert!(!is_match("id:[0-9][0-9]", "id:4x"));
        assert!(is_match("[a-a]", "a"));
        assert!(!is_match("[a-a]", "b"));
    }

    #[test]
    fn reversed_range_is_normalised() {
        assert_eq!(pat("[z-a]").tokens, pat("[a-z]").tokens);
        assert!(is_match("[z-a]", "a"));
        assert!(is_match("[z-a]", "q"));
        assert!(is_match("[z-a]", "z"));
        assert!(!is_match("[z-a]", "A"));
        assert!(is_match("[9-0]", "5"));
    }

    #[test]
    fn ranges_and_singles_combine() {
        let p = pat("[a-cx-z_]");
        for key in ["a", "b", "c", "x", "y", "z", "_"] {
            assert!(p.matches(key), "{key:?}");
        }
        for key in ["d", "w", "-", "A", "", "ab"] {
            assert!(!p.matches(key), "{key:?}");
        }
    }

    #[test]
    fn negation_with_caret() {
        assert!(is_match("[^a]", "b"));
        assert!(!is_match("[^a]", "a"));
        assert!(!is_match("[^a]", ""));
        assert!(!is_match("[^a]", "bb"));
        assert!(is_match("[^0-9]x", "ax"));
        assert!(!is_match("[^0-9]x", "5x"));
    }

    #[test]
    fn negation_with_bang() {
        assert!(is_match("[!a]", "b"));
        assert!(!is_match("[!a]", "a"));
        assert_eq!(pat("[!a-c]").tokens, pat("[^a-c]").tokens);
        assert!(is_match("[!a-c]", "d"));
        assert!(!is_match("[!a-c]", "b"));
    }

    #[test]
    fn caret_or_bang_not_first_is_literal() {
        assert!(is_match("[a^]", "^"));
        assert!(is_match("[a!]", "!"));
        assert!(!is_match("[a^]", "b"));
        // Negated class whose only member is `^`.
        assert!(is_match("[^^]", "a"));
        assert!(!is_match("[^^]", "^"));
        assert!(is_match("[!!]", "^"));
        assert!(!is_match("[!!]", "!"));
    }

    #[test]
    fn dash_first_or_last_is_literal() {
        for p in ["[-a]", "[a-]", "[^-a]"] {
            let negated = p.starts_with("[^");
            assert_eq!(is_match(p, "-"), !negated, "{p}");
            assert_eq!(is_match(p, "a"), !negated, "{p}");
            assert_eq!(is_match(p, "b"), negated, "{p}");
        }
        assert!(is_match("[-]", "-"));
        assert!(!is_match("[-]", "a"));
        assert!(is_match("[a-c-]", "-"));
        assert!(is_match("[a-c-]", "b"));
    }

    #[test]
    fn escapes_inside_class() {
        assert!(is_match(r"[\]]", "]"));
        assert!(!is_match(r"[\]]", "\\"));
        assert!(is_match(r"[\\]", "\\"));
        assert!(is_match(r"[\-a]", "-"));
        assert!(is_match(r"[a\-z]", "-"));
        assert!(!is_match(r"[a\-z]", "m"));
        assert!(is_match(r"[\^a]", "^"));
        assert!(!is_match(r"[\^a]", "b"));
        assert!(is_match(r"[a-\]]", "]"));
        assert!(is_match(r"[a-\]]", "^"));
        assert!(is_match(r"[*?$[]", "*"));
        assert!(is_match(r"[*?$[]", "["));
        assert!(!is_match(r"[*?$[]", "x"));
    }

    #[test]
    fn escapes_outside_class() {
        assert!(is_match(r"\*", "*"));
        assert!(!is_match(r"\*", "a"));
        assert!(!is_match(r"\*", ""));
        assert!(is_match(r"\?", "?"));
        assert!(!is_match(r"\?", "a"));
        assert!(is_match(r"\$", "$"));
        assert!(!is_match(r"\$", "dollar"));
        assert!(is_match(r"\[a]", "[a]"));
        assert!(!is_match(r"\[a]", "a"));
        assert!(is_match(r"\\", "\\"));
        assert!(is_match(r"a\\*", "a\\xyz"));
        assert!(is_match(r"\a\b", "ab"));
        assert!(is_match(r"a\*b*", "a*bcd"));
        assert!(!is_match(r"a\*b*", "axbcd"));
    }

    #[test]
    fn unicode_keys() {
        assert!(is_match("ключ*", "ключ"));
        assert!(is_match("ключ*", "ключ:42"));
        assert!(!is_match("ключ*", "клю"));
        assert!(is_match("?", "ж"));
        assert!(is_match("?", "🦀"));
        assert!(!is_match("?", "жж"));
        assert!(is_match("a?c", "a€c"));
        assert!(is_match("*🦀", "crab 🦀"));
        // `ё` (U+0451) lies just outside `а`..=`я` (U+0430..=U+044F).
        assert!(!is_match("[а-я]", "ё"));
        assert!(is_match("[а-я]", "ж"));
        assert!(!is_match("[а-я]", "z"));
        assert!(is_match("[^а-я]", "z"));
        assert!(is_match("[🦀🐍]", "🐍"));
        assert!(is_match("日本*語", "日本の語"));
        assert!(!is_match("日本?語", "日本語"));
        assert_eq!(pat("ключ*").literal_prefix(), "ключ");
    }

    #[test]
    fn unclosed_class_is_refused() {
        let r = reason("abc[def");
        assert!(r.contains("unclosed character class"), "{r}");
        assert!(r.contains("position 3"), "{r}");
        assert!(reason("[").contains("position 0"));
        assert!(reason("[^").contains("unclosed"));
        assert!(reason("[!").contains("unclosed"));
        assert!(reason("[a-").contains("unclosed"));
        assert!(reason(r"[a\").contains("unclosed"));
        assert!(reason(r"[a-\").contains("unclosed"));
        assert!(reason(r"[\]").contains("unclosed"));
        // Positions count characters, not bytes.
        assert!(reason("ключ[").contains("position 4"));
    }

    #[test]
    fn trailing_backslash_is_refused() {
        let r = reason("abc\\");
        assert!(r.contains("ends with an unescaped backslash"), "{r}");
        assert!(reason("\\").contains("backslash"));
        assert!(reason(r"\\\").contains("backslash"));
        // An escaped backslash at the end is fine.
        assert!(is_match(r"abc\\", "abc\\"));
    }

    #[test]
    fn empty_class_is_refused() {
        for p in ["[]", "[^]", "[!]", "a[]b", "x[]]"] {
            let r = reason(p);
            assert!(r.contains("empty character class"), "{p}: {r}");
        }
        assert!(reason("ab[]").contains("position 2"));
    }

    #[test]
    fn overlong_pattern_is_refused() {
        let ok = "a".repeat(MAX_PATTERN_LEN);
        assert!(pat(&ok).matches(&ok));
        let r = reason(&"a".repeat(MAX_PATTERN_LEN + 1));
        assert!(r.contains("1024"), "{r}");
        // The limit is in bytes: 513 two-byte characters are too many.
        assert!(reason(&"ж".repeat(513)).contains("1024"));
        assert!(Pattern::new(&"ж".repeat(512)).is_ok());
    }

    #[test]
    fn error_message_is_readable() {
        let err = Pattern::new("a[b").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            text,
            "invalid pattern \"a[b\": unclosed character class starting at position 1"
        );
    }

    #[test]
    fn literal_prefix_of_various_patterns() {
        let cases = [
            ("", ""),
            ("abc", "abc"),
            ("user:*", "user:"),
            ("user:*:name", "user:"),
            ("*abc", ""),
            ("$abc", ""),
            ("?abc", ""),
            ("[a]bc", ""),
            ("ab?c", "ab"),
            ("ab[cd]", "ab"),
            (r"a\*b*", "a*b"),
            (r"\$x$", "$x"),
            (r"\\*", "\\"),
        ];
        for (pattern, prefix) in cases {
            assert_eq!(pat(pattern).literal_prefix(), prefix, "{pattern:?}");
        }
    }

    #[test]
    fn matches_all_for_various_patterns() {
        for p in ["*", "$", "**", "$$", "*$*", "***"] {
            assert!(pat(p).matches_all(), "{p:?}");
        }
        for p in [
            "", "?", "?*", "*?", "a*", "*a", r"\*", r"\$", "[*]", "[^a]*",
        ] {
            assert!(!pat(p).matches_all(), "{p:?}");
        }
    }

    #[test]
    fn text_round_trips() {
        for text in ["", "a*b", r"\*[^a-z]$?", "ключ*"] {
            let p = pat(text);
            assert_eq!(p.as_str(), text);
            assert_eq!(p.to_string(), text);
            let parsed: Pattern = text.parse().expect("valid");
            assert_eq!(parsed, p);
        }
        assert!("[".parse::<Pattern>().is_err());
    }

    #[test]
    fn pathological_pattern_completes() {
        // Naive backtracking would try exponentially many splits here.
        let key = "a".repeat(10_000);
        let p = pat("*a*a*a*a*a*a*a*a*a*a*b");
        assert!(!p.matches(&key));
        assert!(pat("*a*a*a*a*a*a*a*a*a*a*").matches(&key));
        let q = pat("$?$?$?$?$?$?$?$?$?$?b");
        assert!(!q.matches(&key));
    }

    proptest! {
        #[test]
        fn escaped_string_matches_only_itself(
            s in proptest::collection::vec(
                proptest::sample::select(
                    "ab*?[]\\$-^!xyzж🦀".chars().collect::<Vec<_>>()
                ),
                0..40,
            ).prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            let p = Pattern::new(&escape(&s)).expect("an escaped string is a valid pattern");
            prop_assert!(p.matches(&s));
            prop_assert_eq!(p.literal_prefix(), s.as_str());
            let longer = format!("{s}x");
            prop_assert!(!p.matches(&longer));
            let shifted = format!("x{s}");
            prop_assert!(!p.matches(&shifted));
            if let Some(last) = s.chars().last() {
                prop_assert!(!p.matches(&s[..s.len() - last.len_utf8()]));
            }
        }

        #[test]
        fn fully_escaped_string_matches_only_itself(s in "\\PC{0,30}") {
            let escaped: String = s.chars().flat_map(|c| ['\\', c]).collect();
            let p = Pattern::new(&escaped).expect("valid");
            prop_assert!(p.matches(&s));
            let longer = format!("{s}x");
            prop_assert!(!p.matches(&longer));
        }

        #[test]
        fn matcher_agrees_with_reference(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "b", "-", "*", "$", "?", "**", "[ab]", "[^a]", "[!b]", "[a-b]",
                    "[b-a]", "[-a]", "[*-]", r"\*", r"\?", r"\$", r"[\]a]", r"\\",
                ]),
                0..10,
            ),
            key in "[ab*?$\\]\\-]{0,14}",
        ) {
            let pattern = pieces.concat();
            let p = Pattern::new(&pattern).expect("pieces form a valid pattern");
            let chars: Vec<char> = key.chars().collect();
            prop_assert_eq!(p.matches(&key), reference_match(&p.tokens, &chars));
        }

        #[test]
        fn raw_patterns_agree_with_reference(
            pattern in "[ab*?$\\[\\]^!\\\\-]{0,12}",
            key in "[ab\\-^]{0,12}",
        ) {
            if let Ok(p) = Pattern::new(&pattern) {
                let chars: Vec<char> = key.chars().collect();
                prop_assert_eq!(p.matches(&key), reference_match(&p.tokens, &chars));
            }
        }

        #[test]
        fn arbitrary_input_never_panics(pattern in "\\PC{0,40}", key in "\\PC{0,40}") {
            if let Ok(p) = Pattern::new(&pattern) {
                let _ = p.matches(&key);
                let _ = p.literal_prefix();
                prop_assert!(key.starts_with(p.literal_prefix()) || !p.matches(&key));
            }
        }
    }
}
