//! Prometheus metrics: one recorder per server, rendered by `GET /metrics`.
//!
//! The recorder is not installed globally: each [`Metrics`] owns one and records
//! through `metrics::with_local_recorder`, so two servers in one process (tests do
//! this) never mix their counts.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `http_requests_total` | counter | `method`, `route`, `status` |
//! | `http_request_duration_seconds` | histogram | `method`, `route` |
//! | `kv_keys` | gauge | |
//! | `kv_hits_total`, `kv_misses_total` | counter | |
//! | `kv_evictions_total`, `kv_expirations_total` | counter | |
//! | `kv_journal_bytes` | gauge | |
//! | `kv_journal_fsyncs_total` | counter | |
//! | `kv_journal_fsync_seconds_sum`, `kv_journal_fsync_max_seconds` | gauge | |
//! | `kv_snapshot_bytes`, `kv_last_snapshot_timestamp_seconds` | gauge | |
//! | `request_count` | counter | `method`, `route`, `status` (older dashboards) |
//! | `request_latency_seconds` | histogram | `method`, `route` (older dashboards) |
//! | `internal_error_count` | counter | (responses with status 500 and above) |
//!
//! `route` is the matched route template (`/keys/{key}`), never a raw path; requests
//! that match no route are labelled `unmatched`.

use std::time::{Duration, UNIX_EPOCH};

use metrics::{counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::state::AppState;

/// Histogram bucket bounds for request durations, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A server's metrics registry.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Present from the start, so dashboards see 0 rather than no series.
        with_local_recorder(&recorder, || counter!("internal_error_count").absolute(0));
        Metrics { recorder, handle }
    }

    /// Records one answered request.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        with_local_recorder(&self.recorder, || {
            let labels = [
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            counter!("http_requests_total", &labels).increment(1);
            counter!("request_count", &labels).increment(1);
            let labels = [("method", method.to_owned()), ("route", route.to_owned())];
            histogram!("http_request_duration_seconds", &labels).record(seconds);
            histogram!("request_latency_seconds", &labels).record(seconds);
            if status >= 500 {
                counter!("internal_error_count").increment(1);
            }
        });
    }

    /// The Prometheus text exposition, with store figures read now. `keys` is the
    /// key count, when the backend could tell it.
    pub fn render(&self, state: &AppState, keys: Option<usize>) -> String {
        let stats = state.backend().stats();
        let persistence = state.persistence();
        with_local_recorder(&self.recorder, || {
            if let Some(keys) = keys {
                gauge!("kv_keys").set(keys as f64);
            }
            counter!("kv_hits_total").absolute(stats.hits);
            counter!("kv_misses_total").absolute(stats.misses);
            counter!("kv_evictions_total").absolute(stats.evictions);
            counter!("kv_expirations_total").absolute(stats.expirations);
            if let Some(p) = persistence {
                gauge!("kv_journal_bytes").set(p.journal.bytes as f64);
                counter!("kv_journal_fsyncs_total").absolute(p.journal.fsyncs);
                gauge!("kv_journal_fsync_seconds_sum").set(p.journal.fsync_time.as_secs_f64());
                gauge!("kv_journal_fsync_max_seconds").set(p.journal.fsync_max.as_secs_f64());
                gauge!("kv_snapshot_bytes").set(p.snapshot.bytes as f64);
                if let Some(at) = p.snapshot.last_written {
                    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default();
                    gauge!("kv_last_snapshot_timestamp_seconds").set(secs.as_secs_f64());
                }
            }
        });
        self.handle.render()
    }

    /// Housekeeping the exporter needs now and then (drains histogram buffers).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
