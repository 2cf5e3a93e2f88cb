//! How kvcore's own value types are written to disk ([`ValueCodec`](super::ValueCodec)).

use super::*;

impl ValueCodec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
}

impl ValueCodec for Arc<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        std::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|e| e.to_string())
    }
}

impl ValueCodec for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        Ok(bytes.to_vec())
    }
}

impl ValueCodec for Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        Ok(Arc::from(bytes))
    }
}

impl ValueCodec for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let b: [u8; 8] = bytes
            .try_into()
            .map_err(|_| "an i64 takes 8 bytes".to_string())?;
        Ok(i64::from_le_bytes(b))
    }
}

/// JSON values are stored as compact JSON text.
impl ValueCodec for serde_json::Value {
    fn encode(&self, out: &mut Vec<u8>) {
        // Writing a `Value` to a Vec cannot fail: every map key is a string.
        let _ = serde_json::to_writer(out, self);
    }
    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
