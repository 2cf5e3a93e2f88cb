//! The Lua scripts of the Redis backend, one file each in `lua/`, so that they can be
//! read and linted as Lua. Each runs atomically in Redis; its first lines say what
//! its `KEYS` and `ARGV` are and what it returns.
//!
//! Most scripts start with `lua/prelude.lua`, the helpers they share. `compute` is
//! `lua/set.lua` behind `lua/compute_head.lua`, which sets only if the key still
//! holds what the caller saw. The writes that are not idempotent sit between
//! `lua/idempotent_head.lua` and `lua/idempotent_tail.lua`, which record their
//! outcome under an `Idempotency-Key` in the same script.
//!
//! Every script that declares `KEYS` touches keys of one hash slot only (see
//! `layout.rs`), as Redis Cluster requires. The few that declare none
//! ([`NodeScript`]: `mget`, `cluster_len`, `cluster_clear`) are sent to one node and
//! touch only that node's keys, named in their `ARGV`: a batch of its `SCAN`, or its
//! slots' bookkeeping keys.

use redis::Script;

/// A script run on one node without declared keys (see `Con::script_on_slot`), with
/// its source, which loading it on that node takes.
pub(super) struct NodeScript {
    pub script: Script,
    pub source: &'static str,
}

impl NodeScript {
    fn new(source: &'static str) -> NodeScript {
        NodeScript {
            script: Script::new(source),
            source,
        }
    }
}

/// The backend's scripts, loaded once per server.
pub(super) struct Scripts {
    pub read: Script,
    pub read_many: Script,
    pub mget: NodeScript,
    pub exists: Script,
    pub pttl: Script,
    pub set: Script,
    pub compute: Script,
    pub set_many: Script,
    pub insert_absent: Script,
    pub update_present: Script,
    pub delete: Script,
    pub expire: Script,
    pub persist: Script,
    pub incr: Script,
    pub hit: Script,
    pub clear: Script,
    pub len: Script,
    pub cluster_len: NodeScript,
    pub cluster_clear: NodeScript,
    pub touch: Script,
    pub sweep: Script,
}

/// A script with the prelude before `body`.
fn script(body: &str) -> Script {
    Script::new(&[include_str!("lua/prelude.lua"), body].concat())
}

/// A write that is not idempotent, with its outcome recorded under an
/// `Idempotency-Key` in the same script (see `lua/idempotent_head.lua`).
fn idempotent(body: &str) -> Script {
    Script::new(
        &[
            include_str!("lua/prelude.lua"),
            include_str!("lua/idempotent_head.lua"),
            body,
            include_str!("lua/idempotent_tail.lua"),
        ]
        .concat(),
    )
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        Scripts {
            read: script(include_str!("lua/read.lua")),
            read_many: script(include_str!("lua/read_many.lua")),
            mget: NodeScript::new(include_str!("lua/mget.lua")),
            exists: Script::new(include_str!("lua/exists.lua")),
            pttl: Script::new(include_str!("lua/pttl.lua")),
            set: script(include_str!("lua/set.lua")),
            compute: script(
                &[
                    include_str!("lua/compute_head.lua"),
                    include_str!("lua/set.lua"),
                ]
                .concat(),
            ),
            set_many: script(include_str!("lua/set_many.lua")),
            insert_absent: idempotent(include_str!("lua/insert_absent.lua")),
            update_present: script(include_str!("lua/update_present.lua")),
            delete: Script::new(include_str!("lua/delete.lua")),
            expire: Script::new(include_str!("lua/expire.lua")),
            persist: Script::new(include_str!("lua/persist.lua")),
            incr: idempotent(include_str!("lua/incr.lua")),
            hit: idempotent(include_str!("lua/hit.lua")),
            clear: Script::new(include_str!("lua/clear.lua")),
            len: Script::new(include_str!("lua/len.lua")),
            cluster_len: NodeScript::new(include_str!("lua/cluster_len.lua")),
            cluster_clear: NodeScript::new(include_str!("lua/cluster_clear.lua")),
            touch: script(include_str!("lua/touch.lua")),
            sweep: Script::new(include_str!("lua/sweep.lua")),
        }
    }
}
