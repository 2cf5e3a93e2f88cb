//! Helpers shared by the kvserver integration tests. Keep this small and generic:
//! helpers of one suite belong in that suite's own module.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt;
use kvserver::Config;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tower::ServiceExt;

#[macro_use]
pub mod redis;
#[macro_use]
pub mod cluster;

/// A [`Config`] from `args`, as if given on the command line after `kvserver`.
///
/// Nothing is added: pass `--no-persist` or `--data-dir TEMPDIR` so that a test never
/// touches `./kvdata`.
pub fn config(args: &[&str]) -> Config {
    let mut argv = vec!["kvserver"];
    argv.extend_from_slice(args);
    Config::try_parse_from(argv).unwrap_or_else(|e| panic!("bad test flags {args:?}: {e}"))
}

/// A server serving in this process on `127.0.0.1:0`; stopped (and awaited) by
/// [`Running::stop`], aborted if dropped.
pub struct Running {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Binds `127.0.0.1:0`, memory only, with `args` added.
    pub async fn start(args: &[&str]) -> Running {
        let mut argv = vec!["--listen", "127.0.0.1:0", "--no-persist"];
        argv.extend_from_slice(args);
        let server = kvserver::Server::bind(&config(&argv))
            .await
            .expect("binding");
        Running::serve(server)
    }

    /// Serves a bound server in a task, until [`Running::stop`].
    pub fn serve(server: kvserver::Server) -> Running {
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Sends the shutdown signal.
    pub fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown if not done yet, then waits up to `within` for `serve` to
    /// return `Ok`.
    pub async fn stop(mut self, within: std::time::Duration) {
        self.signal();
        tokio::time::timeout(within, &mut self.task)
            .await
            .expect("serve did not return in time")
            .expect("the server task panicked")
            .expect("serve returned an error");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response, read whole: status, headers and body, with a label (`METHOD URI` when
/// known) that failure messages start with.
#[derive(Debug)]
pub struct Reply {
    pub label: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics, showing the body, when it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: status {} body is not JSON ({e}): {:?}",
                self.label,
                self.status,
                self.text()
            )
        })
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn try_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The value of header `name`, when present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, with the body in the failure message; returns `self` for
    /// more checks.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: status (body {:?})",
            self.label,
            self.text()
        );
        self
    }

    /// Asserts an error answer: the status, the API's error `code`, and a non-empty
    /// `message`, which it returns.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> String {
        self.expect(status);
        let body = self.json();
        assert_eq!(body["error"], code, "{}: error body {body}", self.label);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{}: error body without a message: {body}",
            self.label
        );
        message.to_owned()
    }

    /// The `error` code of a JSON error body; empty when there is none.
    #[track_caller]
    pub fn error_code(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

/// A request to send with [`send`]: `headers`, and `body` when given, sent as JSON
/// (with `Content-Type: application/json` unless `headers` names another).
pub fn request(
    method: &str,
    uri: &str,
    body: Option<Bytes>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let typed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if body.is_some() && !typed {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    request
        .body(body.map_or_else(Body::empty, Body::from))
        .unwrap_or_else(|e| panic!("building {method} {uri}: {e}"))
}

/// Sends `request` through `app` with `oneshot` (no socket) and reads the response
/// whole.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let label = format!("{} {}", request.method(), request.uri());
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{label}: reading the body: {e}"))
        .to_bytes();
    Reply {
        label,
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Reads one HTTP/1.1 response (head, then a `Content-Length` body) off a raw
/// socket; `None` when the connection closes before the first byte of one. Panics
/// when it closes inside a response.
pub async fn read_response(stream: &mut TcpStream) -> Option<Reply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) if buf.is_empty() => return None,
            Ok(0) | Err(_) => panic!(
                "closed inside a response: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| StatusCode::from_bytes(s.as_bytes()).ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .unwrap_or_else(|e| panic!("bad header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value.trim())
            .unwrap_or_else(|e| panic!("bad header value {value:?}: {e}"));
        headers.append(name, value);
    }
    let length: usize = headers.get(header::CONTENT_LENGTH).map_or(0, |v| {
        v.to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("content-length")
    });
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.expect("reading a body");
        assert!(n > 0, "closed inside a body");
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Reply {
        label: status_line.to_owned(),
        status,
        headers,
        body: Bytes::from(body),
    })
}
