//! Idempotency keys: a retried non-idempotent write gets the first outcome instead of
//! applying twice.
//!
//! A client sends `Idempotency-Key: <token>` with `POST /keys/{key}/incr`, `POST
//! /values` or a hit on `/api/...`. The first request with the key runs and its
//! outcome is recorded for `--idempotency-window`; a retry of the same request (same
//! method, path, query and body) within the window gets that outcome back, marked
//! `Idempotent-Replayed: true`, without writing again. The same key with another
//! request is `422 idempotency_key_reused`. An outcome is recorded when the write ran
//! to its end, including an all-or-nothing write that found a key in its way (`409`);
//! a request refused with an error changed nothing, is not recorded, and a retry runs
//! again.
//!
//! Where the outcome lives:
//!
//! - with `--backend redis://`, in Redis, written by the same Lua script as the write
//!   (so both happen or neither does): a retry sent to any kvserver over that Redis,
//!   after a `504 outcome_unknown` whose first attempt did apply, gets the first
//!   outcome;
//! - otherwise in a [`Table`] in this process, bounded in time (the window) and in size
//!   ([`LOCAL_MAX_RECORDS`]: beyond it the oldest records go first). The write and its
//!   record are made together on the thread that runs the write, so a request whose
//!   client (or the `--request-timeout`) gave up still records what it did; a retry
//!   while the first request still runs is `409 idempotency_key_in_use`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::Response;
use hashbrown::HashMap;
use kvcore::Clock;
use parking_lot::Mutex;

use crate::error::ApiError;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The response header set on a replayed outcome.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 255;
/// Most outcomes the in-process table keeps; beyond it the oldest are forgotten first.
pub const LOCAL_MAX_RECORDS: usize = 100_000;

/// An `Idempotency-Key` and a fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// A key for the request whose method, path with query, and body are given.
    pub fn new(key: &str, method: &str, path_and_query: &str, body: &[u8]) -> IdempotencyKey {
        let mut hash = Fnv::new();
        for part in [method.as_bytes(), path_and_query.as_bytes(), body] {
            hash.write(&(part.len() as u64).to_le_bytes());
            hash.write(part);
        }
        IdempotencyKey {
            key: key.to_owned(),
            fingerprint: format!("{:016x}", hash.0),
        }
    }

    /// The key the client sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// 16 hex digits that identify the request (method, path, query and body); the same
    /// on every kvserver, so that servers sharing a Redis agree on it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// FNV-1a, 64 bits: stable across processes and builds, unlike std's hashers.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The `Idempotency-Key` header of a request, checked, with the request's method and
/// path; the body is added by [`Idempotency::with_body`]. A key that is empty, longer
/// than [`MAX_KEY_BYTES`] or not visible ASCII is `400`, and so are two headers.
#[derive(Debug, Clone)]
pub struct Idempotency(Option<(String, String, String)>);

impl FromRequestParts<AppState> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(Idempotency(None));
        };
        // Which of two keys a retry would be matched by is anyone's guess: refuse.
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "send one Idempotency-Key header, not several",
            ));
        }
        let key = value
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES)
            .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_BYTES} visible ASCII characters"
                ))
            })?;
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Ok(Idempotency(Some((
            key.to_owned(),
            parts.method.as_str().to_owned(),
            path,
        ))))
    }
}

impl Idempotency {
    /// The key for this request with `body`, if the request carried one.
    pub fn with_body(&self, body: &[u8]) -> Option<IdempotencyKey> {
        let (key, method, path) = self.0.as_ref()?;
        Some(IdempotencyKey::new(key, method, path, body))
    }
}

/// `response`, marked `Idempotent-Replayed: true` when it is a recorded outcome.
pub fn mark(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// What [`Table::begin`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new: run the write, then [`Table::finish`].
    Run,
    /// The same request ran before: its recorded outcome.
    Replay(String),
    /// The same request is still running.
    InProgress,
    /// The key came with another request.
    Mismatch,
}

/// Recorded outcomes in this process, by key; see the module docs.
pub struct Table {
    clock: Arc<dyn Clock>,
    window: Duration,
    max: usize,
    /// A plain mutex: held for a lookup and an insert or two, never across an `.await`
    /// nor while a write runs.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    /// Keys in the order they were recorded, with the `seq` of their record; the
    /// front is the oldest. An entry whose record was replaced is skipped.
    order: VecDeque<(String, u64)>,
    seq: u64,
}

