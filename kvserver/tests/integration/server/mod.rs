//! End-to-end tests of kvserver over real HTTP on loopback.
//!
//! Part A runs the server in process on port 0 with a `ManualClock`, so TTLs are
//! tested by advancing time, never by sleeping. Part B starts the real binary as a
//! child process (killed by a guard on failure) and tests flags, signals, restarts
//! and start-up failures.
//!
//! Helpers live in this module on purpose: they drive a real server, not the router.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kvcore::ManualClock;
use kvserver::{Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------
// HTTP client helpers
// ---------------------------------------------------------------------------------

/// Longest any single request may take before the test fails instead of hanging.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// A response, fully read.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the status, with the body in the failure message.
    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts an error response: status and the API's `{"error", "message"}` body.
    #[track_caller]
    fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        let body = self.json();
        assert_eq!(body["error"], code, "error body: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error body without a message: {body}"
        );
    }
}

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

/// One HTTP/1.1 response read off a raw socket.
#[derive(Debug)]
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response (headers, then a `Content-Length` body) from `stream`.
async fn read_raw_reply(stream: &mut TcpStream) -> RawReply {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("reading a response");
            assert!(
                n > 0,
                "connection closed before a response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().expect("content-length"));
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await.expect("reading a body");
            assert!(n > 0, "connection closed inside a body");
            body.extend_from_slice(&chunk[..n]);
        }
        RawReply {
            status,
            headers,
            body: String::from_utf8_lossy(&body[..length]).into_owned(),
        }
    };
    tokio::time::timeout(REQUEST_DEADLINE, read)
        .await
        .expect("no response within the deadline")
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

async fn finish_slow_put(mut stream: TcpStream) -> RawReply {
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
