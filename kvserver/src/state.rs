//! [`AppState`]: what every handler shares — the backend, the limits, the flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::Context;
use kvcore::persist::{Fsync, JournalStats, PersistOptions, SnapshotInfo};
use kvcore::{Bytes, Clock, Store, StoreBuilder, SystemClock};

use crate::backend::{Backend, DEFAULT_CACHE_CAPACITY, Durable, Local, RedisCache, RedisOptions};
use crate::config::Config;
use crate::idempotency::{LOCAL_MAX_RECORDS, Table};
pub use crate::limits::Limits;
use crate::load;
use crate::metrics::Metrics;

/// Shared state of the server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    limits: Limits,
    read_only: bool,
    auth_token: Option<String>,
    slots: Arc<tokio::sync::Semaphore>,
    self_addr: OnceLock<SocketAddr>,
    started: Instant,
    mode: String,
    data_dir: Option<PathBuf>,
    fsync: Fsync,
    metrics: Metrics,
}

/// What `/info` and `/metrics` report about the data directory.
#[derive(Debug, Clone, Copy)]
pub struct PersistenceInfo {
    /// The fsync policy.
    pub fsync: Fsync,
    /// Journal size and fsync timings.
    pub journal: JournalStats,
    /// Snapshot size and time.
    pub snapshot: SnapshotInfo,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("mode", &self.inner.mode)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

impl AppState {
    /// Opens (or creates) the stores the configuration asks for and loads `--load`.
    pub fn build(config: &Config) -> anyhow::Result<AppState> {
        Self::build_with_clock(config, Arc::new(SystemClock))
    }

    /// As [`AppState::build`], with expiry decided by `clock` — a `ManualClock` in
    /// tests, so that they advance time instead of sleeping.
    pub fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        let mut builder = StoreBuilder::new().clock(Arc::clone(&clock));
        if let Some(ttl) = config.ttl {
            builder = builder.default_ttl(ttl);
        }
        if config.sliding {
            builder = builder.sliding(true);
        }
        if let Some(capacity) = config.capacity {
            builder = builder.capacity(usize::try_from(capacity).unwrap_or(usize::MAX));
        }
        if let Some(bytes) = config.max_memory_bytes() {
            builder = builder.max_weight(bytes);
        }
        let limits = Limits {
            max_key_bytes: config.max_key_bytes,
            max_value_bytes: config.max_value_bytes,
            list_limit: usize::try_from(config.list_limit).unwrap_or(usize::MAX),
            max_body_bytes: config.max_body_bytes,
            max_concurrency: usize::try_from(config.max_concurrency).unwrap_or(usize::MAX),
            request_timeout: config.request_timeout,
        };

        let backend = if let Some(url) = &config.backend {
            Backend::Redis(Box::new(RedisCache::new(RedisOptions {
                url: url.clone(),
                cache_ttl: config.cache_ttl,
                capacity: config
                    .capacity
                    .map(|c| usize::try_from(c).unwrap_or(usize::MAX)),
                max_memory: config.max_memory_bytes(),
                timeout: config.backend_timeout,
                default_ttl: config.ttl,
                sliding: config.sliding,
                clock,
                max_value_bytes: config.max_value_bytes,
                max_counters: max_counters(config),
                idempotency_window: config.idempotency_window,
                wait_replicas: usize::try_from(config.backend_wait_replicas).unwrap_or(usize::MAX),
            })?))
        } else {
            let idempotency = Table::new(clock, config.idempotency_window, LOCAL_MAX_RECORDS);
            Backend::Local(local(config, builder, &limits, idempotency)?)
        };
        let persist = config.backend.is_none() && !config.no_persist && !config.read_only;

        let mode = describe_mode(config);
        Ok(AppState {
            inner: Arc::new(Inner {
                backend,
                limits,
                read_only: config.read_only,
                auth_token: config.auth_token.clone().filter(|t| !t.is_empty()),
                slots: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency)),
                self_addr: OnceLock::new(),
                started: Instant::now(),
                mode,
                data_dir: persist.then(|| config.data_dir.clone()),
                fsync: config.fsync,
                metrics: Metrics::new(),
            }),
        })
    }

    /// Where the data lives.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Request limits.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.inner.read_only
    }

    /// The bearer token requests must carry, if any.
    pub fn auth_token(&self) -> Option<&str> {
        self.inner.auth_token.as_deref()
    }

    /// Permits for requests in flight; see the `limits` middleware.
    pub fn slots(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.slots
    }

    /// The address this server listens on, once bound.
    pub fn self_addr(&self) -> Option<SocketAddr> {
        self.inner.self_addr.get().copied()
    }

    pub(crate) fn set_self_addr(&self, addr: SocketAddr) {
        let _ = self.inner.self_addr.set(addr);
    }

    /// A one-line description of the store mode, for logs and `/info`.
    pub fn mode(&self) -> &str {
        &self.inner.mode
    }

    /// The data directory, when data persists.
    pub fn data_dir(&self) -> Option<&PathBuf> {
        self.inner.data_dir.as_ref()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Journal and snapshot figures, when data persists.
    pub fn persistence(&self) -> Option<PersistenceInfo> {
        let (journal, snapshot) = self.inner.backend.local()?.persistence()?;
        Some(PersistenceInfo {
            fsync: self.inner.fsync,
            journal,
            snapshot,
        })
    }

    /// Time since the state was built.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    /// Makes what was written durable; called at shutdown.
    pub async fn sync(&self) -> anyhow::Result<()> {
        self.inner.backend.sync().await
    }
}

