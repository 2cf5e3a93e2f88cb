//! The JSON Lines format: one `{"key": ..., "value": ...}` object per line.

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Each, dataset_error, io_error, serde_reason};
use crate::{JsonText, Result};

const LINE_SHAPE: &str = r#"each line must be {"key": "...", "value": ...}"#;

/// Visits one JSON Lines object, collecting its two fields.
struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = (Option<&'de RawValue>, Option<&'de RawValue>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a JSON object {"key": "...", "value": ...}"#)
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let (mut key, mut value) = (None, None);
        while let Some(field) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let slot = match &*field {
                "key" => &mut key,
                "value" => &mut value,
                other => {
                    return Err(de::Error::custom(format_args!(
                        "unexpected field {other:?}: {LINE_SHAPE} and nothing else"
                    )));
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom(format_args!("duplicate field {field:?}")));
            }
            *slot = Some(map.next_value::<&'de RawValue>()?);
        }
        Ok((key, value))
    }
}

/// What kind of JSON value `raw` is, for messages.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Parses one non-blank JSON Lines line into its key and value.
fn parse_line(line: &str) -> std::result::Result<(String, JsonText), String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let (key, value) = de
        .deserialize_map(LineVisitor)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| serde_reason(&e))?;
    let key = key.ok_or_else(|| format!(r#"missing "key": {LINE_SHAPE}"#))?;
    let value = value.ok_or_else(|| format!(r#"missing "value": {LINE_SHAPE}"#))?;
    let key: String = serde_json::from_str(key.get())
        .map_err(|_| format!(r#""key" must be a JSON string, found {}"#, json_kind(key)))?;
    Ok((key, JsonText::from_valid(value.get())))
}

pub(super) fn read<R: Read>(reader: R, source_name: &str, each: &mut Each<'_>) -> Result<u64> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut count = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(source_name, e))?;
        if n == 0 {
            return Ok(count);
        }
        line_no += 1;
        let line = std::str::from_utf8(&buf).map_err(|e| {
            dataset_error(
                source_name,
                line_no,
                format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1),
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) =
            parse_line(line).map_err(|reason| dataset_error(source_name, line_no, reason))?;
        each(key, value, line_no)?;
        count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shapes() {
        assert!(parse_line(r#"{"value": 1, "key": "k"}"#).is_ok());
        assert!(
            parse_line(r#"{"key": "k", "key": "j", "value": 1}"#)
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(
            parse_line(r#"{"key": null, "value": 1}"#)
                .unwrap_err()
                .contains("found null")
        );
        assert!(
            parse_line(r#"[1]"#)
                .unwrap_err()
                .contains("expected a JSON object")
        );
        assert!(
            parse_line(r#"{"key": "k", "value": 1} 2"#)
                .unwrap_err()
                .contains("trailing")
        );
        let (key, value) = parse_line("{\"key\": \"\\u00e9\", \"value\": null}\r\n").unwrap();
        assert_eq!((key.as_str(), value.as_str()), ("é", "null"));
    }
}
