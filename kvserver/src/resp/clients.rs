//! [`Clients`]: the connections a listener has open, for `CLIENT LIST`, `INFO
//! clients`, the connection cap and the idle sweep.
//!
//! Each connection has a [`Client`]: fields it alone writes (its name, its last
//! command, when it was last active) and that others read. The registry maps ids to
//! clients under a plain mutex, held to add, remove or copy out the list, never
//! across an `.await`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::task::AbortHandle;

use super::cmd::COMMANDS;
use super::frame::Protocol;

/// What others may ask about one connection.
#[derive(Debug)]
pub struct Client {
    /// The connection's id: 1, 2, 3... in the order they were accepted.
    pub id: u64,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The listener's address.
    pub laddr: SocketAddr,
    /// When it was accepted, in milliseconds on the listener's clock.
    created_ms: u64,
    /// When it last finished a batch of commands (or was accepted).
    last_active_ms: AtomicU64,
    /// Whether a command is running now (such a connection is never idle).
    busy: AtomicBool,
    /// The index in [`COMMANDS`] of its last command (`usize::MAX`: none yet).
    last_command: AtomicUsize,
    /// 2 or 3.
    protocol: AtomicU8,
    /// Its name and library, as `CLIENT SETNAME` and `CLIENT SETINFO` set them.
    names: Mutex<Names>,
}

/// The names a client gives itself.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// `CLIENT SETNAME`, `HELLO ... SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<Bytes>,
}

impl Client {
    /// A client accepted at `now_ms`.
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, now_ms: u64) -> Client {
        Client {
            id,
            addr,
            laddr,
            created_ms: now_ms,
            last_active_ms: AtomicU64::new(now_ms),
            busy: AtomicBool::new(false),
            last_command: AtomicUsize::new(usize::MAX),
            protocol: AtomicU8::new(2),
            names: Mutex::new(Names::default()),
        }
    }

    /// Marks a batch of commands started (`true`) or done at `now_ms` (`false`).
    pub fn set_busy(&self, busy: bool, now_ms: u64) {
        if !busy {
            self.last_active_ms.store(now_ms, Relaxed);
        }
        self.busy.store(busy, Relaxed);
    }

    /// Whether the connection has gone `timeout_ms` without running a command.
    pub fn idle_for(&self, now_ms: u64) -> Option<u64> {
        if self.busy.load(Relaxed) {
            return None;
        }
        Some(now_ms.saturating_sub(self.last_active_ms.load(Relaxed)))
    }

    /// Records the command it runs.
    pub fn set_command(&self, index: usize) {
        self.last_command.store(index, Relaxed);
    }

    /// Records the protocol it speaks.
    pub fn set_protocol(&self, protocol: Protocol) {
        self.protocol.store(protocol.number() as u8, Relaxed);
    }

    /// Its names.
    pub fn names(&self) -> Names {
        self.names.lock().clone()
    }

    /// Changes its names.
    pub fn update_names(&self, f: impl FnOnce(&mut Names)) {
        f(&mut self.names.lock());
    }

    /// Its line in `CLIENT LIST`, in Redis's `key=value` form (without the newline).
    pub fn line(&self, now_ms: u64) -> String {
        let names = self.names();
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let command = COMMANDS
            .get(self.last_command.load(Relaxed))
            .map_or("NULL", |spec| spec.name);
        let idle_ms = now_ms.saturating_sub(self.last_active_ms.load(Relaxed));
        format!(
            "id={} addr={} laddr={} name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 \
             multi=-1 cmd={command} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            text(&names.name),
            now_ms.saturating_sub(self.created_ms) / 1000,
            if self.busy.load(Relaxed) {
                0
            } else {
                idle_ms / 1000
            },
            self.protocol.load(Relaxed),
            text(&names.lib_name),
            text(&names.lib_ver),
        )
    }
}

/// A registered connection: what others see of it, and (once it runs) its task.
type Entry = (Arc<Client>, Option<AbortHandle>);

/// The open connections of a listener.
#[derive(Debug, Default)]
pub struct Clients {
    /// By id, so that `CLIENT LIST` is in order. Held briefly, never across an await.
    open: Mutex<BTreeMap<u64, Entry>>,
}

impl Clients {
    /// Registers a connection, before its task starts, so that it counts (and sees
    /// itself in `CLIENT LIST`) from its first command.
    pub fn add(&self, client: Arc<Client>) {
        self.open.lock().insert(client.id, (client, None));
    }

    /// Records the task serving client `id`, which lets the sweep close it.
    pub fn set_task(&self, id: u64, task: AbortHandle) {
        if let Some((_, slot)) = self.open.lock().get_mut(&id) {
            *slot = Some(task);
        }
    }

    /// Forgets a connection that ended.
    pub fn remove(&self, id: u64) {
        self.open.lock().remove(&id);
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open clients, by id.
    pub fn list(&self) -> Vec<Arc<Client>> {
        self.open
            .lock()
            .values()
            .map(|(c, _)| Arc::clone(c))
            .collect()
    }

    /// Closes the connections idle `timeout_ms` or longer; returns how many.
    pub fn close_idle(&self, now_ms: u64, timeout_ms: u64) -> usize {
        let open = self.open.lock();
        let mut closed = 0;
        for (client, task) in open.values() {
            if client
                .idle_for(now_ms)
                .is_some_and(|idle| idle >= timeout_ms)
                && let Some(task) = task
            {
                task.abort();
                closed += 1;
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: u64, now: u64) -> Arc<Client> {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        Arc::new(Client::new(id, addr, addr, now))
    }

    #[test]
    fn a_busy_client_is_never_idle() {
        let c = client(1, 1_000);
        assert_eq!(c.idle_for(4_000), Some(3_000));
        c.set_busy(true, 4_000);
        assert_eq!(c.idle_for(9_000), None);
        c.set_busy(false, 9_000);
        assert_eq!(c.idle_for(9_500), Some(500));
    }

    #[test]
    fn lines_name_the_client() {
        let c = client(7, 0);
        c.update_names(|n| n.name = Some(Bytes::from_static(b"worker")));
        c.set_protocol(Protocol::Resp3);
        let line = c.line(12_000);
        assert!(
            line.starts_with(
                "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:5000 name=worker age=12 idle=12 "
            ),
            "{line}"
        );
        assert!(line.contains(" cmd=NULL "), "{line}");
        assert!(line.contains(" resp=3 "), "{line}");
    }
}
