//! The listing cursor of the Redis backend.

/// A listing cursor: the Redis `SCAN` cursor, and the last key already returned from
/// that cursor's batch (keys of a batch are returned in order).
#[derive(Debug, PartialEq)]
pub(super) struct ScanCursor {
    pub(super) at: u64,
    pub(super) after: Option<String>,
}

impl ScanCursor {
    /// `r`, 16 hex digits of the Redis cursor, then the hex of the last key's bytes.
    pub(super) fn encode(&self) -> String {
        let mut out = format!("r{:016x}", self.at);
        for b in self.after.as_deref().unwrap_or("").bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    pub(super) fn decode(text: &str) -> Option<ScanCursor> {
        let rest = text.strip_prefix('r')?;
        let at = u64::from_str_radix(rest.get(..16)?, 16).ok()?;
        let tail = rest.get(16..)?;
        if tail.len() % 2 != 0 || !tail.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes = (0..tail.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&tail[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let after = String::from_utf8(bytes).ok()?;
        Some(ScanCursor {
            at,
            after: (!after.is_empty()).then_some(after),
        })
    }
}
