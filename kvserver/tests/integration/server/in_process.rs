//! Part A: the server in process, on port 0, with a manual clock.

use super::*;

// ---------------------------------------------------------------------------------
// Part A: the server in process, on port 0, with a manual clock
// ---------------------------------------------------------------------------------

/// A server running in this process.
struct InProcess {
    http: Http,
    addr: SocketAddr,
    clock: ManualClock,
    running: util::Running,
}

impl InProcess {
    /// Binds `127.0.0.1:0`, memory only, with `args` added, and serves in a task.
    async fn start(args: &[&str]) -> InProcess {
        let mut argv = vec!["kvserver", "--listen", "127.0.0.1:0", "--no-persist"];
        argv.extend_from_slice(args);
        let config = Config::try_parse_from(&argv).expect("flags");
        let clock = ManualClock::new();
        let server = Server::bind_with_clock(&config, Arc::new(clock.clone()))
            .await
            .expect("binding");
        let running = util::Running::serve(server);
        let addr = running.addr;
        assert_ne!(addr.port(), 0);
        InProcess {
            http: Http::new(addr),
            addr,
            clock,
            running,
        }
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Shuts down gracefully and checks that serving ended without error.
    async fn shutdown(self) {
        self.running.stop(Duration::from_secs(10)).await;
    }
}

const SECOND: Duration = Duration::from_secs(1);
const MILLI: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_follows_the_manual_clock() {
    let s = InProcess::start(&[]).await;
    let h = &s.http;

    h.put("/keys/a?ttl=5", "{\"n\":1}").await.expect(201);
    h.put("/keys/forever", "true").await.expect(201);
    let got = h.get("/keys/a").await.expect(200).json();
    assert_eq!(got, json!({"key": "a", "value": {"n": 1}, "ttl_ms": 5000}));
    assert_eq!(h.get("/keys/forever").await.json()["ttl_ms"], Value::Null);

    s.advance(5 * SECOND - MILLI);
    assert_eq!(h.get("/keys/a").await.expect(200).json()["ttl_ms"], 1);
    h.head("/keys/a").await.expect(200);

    s.advance(MILLI);
    h.get("/keys/a").await.expect_error(404, "not_found");
    h.head("/keys/a").await.expect(404);
    h.get("/keys/a/ttl").await.expect_error(404, "not_found");
    h.delete("/keys/a").await.expect_error(404, "not_found");
    h.patch("/values", r#"{"a": 2}"#)
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        h.get("/keys").await.expect(200).json(),
        json!({"forever": true})
    );
    assert_eq!(
        h.get("/values").await.expect(200).json(),
        json!({"forever": true})
    );
    h.get("/values?keys=a").await.expect_error(404, "not_found");
    // An expired key is absent for conditional writes too.
    h.put("/keys/a?if=absent", "2").await.expect(201);
    assert_eq!(h.ttl_ms("a").await, Value::Null);
    s.shutdown().await;

    // The default --ttl applies to every write without a TTL.
    let s = InProcess::start(&["--ttl", "2"]).await;
    let h = &s.http;
    h.put("/keys/d", "1").await.expect(201);
    h.put("/keys/own?ttl=5", "1").await.expect(201);
    h.put("/keys", r#"{"m1": 1, "m2": 2}"#).await.expect(200);
    h.post("/values", r#"{"v1": 1}"#).await.expect(201);
    h.post("/keys/counter/incr", "").await.expect(200);
    assert_eq!(h.get("/keys/d").await.expect(200).json()["ttl_ms"], 2000);
    for key in ["m1", "m2", "v1", "counter"] {
        assert_eq!(h.ttl_ms(key).await, 2000, "{key}");
    }
    assert_eq!(h.ttl_ms("own").await, 5000);
    // A write without a TTL replaces the one the key had; keepttl keeps it; incr keeps it.
    h.put("/keys/replaced?ttl=100", "1").await.expect(201);
    h.put("/keys/replaced", "2").await.expect(200);
    assert_eq!(h.ttl_ms("replaced").await, 2000);
    h.put("/keys/kept?ttl=100", "1").await.expect(201);
    h.put("/keys/kept?keepttl=true", "2").await.expect(200);
    assert_eq!(h.ttl_ms("kept").await, 100_000);
    h.put("/keys/n?ttl=100", "5").await.expect(201);
    h.post("/keys/n/incr?by=2", "").await.expect(200);
    assert_eq!(h.ttl_ms("n").await, 100_000);

    s.advance(2 * SECOND - MILLI);
    h.get("/keys/d").await.expect(200);
    s.advance(MILLI);
    for key in ["d", "m1", "m2", "v1", "counter", "replaced"] {
        h.get(&format!("/keys/{key}")).await.expect(404);
    }
    let left = h.get("/keys").await.expect(200).json();
    assert_eq!(left, json!({"own": 1, "kept": 2, "n": 7}));
    // A counter incremented after its key expired starts again from 0.
    let counter = h.post("/keys/counter/incr", "").await.expect(200).json();
    assert_eq!(counter, json!({"key": "counter", "value": 1}));
    s.advance(3 * SECOND);
    h.get("/keys/own").await.expect(404);
    h.get("/keys/kept").await.expect(200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_ttl_restarts_on_reads_only() {
    let s = InProcess::start(&["--ttl", "10", "--sliding"]).await;
    let h = &s.http;

    h.put("/keys/k", "\"v\"").await.expect(201);
    // A GET every 6 s keeps the key alive for a minute.
    for step in 1..=10 {
        s.advance(6 * SECOND);
        let got = h.get("/keys/k").await;
        assert_eq!(got.status, 200, "read {step} at {} s", step * 6);
        assert_eq!(h.ttl_ms("k").await, 10_000, "after read {step}");
    }
    // HEAD and GET .../ttl do not restart it: gone 10 s after the last real read.
    s.advance(6 * SECOND);
    h.head("/keys/k").await.expect(200);
    assert_eq!(h.ttl_ms("k").await, 4000);
    s.advance(4 * SECOND - MILLI);
    h.head("/keys/k").await.expect(200);
    assert_eq!(h.ttl_ms("k").await, 1);
    s.advance(MILLI);
    h.head("/keys/k").await.expect(404);
    h.get("/keys/k").await.expect(404);

    // Each kind of read restarts the TTL the key was last written with (here 20 s).
    let uuid = "0b0c7a8e-5c4d-4f3a-9b2e-1a2b3c4d5e6f";
    h.put("/keys/w?ttl=20", "1").await.expect(201);
    h.put(&format!("/keys/{uuid}?ttl=20"), "2")
        .await
        .expect(201);
    let some = format!("/values?keys=w,{uuid},nope");
    let reads: [(&str, Method, &str, Option<String>); 4] = [
        ("GET /values?keys", Method::GET, &some, None),
        ("GET /keys", Method::GET, "/keys", None),
        ("GET /values", Method::GET, "/values", None),
        (
            "POST /get_value",
            Method::POST,
            "/get_value",
            Some(json!({"key": uuid}).to_string()),
        ),
    ];
    for (name, method, path, body) in reads {
        // Each read comes 15 s after the previous one: without a restart, 20 s would
        // have run out by the second.
        s.advance(15 * SECOND);
        let reply = h.send(method, path, body.as_deref()).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        assert_eq!(h.ttl_ms(uuid).await, 20_000, "{name} did not restart it");
        if name != "POST /get_value" {
            assert_eq!(h.ttl_ms("w").await, 20_000, "{name} did not restart w");
        }
    }
    // POST /get_value read only the UUID key: w runs out 20 s after GET /values.
    assert_eq!(h.ttl_ms("w").await, 5000);
    s.advance(5 * SECOND - MILLI);
    h.head("/keys/w").await.expect(200);
    s.advance(MILLI);
    h.head("/keys/w").await.expect(404);
    s.advance(15 * SECOND - MILLI);
    h.head(&format!("/keys/{uuid}")).await.expect(200);
    s.advance(MILLI);
    h.head(&format!("/keys/{uuid}")).await.expect(404);

    // A key without a TTL is unaffected by reads.
    h.put("/keys/p", "1").await.expect(201);
    h.delete("/keys/p/ttl").await.expect(200);
    h.get("/keys/p").await.expect(200);
    assert_eq!(h.ttl_ms("p").await, Value::Null);
    s.advance(Duration::from_secs(3600));
    h.get("/keys/p").await.expect(200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_5000_leaves_the_server_healthy() {
    let s = InProcess::start(&[]).await;
    let h = &s.http;

    let started = Instant::now();
    let report = h.post("/test/5000", "").await.expect(200).json();
    let took = started.elapsed();
    eprintln!("POST /test/5000 took {took:?}: {report}");
    assert_eq!(report["requests"], 5000, "{report}");
    assert_eq!(report["succeeded"], 5000, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(report["elapsed_ms"].as_u64().is_some(), "{report}");

    h.get("/healthz").await.expect(200);
    assert_eq!(h.get("/healthz").await.json(), json!({"status": "ok"}));
    let stats = h.get("/stats").await.expect(200).json();
    let entries = stats.as_array().expect("array");
    assert!(!entries.is_empty());
    for e in entries {
        let path = e["path"].as_str().expect("path");
        assert!(path.starts_with("/test/"), "unexpected counted path {path}");
    }
    // Sorted by hits descending, then path ascending.
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ha, hb) = (a["hits"].as_i64().unwrap(), b["hits"].as_i64().unwrap());
        assert!(
            ha > hb || (ha == hb && a["path"].as_str() < b["path"].as_str()),
            "{a} before {b}"
        );
    }
    assert_eq!(h.stats_total().await, 5000);

    let hit = h.get("/api/after/test").await.expect(200).json();
    assert_eq!(hit, json!({"path": "/after/test", "hits": 1}));
    assert_eq!(h.stats_total().await, 5001);
    h.put("/keys/still-works", "[1,2]").await.expect(201);
    assert_eq!(
        h.get("/keys/still-works").await.expect(200).json()["value"],
        json!([1, 2])
    );
    s.shutdown().await;
}

/// A small deterministic generator, so that a failing round can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// `n` distinct indices below `of`.
    fn pick(&mut self, n: usize, of: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..of).collect();
        for i in 0..n {
            let j = i + (self.next() as usize) % (of - i);
            all.swap(i, j);
        }
        all.truncate(n);
        all.sort_unstable();
        all
    }
}

const RACE_CLIENTS: usize = 8;
const RACE_KEYS: usize = 10;
const RACE_ROUNDS: u64 = 12;

fn race_key(i: usize) -> String {
    format!("race-{i}")
}

/// Sends every `(client, method, body)` at once (after a barrier); returns the statuses.
async fn race(h: &Http, method: Method, bodies: Vec<String>) -> Vec<u16> {
    let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let (h, barrier, method) = (h.clone(), Arc::clone(&barrier), method.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                h.send(method, "/values", Some(&body)).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let reply = task.await.expect("client task");
        statuses.push(reply.status.as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_post_and_patch_are_all_or_nothing_under_concurrency() {
    let s = InProcess::start(&[]).await;
    let h = &s.http;
    for round in 0..RACE_ROUNDS {
        let mut rng = Lcg(round * 7919 + 1);

        // --- POST race: overlapping batches into an empty store.
        h.delete("/keys").await.expect(200);
        let sets: Vec<Vec<usize>> = (0..RACE_CLIENTS).map(|_| rng.pick(5, RACE_KEYS)).collect();
        let bodies = sets
            .iter()
            .enumerate()
            .map(|(c, keys)| {
                let items: serde_json::Map<String, Value> =
                    keys.iter().map(|&k| (race_key(k), json!(c))).collect();
                Value::Object(items).to_string()
            })
            .collect();
        let statuses = race(h, Method::POST, bodies).await;
        let values = h.get("/values").await.expect(200).json();
        let ctx = format!("round {round}: sets {sets:?}, statuses {statuses:?}, store {values}");
        let winners: BTreeSet<usize> = (0..RACE_CLIENTS).filter(|&c| statuses[c] == 201).collect();
        assert!(!winners.is_empty(), "no POST succeeded: {ctx}");
        for (c, &status) in statuses.iter().enumerate() {
            assert!(status == 201 || status == 409, "client {c}: {ctx}");
        }
        for key in 0..RACE_KEYS {
            let holder = &values[race_key(key)];
            let owners: Vec<usize> = winners
                .iter()
                .copied()
                .filter(|w| sets[*w].contains(&key))
                .collect();
            match owners.as_slice() {
                [] => assert!(holder.is_null(), "key {key} set by a loser: {ctx}"),
                [w] => assert_eq!(*holder, json!(w), "key {key}: {ctx}"),
                _ => panic!("key {key} claimed by several 201 clients {owners:?}: {ctx}"),
            }
        }
        for c in (0..RACE_CLIENTS).filter(|c| !winners.contains(c)) {
            // A 409 saw some key already taken — by a winner, as nothing is deleted.
            assert!(
                sets[c].iter().any(|k| !values[race_key(*k)].is_null()),
                "client {c} got 409 though none of its keys exist: {ctx}"
            );
        }

        // --- PATCH race: every key present; odd clients name one missing key too.
        let init: serde_json::Map<String, Value> = (0..RACE_KEYS)
            .map(|k| (race_key(k), json!({"c": -1, "r": round})))
            .collect();
        h.put("/keys", &Value::Object(init).to_string())
            .await
            .expect(200);
        let sets: Vec<Vec<usize>> = (0..RACE_CLIENTS).map(|_| rng.pick(5, RACE_KEYS)).collect();
        let bodies = sets
            .iter()
            .enumerate()
            .map(|(c, keys)| {
                let mut items: serde_json::Map<String, Value> = keys
                    .iter()
                    .map(|&k| (race_key(k), json!({"c": c, "r": round})))
                    .collect();
                if c % 2 == 1 {
                    items.insert(format!("missing-{c}"), json!({"c": c, "r": round}));
                }
                Value::Object(items).to_string()
            })
            .collect();
        let statuses = race(h, Method::PATCH, bodies).await;
        let values = h.get("/values").await.expect(200).json();
        let ctx = format!("round {round}: sets {sets:?}, statuses {statuses:?}, store {values}");
        for (c, &status) in statuses.iter().enumerate() {
            let expected = if c % 2 == 1 { 404 } else { 204 };
            assert_eq!(status, expected, "client {c}: {ctx}");
        }
        let object = values.as_object().expect("object");
        assert_eq!(object.len(), RACE_KEYS, "a PATCH created keys: {ctx}");
        let winners: Vec<usize> = (0..RACE_CLIENTS).step_by(2).collect();
        // The final value of each key is the last successful PATCH naming it, in one
        // order of the PATCHes: every other successful PATCH naming the key came
        // before that one. A cycle in "came before" means a PATCH applied partly.
        let mut before: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for key in 0..RACE_KEYS {
            let v = &values[race_key(key)];
            assert_eq!(v["r"], round, "key {key}: {ctx}");
            let c = v["c"].as_i64().expect("client id");
            let writers: Vec<usize> = winners
                .iter()
                .copied()
                .filter(|w| sets[*w].contains(&key))
                .collect();
            if c < 0 {
                assert!(writers.is_empty(), "key {key} kept its old value: {ctx}");
                continue;
            }
            let c = usize::try_from(c).expect("id");
            assert!(
                writers.contains(&c),
                "key {key} holds client {c}, which did not change it: {ctx}"
            );
            for w in writers.into_iter().filter(|w| *w != c) {
                before.entry(c).or_default().insert(w);
            }
        }
        assert!(
            is_acyclic(&before),
            "PATCHes applied partly (order {before:?}): {ctx}"
        );
    }
    s.shutdown().await;
}

/// Whether the relation `node → nodes that must come before it` has no cycle.
fn is_acyclic(before: &BTreeMap<usize, BTreeSet<usize>>) -> bool {
    fn visit(
        n: usize,
        before: &BTreeMap<usize, BTreeSet<usize>>,
        state: &mut HashMap<usize, bool>,
    ) -> bool {
        match state.get(&n) {
            Some(true) => return true,
            Some(false) => return false, // on the stack: a cycle
            None => {}
        }
        state.insert(n, false);
        let ok = before
            .get(&n)
            .is_none_or(|prev| prev.iter().all(|p| visit(*p, before, state)));
        state.insert(n, true);
        ok
    }
    let mut state = HashMap::new();
    before.keys().all(|n| visit(*n, before, &mut state))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_with_503_and_retry_after() {
    // Deterministic: two requests parked in their handlers fill --max-concurrency 2.
    let s = InProcess::start(&["--max-concurrency", "2"]).await;
    let h = &s.http;
    let (parked, shed) = park_requests(h, s.addr, &["slow1", "slow2"]).await;
    let [first, second]: [TcpStream; 2] = parked.try_into().expect("two parked");
    assert_eq!(
        shed.headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    shed.expect_error(503, "unavailable");
    // Everything else is shed too, whatever the route...
    for path in ["/keys", "/stats", "/values", "/no/such/route"] {
        let reply = h.get(path).await;
        reply.expect_error(503, "unavailable");
        assert!(reply.headers.contains_key(header::RETRY_AFTER), "{path}");
    }
    h.post("/values", r#"{"x": 1}"#)
        .await
        .expect_error(503, "unavailable");
    // ...but the probes never are.
    h.get("/healthz").await.expect(200);
    h.get("/readyz").await.expect(200);

    // A freed slot serves again.
    let done = finish_slow_put(first).await;
    assert_eq!(done.status, 201, "{done:?}");
    h.get("/keys/slow1").await.expect(200);
    let done = finish_slow_put(second).await;
    assert_eq!(done.status, 201, "{done:?}");
    assert_eq!(
        h.get("/keys").await.expect(200).json(),
        json!({"slow1": "slow", "slow2": "slow"})
    );
    s.shutdown().await;

    // A request slower than --request-timeout is answered 503 too.
    let s = InProcess::start(&["--request-timeout", "0.2"]).await;
    let mut stalled = start_slow_put(s.addr, "stalled").await;
    let reply = read_raw_reply(&mut stalled).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.header("retry-after").is_some(), "{reply:?}");
    assert!(reply.text().contains("\"unavailable\""), "{reply:?}");
    s.http.get("/keys/stalled").await.expect(404);
    s.http.get("/healthz").await.expect(200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_gets_only_200_or_clean_503() {
    // Not deterministic in how many are shed: it asserts what every answer looks like.
    let s = InProcess::start(&["--max-concurrency", "32"]).await;
    let h = &s.http;
    let started = Instant::now();
    let tasks: Vec<_> = (0..120)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.post("/test/50", "").await })
        })
        .collect();
    let (mut ok, mut shed) = (0, 0);
    for task in tasks {
        let reply = task.await.expect("client task");
        match reply.status.as_u16() {
            200 => {
                let report = reply.json();
                assert_eq!(report["requests"], 50, "{report}");
                let (s, f) = (report["succeeded"].as_u64(), report["failed"].as_u64());
                assert_eq!(s.zip(f).map(|(s, f)| s + f), Some(50), "{report}");
                ok += 1;
            }
            503 => {
                assert_eq!(
                    reply
                        .headers
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                    Some("1")
                );
                reply.expect_error(503, "unavailable");
                shed += 1;
            }
            other => panic!("unexpected status {other}: {}", reply.text()),
        }
    }
    eprintln!(
        "burst of 120 POST /test/50: {ok} answered 200, {shed} shed, in {:?}",
        started.elapsed()
    );
    assert!(ok > 0, "every request was shed");
    // Afterwards the server is healthy and not leaking concurrency slots.
    h.get("/healthz").await.expect(200);
    h.put("/keys/after", "1").await.expect(201);
    let report = h.post("/test/20", "").await.expect(200).json();
    assert_eq!(report["succeeded"], 20, "{report}");
    let replies = join_replies(
        (0..31)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.get(&format!("/api/after/{i}")).await })
            })
            .collect(),
    )
    .await;
    for reply in replies {
        reply.expect(200);
    }
    s.shutdown().await;
}

async fn join_replies(tasks: Vec<JoinHandle<Reply>>) -> Vec<Reply> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("client task"));
    }
    out
}
