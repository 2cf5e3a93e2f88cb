//! Connections over real TCP on loopback: the header timeout (half-sent requests and
//! idle keep-alive connections), the request timeout on a half-sent body, the
//! connection cap, the shutdown deadline, and a process that runs out of file
//! descriptors.
//!
//! Real sockets run on real time, so the timeouts here are a few hundred
//! milliseconds; each test takes well under five seconds.

use crate::util::{self, Reply, Running};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::put;
use kvserver::serve::{self, ConnectionLimits, Stopped};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The header timeout most tests use (`--header-timeout 0.3`), and the shutdown
/// deadline of the test that calls [`serve::serve`] directly. Timers never fire early,
/// so nothing they end may end sooner.
const TIMEOUT: Duration = Duration::from_millis(300);
/// Longest any single wait may take before the test fails rather than hangs.
const PATIENCE: Duration = Duration::from_secs(3);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: kv\r\n\r\n";

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connecting")
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("sending");
    stream.flush().await.expect("flushing");
}

/// Reads one response, or `None` when the connection closes first. Panics after
/// [`PATIENCE`].
async fn read_reply(stream: &mut TcpStream) -> Option<Reply> {
    tokio::time::timeout(PATIENCE, util::read_response(stream))
        .await
        .expect("neither a response nor a close in time")
}

/// Reads until the server closes the connection; returns what it sent and when it
/// closed.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut got = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the server kept the connection open");
    (String::from_utf8_lossy(&got).into_owned(), Instant::now())
}

/// Sends `GET /healthz` and asserts a `200`, keeping the connection open.
async fn healthz(stream: &mut TcpStream) {
    send(stream, HEALTHZ).await;
    let reply = read_reply(stream)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 200, "{reply:?}");
}

