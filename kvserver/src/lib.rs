//! kvserver: an HTTP key-value service over kvcore.
//!
//! The API is described in `docs/http-api.md`; its OpenAPI document is
//! `docs/openapi.json` (`kvserver --print-openapi`).
//! [`app`] builds the router over an [`AppState`]; [`Server`] binds it and serves until
//! a shutdown signal, then finishes in-flight requests (until a deadline), stops
//! background tasks and flushes the journal; [`serve`] runs the connections. With
//! `--resp-listen`, [`resp`] serves the Redis protocol beside HTTP, over the same
//! state, and the two stop together. `main.rs` only parses flags and calls [`run`].

pub mod backend;
pub mod body;
pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod resp;
pub mod routes;
pub mod serve;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use kvcore::{Clock, SystemClock};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::Config;
pub use error::ApiError;
pub use serve::ConnectionLimits;
pub use state::AppState;

/// How often the background task purges expired keys (and, over Redis, sends the
/// sliding TTL restarts that local cache hits owe).
const PURGE_EVERY: Duration = Duration::from_millis(100);
/// How much expiry work one purge step may do.
const PURGE_BUDGET: usize = 10_000;

/// The router: every route family, the API's error bodies for unknown routes and
/// methods, and the middleware stack.
pub fn app(state: AppState) -> Router {
    let layers = ServiceBuilder::new()
        // One debug line per request, when it is answered; never bodies or headers.
        // Not a second line for a `5xx`: a refused write (`503`, `507`) is the client's
        // news, and the condition behind it is logged once where it starts; internal
        // errors are logged by `ApiError`.
        .layer(
            TraceLayer::new_for_http()
                .on_request(())
                .on_response(DefaultOnResponse::new().latency_unit(LatencyUnit::Micros))
                .on_failure(())
                .on_eos(()),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::gate,
        ))
        .layer(DefaultBodyLimit::max(state.limits().max_body_bytes));
    // Every route comes with its documentation; `openapi::document()` is the other half.
    let (routes, _) = openapi::router().split_for_parts();
    routes
        .fallback(routes::unknown)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(layers)
        .with_state(state)
}

/// A bound, not yet serving, server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    /// The Redis-protocol listener, with `--resp-listen`.
    resp: Option<(TcpListener, resp::RespSettings)>,
    state: AppState,
    connections: ConnectionLimits,
}

impl Server {
    /// Opens the stores (recovering or loading data) and binds the listen address.
    pub async fn bind(config: &Config) -> anyhow::Result<Server> {
        Self::bind_with_clock(config, Arc::new(SystemClock)).await
    }

    /// As [`Server::bind`], with expiry decided by `clock`.
    pub async fn bind_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
        let build = config.clone();
        let state = tokio::task::spawn_blocking(move || AppState::build_with_clock(&build, clock))
            .await
            .context("building the store")??;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        state.set_self_addr(addr);
        let resp = match config.resp_listen {
            Some(resp_addr) => {
                let resp = TcpListener::bind(resp_addr)
                    .await
                    .with_context(|| format!("binding --resp-listen {resp_addr}"))?;
                Some((resp, resp::RespSettings::from_config(config)))
            }
            None => None,
        };
        let keys = match state.backend().len().await {
            Ok(n) => n.to_string(),
            Err(_) => "unknown (the backend does not answer)".into(),
        };
        let data = match (state.data_dir(), state.backend().redis()) {
            (_, Some(redis)) => redis.url().to_owned(),
            (Some(dir), None) => dir.display().to_string(),
            (None, None) => "none (memory only)".into(),
        };
        let resp_addr = resp.as_ref().and_then(|(l, _)| l.local_addr().ok());
        tracing::info!(%addr, resp_addr = ?resp_addr, mode = state.mode(), keys = %keys, data_dir = %data, "kvserver listening");
        Ok(Server {
            listener,
            resp,
            state,
            connections: ConnectionLimits::from_config(config),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address the Redis protocol is served on, with `--resp-listen`.
    pub fn resp_addr(&self) -> Option<SocketAddr> {
        self.resp.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The shared state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets requests in flight
    /// finish until the shutdown deadline and closes the connections still open at
    /// it, stops the purge task and flushes the journal. Connections are handled as
    /// [`serve::serve`] describes, and Redis-protocol ones as [`resp::server`] does;
    /// both listeners stop on the same signal.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server {
            listener,
            resp,
            state,
            connections,
        } = self;
        let purger = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(PURGE_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    state.backend().upkeep(PURGE_BUDGET).await;
                    state.metrics().upkeep();
                }
            })
        };
        // One signal for both listeners.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let http = {
            let mut stopped = stopped.clone();
            serve::serve(listener, app(state.clone()), connections, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
        };
        match resp {
            Some((listener, settings)) => {
                tokio::join!(
                    http,
                    resp::serve(listener, state.clone(), settings, stopped)
                );
            }
            None => {
                http.await;
            }
        }
        signal.abort();
        purger.abort();
        let _ = purger.await;
        state.sync().await.context("flushing the journal")?;
        tracing::info!("kvserver stopped");
        Ok(())
    }
}

/// Binds and serves until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Server::bind(&config).await?.serve(shutdown).await
}
