//! The protocol itself over real sockets: inline commands, pipelining, RESP3,
//! protocol errors, size limits, slow and idle clients, the connection cap, load
//! shedding and shutdown.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{DEADLINE, Kv, Raw, encode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_are_answered_like_arrays() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    c.send_raw(b"PING\r\n").await;
    assert_eq!(c.text().await, "+PONG\r\n");
    c.send_raw(b"ECHO \"a b\\x41\"\n").await;
    assert_eq!(c.text().await, "$4\r\na bA\r\n");
    // Empty lines are skipped, unanswered.
    c.send_raw(b"\r\n\r\nping x\r\n").await;
    assert_eq!(c.text().await, "$1\r\nx\r\n");
    c.send_raw(b"ECHO \"open\r\n").await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert!(c.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pipelined_commands_are_answered_in_order() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(&encode(&[b"ECHO", i.to_string().as_bytes()]));
    }
    // One write of all of them; replies are read as they come.
    c.send_raw(&batch).await;
    for i in 0..1000 {
        let n = i.to_string();
        assert_eq!(
            c.text().await,
            format!("${}\r\n{n}\r\n", n.len()),
            "reply {i}"
        );
    }
    assert_eq!(c.call(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_leave_the_connection_usable() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    assert_eq!(
        c.call(&["NOPE", "a"]).await,
        "-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n"
    );
    assert_eq!(
        c.call(&["ping", "a", "b"]).await,
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(
        c.call(&["CLIENT", "NOPE"]).await,
        "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        c.call(&["SELECT", "1"]).await,
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        c.call(&["SELECT", "x"]).await,
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(c.call(&["SELECT", "0"]).await, "+OK\r\n");
    assert_eq!(c.call(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_3_switches_to_resp3_and_reset_back() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    let id = c.call(&["CLIENT", "ID"]).await;
    let id = id.trim_start_matches(':').trim_end();
    let hello = c.call(&["HELLO", "3"]).await;
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert!(
        hello.contains(&format!("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:{id}\r\n")),
        "{hello}"
    );
    assert!(hello.ends_with("$7\r\nmodules\r\n*0\r\n"), "{hello}");
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, "_\r\n");
    assert_eq!(
        c.call(&["HELLO", "4"]).await,
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        c.call(&["HELLO", "x"]).await,
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        c.call(&["HELLO", "3", "SETNAME"]).await,
        "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
    );
    let hello = c.call(&["HELLO", "2", "SETNAME", "worker"]).await;
    assert!(hello.starts_with("*14\r\n"), "{hello}");
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, "$6\r\nworker\r\n");
    c.call(&["HELLO", "3"]).await;
    assert_eq!(c.call(&["RESET"]).await, "+RESET\r\n");
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, "$-1\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_error_closes_only_its_own_connection() {
    let kv = Kv::start(&[]).await;
    let mut good = kv.raw().await;
    let mut bad = kv.raw().await;
    // Replies to the commands before the error come first.
    bad.send_raw(b"PING\r\n*1\r\n:5\r\n").await;
    assert_eq!(bad.text().await, "+PONG\r\n");
    assert_eq!(
        bad.text().await,
        "-ERR Protocol error: expected '$', got ':'\r\n"
    );
    assert!(bad.closed().await);
    // A stream of garbage with no line end: closed at 64 KiB.
    let mut noise = kv.raw().await;
    let garbage: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
    noise.send_raw(&garbage).await;
    assert_eq!(
        noise.text().await,
        "-ERR Protocol error: too big inline request\r\n"
    );
    assert!(noise.closed().await);
    assert_eq!(good.call(&["PING"]).await, "+PONG\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_close_the_connection_before_their_bytes_arrive() {
    let kv = Kv::start(&["--max-body-bytes", "1000", "--resp-max-args", "8"]).await;
    let mut c = kv.raw().await;
    // Only the header: refused at once, without waiting for a gigabyte.
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n")
        .await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(c.closed().await);
    let mut c = kv.raw().await;
    c.send_raw(b"*9\r\n").await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(c.closed().await);
    let mut c = kv.raw().await;
    let big = vec![b'a'; 600];
    let mut request = b"*3\r\n$4\r\nECHO\r\n$600\r\n".to_vec();
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n$600\r\n");
    c.send_raw(&request).await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: request larger than 1000 bytes (--max-body-bytes)\r\n"
    );
    assert!(c.closed().await);
    // At the limits, served.
    let mut c = kv.raw().await;
    let value = "v".repeat(990);
    assert_eq!(
        c.call(&["ECHO", &value]).await,
        format!("$990\r\n{value}\r\n")
    );
    assert_eq!(
        c.call(&["PING", "1", "2", "3", "4", "5", "6", "7"]).await,
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_does_not_stall_the_others() {
    let kv = Kv::start(&[]).await;
    // One client sends half a command and goes quiet...
    let mut slow = kv.raw().await;
    slow.send_raw(b"*2\r\n$4\r\nECHO\r\n$5\r\nab").await;
    // ...another floods commands without reading a reply...
    let mut flood = TcpStream::connect(kv.addr).await.unwrap();
    let batch: Vec<u8> = encode(&[b"ECHO", &[b'x'; 1000]]).repeat(1000);
    let flooding = tokio::spawn(async move {
        for _ in 0..20 {
            if flood.write_all(&batch).await.is_err() {
                break;
            }
        }
        flood
    });
    // ...and a third is served all the while.
    let mut quick = kv.raw().await;
    for i in 0..200 {
        let n = i.to_string();
        assert_eq!(
            quick.call(&["ECHO", &n]).await,
            format!("${}\r\n{n}\r\n", n.len())
        );
    }
    // The slow one is answered once it finishes its command.
    slow.send_raw(b"cde\r\n").await;
    assert_eq!(slow.text().await, "$5\r\nabcde\r\n");
    flooding.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_cap_new_clients_are_told_and_closed() {
    let kv = Kv::start(&["--max-connections", "2"]).await;
    let mut a = kv.raw().await;
    let mut b = kv.raw().await;
    assert_eq!(a.call(&["PING"]).await, "+PONG\r\n");
    assert_eq!(b.call(&["PING"]).await, "+PONG\r\n");
    let mut c = kv.raw().await;
    assert_eq!(c.text().await, "-ERR max number of clients reached\r\n");
    assert!(c.closed().await);
    drop(a);
    // Once one leaves, a new one is served (the loop learns of the close shortly).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut d = kv.raw().await;
        d.send(&["PING"]).await;
        match d.text().await.as_str() {
            "+PONG\r\n" => break,
            refused => {
                assert_eq!(refused, "-ERR max number of clients reached\r\n");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot never freed"
                );
                tokio::task::yield_now().await;
            }
        }
    }
    let info = b.call(&["INFO", "stats"]).await;
    assert!(!info.contains("rejected_connections:0\r\n"), "{info}");
}

#[tokio::test(start_paused = true)]
async fn idle_connections_close_after_the_timeout_and_busy_ones_do_not() {
    let kv = Kv::start(&["--resp-idle-timeout", "10"]).await;
    let mut idle = kv.raw().await;
    assert_eq!(idle.call(&["PING"]).await, "+PONG\r\n");
    let since = tokio::time::Instant::now();
    // Nothing more is sent: the paused clock runs on to the sweep that closes it.
    assert!(idle.closed().await);
    assert!(
        since.elapsed() >= Duration::from_secs(10),
        "{:?}",
        since.elapsed()
    );
    assert!(
        since.elapsed() < Duration::from_secs(12),
        "{:?}",
        since.elapsed()
    );
    // With the timeout off, an idle connection stays.
    let mut c = kv.raw().await;
    assert_eq!(c.call(&["CONFIG", "SET", "timeout", "0"]).await, "+OK\r\n");
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(c.call(&["PING"]).await, "+PONG\r\n");
    assert_eq!(
        c.call(&["CONFIG", "GET", "timeout"]).await,
        "*2\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_beyond_the_concurrency_limit_are_shed_as_http_requests_are() {
    let kv = Kv::start(&["--max-concurrency", "1"]).await;
    // An HTTP request whose body never completes holds the one slot.
    let hold = || async {
        let mut http = TcpStream::connect(kv.http).await.unwrap();
        http.write_all(b"PUT /keys/k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n\"abc")
            .await
            .unwrap();
        http
    };
    let mut http = hold().await;
    let mut c = kv.raw().await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let reply = c.call(&["PING"]).await;
        if reply.starts_with("-TRYAGAIN ") {
            assert_eq!(
                reply,
                "-TRYAGAIN too many requests in flight (--max-concurrency); retry shortly\r\n"
            );
            break;
        }
        // The HTTP request may not have reached the middleware yet, or it came while
        // a PING held the slot and was shed itself (a 503 to read): then hold again.
        assert_eq!(reply, "+PONG\r\n");
        assert!(tokio::time::Instant::now() < deadline, "never shed");
        let mut answer = [0u8; 64];
        match http.try_read(&mut answer) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(n) => {
                let answer = String::from_utf8_lossy(&answer[..n]);
                assert!(n == 0 || answer.starts_with("HTTP/1.1 503 "), "{answer}");
                http = hold().await;
            }
            Err(e) => panic!("reading the held request's socket: {e}"),
        }
        tokio::task::yield_now().await;
    }
    drop(http);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while c.call(&["PING"]).await != "+PONG\r\n" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never freed"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_what_was_read_then_closes() {
    let kv = Kv::start(&[]).await;
    let mut idle = kv.raw().await;
    assert_eq!(idle.call(&["PING"]).await, "+PONG\r\n");
    let mut busy = kv.raw().await;
    // Accepted before the shutdown (one still in the listen backlog is not served).
    assert_eq!(busy.call(&["PING"]).await, "+PONG\r\n");
    let mut batch = Vec::new();
    for _ in 0..100 {
        batch.extend_from_slice(&encode(&[b"PING"]));
    }
    busy.send_raw(&batch).await;
    // Once the first reply is in, the server has read the batch (one small write).
    assert_eq!(busy.text().await, "+PONG\r\n");
    kv.shutdown().await;
    for _ in 1..100 {
        assert_eq!(busy.text().await, "+PONG\r\n");
    }
    assert!(busy.closed().await);
    assert!(idle.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_commands_answer_as_redis_does() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    assert_eq!(c.call(&["PING", "hi"]).await, "$2\r\nhi\r\n");
    assert_eq!(c.call(&["ECHO", ""]).await, "$0\r\n\r\n");
    assert_eq!(
        c.call(&["CLIENT", "SETNAME", "my app"]).await,
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(c.call(&["CLIENT", "SETNAME", "app-1"]).await, "+OK\r\n");
    assert_eq!(
        c.call(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        c.call(&["CLIENT", "SETINFO", "LIB-VER", "5.0.1"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        c.call(&["CLIENT", "SETINFO", "FOO", "x"]).await,
        "-ERR Unrecognized option 'FOO'\r\n"
    );
    let info = c.call(&["CLIENT", "INFO"]).await;
    assert!(info.contains(" name=app-1 "), "{info}");
    assert!(info.contains(" lib-name=redis-py lib-ver=5.0.1"), "{info}");
    assert!(info.contains(" cmd=client|info "), "{info}");
    let mut other = kv.raw().await;
    other.call(&["CLIENT", "SETNAME", "other"]).await;
    let list = c.call(&["CLIENT", "LIST"]).await;
    assert_eq!(list.matches("id=").count(), 2, "{list}");
    assert!(
        list.contains("name=app-1") && list.contains("name=other"),
        "{list}"
    );
    assert_eq!(
        c.call(&["CLIENT", "LIST", "TYPE", "pubsub"]).await,
        "$0\r\n\r\n"
    );
    assert_eq!(
        c.call(&["CLIENT", "LIST", "ID", "x"]).await,
        "-ERR Invalid client ID\r\n"
    );
    let time = c.call(&["TIME"]).await;
    let secs = kv.clock.now_unix_seconds();
    assert!(
        time.starts_with(&format!("*2\r\n${}\r\n{secs}\r\n", secs.to_string().len())),
        "{time}"
    );
    assert_eq!(c.call(&["QUIT"]).await, "+OK\r\n");
    assert!(c.closed().await);
    assert_eq!(other.call(&["PING"]).await, "+PONG\r\n");
}

/// The manual clock's reading, as `TIME` reports it.
trait UnixSeconds {
    fn now_unix_seconds(&self) -> u64;
}

impl UnixSeconds for kvcore::ManualClock {
    fn now_unix_seconds(&self) -> u64 {
        use kvcore::Clock;
        self.now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_connections_survive_a_partial_reply_read() {
    // A reply larger than a socket buffer is still whole when read in pieces.
    let kv = Kv::start(&[]).await;
    let mut c = Raw::connect(kv.addr).await;
    let big = "b".repeat(200_000);
    assert_eq!(c.call(&["ECHO", &big]).await.len(), 200_000 + 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_counts_from_its_first_command() {
    let kv = Kv::start(&[]).await;
    for _ in 0..20 {
        let mut c = kv.raw().await;
        // The first thing it sends: it is already among the clients.
        c.send_raw(b"CLIENT LIST\r\nCLIENT ID\r\n").await;
        let list = c.text().await;
        let id = c.text().await;
        let id = id.trim_start_matches(':').trim_end();
        assert!(list.contains(&format!("id={id} ")), "{id}: {list}");
        let info = c.call(&["INFO", "clients"]).await;
        assert!(!info.contains("connected_clients:0\r\n"), "{info}");
    }
}
