// cargo run --release -p kv-benches --bin axum-ceiling -- 127.0.0.1:8081
//! The ceiling of the HTTP stack: axum on tokio answering `GET` and `PUT
//! /keys/{key}` with a constant, on the same route shape and runtime as kvserver but
//! with no store, no middleware and no logging. `benches/http/load.sh` puts kvserver
//! next to it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// A response the size of kvserver's answer to `GET /keys/key:00000042`.
const GOT: &str = r#"{"key":"key:00000042","value":"0000000000000042","ttl_ms":null}"#;
const PUT: &str = r#"{"created":false}"#;

async fn get_key(Path(_key): Path<String>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], GOT)
}

// The body is taken, as a store would take it, so that reading it is in the ceiling.
async fn put_key(Path(_key): Path<String>, body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        PUT,
    )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let app = Router::new().route("/keys/{key}", get(get_key).put(put_key));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("axum-ceiling listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
