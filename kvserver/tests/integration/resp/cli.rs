//! `redis-cli` against kvserver: what people type, as the tool prints it. Skipped,
//! visibly, without `redis-cli`; required under `CI=true`.

use std::process::Command;

use super::Kv;

/// Runs `redis-cli -p PORT args...` and returns its standard output.
async fn cli(kv: &Kv, args: &[&str]) -> String {
    let port = kv.addr.port().to_string();
    let mut argv = vec!["-h", "127.0.0.1", "-p", &port];
    argv.extend_from_slice(args);
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("redis-cli")
            .args(&argv)
            .output()
            .expect("running redis-cli")
    })
    .await
    .expect("redis-cli ran");
    assert!(output.status.success(), "redis-cli {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_talks_to_kvserver() {
    redis_tool_or_skip!("redis-cli");
    let kv = Kv::start(&[]).await;
    assert_eq!(cli(&kv, &["PING"]).await, "PONG\n");
    assert_eq!(cli(&kv, &["ECHO", "hello world"]).await, "hello world\n");
    assert_eq!(cli(&kv, &["--no-raw", "DBSIZE"]).await, "(integer) 0\n");
    assert_eq!(
        cli(&kv, &["--no-raw", "NOPE", "x"]).await,
        "(error) ERR unknown command 'NOPE', with args beginning with: 'x' \n"
    );
    // RESP3 through -3 (HELLO 3), and its map printed as such.
    let hello = cli(&kv, &["-3", "--no-raw", "HELLO", "3"]).await;
    assert!(hello.contains("\"proto\" => (integer) 3"), "{hello}");
    // The table redis-cli reads for its help and hints parses.
    let docs = cli(&kv, &["--no-raw", "COMMAND", "DOCS", "expire"]).await;
    assert!(docs.contains("\"summary\""), "{docs}");
    assert!(docs.contains("\"arguments\""), "{docs}");
    let count = cli(&kv, &["COMMAND", "COUNT"]).await;
    assert!(count.trim().parse::<u32>().is_ok_and(|n| n > 20), "{count}");
    // Commands typed on standard input, as in a script.
    let port = kv.addr.port().to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .args(["-p", &port])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("running redis-cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"CLIENT SETNAME script\nCLIENT GETNAME\nPING\n")
            .expect("writing");
        child.wait_with_output().expect("redis-cli ran")
    })
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\nscript\nPONG\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_talks_to_kvserver() {
    let kv = Kv::start(&[]).await;
    let mut con = kv.con().await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 0);
    let err = redis::cmd("NOPE")
        .query_async::<String>(&mut con)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown command 'NOPE'"), "{err}");
    // The connection is still usable after an error.
    let echo: Vec<u8> = redis::cmd("ECHO")
        .arg(&b"\x00\xff"[..])
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(echo, b"\x00\xff");
}
