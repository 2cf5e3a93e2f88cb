//! The accept loop: HTTP/1.1 connections with bounded waits, a bounded count, and a
//! shutdown with a deadline.
//!
//! [`serve`] owns the listener and one task per connection, each a hyper HTTP/1
//! connection over the axum router. It guards the process against clients that hold
//! connections without using them:
//!
//! - **Header timeout.** A client has [`ConnectionLimits::header_timeout`] to send a
//!   request's headers, counted from when the server starts waiting for them: on a new
//!   connection, and again after each response on a keep-alive connection, so the same
//!   bound closes idle keep-alive connections. hyper enforces it (its
//!   `header_read_timeout`, which needs the tokio timer set here).
//! - **Connection cap.** At most [`ConnectionLimits::max_connections`] are open. At
//!   the cap a new connection takes the place of the one that has gone longest
//!   without a request in progress (waiting for its headers, or idle between
//!   requests), which is closed without an answer: clients that open connections and
//!   send nothing, or half a request, cannot keep a probe out for a whole header
//!   timeout. While every open connection has a request in progress the loop stops
//!   accepting: new connections wait in the kernel's listen backlog (128 deep, the
//!   standard library's value), in order, and are served as soon as one closes or
//!   falls idle.
//! - **Accept failures.** When `accept` fails for lack of resources (no descriptor,
//!   no buffer space, no memory), the loop closes the connection idle longest, as at
//!   the cap, and accepts again (logging that at most once a minute). With none
//!   idle, it logs once per burst and retries after 10 ms, doubling up to 1 s, while
//!   open connections keep being served.
//! - **Shutdown.** On the shutdown signal the listener closes, connections without a
//!   request in progress (idle, or still sending headers) close,
//!   requests in flight get [`ConnectionLimits::shutdown_timeout`] to finish (their
//!   connections then close), and whatever is still open at the deadline is cut.
//!
//! The request timeout and concurrency limit are layers of the router itself
//! ([`crate::middleware`]); they start once the headers are in, so a body that stops
//! halfway is answered `503` at the request timeout. Not bounded here: a client that
//! stops reading a response once the socket's send buffer is full keeps its
//! connection (and its slot under the cap) until it reads, leaves, or the shutdown
//! deadline cuts it.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, Id, JoinSet};
use tokio::time::Instant;

use crate::config::Config;

/// Descriptors kept for the store and the runtime when the connection cap is derived
/// from the open-file limit: standard streams, the listener, the runtime's own, data
/// files and compaction's temporary files, Redis connections, and the client sockets
/// `/test/{n}` opens to this server.
const RESERVED_DESCRIPTORS: u64 = 64;
/// The most connections the derived default allows, however high the open-file limit:
/// each open connection costs buffers and a task.
const DEFAULT_MAX_CONNECTIONS_CEILING: u64 = 10_000;
/// Least time between two reports that the connection cap is reached.
const CAP_LOG_EVERY: Duration = Duration::from_secs(60);
/// How long a connection must have been idle before the loop closes it to make room.
const IDLE_GRACE_MS: u64 = 250;

/// At the cap with every connection busy, how often to look again for one that has
/// fallen idle (finishing a request wakes nothing).
const CAP_RECHECK_EVERY: Duration = Duration::from_millis(20);
/// After closing a connection to free a descriptor, how long to let the runtime drop
/// it before accepting again.
const FREED_FD_RETRY: Duration = Duration::from_millis(5);
/// The value of [`Activity::requests`] that marks a connection chosen to be closed.
const CLOSING: usize = usize::MAX / 2;

/// What one connection is doing, so that at the cap the loop can close the one that
/// has gone longest without a request in progress.
struct Activity {
    /// Requests in progress: from complete headers until the response body is dropped
    /// (sent, or abandoned). [`CLOSING`] once the loop chose to close the connection.
    requests: AtomicUsize,
    /// When the last request ended, or the connection was accepted: milliseconds
    /// since the loop started.
    idle_since: AtomicU64,
}

impl Activity {
    fn new(now: u64) -> Arc<Activity> {
        Arc::new(Activity {
            requests: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
        })
    }

    /// Claims the connection for closing if no request is in progress. A request
    /// that starts afterwards is not run (see [`Activity::start`]).
    fn claim_idle(&self) -> bool {
        self.requests
            .compare_exchange(0, CLOSING, SeqCst, SeqCst)
            .is_ok()
    }

    /// Counts a request in; `false` if the connection is being closed.
    fn start(&self) -> bool {
        self.requests.fetch_add(1, SeqCst) < CLOSING
    }

