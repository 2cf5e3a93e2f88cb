//! The Redis protocol (`--resp-listen`), spoken by real clients: raw sockets for the
//! exact bytes, the `redis` crate as a client library, `redis-cli`, and a
//! `redis-server` of the test's own to compare replies with.
//!
//! Every server here runs in process on port 0 with a `ManualClock`, so TTLs are
//! tested by advancing time.

mod auth;
mod backend;
mod cli;
mod commands;
mod compat;
mod cross;
mod model;
mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use clap::Parser;
use kvcore::ManualClock;
use kvserver::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::Running;

/// Longest any reply may take before a test fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A kvserver serving HTTP and the Redis protocol, in this process.
pub struct Kv {
    /// The Redis-protocol address.
    pub addr: SocketAddr,
    /// The HTTP address.
    pub http: SocketAddr,
    /// The clock expiry follows.
    pub clock: ManualClock,
    running: Running,
}

impl Kv {
    /// Memory only, both listeners on port 0, `args` added.
    pub async fn start(args: &[&str]) -> Kv {
        let mut argv = vec![
            "kvserver",
            "--listen",
            "127.0.0.1:0",
            "--resp-listen",
            "127.0.0.1:0",
            "--no-persist",
        ];
        argv.extend_from_slice(args);
        Kv::start_with(Config::try_parse_from(&argv).expect("flags")).await
    }

    /// A server for `config` (which must name `--resp-listen`).
    pub async fn start_with(config: Config) -> Kv {
        let clock = ManualClock::new();
        let server = Server::bind_with_clock(&config, Arc::new(clock.clone()))
            .await
            .expect("binding");
        let addr = server.resp_addr().expect("a Redis-protocol listener");
        let running = Running::serve(server);
        Kv {
            addr,
            http: running.addr,
            clock,
            running,
        }
    }

    /// A new raw connection.
    pub async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }

    /// A `redis` crate client.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(format!("redis://{}/", self.addr)).expect("a client")
    }

    /// A `redis` crate connection.
    pub async fn con(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .expect("connecting")
    }

    /// Shuts down gracefully; fails if serving ended with an error.
    pub async fn shutdown(self) {
        self.running.stop(DEADLINE).await;
    }
}

/// A raw Redis-protocol connection: what is sent and received, byte for byte.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

/// A request as RESP: an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Raw {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connecting"),
            buf: BytesMut::new(),
        }
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("sending");
    }

    /// Sends one command.
    pub async fn send(&mut self, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send_raw(&encode(&args)).await;
    }

    /// The next whole reply, as its bytes; `None` when the connection closes first.
    pub async fn reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if !self.buf.is_empty() {
                // RESP3 has no `$-1`, RESP2 no `_` or `%`: either may be coming.
                let whole = match redis_protocol::resp3::decode::complete::decode(&self.buf) {
                    Ok(found) => found.map(|(_, len)| len),
                    Err(_) => match redis_protocol::resp2::decode::decode(&self.buf) {
                        Ok(found) => found.map(|(_, len)| len),
                        Err(e) => {
                            panic!("not RESP ({e:?}): {:?}", String::from_utf8_lossy(&self.buf))
                        }
                    },
                };
                if let Some(len) = whole {
                    return Some(self.buf.split_to(len).to_vec());
                }
            }
            let read = tokio::time::timeout(DEADLINE, self.stream.read_buf(&mut self.buf))
                .await
                .expect("a reply within the deadline");
            match read {
                Ok(0) | Err(_) => {
                    assert!(
                        self.buf.is_empty(),
                        "closed inside a reply: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
                Ok(_) => {}
            }
        }
    }

    /// The next reply as text (invalid UTF-8 replaced), failing if none comes.
    pub async fn text(&mut self) -> String {
        let reply = self
            .reply()
            .await
            .expect("a reply, not a closed connection");
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// Sends one command and returns its reply as text.
    pub async fn call(&mut self, args: &[&str]) -> String {
        self.send(args).await;
        self.text().await
    }

    /// Whether the server closed the connection (after any replies still unread).
    pub async fn closed(&mut self) -> bool {
        self.reply().await.is_none()
    }
}
