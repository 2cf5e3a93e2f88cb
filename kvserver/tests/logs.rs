//! What the server logs about the requests it answers: a refused request is the
//! client's news, not an operator's, so answers such as `503` or `507` add no line at
//! the default level (`info`); the conditions behind them are logged once, where they
//! start and end.
//!
//! A test binary of its own, apart from `integration/`: it captures logs with a
//! thread-local subscriber, and tracing decides per call site, for the whole process,
//! whether anyone listens, so tests running beside it in one process could make it
//! miss lines.

use std::io;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use kvserver::{AppState, Config};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// Collects every formatted log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Sends `POST /test/1` through the router alone (no socket, so it is answered
/// `503`) with a subscriber at `level`, and returns what was logged.
async fn log_of_a_503(level: tracing::Level) -> String {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    // The test runtime runs on this thread, so a thread-local subscriber sees it all.
    let _guard = tracing::subscriber::set_default(subscriber);
    let config = Config::try_parse_from(["kvserver", "--no-persist"]).expect("flags");
    let state = AppState::build(&config).expect("state");
    let request = Request::post("/test/1")
        .body(Body::empty())
        .expect("a request");
    let response = kvserver::app(state)
        .oneshot(request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), 503);
    captured.text()
}

#[tokio::test]
async fn a_5xx_answer_adds_no_line_at_the_default_level() {
    let log = log_of_a_503(tracing::Level::INFO).await;
    assert!(
        !log.contains("503"),
        "a refused request was logged at info or above:\n{log}"
    );
}

#[tokio::test]
async fn a_5xx_answer_is_one_debug_line() {
    let log = log_of_a_503(tracing::Level::DEBUG).await;
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("503")).collect();
    assert!(
        lines.len() == 1 && lines[0].contains("DEBUG"),
        "expected one debug line for the 503:\n{log}"
    );
}