    fn end(&self, now: u64) {
        self.idle_since.store(now, SeqCst);
        self.requests.fetch_sub(1, SeqCst);
    }
}

/// Counts a request out when dropped, with the response body that carries it.
struct InProgress {
    activity: Arc<Activity>,
    epoch: Instant,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.activity.end(millis_since(self.epoch));
    }
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

type Reply = Pin<Box<dyn Future<Output = Result<hyper::Response<Body>, Infallible>> + Send>>;

/// The router as one connection's hyper service, counting its requests in
/// `activity`. A request on a connection chosen for closing is not run.
#[derive(Clone)]
struct Tracked {
    app: Router,
    activity: Arc<Activity>,
    epoch: Instant,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = hyper::Response<Body>;
    type Error = Infallible;
    type Future = Reply;

    fn call(&self, request: hyper::Request<Incoming>) -> Reply {
        let started = self.activity.start();
        let guard = InProgress {
            activity: Arc::clone(&self.activity),
            epoch: self.epoch,
        };
        if !started {
            drop(guard);
            return Box::pin(std::future::ready(Ok(closing_reply())));
        }
        let mut app = self.app.clone();
        Box::pin(async move {
            let response = tower::Service::call(&mut app, request.map(Body::new)).await?;
            // The guard lives as long as the body: until the response is sent.
            Ok(response.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &guard;
                    frame
                }))
            }))
        })
    }
}

/// The answer to a request that arrives on a connection being closed at the cap (in
/// practice never sent: the connection is cut first).
fn closing_reply() -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Body::empty());
    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    response
}

/// How connections are timed, counted and ended. Built from the flags by
/// [`ConnectionLimits::from_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request's headers, and for the next request on an idle
    /// keep-alive connection.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits the flags ask for; without `--max-connections`, a cap derived from
    /// the process's open-file limit ([`default_max_connections`]).
    pub fn from_config(config: &Config) -> ConnectionLimits {
        let max_connections = config
            .max_connections
            .map_or_else(default_max_connections, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
        ConnectionLimits {
            header_timeout: config.header_timeout,
            max_connections: max_connections.clamp(1, Semaphore::MAX_PERMITS),
            shutdown_timeout: config.shutdown_timeout,
        }
    }
}

/// The connection cap used when `--max-connections` is not given: the soft open-file
/// limit (`RLIMIT_NOFILE`) less 64 descriptors kept for the store and the runtime (a
/// quarter of a limit below 256), at most 10 000 (also when the limit is unlimited).
pub fn default_max_connections() -> usize {
    connections_for_fd_limit(open_file_limit())
}

