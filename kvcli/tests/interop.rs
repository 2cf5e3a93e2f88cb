//! kvcli and kvserver share a data directory: each reads what the other wrote, and
//! kvcli keeps out while the server holds the directory.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use clap::Parser;
use common::{listing, ok, run};
use kvserver::{Config, Server};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// A kvserver serving `dir` in this process until dropped through [`Running::stop`].
struct Running {
    runtime: Runtime,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(dir: &Path) -> Running {
        let runtime = Runtime::new().unwrap();
        let config = Config::parse_from([
            "kvserver",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.to_str().unwrap(),
            // Records reach the files before each answer, so the directory's bytes
            // change only when a write does.
            "--fsync",
            "always",
        ]);
        let server = runtime.block_on(Server::bind(&config)).unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = runtime.spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        Running {
            runtime,
            addr,
            stop,
            served,
        }
    }

    /// One HTTP/1.1 request; the status and the body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn stop(self) {
        self.stop.send(()).unwrap();
        self.runtime.block_on(self.served).unwrap().unwrap();
    }
}

#[test]
fn kvcli_reads_what_kvserver_wrote_and_kvserver_reads_what_kvcli_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kvdata");

    // The server writes...
    let server = Running::start(&dir);
    let (status, _) = server.request("PUT", "/keys/greeting", r#"{"hello": ["world", 1]}"#);
    assert_eq!(status, 201);
    let (status, _) = server.request("PUT", "/keys/expiring?ttl=300", "\"soon\"");
    assert_eq!(status, 201);
    let (status, _) = server.request("POST", "/keys/counter/incr", "");
    assert_eq!(status, 200);

    // ...kvcli is kept out while it runs, touching nothing...
    let before = listing(&dir);
    let r = run(&dir, &["get", "greeting"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "is in use by process {}; stop that process",
            std::process::id()
        )),
        "{r:?}"
    );
    assert_eq!(listing(&dir), before);
    server.stop();

    // ...and reads it all once the server has stopped.
    assert_eq!(
        ok(&dir, &["get", "greeting"]),
        "{\"hello\":[\"world\",1]}\n"
    );
    assert_eq!(ok(&dir, &["get", "counter"]), "1\n");
    let ttl: f64 = ok(&dir, &["ttl", "expiring"]).trim().parse().unwrap();
    assert!(ttl > 200.0 && ttl <= 300.0, "{ttl}");
    // The server's hit counters (in DIR/hits) are not keys.
    assert_eq!(ok(&dir, &["keys"]), "counter\nexpiring\ngreeting\n");

    // kvcli writes...
    ok(&dir, &["set", "from-cli", r#"{"n": 1.50}"#]);
    ok(&dir, &["set", "short", "lived", "ttl", "600"]);
    ok(&dir, &["del", "greeting"]);
    ok(&dir, &["incr", "counter", "9"]);

    // ...and the server serves it.
    let server = Running::start(&dir);
    let (status, body) = server.request("GET", "/keys/from-cli", "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""value":{"n":1.50}"#), "{body}");
    let (status, body) = server.request("GET", "/keys/short", "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""value":"lived""#), "{body}");
    assert!(!body.contains(r#""ttl_ms":null"#), "{body}");
    let (status, _) = server.request("GET", "/keys/greeting", "");
    assert_eq!(status, 404);
    let (status, body) = server.request("GET", "/keys/counter", "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""value":10"#), "{body}");
    server.stop();
}
