//! One module per route family, and the answer for paths that match none of them.

pub mod hits;
pub mod keys;
pub mod lookup;
pub mod ops;
pub mod values;

use axum::http::Uri;

use crate::error::ApiError;

/// `404 not_found` for a path no route matches. Under `/keys/` the message explains
/// that a key is one path segment, whose `/` is sent as `%2F`.
pub async fn unknown(uri: Uri) -> ApiError {
    ApiError::not_found(unknown_message(uri.path()))
}

fn unknown_message(path: &str) -> String {
    let Some(rest) = path.strip_prefix("/keys/") else {
        return "no such route".into();
    };
    let rule = "no such route: under /keys/ a key is one path segment, so a \"/\" inside a \
                key is sent as %2F";
    if rest.is_empty() {
        return format!("{rule}; /keys/ alone names no key (keys are not empty)");
    }
    let whole = format!(
        "the key {:?} is /keys/{}",
        decoded(rest),
        rest.replace('/', "%2F")
    );
    match rest.strip_suffix('/') {
        Some(bare) if !bare.is_empty() && !bare.contains('/') => {
            format!(
                "{rule}: {whole}, and the key {:?} is /keys/{bare}",
                decoded(bare)
            )
        }
        _ => format!("{rule}: {whole}"),
    }
}

/// `path` with its `%XX` escapes decoded, as the key routes decode a key; the text
/// as sent when the escapes do not decode to UTF-8.
fn decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3);
        match hex {
            Some(&[hi, lo])
                if bytes[i] == b'%' && hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() =>
            {
                let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(digit(hi) * 16 + digit(lo));
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::unknown_message;

    #[test]
    fn slashes_under_keys_get_a_hint() {
        assert_eq!(unknown_message("/nope"), "no such route");
        assert_eq!(unknown_message("/keysx/a"), "no such route");
        let nested = unknown_message("/keys/a/b");
        assert!(nested.contains("%2F"), "{nested}");
        assert!(
            nested.ends_with(r#"the key "a/b" is /keys/a%2Fb"#),
            "{nested}"
        );
        let trailing = unknown_message("/keys/greeting/");
        assert!(
            trailing.ends_with(
                r#"the key "greeting/" is /keys/greeting%2F, and the key "greeting" is /keys/greeting"#
            ),
            "{trailing}"
        );
        // The key is named as it decodes; the path keeps the escapes it was sent with.
        let escaped = unknown_message("/keys/a%2Fb/");
        assert!(
            escaped
                .ends_with(r#"the key "a/b/" is /keys/a%2Fb%2F, and the key "a/b" is /keys/a%2Fb"#),
            "{escaped}"
        );
        let spaced = unknown_message("/keys/a%20b/c%25");
        assert!(
            spaced.ends_with(r#"the key "a b/c%" is /keys/a%20b%2Fc%25"#),
            "{spaced}"
        );
        let not_utf8 = unknown_message("/keys/%FF/x");
        assert!(
            not_utf8.ends_with(r#"the key "%FF/x" is /keys/%FF%2Fx"#),
            "{not_utf8}"
        );
        let empty = unknown_message("/keys/");
        assert!(
            empty.contains("%2F") && empty.contains("names no key"),
            "{empty}"
        );
    }
}