/// The default cap for a soft open-file limit (`None`: unlimited or unknown).
fn connections_for_fd_limit(limit: Option<u64>) -> usize {
    let cap = match limit {
        None => DEFAULT_MAX_CONNECTIONS_CEILING,
        Some(limit) => limit
            .saturating_sub(RESERVED_DESCRIPTORS.min(limit / 4))
            .clamp(1, DEFAULT_MAX_CONNECTIONS_CEILING),
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit};
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// How a [`serve`] loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped {
    /// Connections still open at the shutdown deadline, closed with their requests
    /// unfinished.
    pub cut: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then shuts down within
/// `limits.shutdown_timeout` (see the module documentation).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    // Each open connection's task and activity, to close the idlest at the cap.
    let mut open: HashMap<Id, (AbortHandle, Arc<Activity>)> = HashMap::new();
    let epoch = Instant::now();
    let mut backoff = Backoff::default();
    // A connection slot held for the next accepted connection.
    let mut slot: Option<OwnedSemaphorePermit> = None;
    // A connection accepted at the cap, served once a slot frees.
    let mut held: Option<(TcpStream, SocketAddr)> = None;
    // Set once a connection was closed to make room for `held`, until its slot is
    // taken; else when to look again for an idle one.
    let mut making_room = false;
    let mut recheck_at: Option<Instant> = None;
    // Set while accepting is paused after a failure.
    let mut resume_at: Option<Instant> = None;
    // When the cap was last reported, so that a server held at its cap logs it
    // once a minute rather than on every connection.
    let mut at_cap_logged: Option<Instant> = None;
    // The same for running out of descriptors below the cap.
    let mut out_of_fds_logged: Option<Instant> = None;
    tracing::info!(
        max_connections = limits.max_connections,
        header_timeout_s = limits.header_timeout.as_secs_f64(),
        shutdown_timeout_s = limits.shutdown_timeout.as_secs_f64(),
        "accepting connections"
    );
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(ended) = connections.join_next_with_id() => {
                let ended = match ended {
                    Ok((id, ())) => {
                        open.remove(&id);
                        Ok(())
                    }
                    Err(e) => {
                        open.remove(&e.id());
                        Err(e)
                    }
                };
                log_ended(ended);
            }
            permit = Arc::clone(&slots).acquire_owned(), if slot.is_none() => {
                // The semaphore is never closed; should it be, stop serving.
                let Ok(permit) = permit else { break };
                slot = Some(permit);
            }
            () = sleep_until(resume_at), if resume_at.is_some() => resume_at = None,
            () = sleep_until(recheck_at), if recheck_at.is_some() => recheck_at = None,
            accepted = listener.accept(), if held.is_none() && resume_at.is_none() => {
                match accepted {
                    Ok(accepted) => {
                        if let Some(failures) = backoff.succeeded() {
                            tracing::info!(failures, "accepting connections again");
                        }
                        held = Some(accepted);
                    }
                    Err(error) => match AcceptError::classify(&error) {
                        AcceptError::Connection => {
                            tracing::debug!(%error, "a connection ended before it was accepted");
                        }
                        AcceptError::Resources if close_idlest(&open, millis_since(epoch)) => {
                            // Out of descriptors: one was freed as at the cap, by
                            // closing the connection idle longest. Retry once the
                            // runtime has dropped it; report as the cap is reported.
                            if out_of_fds_logged.is_none_or(|at| at.elapsed() >= CAP_LOG_EVERY) {
                                out_of_fds_logged = Some(Instant::now());
                                tracing::warn!(
                                    %error,
                                    open = connections.len(),
                                    "out of file descriptors: each new connection replaces \
                                     the one idle longest; raise the open-file limit \
                                     (ulimit -n) or lower --max-connections"
                                );
                            }
                            resume_at = Some(Instant::now() + FREED_FD_RETRY);
                        }
                        kind => {
                            let (delay, first) = backoff.failed();
                            if first {
                                tracing::warn!(
                                    %error,
                                    cause = kind.describe(),
                                    open = connections.len(),
                                    "accepting connections fails; retrying with back-off \
                                     up to 1 s while open connections are served"
                                );
                            }
                            resume_at = Some(Instant::now() + delay);
                        }
                    },
                }
            }
        }
        let Some((stream, peer)) = held.take() else {
            continue;
        };
        if let Some(permit) = slot.take() {
            making_room = false;
            recheck_at = None;
            let activity = Activity::new(millis_since(epoch));
            let service = Tracked {
                app: app.clone(),
                activity: Arc::clone(&activity),
                epoch,
            };
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            let task = connections.spawn(async move {
                // The slot frees when the connection ends, however it ends.
                let _slot = permit;
                if let Err(error) = conn.await {
                    log_connection_error(peer, &error);
                }
            });
            open.insert(task.id(), (task, activity));
            continue;
        }
        held = Some((stream, peer));
        if at_cap_logged.is_none_or(|at| at.elapsed() >= CAP_LOG_EVERY) {
            at_cap_logged = Some(Instant::now());
            tracing::warn!(
                max_connections = limits.max_connections,
                "connection cap reached: each new connection replaces the one idle \
                 longest; while all are busy, new ones wait in the listen backlog"
            );
        }
        if !making_room {
            if close_idlest(&open, millis_since(epoch)) {
                making_room = true;
            } else if recheck_at.is_none() {
                recheck_at = Some(Instant::now() + CAP_RECHECK_EVERY);
            }
        }
    }
    drop(listener);
    drop(held);
    drop(slot);
    finish(connections, &open, graceful, limits.shutdown_timeout).await
}

/// Closes the connection that has gone longest without a request in progress, if
/// any has been idle for [`IDLE_GRACE_MS`]; its slot frees once its task is dropped.
/// The grace spares a connection just accepted whose request is on its way: its
/// headers may sit unread in the socket for a moment.
fn close_idlest(open: &HashMap<Id, (AbortHandle, Arc<Activity>)>, now: u64) -> bool {
    let mut idle: Vec<&(AbortHandle, Arc<Activity>)> = open
        .values()
        .filter(|(_, a)| a.requests.load(SeqCst) == 0)
        .filter(|(_, a)| now.saturating_sub(a.idle_since.load(SeqCst)) >= IDLE_GRACE_MS)
        .collect();
    idle.sort_by_key(|(_, a)| a.idle_since.load(SeqCst));
    // A request may start between the look and the claim: then try the next.
    for (task, activity) in idle {
        if activity.claim_idle() {
            task.abort();
            tracing::debug!("at the connection cap: closed the connection idle longest");
            return true;
        }
    }
    false
}

