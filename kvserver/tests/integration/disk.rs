//! A full disk, seen over HTTP: writes answer `507 insufficient_storage` and change
//! nothing, reads keep working, `/readyz` answers `503`, and once the disk can be
//! written again the server takes writes by itself. The disk is made to fail through
//! kvcore's `Faults` seam (`Config::faults`); kvcore's own tests cover every step of
//! the file layer and a real tmpfs.

use crate::util::{self, Reply};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use kvcore::SystemClock;
use kvcore::persist::{Fault, Faults, Step};
use kvserver::AppState;

/// A request with a JSON body (and `Content-Type`, body or not).
async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> Reply {
    let body = body.map(|b| Bytes::from(b.to_owned()));
    util::send(app, util::request(method, uri, body, &[JSON])).await
}

const JSON: (&str, &str) = ("content-type", "application/json");

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
        assert_eq!(reply.status, 507, "{method} {uri}: {:?}", reply.text());
        assert_eq!(reply.json()["error"], "insufficient_storage");
        let body = reply.json();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("not applied"), "{message}");
        assert!(
            reply.header("retry-after").is_some(),
            "a 507 says when to retry"
        );
    }
    // Reads keep working and see only what was written before.
    let read = call(&app, "GET", "/keys/victim", None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["value"], "old");
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
        call(&app, "GET", "/keys/victim", None).await.json()["value"],
        "new"
    );
}
