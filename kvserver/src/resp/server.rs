//! The Redis-protocol accept loop: a bounded number of connections, an idle sweep,
//! and a shutdown with a deadline, beside the HTTP listener and over the same state.
//!
//! - **Connection cap.** At most `--max-connections` Redis-protocol connections are
//!   open (a budget of their own, beside the HTTP listener's). One more is answered
//!   `-ERR max number of clients reached` and closed, as Redis answers it, and
//!   counted in `INFO`'s `rejected_connections`; client libraries report it and
//!   their pools retry.
//! - **Idle sweep.** A connection that goes `--resp-idle-timeout` (`CONFIG SET
//!   timeout`) without a complete command, or that long unable to take its replies
//!   (a client that stopped reading), is closed, as Redis's `timeout` closes it. A
//!   command still running is never cut. The sweep runs every quarter of the timeout
//!   (at most once a second).
//! - **Accept failures** back off as the HTTP loop's do ([`crate::serve::Backoff`]).
//! - **Shutdown.** On the shutdown signal the listener closes; each connection
//!   finishes the commands it has read, sends their replies and closes; those still
//!   open at `--shutdown-timeout` are cut.
//!
//! Load shedding (`--max-concurrency`) is per batch of pipelined commands, in the
//! connection ([`super::connection`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

use super::clients::{Client, Clients};
use super::codec::RequestLimits;
use super::connection;
use super::cursors::Cursors;
use crate::config::Config;
use crate::serve::{AcceptError, Backoff, ConnectionLimits};
use crate::state::AppState;

/// The listener's settings, from the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespSettings {
    /// How large a request may be.
    pub limits: RequestLimits,
    /// Most connections open at once.
    pub max_clients: usize,
    /// Idle time after which a connection is closed (zero: never).
    pub idle_timeout: Duration,
    /// Longest a shutdown waits for connections to finish.
    pub shutdown_timeout: Duration,
}

impl RespSettings {
    /// The settings the flags ask for.
    pub fn from_config(config: &Config) -> RespSettings {
        let connections = ConnectionLimits::from_config(config);
        RespSettings {
            limits: RequestLimits {
                max_args: config.resp_max_args,
                max_request_bytes: config.max_body_bytes,
            },
            max_clients: connections.max_connections,
            idle_timeout: config.resp_idle_timeout,
            shutdown_timeout: config.shutdown_timeout,
        }
    }
}

/// Counters `INFO stats` reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections_received: AtomicU64,
    /// Connections refused at the cap.
    pub rejected_connections: AtomicU64,
    /// Commands run (or refused).
    pub commands_processed: AtomicU64,
    /// Batches of commands shed under `--max-concurrency`.
    pub shed: AtomicU64,
}

impl Counters {
    /// Zeroes every counter (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        for counter in [
            &self.connections_received,
            &self.rejected_connections,
            &self.commands_processed,
            &self.shed,
        ] {
            counter.store(0, Relaxed);
        }
    }
}

/// What the listener's connections share.
#[derive(Debug)]
pub struct Shared {
    /// The open connections.
    pub clients: Clients,
    /// `SCAN`'s cursors.
    pub cursors: Cursors,
    /// The counters of `INFO stats`.
    pub counters: Counters,
    /// The settings.
    pub settings: RespSettings,
    /// The address the listener is bound to.
    pub addr: SocketAddr,
    /// The idle timeout in milliseconds (0: none); `CONFIG SET timeout` changes it.
    idle_timeout_ms: AtomicU64,
    /// The connection cap; `CONFIG SET maxclients` changes it.
    max_clients: AtomicUsize,
    next_id: AtomicU64,
    epoch: Instant,
}

