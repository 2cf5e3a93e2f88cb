//! Unit tests of glob patterns: the syntax, refusals, and matching against a
//! backtracking reference under proptest.

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
