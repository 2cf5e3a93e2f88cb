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
//! | `kv_hit_counters`, `kv_hit_counters_max` | gauge | |
//! | `kv_memory_used_bytes`, `kv_memory_max_bytes` | gauge | with `--max-memory` only |
//! | `kv_journal_failed` | gauge | 1 while writes are refused for a full disk |
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
//! `route` is the matched route template as the OpenAPI document spells it
//! (`/keys/{key}`, `/api/{path}`), never a raw path; requests that match no route are
//! labelled `unmatched`. Every metric has its `# HELP` and `# TYPE` lines.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::http::Method;
use hashbrown::{Equivalent, HashMap};
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram, with_local_recorder,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use parking_lot::RwLock;

use kvcore::Stats;
use kvcore::persist::{JournalStats, SnapshotInfo};

/// Histogram bucket bounds for request durations, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The store's figures `/metrics` reports beside the request series, read when it is
/// asked: a plain struct, so that this module knows nothing of the server's state.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Hits, misses, evictions and expirations.
    pub stats: Stats,
    /// Live keys, when the backend could tell (the gauge keeps its last value if not).
    pub keys: Option<usize>,
    /// Paths with a hit counter, when the backend could tell.
    pub counters: Option<usize>,
    /// The bound `--max-counters`.
    pub max_counters: usize,
    /// The journal and snapshot of a local store kept on disk.
    pub persistence: Option<(JournalStats, SnapshotInfo)>,
    /// Bytes of keys and values held, and the `--max-memory` bound, when there is one.
    pub memory: Option<(u64, u64)>,
}

/// A server's metrics registry.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// The handles of each (method, route, status) seen, so that recording a request
    /// neither builds label strings nor looks the series up in the registry. Bounded:
    /// routes are templates, methods outside the standard ones count as `other`.
    series: RwLock<HashMap<SeriesKey, Arc<Series>>>,
    internal_errors: Counter,
}

/// Which series a request is counted in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    method: &'static str,
    route: String,
    status: u16,
}

/// A [`SeriesKey`] borrowed from a request, to look one up without allocating.
#[derive(Hash)]
struct SeriesRef<'a> {
    method: &'static str,
    route: &'a str,
    status: u16,
}

impl Equivalent<SeriesKey> for SeriesRef<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.method == key.method && self.route == key.route && self.status == key.status
    }
}

/// The handles one request updates, under the current and the older names.
struct Series {
    requests: [Counter; 2],
    duration: [Histogram; 2],
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

/// Gives every metric its `# HELP` text; call it with the recorder in place.
fn describe() {
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, in seconds, by method and route template"
    );
    describe_gauge!("kv_keys", "Live keys in the store");
    describe_counter!("kv_hits_total", "Reads that found their key");
    describe_counter!("kv_misses_total", "Reads that did not find their key");
    describe_counter!(
        "kv_evictions_total",
        "Live keys evicted to stay within --capacity or --max-memory"
    );
    describe_counter!(
        "kv_expirations_total",
        "Keys removed because their TTL passed"
    );
    describe_gauge!(
        "kv_hit_counters",
        "Paths whose hits /api/... counts (at most --max-counters)"
    );
    describe_gauge!("kv_hit_counters_max", "The bound --max-counters");
    describe_gauge!(
        "kv_memory_used_bytes",
        "Bytes that keys and values take, each entry with its overhead (with --max-memory)"
    );
    describe_gauge!("kv_memory_max_bytes", "The bound --max-memory, in bytes");
    describe_gauge!("kv_journal_bytes", "Size of the journal file, in bytes");
    describe_gauge!(
        "kv_journal_failed",
        "1 while the journal cannot be written (a full disk) and writes are refused, else 0"
    );
    describe_counter!("kv_journal_fsyncs_total", "Fsyncs of the journal");
    describe_gauge!(
        "kv_journal_fsync_seconds_sum",
        "Total time spent in journal fsyncs, in seconds"
    );
    describe_gauge!(
        "kv_journal_fsync_max_seconds",
        "Longest journal fsync, in seconds"
    );
    describe_gauge!("kv_snapshot_bytes", "Size of the last snapshot, in bytes");
    describe_gauge!(
        "kv_last_snapshot_timestamp_seconds",
        "When the last snapshot was written, in Unix seconds"
    );
    describe_counter!(
        "request_count",
        "HTTP requests answered (the older name of http_requests_total)"
    );
    describe_histogram!(
        "request_latency_seconds",
        "Time to answer an HTTP request, in seconds (the older name of \
         http_request_duration_seconds)"
    );
    describe_counter!(
        "internal_error_count",
        "HTTP responses with a status of 500 or above"
    );
}

