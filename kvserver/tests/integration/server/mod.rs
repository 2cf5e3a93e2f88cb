//! End-to-end tests of kvserver over real HTTP on loopback.
//!
//! Part A runs the server in process on port 0 with a `ManualClock`, so TTLs are
//! tested by advancing time, never by sleeping. Part B starts the real binary as a
//! child process (killed by a guard on failure) and tests flags, signals, restarts
//! and start-up failures.
//!
//! Helpers live in this module on purpose: they drive a real server, not the router.

use crate::util::{self, Reply};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Method, Request, header};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kvcore::ManualClock;
use kvserver::{Config, Server};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------
// HTTP client helpers
// ---------------------------------------------------------------------------------

/// Longest any single request may take before the test fails instead of hanging.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A client of one server, optionally sending a bearer token.
#[derive(Clone)]
struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
            token: None,
        }
    }

    fn with_token(&self, token: &str) -> Http {
        Http {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        self.try_send(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, String> {
        let label = format!("{method} {path}");
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .map_err(|e| e.to_string())?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{e:?}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Reply {
                label,
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_DEADLINE, call)
            .await
            .map_err(|_| "no answer within the deadline".to_string())?
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn head(&self, path: &str) -> Reply {
        self.send(Method::HEAD, path, None).await
    }

    async fn put(&self, path: &str, body: &str) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &str) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// `ttl_ms` of a key via `GET /keys/{key}/ttl` (which never restarts a sliding TTL).
    async fn ttl_ms(&self, key: &str) -> Value {
        self.get(&format!("/keys/{key}/ttl"))
            .await
            .expect(200)
            .json()["ttl_ms"]
            .clone()
    }

    /// Sum of every counter `/stats` lists.
    async fn stats_total(&self) -> i64 {
        let stats = self.get("/stats").await.expect(200).json();
        stats
            .as_array()
            .expect("/stats is an array")
            .iter()
            .map(|e| e["hits"].as_i64().expect("hits is an integer"))
            .sum()
    }
}

/// Reads one response (headers, then a `Content-Length` body) from `stream`.
async fn read_raw_reply(stream: &mut TcpStream) -> Reply {
    tokio::time::timeout(REQUEST_DEADLINE, util::read_response(stream))
        .await
        .expect("no response within the deadline")
        .expect("connection closed before a response")
}

/// The body of the slow `PUT`s below: `"slow"`, sent in two halves.
const SLOW_FIRST: &[u8] = b"\"sl";
const SLOW_REST: &[u8] = b"ow\"";

/// Opens a connection and sends a `PUT /keys/{key}` whose body stops halfway: the
/// server has the request in its handler (holding a concurrency slot) until
/// [`finish_slow_put`] sends the rest.
async fn start_slow_put(addr: SocketAddr, key: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let head = format!(
        "PUT /keys/{key} HTTP/1.1\r\nHost: kv\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        SLOW_FIRST.len() + SLOW_REST.len()
    );
    stream.write_all(head.as_bytes()).await.expect("sending");
    stream.write_all(SLOW_FIRST).await.expect("sending");
    stream.flush().await.expect("flushing");
    stream
}

async fn finish_slow_put(mut stream: TcpStream) -> Reply {
    stream.write_all(SLOW_REST).await.expect("sending the rest");
    read_raw_reply(&mut stream).await
}

/// Parks one slow `PUT /keys/{key}` per key, each holding a concurrency slot, on a
/// server whose `--max-concurrency` is `keys.len()`; returns the parked connections
/// and a `GET probe` answered `503` while they hold every slot.
///
/// A parked request that arrived while a probe held a slot was itself shed; it is
/// noticed (its connection has an answer to read) and parked again.
async fn park_requests(http: &Http, addr: SocketAddr, keys: &[&str]) -> (Vec<TcpStream>, Reply) {
    let mut parked = Vec::new();
    for key in keys {
        parked.push(start_slow_put(addr, key).await);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = http.get("/keys/probe").await;
        if reply.status == 503 {
            return (parked, reply);
        }
        assert!(
            Instant::now() < deadline,
            "never saturated; last probe: {} {}",
            reply.status,
            reply.text()
        );
        for (stream, key) in parked.iter_mut().zip(keys) {
            let mut byte = [0u8; 1];
            match stream.try_read(&mut byte) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => *stream = start_slow_put(addr, key).await,
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// The tests: Part A in process, Part B over the real binary.
mod binary;
mod in_process;
