//! One Redis-protocol connection: read what the client sent, run every complete
//! command in it in order, send all their replies in one write, read again.
//!
//! That is pipelining without a round trip per command: a client that sends 1 000
//! commands in one write gets 1 000 replies in as few writes as the socket needs.
//! Replies of one read are written together, or every 64 KiB when they are large;
//! while a write waits for a client that does not read, nothing more is read from
//! it, so its replies cannot pile up in memory. Other connections are their own
//! tasks and never wait for it.
//!
//! On shutdown a connection answers the commands the client has already sent (what
//! the socket holds), then closes.
//!
//! A batch of commands takes one slot of `--max-concurrency` while it runs, as an
//! HTTP request does; when none is free, every command of the batch is answered
//! `-TRYAGAIN` without running. A protocol error is answered, after the replies of
//! the commands before it, and the connection closed, as Redis does.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::{Decoder, Encoder};

use super::clients::Client;
use super::cmd::{self, Ctx, Error, NO_AUTH, WRITE};
use super::codec::{CodecError, RespCodec};
use super::frame::{Protocol, Reply};
use super::server::Shared;
use crate::state::AppState;

/// Replies held before they are written even though more commands wait.
const WRITE_AT: usize = 64 * 1024;
/// Room made in the read buffer before each read.
const READ_ROOM: usize = 16 * 1024;
/// A buffer that grew past this (a large request or reply) is given back once empty,
/// so that an idle connection holds little memory.
const KEEP_AT_MOST: usize = 1 << 20;

/// The state of one connection that commands can change.
#[derive(Debug)]
pub struct Session {
    /// What other connections can see of this one.
    pub client: Arc<Client>,
    /// The protocol replies are written in.
    pub protocol: Protocol,
    /// Whether the client sent the server's token (always true without one).
    pub authenticated: bool,
    /// Close the connection once this reply is sent (`QUIT`).
    pub close: bool,
}

/// Serves one connection until the client leaves, breaks the protocol, sends `QUIT`,
/// or the server shuts down.
pub async fn serve(
    mut stream: TcpStream,
    state: AppState,
    shared: Arc<Shared>,
    client: Arc<Client>,
    mut shutdown: watch::Receiver<bool>,
) {
    let needs_auth = state.auth_token().is_some();
    let mut codec = RespCodec::new(shared.settings.limits, needs_auth);
    let mut session = Session {
        client,
        protocol: Protocol::Resp2,
        authenticated: !needs_auth,
        close: false,
    };
    let mut input = BytesMut::with_capacity(READ_ROOM);
    let mut output = BytesMut::with_capacity(READ_ROOM);
    loop {
        // Run the complete commands the buffer holds, as one batch.
        let mut slot = None;
        let mut shed = false;
        let mut ran: u64 = 0;
        let mut more = false;
        loop {
            let args = match codec.decode(&mut input) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    let text = match e {
                        CodecError::Protocol(text) => text,
                        CodecError::Io(e) => format!("ERR {e}"),
                    };
                    tracing::debug!(peer = %session.client.addr, %text, "protocol error");
                    let _ = codec.encode(Reply::error(text), &mut output);
                    session.close = true;
                    break;
                }
            };
            if ran == 0 {
                session.client.set_busy(true, 0);
                match state.slots().try_acquire() {
                    Ok(permit) => slot = Some(permit),
                    Err(_) => {
                        shed = true;
                        shared
                            .counters
                            .shed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("shedding load: too many requests in flight");
                    }
                }
            }
            ran += 1;
            let reply = if shed {
                Reply::error(
                    "TRYAGAIN too many requests in flight (--max-concurrency); retry shortly",
                )
            } else {
                run(&args, &state, &shared, &mut session).await
            };
            codec.set_protocol(session.protocol);
            codec.set_strict(!session.authenticated);
            let _ = codec.encode(reply, &mut output);
            if session.close {
                break;
            }
            if output.len() >= WRITE_AT {
                more = true;
                break;
            }
        }
        drop(slot);
        if ran > 0 {
            shared
                .counters
                .commands_processed
                .fetch_add(ran, std::sync::atomic::Ordering::Relaxed);
            session.client.set_busy(false, shared.now_ms());
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
            if output.capacity() > KEEP_AT_MOST {
                output = BytesMut::with_capacity(READ_ROOM);
            }
        }
        if session.close {
            return;
        }
        if more {
            continue;
        }
        if input.is_empty() && input.capacity() > KEEP_AT_MOST {
            input = BytesMut::with_capacity(READ_ROOM);
        } else if input.capacity() - input.len() < READ_ROOM / 4 {
            input.reserve(READ_ROOM);
        }
        if *shutdown.borrow() {
            // Shutting down: what the client has already sent is answered, then the
            // connection closes.
            match stream.try_read_buf(&mut input) {
                Ok(n) if n > 0 => continue,
                _ => return,
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => continue,
            read = stream.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Runs one command: the table's checks, then its handler.
async fn run(args: &[Bytes], state: &AppState, shared: &Shared, session: &mut Session) -> Reply {
    let spec = match cmd::lookup(args) {
        Ok(spec) => spec,
        Err(e) => return e.into(),
    };
    session.client.set_command(spec.index());
    // PING answers before authentication too, so that health checks need no token.
    if !session.authenticated && !spec.has(NO_AUTH) && spec.name != "ping" {
        return Error::noauth().into();
    }
    if spec.has(WRITE) && state.read_only() {
        return Error::read_only().into();
    }
    let mut ctx = Ctx {
        state,
        server: shared,
        session,
    };
    cmd::execute(spec, &mut ctx, args).await
}