/// Lets the connections finish within `deadline`, then cuts what is left.
async fn finish(
    mut connections: JoinSet<()>,
    tracked: &HashMap<Id, (AbortHandle, Arc<Activity>)>,
    graceful: GracefulShutdown,
    deadline: Duration,
) -> Stopped {
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            open,
            deadline_s = deadline.as_secs_f64(),
            "no longer accepting; letting open connections finish"
        );
    } else {
        tracing::info!("no longer accepting");
    }
    // Connections without a request in progress close at once, including those
    // still waiting for (part of) a request's headers; the others once their request
    // is answered.
    let mut closed_idle = HashSet::new();
    for (task, activity) in tracked.values() {
        if activity.claim_idle() {
            task.abort();
            closed_idle.insert(task.id());
        }
    }
    let drained = async {
        graceful.shutdown().await;
        while let Some(ended) = connections.join_next().await {
            log_ended(ended);
        }
    };
    if tokio::time::timeout(deadline, drained).await.is_ok() {
        return Stopped { cut: 0 };
    }
    connections.abort_all();
    let mut cut = 0;
    while let Some(ended) = connections.join_next().await {
        match ended {
            Err(e) if e.is_cancelled() => {
                if !closed_idle.contains(&e.id()) {
                    cut += 1;
                }
            }
            other => log_ended(other),
        }
    }
    tracing::warn!(
        cut,
        deadline_s = deadline.as_secs_f64(),
        "shutdown deadline reached: closed connections whose requests had not finished"
    );
    Stopped { cut }
}

/// Resolves at `at`, or never when there is none.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reports a connection task that panicked (a handler bug); the others end quietly.
fn log_ended(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!("a connection task panicked: {e}");
    }
}

fn log_connection_error(peer: SocketAddr, error: &hyper::Error) {
    if error.is_timeout() {
        tracing::debug!(%peer, "closed a connection that sent no complete request in time");
    } else {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Why `accept` failed, which decides what the loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// One connection failed before it was accepted (reset, aborted): accept the
    /// next at once.
    Connection,
    /// The process or the system is out of descriptors, buffers or memory: back off.
    Resources,
    /// Anything else: back off too, since retrying at once would spin.
    Other,
}

impl AcceptError {
    /// Classifies an error returned by `accept`.
    pub fn classify(error: &io::Error) -> AcceptError {
        use io::ErrorKind as K;
        if matches!(
            error.kind(),
            K::ConnectionAborted | K::ConnectionReset | K::ConnectionRefused | K::Interrupted
        ) {
            return AcceptError::Connection;
        }
        if error.kind() == K::OutOfMemory || is_out_of_resources(error) {
            return AcceptError::Resources;
        }
        AcceptError::Other
    }

    fn describe(self) -> &'static str {
        match self {
            AcceptError::Connection => "a connection failed",
            AcceptError::Resources => {
                "out of file descriptors or memory: raise the open-file limit (ulimit -n) \
                 or lower --max-connections"
            }
            AcceptError::Other => "unexpected error",
        }
    }
}

#[cfg(unix)]
fn is_out_of_resources(error: &io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = error.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|e| e.raw_os_error() == code)
}

#[cfg(not(unix))]
fn is_out_of_resources(_error: &io::Error) -> bool {
    false
}

/// The pause between failed `accept` calls: 10 ms, doubling to 1 s, back to 10 ms
/// once one succeeds. It also tells the loop when a burst of failures starts and
/// ends, so that a burst is logged once.
#[derive(Debug, Default)]
pub struct Backoff {
    /// Failures since the last success.
    failures: u32,
}

impl Backoff {
    /// The first pause.
    pub const FIRST: Duration = Duration::from_millis(10);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// Records a failure; returns the pause before the next attempt and whether this
    /// failure starts a burst.
    pub fn failed(&mut self) -> (Duration, bool) {
        let first = self.failures == 0;
        let doublings = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let delay = Self::FIRST.saturating_mul(1 << doublings).min(Self::MAX);
        (delay, first)
    }

    /// Records a success; returns how many failures the burst it ends had, if any.
    pub fn succeeded(&mut self) -> Option<u32> {
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(failures)
    }
}

#[cfg(test)]
mod tests;