// ---------------------------------------------------------------------------------
// Header timeout
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_are_closed_after_the_header_timeout() {
    let s = Running::start(&["--header-timeout", "0.3"]).await;

    // Half a request line and one header, then silence.
    let started = Instant::now();
    let mut half = connect(s.addr).await;
    send(&mut half, b"GET /healthz HTTP/1.1\r\nHost: kv\r\n").await;
    // A client that connects and sends nothing at all.
    let mut silent = connect(s.addr).await;
    // Someone else is served meanwhile.
    let mut other = connect(s.addr).await;
    healthz(&mut other).await;

    for (name, stream) in [("half-sent", &mut half), ("silent", &mut silent)] {
        let (sent, closed) = read_until_closed(stream).await;
        assert!(sent.is_empty(), "{sent:?}");
        let after = closed - started;
        assert!(after >= TIMEOUT, "{name}: closed after {after:?}");
    }
    // The server is unharmed.
    let mut fresh = connect(s.addr).await;
    healthz(&mut fresh).await;
    s.stop(PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(500);
    let s = Running::start(&["--header-timeout", "0.5"]).await;

    // Requests closer together than the timeout keep a connection open past it: the
    // bound is on each wait, not on the connection's life.
    let mut busy = connect(s.addr).await;
    let started = Instant::now();
    while started.elapsed() < timeout * 2 {
        healthz(&mut busy).await;
        tokio::time::sleep(timeout / 5).await;
    }
    let last_request = Instant::now();
    healthz(&mut busy).await;

    // Once it stops sending, the server closes it after the timeout.
    let (sent, closed) = read_until_closed(&mut busy).await;
    assert!(sent.is_empty(), "{sent:?}");
    let idle = closed - last_request;
    assert!(idle >= timeout, "closed {idle:?} after the last request");
    s.stop(PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_halfway_gets_503_at_the_request_timeout_and_is_closed() {
    let s = Running::start(&["--request-timeout", "0.3", "--header-timeout", "60"]).await;
    let started = Instant::now();
    let mut stream = connect(s.addr).await;
    send(
        &mut stream,
        b"PUT /keys/k HTTP/1.1\r\nHost: kv\r\nContent-Length: 10\r\n\r\n\"hel",
    )
    .await;
    let reply = read_reply(&mut stream)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(started.elapsed() >= TIMEOUT, "{:?}", started.elapsed());
    let (sent, _) = read_until_closed(&mut stream).await;
    assert!(sent.is_empty(), "{sent:?}");
    // Nothing was written.
    let mut check = connect(s.addr).await;
    send(&mut check, b"GET /keys/k HTTP/1.1\r\nHost: kv\r\n\r\n").await;
    let reply = read_reply(&mut check).await.expect("closed");
    assert_eq!(reply.status, 404, "{reply:?}");
    s.stop(PATIENCE).await;
}

// ---------------------------------------------------------------------------------
// Connection cap
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_new_connection_replaces_the_one_idle_longest() {
    let s = Running::start(&["--max-connections", "2", "--header-timeout", "5"]).await;

    // Two keep-alive connections, each answered once, so both are surely accepted;
    // the second answered clearly later, so that the first is the one idle longest
    // (idle times are kept in milliseconds).
    let mut first = connect(s.addr).await;
    healthz(&mut first).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = connect(s.addr).await;
    healthz(&mut second).await;

    // A third is served at once, long before the header timeout would free a slot...
    let started = Instant::now();
    let mut third = connect(s.addr).await;
    healthz(&mut third).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // ...in place of the one idle longest, closed without an answer.
    let (sent, _) = read_until_closed(&mut first).await;
    assert!(sent.is_empty(), "{sent:?}");
    healthz(&mut second).await;
    healthz(&mut third).await;
    s.stop(PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_at_the_cap_do_not_starve_healthz() {
    // A header timeout far longer than the test: only the cap's choice can make room.
    let s = Running::start(&["--max-connections", "2", "--header-timeout", "60"]).await;

    // Two clients take every slot and send nothing, or half a request; the silent
    // one is accepted first.
    let mut silent = connect(s.addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut half = connect(s.addr).await;
    send(&mut half, b"GET /keys HT").await;
    // Both surely accepted before the probe: the listen backlog is first in, first out.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let mut probe = connect(s.addr).await;
    healthz(&mut probe).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the probe waited {:?}",
        started.elapsed()
    );
    // The one accepted first made room; the other keeps its slot.
    let (sent, _) = read_until_closed(&mut silent).await;
    assert!(sent.is_empty(), "{sent:?}");
    let early = tokio::time::timeout(Duration::from_millis(200), half.read(&mut [0u8; 16])).await;
    assert!(
        early.is_err(),
        "the newer half-sent connection was closed too"
    );
    s.stop(PATIENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_every_connection_is_busy_a_new_one_waits_for_one_to_finish() {
    let s = Running::start(&["--max-connections", "2", "--header-timeout", "5"]).await;

    // Two requests in progress: headers in, body still coming.
    let put = b"PUT /keys/k HTTP/1.1\r\nHost: kv\r\nContent-Length: 3\r\n\r\n\"v";
    let mut first = connect(s.addr).await;
    send(&mut first, put).await;
    let mut second = connect(s.addr).await;
    send(&mut second, put).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A third waits: no request in progress is ever cut to make room.
    let mut third = connect(s.addr).await;
    send(&mut third, HEALTHZ).await;
    let early =
        tokio::time::timeout(Duration::from_millis(300), util::read_response(&mut third)).await;
    assert!(early.is_err(), "answered beyond the cap: {early:?}");

    // The first request finishes: its connection falls idle and makes room at once.
    let waited = Instant::now();
    send(&mut first, b"\"").await;
    let reply = read_reply(&mut first)
        .await
        .expect("the first request's answer");
    assert!(reply.status == 201 || reply.status == 200, "{reply:?}");
    let reply = read_reply(&mut third)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        waited.elapsed() < Duration::from_secs(2),
        "{:?}",
        waited.elapsed()
    );
    // The second request was never cut.
    send(&mut second, b"\"").await;
    let reply = read_reply(&mut second)
        .await
        .expect("the second request's answer");
    assert!(reply.status == 201 || reply.status == 200, "{reply:?}");
    s.stop(PATIENCE).await;
}

// ---------------------------------------------------------------------------------
// Shutdown deadline
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_connections_still_sending_headers_at_once() {
    // Neither timeout ends them: a request whose headers are not all in has not
    // started, so nothing is lost by closing it at once.
    let mut s = Running::start(&["--header-timeout", "60", "--shutdown-timeout", "60"]).await;
    let mut half = connect(s.addr).await;
    send(&mut half, b"PUT /keys/k HTTP/1.1\r\nHost: kv\r\nContent-Le").await;
    let mut silent = connect(s.addr).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    s.signal();
    for stream in [&mut half, &mut silent] {
        let (sent, _) = read_until_closed(stream).await;
        assert!(sent.is_empty(), "{sent:?}");
    }
    s.stop(PATIENCE).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_half_sent_request_ends_at_the_deadline() {
    // Only the shutdown deadline can end the half-sent request: the header timeout is
    // far longer than this test.
    let mut s = Running::start(&["--header-timeout", "60", "--shutdown-timeout", "1"]).await;
    let addr = s.addr;
    let mut half = connect(addr).await;
    send(&mut half, b"PUT /keys/k HTTP/1.1\r\nHost: kv\r\nContent-Le").await;
    let mut idle = connect(addr).await;
    healthz(&mut idle).await;

    let started = Instant::now();
    s.signal();
    // The idle connection closes at once, without waiting for the deadline.
    let (sent, closed) = read_until_closed(&mut idle).await;
    assert!(sent.is_empty(), "{sent:?}");
    let after = closed - started;
    assert!(
        after < Duration::from_millis(500),
        "the idle one closed after {after:?}"
    );
    s.stop(PATIENCE).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "shutdown took {took:?}");
    let (sent, _) = read_until_closed(&mut half).await;
    assert!(sent.is_empty(), "{sent:?}");
    // Nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

/// A router with one route whose handler reads the whole body, so that a request
/// whose body stops halfway stays in flight.
fn echo() -> Router {
    Router::new().route("/echo", put(|body: String| async move { body }))
}

/// Sends a `PUT /echo` announcing `length` bytes with `Expect: 100-continue` and
/// returns once the server answers `100 Continue`: the handler is reading the body.
async fn start_echo(addr: SocketAddr, length: usize) -> TcpStream {
    let mut stream = connect(addr).await;
    let head = format!(
        "PUT /echo HTTP/1.1\r\nHost: kv\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    send(&mut stream, head.as_bytes()).await;
    let reply = read_reply(&mut stream).await.expect("closed");
    assert_eq!(reply.status, 100, "{reply:?}");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_deadline_cuts_only_what_is_still_open() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    let addr = listener.local_addr().expect("address");
    let limits = ConnectionLimits {
        header_timeout: Duration::from_secs(60),
        max_connections: 16,
        shutdown_timeout: TIMEOUT,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve::serve(listener, echo(), limits, async move {
        let _ = stopped.await;
    }));

    // Two requests whose bodies stop halfway, inside their handler; one idle
    // keep-alive connection.
    let mut stuck = start_echo(addr, 10).await;
    send(&mut stuck, b"hello").await;
    let mut also_stuck = start_echo(addr, 4).await;
    let mut idle = connect(addr).await;
    send(
        &mut idle,
        b"PUT /echo HTTP/1.1\r\nHost: kv\r\nContent-Length: 2\r\n\r\nhi",
    )
    .await;
    let reply = read_reply(&mut idle).await.expect("closed");
    assert_eq!(
        (reply.status.as_u16(), reply.text()),
        (200, "hi".to_owned())
    );

    let started = Instant::now();
    let _ = stop.send(());
    let stopped: Stopped = tokio::time::timeout(PATIENCE, serving)
        .await
        .expect("serve did not return in time")
        .expect("serve panicked");
    let took = started.elapsed();
    // The server waited for the deadline, then cut the two, not the idle one.
    assert_eq!(stopped.cut, 2);
    assert!(took >= TIMEOUT, "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    for stream in [&mut stuck, &mut also_stuck, &mut idle] {
        let (sent, _) = read_until_closed(stream).await;
        assert!(sent.is_empty(), "{sent:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_at_shutdown_is_answered_before_the_deadline() {
    let mut s = Running::start(&["--shutdown-timeout", "4"]).await;
    let mut stream = connect(s.addr).await;
    send(
        &mut stream,
        b"PUT /keys/late HTTP/1.1\r\nHost: kv\r\nContent-Type: application/json\r\n\
          Content-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    let reply = read_reply(&mut stream).await.expect("closed");
    assert_eq!(reply.status, 100, "{reply:?}");

    // Shutdown begins while the handler waits for the body; the body then arrives.
    let started = Instant::now();
    s.signal();
    send(&mut stream, b"42").await;
    let reply = read_reply(&mut stream)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 201, "{reply:?}");
    // Then the connection closes rather than waiting for another request.
    let (sent, _) = read_until_closed(&mut stream).await;
    assert!(sent.is_empty(), "{sent:?}");
    // Serving ended as soon as nothing was left, well before the deadline.
    s.stop(PATIENCE).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------
// Out of file descriptors
// ---------------------------------------------------------------------------------

/// A `kvserver` process; killed when dropped.
struct Proc {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Proc {
    /// Starts the binary through `sh` with the open-file limit set to `fd_limit`, with
    /// `env` as its only `KV_*` variables.
    fn launch(fd_limit: u32, env: &[(&str, &str)]) -> Proc {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {fd_limit} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_kvserver"))
            .args(["--listen", "127.0.0.1:0", "--no-persist"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars() {
            if name.starts_with("KV_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("spawning kvserver");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        let readers = [stdout, stderr]
            .into_iter()
            .map(|pipe| {
                let (lines, found) = (Arc::clone(&log), found.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        if line.contains("kvserver listening")
                            && let Some(addr) = line
                                .split_whitespace()
                                .find_map(|w| w.strip_prefix("addr="))
                                .and_then(|a| a.parse::<SocketAddr>().ok())
                        {
                            let _ = found.send(addr);
                        }
                        let mut log = lines.lock().unwrap();
                        log.push_str(&line);
                        log.push('\n');
                    }
                })
            })
            .collect();
        let Ok(addr) = addr.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvserver did not start:\n{}", log.lock().unwrap());
        };
        Proc {
            child,
            addr,
            log,
            readers,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit status (bounded wait), with the log read to its end.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(killed.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_server_backs_off_and_keeps_serving() {
    // 64 descriptors, a cap far above them: accepting runs out of descriptors. The
    // limits come from the environment this time.
    let mut p = Proc::launch(
        64,
        &[("KV_MAX_CONNECTIONS", "1000"), ("KV_HEADER_TIMEOUT", "0.5")],
    );
    let mut hogs = Vec::new();
    for _ in 0..100 {
        hogs.push(connect(p.addr).await);
    }
    // The probe is answered: idle connections are closed to free descriptors.
    let mut probe = connect(p.addr).await;
    send(&mut probe, HEALTHZ).await;
    let reply = read_reply(&mut probe)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 200, "{reply:?}\n{}", p.log());
    drop(hogs);
    // Served again from a fresh connection.
    let mut again = connect(p.addr).await;
    healthz(&mut again).await;

    // The log is complete once the process has exited.
    let status = p.terminate().await;
    let log = p.log();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("kvserver stopped"), "{log}");
    assert!(
        log.contains("max_connections=1000 header_timeout_s=0.5"),
        "{log}"
    );
    let reports = log
        .matches("out of file descriptors: each new connection replaces")
        .count();
    // Logged once, not once per connection closed to make room.
    assert_eq!(reports, 1, "{reports} reports:\n{log}");
    assert!(log.contains("Too many open files"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_idle_connections_make_room_for_a_probe() {
    // 64 descriptors, a cap far above them, a header timeout far longer than the
    // test: only closing idle connections can let the probe in.
    let mut p = Proc::launch(
        64,
        &[("KV_MAX_CONNECTIONS", "1000"), ("KV_HEADER_TIMEOUT", "60")],
    );
    let mut hogs = Vec::new();
    for _ in 0..100 {
        hogs.push(connect(p.addr).await);
    }
    let started = Instant::now();
    let mut probe = connect(p.addr).await;
    send(&mut probe, HEALTHZ).await;
    let reply = read_reply(&mut probe)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 200, "{reply:?}\n{}", p.log());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(hogs);
    let status = p.terminate().await;
    assert!(status.success(), "exit {status}:\n{}", p.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_with_every_connection_busy_the_server_backs_off() {
    // 64 descriptors, a cap far above them, and every connection inside a request
    // (a body that stops halfway), so none can be closed to make room: accepting
    // backs off until the request timeout ends them.
    let mut p = Proc::launch(
        64,
        &[
            ("KV_MAX_CONNECTIONS", "1000"),
            ("KV_HEADER_TIMEOUT", "60"),
            ("KV_REQUEST_TIMEOUT", "0.5"),
        ],
    );
    let mut hogs = Vec::new();
    for _ in 0..100 {
        let mut hog = connect(p.addr).await;
        send(
            &mut hog,
            b"PUT /keys/k HTTP/1.1\r\nHost: kv\r\nContent-Length: 9\r\n\r\n\"v",
        )
        .await;
        hogs.push(hog);
    }
    let mut probe = connect(p.addr).await;
    send(&mut probe, HEALTHZ).await;
    let reply = read_reply(&mut probe)
        .await
        .expect("closed instead of answering");
    assert_eq!(reply.status, 200, "{reply:?}\n{}", p.log());
    drop(hogs);
    let status = p.terminate().await;
    let log = p.log();
    assert!(status.success(), "exit {status}:\n{log}");
    let bursts = log.matches("accepting connections fails").count();
    assert!(bursts >= 1, "descriptors never ran out:\n{log}");
    // Logged once per burst, not once per attempt.
    assert!(bursts <= 4, "{bursts} bursts:\n{log}");
    assert!(log.contains("accepting connections again"), "{log}");
    assert!(log.contains("Too many open files"), "{log}");
}

#[test]
fn help_lists_the_connection_flags_with_their_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .arg("--help")
        .output()
        .expect("running kvserver --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (flag, env, default) in [
        (
            "--header-timeout",
            "KV_HEADER_TIMEOUT",
            Some("[default: 10]"),
        ),
        ("--max-connections", "KV_MAX_CONNECTIONS", None),
        (
            "--shutdown-timeout",
            "KV_SHUTDOWN_TIMEOUT",
            Some("[default: 10]"),
        ),
    ] {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        let section = &help[at..];
        let section = &section[..section[2..]
            .find("\n      --")
            .map_or(section.len(), |i| i + 2)];
        assert!(section.contains(&format!("[env: {env}=")), "{section}");
        if let Some(default) = default {
            assert!(section.contains(default), "{section}");
        }
    }
}
