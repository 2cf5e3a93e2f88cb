//! Part B: the real binary, started as a child process.

use super::*;

// ---------------------------------------------------------------------------------
// Part B: the real binary
// ---------------------------------------------------------------------------------

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The address in the "kvserver listening" log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("kvserver listening") {
        return None;
    }
    let rest = &line[line.find("addr=")? + "addr=".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// How long after its listening line a process is given before a signal is sent
/// (a workaround for the start-up race the test below exposes).
const SIGNAL_SETTLE: Duration = Duration::from_millis(500);

/// A running `kvserver` child process; killed when dropped.
struct Proc {
    child: Child,
    up_since: Instant,
    addr: SocketAddr,
    http: Http,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a launch ended.
enum Launch {
    Up(Box<Proc>),
    Exited { status: ExitStatus, log: String },
}

impl Launch {
    #[track_caller]
    fn up(self) -> Proc {
        match self {
            Launch::Up(p) => *p,
            Launch::Exited { status, log } => panic!("kvserver exited ({status}):\n{log}"),
        }
    }

    #[track_caller]
    fn exited(self) -> (ExitStatus, String) {
        match self {
            Launch::Exited { status, log } => (status, log),
            Launch::Up(p) => panic!(
                "kvserver started on {} but should have failed:\n{}",
                p.addr,
                p.log()
            ),
        }
    }
}

/// Starts the binary in `dir` (so no stray `.env` or `./kvdata` is used) with `args`,
/// no inherited `KV_*` variables but `env`, and waits for its listening line.
async fn launch(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Launch {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kvserver"));
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
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
    let (found, addr_rx) = mpsc::channel();
    let mut readers = Vec::new();
    let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
    let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
    for pipe in [stdout, stderr] {
        let (log, found) = (Arc::clone(&log), found.clone());
        readers.push(std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = strip_ansi(&String::from_utf8_lossy(&line));
                if let Some(addr) = listening_addr(&text) {
                    let _ = found.send(addr);
                }
                log.lock().unwrap().push_str(&text);
                line.clear();
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(addr) = addr_rx.try_recv() {
            return Launch::Up(Box::new(Proc {
                child,
                up_since: Instant::now(),
                addr,
                http: Http::new(addr),
                log,
                readers,
            }));
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            for r in readers {
                let _ = r.join();
            }
            let log = log.lock().unwrap().clone();
            return Launch::Exited { status, log };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kvserver neither listened nor exited within 20 s:\n{}",
                log.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Proc {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal with `kill -SIG PID`, once the process has been up for
    /// [`SIGNAL_SETTLE`]: see [`sigterm_right_after_start_up_is_still_graceful`] for
    /// why a signal sent at once may kill the process instead of stopping it.
    async fn signal(&self, signal: &str) {
        self.settle().await;
        self.signal_now(signal);
    }

    /// Waits until the process has been up for [`SIGNAL_SETTLE`].
    async fn settle(&self) {
        let up = self.up_since.elapsed();
        if up < SIGNAL_SETTLE {
            tokio::time::sleep(SIGNAL_SETTLE - up).await;
        }
    }

    /// Sends a signal with `kill -SIG PID` right away.
    fn signal_now(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (bounded) for the process to exit; returns its status and full log.
    async fn wait_exit(&mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "kvserver did not exit within {within:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then asserts a clean exit (status 0).
    async fn terminate(mut self) -> String {
        self.signal("TERM").await;
        let (status, log) = self.wait_exit(Duration::from_secs(10)).await;
        assert!(status.success(), "exit {status} after SIGTERM:\n{log}");
        assert!(log.contains("kvserver stopped"), "{log}");
        log
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

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// `--listen 127.0.0.1:0 --data-dir DIR/data` followed by `extra`.
fn args<'a>(data_dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--listen", "127.0.0.1:0", "--data-dir", data_dir];
    v.extend_from_slice(extra);
    v
}

const UUID: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serves_the_dataset_and_refuses_writes() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let dataset = dir.path().join("data.jsonl");
    std::fs::write(
        &dataset,
        format!(
            "{{\"key\": \"a\", \"value\": {{\"x\": [1, 2]}}}}\n\n\
             {{\"key\": \"b\", \"value\": \"text\"}}\r\n\
             {{\"key\": \"{UUID}\", \"value\": 42}}\n"
        ),
    )
    .unwrap();
    let dataset = dataset.to_str().unwrap();

    let p = launch(
        dir.path(),
        &args(data_dir, &["--read-only", "--load", dataset]),
        &[],
    )
    .await
    .up();
    let h = &p.http;
    let a = h.get("/keys/a").await.expect(200).json();
    assert_eq!(
        a,
        json!({"key": "a", "value": {"x": [1, 2]}, "ttl_ms": null})
    );
    h.head("/keys/b").await.expect(200);
    h.get("/keys/zzz").await.expect_error(404, "not_found");
    assert_eq!(
        h.get("/keys")
            .await
            .expect(200)
            .json()
            .as_object()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        h.get("/values?keys=a,b").await.expect(200).json(),
        json!({"a": {"x": [1, 2]}, "b": "text"})
    );
    let upper = UUID.to_ascii_uppercase();
    let found = h
        .post("/get_value", &json!({"key": upper}).to_string())
        .await
        .expect(200)
        .json();
    assert_eq!(found, json!({"value": 42}));

    // Every write is refused with 403 read_only, before validating the request.
    let writes: [(Method, &str, Option<&str>); 11] = [
        (Method::PUT, "/keys/a", Some("1")),
        (Method::PUT, "/keys/new", Some("1")),
        (Method::PUT, "/keys/a", Some("not json")),
        (Method::DELETE, "/keys/a", None),
        (Method::PUT, "/keys", Some(r#"{"c": 1}"#)),
        (Method::DELETE, "/keys", None),
        (Method::POST, "/keys/n/incr", None),
        (Method::PUT, "/keys/a/ttl", Some(r#"{"ttl": 5}"#)),
        (Method::DELETE, "/keys/a/ttl", None),
        (Method::POST, "/values", Some(r#"{"c": 1}"#)),
        (Method::PATCH, "/values", Some(r#"{"a": 1}"#)),
    ];
    for (method, path, body) in writes {
        let reply = h.send(method.clone(), path, body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json()["error"], "read_only", "{method} {path}");
    }
    assert_eq!(h.get("/keys/a").await.json()["value"], json!({"x": [1, 2]}));
    assert_eq!(h.get("/keys").await.json().as_object().unwrap().len(), 3);
    // Hit counters still count, in memory.
    h.get("/api/ro").await.expect(200);
    let hit = h.get("/api/ro").await.expect(200).json();
    assert_eq!(hit["hits"], 2);
    p.terminate().await;
    assert!(
        !data.exists(),
        "a read-only server wrote its data directory"
    );

    // --read-only without --load does not start, and says why.
    let (status, log) = launch(dir.path(), &args(data_dir, &["--read-only"]), &[])
        .await
        .exited();
    assert!(!status.success());
    assert!(log.contains("--load"), "{log}");
    // Also through the environment variable.
    let (status, log) = launch(
        dir.path(),
        &args(data_dir, &[]),
        &[("KV_READ_ONLY", "true")],
    )
    .await
    .exited();
    assert!(!status.success());
    assert!(log.contains("--load"), "{log}");

    // A dataset that does not exist: the message names the file.
    let (status, log) = launch(
        dir.path(),
        &args(data_dir, &["--read-only", "--load", "nope.jsonl"]),
        &[],
    )
    .await
    .exited();
    assert!(!status.success());
    assert!(log.contains("nope.jsonl"), "{log}");
    assert!(!data.exists());
}

/// Writes `content` to `dir/name` and returns the path as a string.
fn write_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_dataset_stops_start_up_naming_the_line() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let cases = [
        // Missing value on line 3 (line 2 is blank).
        (
            "missing.jsonl",
            "{\"key\": \"a\", \"value\": 1}\n\n{\"key\": \"b\"}\n{\"key\": \"c\", \"value\": 3}\n",
            "line 3",
        ),
        // Not JSON at all on line 2.
        (
            "garbage.jsonl",
            "{\"key\": \"a\", \"value\": 1}\n{oops\n",
            "line 2",
        ),
        // A CSV row with three fields on line 3.
        ("bad.csv", "key,value\na,1\nb,2,3\n", "line 3"),
    ];
    for (name, content, line) in cases {
        let dataset = write_file(dir.path(), name, content);
        for mode in [&["--read-only"][..], &[][..]] {
            let mut extra = mode.to_vec();
            extra.extend(["--load", dataset.as_str()]);
            let (status, log) = launch(dir.path(), &args(data_dir, &extra), &[])
                .await
                .exited();
            assert!(!status.success(), "{name} {mode:?}");
            assert!(log.contains(name), "{name} {mode:?}: {log}");
            assert!(
                log.contains(line),
                "{name} {mode:?}: want {line:?} in:\n{log}"
            );
        }
    }
}

/// A record the server's own checks refuse (an empty key, a key or value over the
/// size limits) is reported by the line it is on, blank lines counted, in the words
/// of a dataset error rather than an HTTP one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dataset_record_is_reported_by_line() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let dataset = write_file(
        dir.path(),
        "emptykey.jsonl",
        "{\"key\": \"a\", \"value\": 1}\n\n{\"key\": \"\", \"value\": 2}\n",
    );
    let (status, log) = launch(
        dir.path(),
        &args(data.to_str().unwrap(), &["--read-only", "--load", &dataset]),
        &[],
    )
    .await
    .exited();
    assert!(!status.success());
    assert!(
        log.contains("line 3"),
        "the empty key is on line 3; the message says:\n{log}"
    );
}

/// `--load` into a persistent store is all or nothing: a bad record after more than
/// one batch of good ones stops the start and leaves the data directory empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_leaves_the_data_directory_unchanged() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let mut content = String::new();
    for i in 0..10_001 {
        content.push_str(&format!("{{\"key\": \"k{i}\", \"value\": {i}}}\n"));
    }
    content.push_str("{\"key\": \"bad\"}\n");
    let dataset = write_file(dir.path(), "big.jsonl", &content);
    let (status, log) = launch(dir.path(), &args(data_dir, &["--load", &dataset]), &[])
        .await
        .exited();
    assert!(!status.success());
    assert!(log.contains("line 10002"), "{log}");

    let p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    let listed = p.http.get("/keys?limit=5").await.expect(200).json();
    assert_eq!(
        listed,
        json!({}),
        "the failed start left part of the dataset in the data directory"
    );
    p.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_by_flag_and_by_environment() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let by_flag = args(data_dir, &["--no-persist", "--auth-token", "t0k"]);
    let by_env = args(data_dir, &["--no-persist"]);
    let launches = [
        ("flag", by_flag.as_slice(), &[][..]),
        ("env", by_env.as_slice(), &[("KV_AUTH_TOKEN", "t0k")][..]),
    ];
    for (how, argv, env) in launches {
        let p = launch(dir.path(), argv, env).await.up();
        let open = &p.http;
        let authed = p.http.with_token("t0k");
        let wrong = p.http.with_token("t0k-not");

        for path in ["/keys/x", "/keys", "/stats", "/api/x", "/no/such/route"] {
            open.get(path).await.expect_error(401, "unauthorized");
            wrong.get(path).await.expect_error(401, "unauthorized");
        }
        open.put("/keys/x", "1")
            .await
            .expect_error(401, "unauthorized");
        // Only "Bearer TOKEN" is accepted, not the bare token.
        let bare = open
            .client
            .request(
                Request::get(format!("{}/keys", open.base))
                    .header(header::AUTHORIZATION, "t0k")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .expect("request");
        assert_eq!(bare.status(), 401, "{how}: bare token accepted");

        authed.get("/keys/x").await.expect_error(404, "not_found");
        authed.put("/keys/x", "\"v\"").await.expect(201);
        let got = authed.get("/keys/x").await.expect(200).json();
        assert_eq!(got["value"], "v", "{how}");
        authed
            .get("/no/such/route")
            .await
            .expect_error(404, "not_found");
        // /test sends the server's own token to itself.
        let report = authed.post("/test/10", "").await.expect(200).json();
        assert_eq!(report["succeeded"], 10, "{how}: {report}");

        // Probes stay open.
        open.get("/healthz").await.expect(200);
        open.get("/readyz").await.expect(200);
        // The token never appears in the log.
        assert!(
            !p.log().contains("t0k"),
            "{how}: token logged:\n{}",
            p.log()
        );
        p.terminate().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_keys_ttls_counters_and_hits() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();

    let p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    let h = &p.http;
    h.put("/keys/plain", r#"{"x": 1.50, "big": 12345678901234567890}"#)
        .await
        .expect(201);
    h.put("/keys/timed?ttl=120", "\"t\"").await.expect(201);
    h.put("/keys/gone", "0").await.expect(201);
    h.delete("/keys/gone").await.expect(204);
    h.post("/keys/counter/incr?by=5", "").await.expect(200);
    h.post("/keys/counter/incr?by=2", "").await.expect(200);
    h.post("/values", r#"{"v": [true]}"#).await.expect(201);
    for _ in 0..3 {
        h.get("/api/hello/world/").await.expect(200);
    }
    h.get("/api").await.expect(200);
    p.terminate().await;

    let p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    let h = &p.http;
    let plain = h.get("/keys/plain").await.expect(200).json();
    assert_eq!(plain["ttl_ms"], Value::Null);
    assert_eq!(
        h.get("/keys/plain").await.text(),
        r#"{"key":"plain","value":{"x":1.50,"big":12345678901234567890},"ttl_ms":null}"#
    );
    let timed = h.ttl_ms("timed").await.as_u64().expect("timed keeps a TTL");
    assert!(
        (90_000..=120_000).contains(&timed),
        "TTL after restart: {timed} ms"
    );
    h.get("/keys/gone").await.expect(404);
    assert_eq!(h.get("/keys/counter").await.json()["value"], 7);
    assert_eq!(h.get("/keys/v").await.json()["value"], json!([true]));
    let stats = h.get("/stats").await.expect(200).json();
    assert_eq!(
        stats,
        json!([{"path": "/hello/world/", "hits": 3}, {"path": "/", "hits": 1}])
    );
    assert_eq!(h.get("/api/hello/world/").await.json()["hits"], 4);
    h.post("/keys/counter/incr", "").await.expect(200);
    // SIGINT is a clean stop too.
    let mut p = p;
    p.signal("INT").await;
    let (status, log) = p.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status} after SIGINT:\n{log}");

    // --fsync always: an answered write is on disk, even if the process is killed.
    let p = launch(dir.path(), &args(data_dir, &["--fsync", "always"]), &[])
        .await
        .up();
    let h = &p.http;
    assert_eq!(h.get("/keys/counter").await.json()["value"], 8);
    h.put("/keys/durable", "\"yes\"").await.expect(201);
    h.post("/keys/counter/incr", "").await.expect(200);
    h.get("/api/durable").await.expect(200);
    let mut p = p;
    p.signal("KILL").await;
    let (status, _) = p.wait_exit(Duration::from_secs(10)).await;
    assert!(!status.success());

    let p = launch(dir.path(), &args(data_dir, &["--fsync", "always"]), &[])
        .await
        .up();
    let h = &p.http;
    assert_eq!(
        h.get("/keys/durable").await.expect(200).json()["value"],
        "yes"
    );
    assert_eq!(h.get("/keys/counter").await.json()["value"], 9);
    assert_eq!(h.get("/api/durable").await.json()["hits"], 2);
    assert_eq!(h.get("/keys/plain").await.json()["value"]["x"], 1.5);
    p.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();

    // 1. A request parked inside its handler (half its body sent) when SIGTERM lands.
    let mut p = launch(
        dir.path(),
        &args(data_dir, &["--max-concurrency", "1"]),
        &[],
    )
    .await
    .up();
    let addr = p.addr;
    let (mut parked, _) = park_requests(&p.http, addr, &["in-flight"]).await;
    // It holds the only slot (others are shed): it is inside its handler.
    let slow = parked.pop().expect("parked");
    p.signal("TERM").await;
    // New connections are refused while the parked request is still in flight.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "exited with a request in flight:\n{}",
        p.log()
    );
    let done = finish_slow_put(slow).await;
    assert_eq!(done.status, 201, "{done:?}");
    let (status, log) = p.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(TcpStream::connect(addr).await.is_err());
    // The journal was flushed: the write is there after a restart.
    let p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    assert_eq!(
        p.http.get("/keys/in-flight").await.expect(200).json()["value"],
        "slow"
    );
    p.terminate().await;

    // 2. POST /test/2000 running when SIGTERM lands.
    let mut p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    let addr = p.addr;
    p.settle().await;
    let running = {
        let h = p.http.clone();
        tokio::spawn(async move { h.post("/test/2000", "").await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.http.stats_total().await < 100 {
        assert!(Instant::now() < deadline, "/test/2000 never got going");
        assert!(
            !running.is_finished(),
            "/test/2000 finished too fast to test"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p.signal("TERM").await;
    let reply = running.await.expect("client task");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let report = reply.json();
    eprintln!("POST /test/2000 interrupted by SIGTERM: {report}");
    assert_eq!(report["requests"], 2000, "{report}");
    let (s, f) = (report["succeeded"].as_u64(), report["failed"].as_u64());
    assert_eq!(s.zip(f).map(|(s, f)| s + f), Some(2000), "{report}");
    let (status, log) = p.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let first = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    first.http.put("/keys/mine", "1").await.expect(201);

    let (status, log) = launch(dir.path(), &args(data_dir, &[]), &[]).await.exited();
    assert!(!status.success());
    assert!(log.contains("in use"), "{log}");
    assert!(
        log.contains(&format!("by process {}", first.pid())),
        "the message should name pid {}:\n{log}",
        first.pid()
    );
    // The first server is unharmed.
    first.http.get("/keys/mine").await.expect(200);
    first.http.put("/keys/more", "2").await.expect(201);
    first.terminate().await;
    // Once it stopped, the directory is free again.
    let again = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
    again.http.get("/keys/more").await.expect(200);
    again.terminate().await;
}

#[test]
fn help_lists_every_flag_with_its_env_var() {
    let output = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("running kvserver --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    // Split the help into one section per flag.
    let mut sections: HashMap<String, String> = HashMap::new();
    let mut current = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("--") || trimmed.starts_with("-h") || trimmed.starts_with("-V") {
            let flag = trimmed
                .split([' ', ',', '<'])
                .find(|w| w.starts_with("--"))
                .unwrap_or(trimmed)
                .to_string();
            current = Some(flag.clone());
            sections.insert(flag, String::new());
        } else if let Some(flag) = &current {
            let section = sections.get_mut(flag).unwrap();
            section.push_str(line);
            section.push('\n');
        }
    }
    let flags = [
        ("--listen", Some("KV_LISTEN")),
        ("--ttl", Some("KV_TTL")),
        ("--sliding", Some("KV_SLIDING")),
        ("--capacity", Some("KV_CAPACITY")),
        ("--read-only", Some("KV_READ_ONLY")),
        ("--load", Some("KV_LOAD")),
        ("--data-dir", Some("KV_DATA_DIR")),
        ("--no-persist", None),
        ("--fsync", Some("KV_FSYNC")),
        ("--backend", Some("KV_BACKEND")),
        ("--cache-ttl", Some("KV_CACHE_TTL")),
        ("--auth-token", Some("KV_AUTH_TOKEN")),
    ];
    for (flag, env) in flags {
        let section = sections
            .get(flag)
            .unwrap_or_else(|| panic!("{flag} missing from --help:\n{help}"));
        assert!(
            section.trim().len() > 10,
            "{flag} has no description:\n{help}"
        );
        if let Some(env) = env {
            assert!(
                section.contains(&format!("[env: {env}")),
                "{flag} does not show {env}:\n{section}"
            );
        }
    }
    assert!(sections["--listen"].contains("127.0.0.1:8080"));
    assert!(sections["--data-dir"].contains("./kvdata"));
    assert!(sections["--fsync"].contains("everysec"));

    let version = Command::new(env!("CARGO_BIN_EXE_kvserver"))
        .arg("--version")
        .output()
        .expect("running kvserver --version");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_are_refused_with_a_message() {
    let dir = temp_dir();
    let cases: [(&[&str], &str); 5] = [
        (&["--listen", "127.0.0.1:0", "--ttl", "0"], "--ttl"),
        (&["--listen", "127.0.0.1:0", "--ttl", "forever"], "--ttl"),
        (
            &["--listen", "127.0.0.1:0", "--fsync", "sometimes"],
            "--fsync",
        ),
        (
            &["--listen", "127.0.0.1:0", "--capacity", "0"],
            "--capacity",
        ),
        (&["--listen", "nowhere"], "--listen"),
    ];
    for (argv, mentions) in cases {
        let (status, log) = launch(dir.path(), argv, &[]).await.exited();
        assert!(!status.success(), "{argv:?} accepted");
        assert!(log.contains(mentions), "{argv:?}: {log}");
    }
    assert!(
        !dir.path().join("kvdata").exists(),
        "a refused start created ./kvdata"
    );
}

/// SIGTERM right after the "kvserver listening" line still ends in a graceful stop
/// and exit status 0: the signal handlers are in place before start-up logs anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_start_up_is_still_graceful() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    for round in 0..20 {
        let mut p = launch(dir.path(), &args(data_dir, &[]), &[]).await.up();
        p.signal_now("TERM");
        let (status, log) = p.wait_exit(Duration::from_secs(10)).await;
        assert!(
            status.success(),
            "round {round}: exit {status} after an early SIGTERM:\n{log}"
        );
    }
}

/// The real binary with `--backend` pointing at a port nothing listens on: it starts,
/// answers `503 unavailable` within a few seconds, and `/readyz` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_backend_gives_503_and_readyz_says_so() {
    let dir = temp_dir();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let backend = format!("redis://127.0.0.1:{port}/0");
    let p = launch(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--no-persist",
            "--backend",
            &backend,
        ],
        &[],
    )
    .await
    .up();
    let h = &p.http;
    h.get("/healthz").await.expect(200);
    let started = Instant::now();
    h.put("/keys/x", "1").await.expect_error(503, "unavailable");
    h.get("/keys/x").await.expect_error(503, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 took {:?}",
        started.elapsed()
    );
    h.get("/readyz").await.expect_error(503, "unavailable");
    p.terminate().await;
}