/// The method as a label: the standard methods by name, any other as `other`, so that
/// clients inventing methods cannot grow the registry without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
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
        let internal_errors = with_local_recorder(&recorder, || {
            describe();
            let c = counter!("internal_error_count");
            c.absolute(0);
            c
        });
        Metrics {
            recorder,
            handle,
            series: RwLock::new(HashMap::new()),
            internal_errors,
        }
    }

    /// The handles of a series, registered the first time it is seen.
    fn series(&self, method: &'static str, route: &str, status: u16) -> Arc<Series> {
        let wanted = SeriesRef {
            method,
            route,
            status,
        };
        if let Some(series) = self.series.read().get(&wanted) {
            return Arc::clone(series);
        }
        let series = with_local_recorder(&self.recorder, || {
            let labels = [
                ("method", method.to_owned()),
                ("route", route.to_owned()),
                ("status", status.to_string()),
            ];
            let requests = [
                counter!("http_requests_total", &labels),
                counter!("request_count", &labels),
            ];
            let labels = &labels[..2];
            let duration = [
                histogram!("http_request_duration_seconds", labels),
                histogram!("request_latency_seconds", labels),
            ];
            Arc::new(Series { requests, duration })
        });
        let key = SeriesKey {
            method,
            route: route.to_owned(),
            status,
        };
        Arc::clone(self.series.write().entry(key).or_insert(series))
    }

    /// Records one answered request. `route` is the matched route template.
    pub fn request(&self, method: &Method, route: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        let series = self.series(method_label(method), route, status);
        for counter in &series.requests {
            counter.increment(1);
        }
        for histogram in &series.duration {
            histogram.record(seconds);
        }
        if status >= 500 {
            self.internal_errors.increment(1);
        }
    }

    /// The Prometheus text exposition, with the store's figures read now.
    pub fn render(&self, figures: &Figures) -> String {
        let Figures {
            stats,
            keys,
            counters,
            max_counters,
            persistence,
            memory,
        } = figures;
        with_local_recorder(&self.recorder, || {
            if let Some(keys) = keys {
                gauge!("kv_keys").set(*keys as f64);
            }
            if let Some(counters) = counters {
                gauge!("kv_hit_counters").set(*counters as f64);
            }
            gauge!("kv_hit_counters_max").set(*max_counters as f64);
            if let Some((used, max)) = memory {
                gauge!("kv_memory_used_bytes").set(*used as f64);
                gauge!("kv_memory_max_bytes").set(*max as f64);
            }
            counter!("kv_hits_total").absolute(stats.hits);
            counter!("kv_misses_total").absolute(stats.misses);
            counter!("kv_evictions_total").absolute(stats.evictions);
            counter!("kv_expirations_total").absolute(stats.expirations);
            if let Some((journal, snapshot)) = persistence {
                gauge!("kv_journal_bytes").set(journal.bytes as f64);
                gauge!("kv_journal_failed").set(if journal.failed { 1.0 } else { 0.0 });
                counter!("kv_journal_fsyncs_total").absolute(journal.fsyncs);
                gauge!("kv_journal_fsync_seconds_sum").set(journal.fsync_time.as_secs_f64());
                gauge!("kv_journal_fsync_max_seconds").set(journal.fsync_max.as_secs_f64());
                gauge!("kv_snapshot_bytes").set(snapshot.bytes as f64);
                if let Some(at) = snapshot.last_written {
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
