//! `--auth-token` over the Redis protocol: `AUTH`, `HELLO ... AUTH`, and the errors
//! Redis gives (`NOAUTH`, `WRONGPASS`).

use super::Kv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_need_the_token_first() {
    let kv = Kv::start(&["--auth-token", "s3cret"]).await;
    let mut c = kv.raw().await;
    assert_eq!(
        c.call(&["DBSIZE"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.call(&["CLIENT", "SETNAME", "x"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    // Unknown commands and wrong arities are told so first, as Redis does.
    assert_eq!(
        c.call(&["NOPE"]).await,
        "-ERR unknown command 'NOPE', with args beginning with: \r\n"
    );
    // PING, HELLO (without switching) and QUIT need no token.
    assert_eq!(c.call(&["PING"]).await, "+PONG\r\n");
    assert_eq!(
        c.call(&["AUTH", "nope"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        c.call(&["AUTH", "someone", "s3cret"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        c.call(&["AUTH", "a", "b", "c"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        c.call(&["DBSIZE"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(c.call(&["AUTH", "s3cret"]).await, "+OK\r\n");
    assert_eq!(c.call(&["DBSIZE"]).await, ":0\r\n");
    // A wrong token later does not undo a right one, as in Redis.
    assert!(c.call(&["AUTH", "wrong"]).await.starts_with("-WRONGPASS"));
    assert_eq!(c.call(&["DBSIZE"]).await, ":0\r\n");
    // RESET forgets it.
    assert_eq!(c.call(&["RESET"]).await, "+RESET\r\n");
    assert_eq!(
        c.call(&["DBSIZE"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(c.call(&["AUTH", "default", "s3cret"]).await, "+OK\r\n");
    assert_eq!(c.call(&["DBSIZE"]).await, ":0\r\n");
    let mut q = kv.raw().await;
    assert_eq!(q.call(&["QUIT"]).await, "+OK\r\n");
    assert!(q.closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_authenticates_and_switches_at_once() {
    let kv = Kv::start(&["--auth-token", "s3cret"]).await;
    let mut c = kv.raw().await;
    assert_eq!(
        c.call(&["HELLO", "3"]).await,
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
         HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
         select the RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        c.call(&["HELLO", "3", "AUTH", "default", "nope"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let hello = c
        .call(&["HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "w"])
        .await;
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(c.call(&["CLIENT", "GETNAME"]).await, "$1\r\nw\r\n");
    // The redis crate authenticates from the URL.
    let client = redis::Client::open(format!("redis://:s3cret@{}/", kv.addr)).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 0);
    let bad = redis::Client::open(format!("redis://:wrong@{}/", kv.addr)).unwrap();
    let Err(err) = bad.get_multiplexed_async_connection().await else {
        panic!("a wrong password was accepted")
    };
    assert!(
        err.to_string().contains("WRONGPASS") || err.to_string().to_lowercase().contains("auth"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_held_to_small_requests() {
    let kv = Kv::start(&["--auth-token", "s3cret"]).await;
    let mut c = kv.raw().await;
    let args: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    c.send(&args).await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(c.closed().await);
    let mut c = kv.raw().await;
    c.send_raw(b"*2\r\n$4\r\nAUTH\r\n$20000\r\n").await;
    assert_eq!(
        c.text().await,
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(c.closed().await);
    // Once authenticated, the flags' limits apply.
    let mut c = kv.raw().await;
    assert_eq!(c.call(&["AUTH", "s3cret"]).await, "+OK\r\n");
    let big = "x".repeat(20_000);
    assert_eq!(c.call(&["ECHO", &big]).await.len(), 20_000 + 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_auth_is_told_there_is_none() {
    let kv = Kv::start(&[]).await;
    let mut c = kv.raw().await;
    assert_eq!(
        c.call(&["AUTH", "x"]).await,
        "-ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?\r\n"
    );
    // The default user has no password: any is accepted, as in Redis.
    assert_eq!(c.call(&["AUTH", "default", "x"]).await, "+OK\r\n");
    assert!(
        c.call(&["HELLO", "3", "AUTH", "default", "x"])
            .await
            .starts_with("%7")
    );
}
