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
    let whole = format!("the key {rest:?} is /keys/{}", rest.replace('/', "%2F"));
    match rest.strip_suffix('/') {
        Some(bare) if !bare.is_empty() && !bare.contains('/') => {
            format!("{rule}: {whole}, and the key {bare:?} is /keys/{bare}")
        }
        _ => format!("{rule}: {whole}"),
    }
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
        let empty = unknown_message("/keys/");
        assert!(
            empty.contains("%2F") && empty.contains("names no key"),
            "{empty}"
        );
    }
}