struct Record {
    fingerprint: String,
    started: SystemTime,
    seq: u64,
    /// `None` while the write runs.
    outcome: Option<String>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("window", &self.window)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// A table that keeps outcomes for `window`, at most `max` of them.
    pub fn new(clock: Arc<dyn Clock>, window: Duration, max: usize) -> Table {
        Table {
            clock,
            window,
            max: max.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Looks `key` up; when it is new, records that its write runs now.
    pub fn begin(&self, key: &IdempotencyKey) -> Begin {
        let now = self.clock.now();
        let mut inner = self.inner.lock();
        self.forget_expired(&mut inner, now);
        if let Some(record) = inner.records.get(key.key()) {
            return if record.fingerprint != key.fingerprint() {
                Begin::Mismatch
            } else {
                match &record.outcome {
                    Some(outcome) => Begin::Replay(outcome.clone()),
                    None => Begin::InProgress,
                }
            };
        }
        while inner.records.len() >= self.max {
            let Some((oldest, seq)) = inner.order.pop_front() else {
                break;
            };
            if inner.records.get(&oldest).is_some_and(|r| r.seq == seq) {
                inner.records.remove(&oldest);
            }
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.order.push_back((key.key().to_owned(), seq));
        inner.records.insert(
            key.key().to_owned(),
            Record {
                fingerprint: key.fingerprint().to_owned(),
                started: now,
                seq,
                outcome: None,
            },
        );
        Begin::Run
    }

    /// Records the outcome of the write [`Table::begin`] let run, or, with `None` (the
    /// write failed and changed nothing), forgets the key so that a retry runs again.
    pub fn finish(&self, key: &IdempotencyKey, outcome: Option<&str>) {
        let mut inner = self.inner.lock();
        let Some(record) = inner.records.get_mut(key.key()) else {
            return;
        };
        if record.fingerprint != key.fingerprint() || record.outcome.is_some() {
            return;
        }
        match outcome {
            Some(outcome) => record.outcome = Some(outcome.to_owned()),
            None => {
                inner.records.remove(key.key());
            }
        }
    }

    /// Records kept now (expired ones included until the next [`Table::begin`]).
    pub fn len(&self) -> usize {
        self.inner.lock().records.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops records older than the window, oldest first.
    fn forget_expired(&self, inner: &mut Inner, now: SystemTime) {
        while let Some((key, seq)) = inner.order.front() {
            let expired = match inner.records.get(key) {
                Some(r) if r.seq == *seq => {
                    now.duration_since(r.started).unwrap_or_default() >= self.window
                }
                // Replaced or removed: the entry is stale.
                _ => true,
            };
            if !expired {
                break;
            }
            if let Some((key, seq)) = inner.order.pop_front()
                && inner.records.get(&key).is_some_and(|r| r.seq == seq)
            {
                inner.records.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvcore::ManualClock;

    fn key(k: &str, body: &str) -> IdempotencyKey {
        IdempotencyKey::new(k, "POST", "/keys/n/incr?by=2", body.as_bytes())
    }

    fn table(clock: &ManualClock, max: usize) -> Table {
        Table::new(Arc::new(clock.clone()), Duration::from_secs(60), max)
    }

    #[test]
    fn fingerprints_tell_requests_apart_and_are_stable() {
        let a = key("k", "");
        assert_eq!(a.fingerprint(), key("k", "").fingerprint());
        assert_ne!(a.fingerprint(), key("k", "x").fingerprint());
        assert_ne!(
            a.fingerprint(),
            IdempotencyKey::new("k", "POST", "/keys/n/incr?by=3", b"").fingerprint()
        );
        // The length prefixes keep parts from sliding into each other.
        assert_ne!(
            IdempotencyKey::new("k", "POST", "/ab", b"c").fingerprint(),
            IdempotencyKey::new("k", "POST", "/a", b"bc").fingerprint()
        );
        assert_eq!(a.fingerprint().len(), 16);
    }

    #[test]
    fn a_retry_gets_the_first_outcome_and_another_request_is_refused() {
        let clock = ManualClock::new();
        let t = table(&clock, 10);
        let k = key("k1", "");
        assert_eq!(t.begin(&k), Begin::Run);
        assert_eq!(t.begin(&k), Begin::InProgress);
        t.finish(&k, Some("7"));
        assert_eq!(t.begin(&k), Begin::Replay("7".into()));
        assert_eq!(t.begin(&key("k1", "other body")), Begin::Mismatch);
        // A second finish does not overwrite the first outcome.
        t.finish(&k, Some("8"));
        assert_eq!(t.begin(&k), Begin::Replay("7".into()));
    }

    #[test]
    fn a_failed_write_is_forgotten_so_a_retry_runs() {
        let clock = ManualClock::new();
        let t = table(&clock, 10);
        let k = key("k1", "");
        assert_eq!(t.begin(&k), Begin::Run);
        t.finish(&k, None);
        assert!(t.is_empty());
        assert_eq!(t.begin(&k), Begin::Run);
    }

    #[test]
    fn outcomes_are_kept_for_the_window_only() {
        let clock = ManualClock::new();
        let t = table(&clock, 10);
        let k = key("k1", "");
        assert_eq!(t.begin(&k), Begin::Run);
        t.finish(&k, Some("1"));
        clock.advance(Duration::from_secs(59));
        assert_eq!(t.begin(&k), Begin::Replay("1".into()));
        clock.advance(Duration::from_secs(1));
        assert_eq!(t.begin(&k), Begin::Run, "past the window the key is new");
        // An abandoned write's key frees up after the window too.
        let stuck = key("k2", "");
        assert_eq!(t.begin(&stuck), Begin::Run);
        clock.advance(Duration::from_secs(60));
        assert_eq!(t.begin(&stuck), Begin::Run);
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_first() {
        let clock = ManualClock::new();
        let t = table(&clock, 3);
        let keys: Vec<_> = (0..5).map(|i| key(&format!("k{i}"), "")).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.begin(k), Begin::Run);
            t.finish(k, Some(&i.to_string()));
            clock.advance(Duration::from_millis(1));
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.begin(&keys[4]), Begin::Replay("4".into()));
        assert_eq!(t.begin(&keys[2]), Begin::Replay("2".into()));
        assert_eq!(t.len(), 3);
        assert_eq!(t.begin(&keys[0]), Begin::Run, "the oldest was forgotten");
        assert_eq!(t.len(), 3);
    }
}