/// The local backend the configuration asks for: a read-only dataset, a store in the
/// data directory (with `--load` imported), or memory only; and the hit counters.
fn local(
    config: &Config,
    builder: StoreBuilder,
    limits: &Limits,
    idempotency: Table,
) -> anyhow::Result<Local> {
    let persist = !config.no_persist && !config.read_only;
    let options = PersistOptions::default().fsync(config.fsync);
    let mut durable = Vec::new();
    let store: Arc<dyn Store<Bytes>> = if config.read_only {
        let path = config
            .load
            .as_ref()
            .context("--read-only needs --load FILE")?;
        let pairs = load::read_all(path, limits)?;
        Arc::new(StoreBuilder::new().build_read_only(pairs)?)
    } else if persist {
        let dir = &config.data_dir;
        let store = open(builder, dir, options, &config.faults)
            .with_context(|| format!("opening data directory {}", dir.display()))?;
        durable.push(Durable::Values(store.clone()));
        Arc::new(store)
    } else {
        Arc::new(builder.build::<Bytes>()?)
    };
    if let (Some(path), false) = (&config.load, config.read_only) {
        load::import(path, &*store, limits)?;
    }

    // Hit counters live in a store of their own: never expired, never evicted.
    let hits: Arc<dyn Store<i64>> = if persist {
        let dir = config.data_dir.join("hits");
        let hits = open(StoreBuilder::new(), &dir, options, &config.faults)
            .with_context(|| format!("opening data directory {}", dir.display()))?;
        durable.push(Durable::Hits(hits.clone()));
        Arc::new(hits)
    } else {
        Arc::new(StoreBuilder::new().build::<i64>()?)
    };
    let blocking_writes = persist && config.fsync == Fsync::Always;
    Ok(Local::new(
        store,
        hits,
        durable,
        blocking_writes,
        max_counters(config),
        idempotency,
    ))
}

fn max_counters(config: &Config) -> usize {
    usize::try_from(config.max_counters).unwrap_or(usize::MAX)
}

/// Opens a data directory, through `faults` when a test gave some.
fn open<V: kvcore::persist::ValueCodec>(
    builder: StoreBuilder,
    dir: &std::path::Path,
    options: PersistOptions,
    faults: &Option<kvcore::persist::Faults>,
) -> kvcore::Result<kvcore::persist::PersistentStore<V>> {
    match faults {
        Some(faults) => builder.open_with_faults(dir, options, faults.clone()),
        None => builder.open(dir, options),
    }
}

fn describe_mode(config: &Config) -> String {
    if config.read_only {
        return "read-only".into();
    }
    let mut parts = Vec::new();
    match (config.ttl, config.sliding) {
        (Some(ttl), true) => parts.push(format!("sliding ttl {}s", ttl.as_secs_f64())),
        (Some(ttl), false) => parts.push(format!("ttl {}s", ttl.as_secs_f64())),
        (None, true) => parts.push("sliding".into()),
        (None, false) => {}
    }
    if config.backend.is_some() {
        let kind = match &config.backend {
            Some(url) if url.starts_with("redis+cluster://") => "redis cluster",
            _ => "redis",
        };
        parts.push(format!(
            "{kind} backend, local cache {} for {}s",
            config.capacity.unwrap_or(DEFAULT_CACHE_CAPACITY as u64),
            config.cache_ttl.as_secs_f64()
        ));
    } else if let Some(c) = config.capacity {
        parts.push(format!("lru capacity {c}"));
    }
    if let Some(bytes) = config.max_memory_bytes() {
        parts.push(format!("max memory {bytes} bytes"));
    }
    if parts.is_empty() {
        parts.push("plain".into());
    }
    parts.join(", ")
}
