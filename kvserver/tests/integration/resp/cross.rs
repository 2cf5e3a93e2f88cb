//! One store, two protocols: what HTTP writes, RESP reads, and the other way, by the
//! rule `docs/http-api.md` ("Values stored as bytes") states; counters shared by
//! `INCR` and `POST /keys/{key}/incr`; read-modify-writes atomic across both; and
//! bytes that survive a restart.

use std::net::SocketAddr;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::Kv;
use crate::util::{Reply, read_response};

/// One HTTP request on a connection of its own.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str, headers: &[&str]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: kv\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(&mut stream).await.expect("an HTTP response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_values_read_over_resp_as_their_compact_json_text() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    for (body, stored) in [
        (r#"{"x": [1, 2]}"#, r#"{"x":[1,2]}"#),
        (r#""hello""#, r#""hello""#),
        ("42", "42"),
        ("1.50", "1.50"),
        ("null", "null"),
    ] {
        let put = http(kv.http, "PUT", "/keys/k", body, &[]).await;
        assert!(matches!(put.status.as_u16(), 200 | 201), "{}", put.text());
        let value: Vec<u8> = con.get("k").await.unwrap();
        assert_eq!(String::from_utf8(value).unwrap(), stored, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_values_read_over_http_by_the_json_rule() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    for (bytes, json) in [
        (&b"42"[..], "42"),
        (br#"{"a":1}"#, r#"{"a":1}"#),
        (br#"{ "a" : 1 }"#, r#"{"a":1}"#),
        (b"hello", r#""hello""#),
        (b"", r#""""#),
        (b"\x00\xff", r#"{"$base64":"AP8="}"#),
    ] {
        let _: () = con.set("k", bytes).await.unwrap();
        let reply = http(kv.http, "GET", "/keys/k", "", &[]).await;
        reply.expect(200);
        assert_eq!(reply.json()["value"].to_string(), json, "{bytes:?}");
        // The bytes themselves, on request.
        let raw = http(
            kv.http,
            "GET",
            "/keys/k",
            "",
            &["Accept: application/octet-stream"],
        )
        .await;
        raw.expect(200);
        assert_eq!(&raw.body[..], bytes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_protocols_count_on_the_same_integers() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    http(kv.http, "PUT", "/keys/n", "40", &[]).await;
    let n: i64 = con.incr("n", 1).await.unwrap();
    assert_eq!(n, 41);
    let reply = http(kv.http, "POST", "/keys/n/incr", "", &[]).await;
    reply.expect(200);
    assert_eq!(reply.json()["value"], 42);
    let _: () = con.set("m", "7").await.unwrap();
    let reply = http(kv.http, "POST", "/keys/m/incr?by=3", "", &[]).await;
    assert_eq!(reply.json()["value"], 10);
    let m: i64 = con.get("m").await.unwrap();
    assert_eq!(m, 10);
    // Not an integer, either way.
    let _: () = con.set("s", "seven").await.unwrap();
    http(kv.http, "POST", "/keys/s/incr", "", &[])
        .await
        .expect_error(409, "not_an_integer");
    http(kv.http, "PUT", "/keys/q", r#""7""#, &[]).await;
    let err = con.incr::<_, _, i64>("q", 1).await.unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_and_sliding_reads_cross_over() {
    let kv = Kv::start(&["--sliding"]).await;
    let mut con = kv.con().await;
    http(kv.http, "PUT", "/keys/h?ttl=10", r#""v""#, &[]).await;
    let ttl: i64 = con.ttl("h").await.unwrap();
    assert_eq!(ttl, 10);
    let _: () = redis::cmd("SET")
        .arg("r")
        .arg("v")
        .arg("EX")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    let reply = http(kv.http, "GET", "/keys/r/ttl", "", &[]).await;
    assert_eq!(reply.json()["ttl_ms"], 10_000);
    // A read over one protocol restarts the TTL the other set.
    kv.clock.advance(Duration::from_secs(8));
    let _: Option<String> = con.get("h").await.unwrap();
    http(kv.http, "GET", "/keys/r", "", &[]).await.expect(200);
    kv.clock.advance(Duration::from_secs(8));
    let both: Vec<Option<String>> = con.mget(&["h", "r"]).await.unwrap();
    assert_eq!(both, [Some(r#""v""#.into()), Some("v".into())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_modify_writes_are_atomic_across_both_protocols() {
    let kv = Kv::start(&[]).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut con = kv.con().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let _: i64 = con.append("log", "x").await.unwrap();
                let _: f64 = con.incr("f", 0.5).await.unwrap();
                let _: i64 = con.incr("n", 1).await.unwrap();
            }
        }));
    }
    let http_addr = kv.http;
    tasks.push(tokio::spawn(async move {
        for _ in 0..200 {
            http(http_addr, "POST", "/keys/n/incr", "", &[])
                .await
                .expect(200);
        }
    }));
    for task in tasks {
        task.await.unwrap();
    }
    let mut con = kv.con().await;
    let len: usize = con.strlen("log").await.unwrap();
    assert_eq!(len, 800);
    let f: String = con.get("f").await.unwrap();
    assert_eq!(f, "400");
    let n: i64 = con.get("n").await.unwrap();
    assert_eq!(n, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_written_over_resp_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--resp-listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--fsync",
        "always",
    ];
    let config = crate::util::config(&args);
    let kv = Kv::start_with(config.clone()).await;
    let mut con = kv.con().await;
    let _: () = con.set("bin", &binary).await.unwrap();
    let _: () = con.set("empty", "").await.unwrap();
    let _: i64 = con.append("bin", &b"\r\n"[..]).await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("ttl")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query_async(&mut con)
        .await
        .unwrap();
    drop(con);
    kv.shutdown().await;
    let kv = Kv::start_with(config).await;
    let mut con = kv.con().await;
    let back: Vec<u8> = con.get("bin").await.unwrap();
    let mut want = binary.clone();
    want.extend_from_slice(b"\r\n");
    assert_eq!(back, want);
    let empty: Option<Vec<u8>> = con.get("empty").await.unwrap();
    assert_eq!(empty, Some(Vec::new()));
    let ttl: i64 = con.ttl("ttl").await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
}
