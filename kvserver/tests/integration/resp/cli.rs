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

/// `redis-cli` in a terminal of its own (made by `script`), driven through pipes:
/// what it prints is collected by a thread, and its questions about the cursor
/// (how it learns the terminal's width) are answered: 200 columns.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// How much of the output has been looked at.
    seen: usize,
    /// How many cursor questions have been answered.
    answered: usize,
}

impl Terminal {
    fn start(port: &str) -> Terminal {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = Command::new("script")
            .args(["-qfec", &format!("redis-cli -p {port}"), "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("running script");
        let input = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&output);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Terminal {
            child,
            input,
            output,
            seen: 0,
            answered: 0,
        }
    }

    fn send(&mut self, text: &str) {
        use std::io::Write;
        self.input.write_all(text.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until `text` appears after what was seen; fails after 10 s.
    fn expect(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let output = self.output.lock().unwrap().clone();
            let asked = output.windows(4).filter(|w| w == b"\x1b[6n").count();
            while self.answered < asked {
                self.answered += 1;
                let answer = if self.answered % 2 == 1 {
                    "\x1b[1;1R"
                } else {
                    "\x1b[1;200R"
                };
                self.send(answer);
            }
            if let Some(at) = output[self.seen..]
                .windows(text.len())
                .position(|w| w == text.as_bytes())
            {
                self.seen += at + text.len();
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-cli did not print {text:?}; it printed {:?}",
                String::from_utf8_lossy(&output[self.seen..])
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_hints_and_help_come_from_command_docs() {
    redis_tool_or_skip!("redis-cli");
    // `script` (util-linux) gives redis-cli the terminal it needs for hints.
    let Some(_) = crate::util::redis::tool("script", "util-linux") else {
        return;
    };
    let kv = Kv::start(&[]).await;
    let port = kv.addr.port().to_string();
    tokio::task::spawn_blocking(move || {
        let mut t = Terminal::start(&port);
        t.expect("> ");
        // The hint after a command's name is its syntax line from COMMAND DOCS.
        t.send("SET ");
        t.expect("key value [NX|XX] [GET] [EX seconds|PX milliseconds|");
        t.send("\x15help GETEX\r");
        t.expect("Returns the value of a key and changes its expiry.");
        t.expect("since:");
        t.expect("> ");
        t.send("quit\r");
        let status = t.child.wait().expect("redis-cli ends");
        assert!(status.success(), "{status}");
    })
    .await
    .unwrap();
}