impl Shared {
    /// The shared state of a listener on `addr`.
    pub fn new(settings: RespSettings, addr: SocketAddr) -> Shared {
        Shared {
            clients: Clients::default(),
            cursors: Cursors::default(),
            counters: Counters::default(),
            settings,
            addr,
            idle_timeout_ms: AtomicU64::new(
                u64::try_from(settings.idle_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            max_clients: AtomicUsize::new(settings.max_clients),
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the listener started.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The idle timeout (zero: none).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.load(Relaxed))
    }

    /// The connection cap.
    pub fn max_clients(&self) -> usize {
        self.max_clients.load(Relaxed)
    }

    /// Changes the connection cap; connections already open stay open.
    pub fn set_max_clients(&self, max: usize) {
        self.max_clients.store(max.max(1), Relaxed);
    }

    /// Changes the idle timeout (zero: none).
    pub fn set_idle_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.idle_timeout_ms.store(ms, Relaxed);
    }
}

/// How often the sweep looks for idle connections under `timeout`.
fn sweep_every(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        return Duration::from_secs(1);
    }
    (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// Serves the Redis protocol on `listener` until `shutdown` turns true (see the
/// module documentation).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    settings: RespSettings,
    mut shutdown: watch::Receiver<bool>,
) {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let shared = Arc::new(Shared::new(settings, addr));
    let mut connections = JoinSet::new();
    let mut ids: HashMap<Id, u64> = HashMap::new();
    let mut backoff = Backoff::default();
    let mut resume_at: Option<Instant> = None;
    let mut sweep = tokio::time::interval(sweep_every(shared.idle_timeout()));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut swept_with = shared.idle_timeout();
    let mut cap_logged: Option<Instant> = None;
    // What each connection watches for the shutdown.
    let stopping = shutdown.clone();
    tracing::info!(
        %addr,
        max_clients = settings.max_clients,
        idle_timeout_s = settings.idle_timeout.as_secs_f64(),
        "serving the Redis protocol"
    );
    loop {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(ended) = connections.join_next_with_id() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Some(client) = ids.remove(&id) {
                    shared.clients.remove(client);
                }
                if let Err(e) = ended
                    && e.is_panic()
                {
                    tracing::error!("a Redis-protocol connection task panicked: {e}");
                }
            }
            _ = sweep.tick() => {
                let timeout = shared.idle_timeout();
                if !timeout.is_zero() {
                    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                    let closed = shared.clients.close_idle(shared.now_ms(), timeout_ms);
                    if closed > 0 {
                        tracing::debug!(closed, "closed idle Redis-protocol connections");
                    }
                }
                if timeout != swept_with {
                    swept_with = timeout;
                    sweep = tokio::time::interval(sweep_every(timeout));
                    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
            () = sleep_until(resume_at), if resume_at.is_some() => resume_at = None,
            accepted = listener.accept(), if resume_at.is_none() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(failures) = backoff.succeeded() {
                        tracing::info!(failures, "accepting Redis-protocol connections again");
                    }
                    shared.counters.connections_received.fetch_add(1, Relaxed);
                    if shared.clients.len() >= shared.max_clients() {
                        refuse(stream);
                        shared.counters.rejected_connections.fetch_add(1, Relaxed);
                        if cap_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                            cap_logged = Some(Instant::now());
                            tracing::warn!(
                                max_clients = shared.max_clients(),
                                "Redis-protocol connection cap reached: new connections are \
                                 refused with 'max number of clients reached'"
                            );
                        }
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let id = shared.next_id.fetch_add(1, Relaxed);
                    let client = Arc::new(Client::new(id, peer, addr, shared.now_ms()));
                    shared.clients.add(Arc::clone(&client));
                    let task = connections.spawn(connection::serve(
                        stream,
                        state.clone(),
                        Arc::clone(&shared),
                        client,
                        stopping.clone(),
                    ));
                    ids.insert(task.id(), id);
                    shared.clients.set_task(id, task);
                }
                Err(error) => match AcceptError::classify(&error) {
                    AcceptError::Connection => {
                        tracing::debug!(%error, "a connection ended before it was accepted");
                    }
                    kind => {
                        let (delay, first) = backoff.failed();
                        if first {
                            tracing::warn!(
                                %error,
                                ?kind,
                                open = connections.len(),
                                "accepting Redis-protocol connections fails; retrying with \
                                 back-off up to 1 s"
                            );
                        }
                        resume_at = Some(Instant::now() + delay);
                    }
                },
            },
        }
    }
    drop(listener);
    finish(connections, settings.shutdown_timeout).await;
}

/// Answers a connection beyond the cap as Redis does, and closes it.
fn refuse(stream: TcpStream) {
    // A fresh socket's send buffer takes these few bytes at once; if it does not,
    // the client is gone anyway.
    let _ = stream.try_write(b"-ERR max number of clients reached\r\n");
}

/// Lets the connections finish their commands within `deadline`, then cuts the rest.
async fn finish(mut connections: JoinSet<()>, deadline: Duration) {
    let open = connections.len();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(deadline, drained).await.is_ok() {
        tracing::info!(open, "Redis-protocol listener stopped");
        return;
    }
    let cut = connections.len();
    connections.shutdown().await;
    tracing::warn!(
        cut,
        deadline_s = deadline.as_secs_f64(),
        "shutdown deadline reached: closed Redis-protocol connections still running commands"
    );
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_runs_often_enough_for_the_timeout() {
        assert_eq!(sweep_every(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(
            sweep_every(Duration::from_secs(300)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_every(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            sweep_every(Duration::from_millis(1)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn settings_follow_the_flags() {
        use clap::Parser;
        let config = Config::try_parse_from([
            "kvserver",
            "--max-connections",
            "5",
            "--resp-idle-timeout",
            "0",
            "--resp-max-args",
            "64",
            "--max-body-bytes",
            "1000",
        ])
        .unwrap();
        let s = RespSettings::from_config(&config);
        assert_eq!(s.max_clients, 5);
        assert_eq!(s.idle_timeout, Duration::ZERO);
        assert_eq!(
            s.limits,
            RequestLimits {
                max_args: 64,
                max_request_bytes: 1000
            }
        );
        let config = Config::try_parse_from(["kvserver"]).unwrap();
        let s = RespSettings::from_config(&config);
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.limits.max_args, 1 << 20);
        assert!(Config::try_parse_from(["kvserver", "--resp-max-args", "0"]).is_err());
        assert!(Config::try_parse_from(["kvserver", "--resp-idle-timeout", "-1"]).is_err());
    }
}
