//! A full disk, seen over HTTP: writes answer `507 insufficient_storage` and change
//! nothing, reads keep working, `/readyz` answers `503`, and once the disk can be
//! written again the server takes writes by itself. The disk is made to fail through
//! kvcore's `Faults` seam (`Config::faults`); kvcore's own tests cover every step of
//! the file layer and a real tmpfs.

use crate::util;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kvcore::SystemClock;
use kvcore::persist::{Fault, Faults, Step};
use kvserver::AppState;
use serde_json::Value;
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    Reply {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn server(dir: &std::path::Path, faults: &Faults) -> (AppState, Router) {
    let data = dir.to_str().expect("a UTF-8 path");
    let mut config = util::config(&["--data-dir", data, "--fsync", "always"]);
    config.faults = Some(faults.clone());
    let state = AppState::build_with_clock(&config, Arc::new(SystemClock)).expect("a server");
    (state.clone(), kvserver::app(state))
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (state, app) = server(dir.path(), &faults);
    assert_eq!(
        call(&app, "PUT", "/keys/victim", Some("\"old\""))
            .await
            .status,
        201
    );

    // The disk fills up: nothing can be written, not even a snapshot.
    faults
        .fail(Step::JournalWrite, Fault::NoSpace)
        .fail(Step::JournalCreate, Fault::NoSpace)
        .fail(Step::SnapshotWrite, Fault::NoSpace);
    for (method, uri, body) in [
        ("PUT", "/keys/victim", Some("\"new\"")),
        ("DELETE", "/keys/victim", None),
        ("POST", "/keys/n/incr", None),
        ("POST", "/values", Some(r#"{"a":1,"b":2}"#)),
    ] {
        let reply = call(&app, method, uri, body).await;
        assert_eq!(reply.status, 507, "{method} {uri}: {:?}", reply.body);
        assert_eq!(reply.body["error"], "insufficient_storage");
        let message = reply.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("not applied"), "{message}");
        assert!(reply.retry_after.is_some(), "a 507 says when to retry");
    }
    // Reads keep working and see only what was written before.
    let read = call(&app, "GET", "/keys/victim", None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body["value"], "old");
    assert_eq!(call(&app, "GET", "/keys/a", None).await.status, 404);
    assert_eq!(call(&app, "GET", "/readyz", None).await.status, 503);
    // Under `--fsync always` every acknowledged write is on disk already, so a
    // shutdown now would exit 0; writes stay refused.
    state
        .sync()
        .await
        .expect("every acknowledged write is on disk");
    assert_eq!(call(&app, "GET", "/readyz", None).await.status, 503);

    // Room again: the store recovers by itself within a couple of seconds.
    faults.heal();
    let started = Instant::now();
    while call(&app, "GET", "/readyz", None).await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(10), "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        call(&app, "PUT", "/keys/victim", Some("\"new\""))
            .await
            .status,
        200
    );
    state
        .sync()
        .await
        .expect("everything acknowledged is on disk");
    drop((state, app));

    let (_, app) = server(dir.path(), &Faults::new());
    assert_eq!(
        call(&app, "GET", "/keys/victim", None).await.body["value"],
        "new"
    );
}
