//! Crash tests for the persistence layer, in a test binary of their own: the SIGKILL
//! test runs this binary again as its child (the `crash_child` test, which does
//! nothing unless the parent set its environment), and spawning a process copies
//! every open file descriptor, with the `flock`s on other tests' LOCK files, into the
//! child until it execs. Here only these tests run, and they take turns (`SPAWNING`),
//! so no other test opens a data directory while a process is being spawned.
//!
//! What they check: SIGKILL at random moments never loses a write acknowledged under
//! `Fsync::Always`, compactions included; a dropped store unlocks its directory at
//! once even while another thread spawns processes.

#[path = "integration/util.rs"]
#[allow(dead_code)]
mod util;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{PoisonError, RwLock};
use std::thread;

use kvcore::persist::{Fsync, PersistOptions};
use kvcore::{Error, SetOptions, Store, StoreBuilder};

use util::{Rng, dump};

/// The tests that spawn processes take it in turn.
static SPAWNING: RwLock<()> = RwLock::new(());

fn always() -> PersistOptions {
    PersistOptions::default().fsync(Fsync::Always)
}

// ---------------------------------------------------------------------------------
// 4. SIGKILL at random moments.

const CHILD_DIR_ENV: &str = "KV_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "KV_CRASH_CHILD_ROUND";
const CRASH_THREADS: usize = 4;
const CRASH_OPS: usize = 250;
const CRASH_KEYS: usize = 48;

fn crash_options() -> PersistOptions {
    always().compact_min_bytes(4096).compact_ratio(1)
}

/// Operation `j` of thread `t` in round `round`: `(key, Some(value))` sets, `(key,
/// None)` deletes. Each thread owns the keys `t{t}-*`.
fn crash_op(round: u64, t: usize, j: usize) -> (String, Option<String>) {
    if j % 5 == 4 {
        (format!("t{t}-{}", (j * 7) % CRASH_KEYS), None)
    } else {
        (
            format!("t{t}-{}", j % CRASH_KEYS),
            Some(format!("{j} (round {round})")),
        )
    }
}

fn apply_crash_op(state: &mut BTreeMap<String, String>, op: (String, Option<String>)) {
    match op {
        (key, Some(value)) => state.insert(key, value),
        (key, None) => state.remove(&key),
    };
}

/// The child half of the SIGKILL test: does nothing unless the parent set the
/// environment. Writes with four threads and prints `ack <thread> <op>` only after
/// the write returned.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let store = StoreBuilder::new()
        .open::<String>(&dir, crash_options())
        .expect("child: open");
    thread::scope(|scope| {
        for t in 0..CRASH_THREADS {
            let store = &store;
            scope.spawn(move || {
                for j in 0..CRASH_OPS {
                    match crash_op(round, t, j) {
                        (key, Some(value)) => {
                            store.set(&key, value, SetOptions::new()).unwrap();
                        }
                        (key, None) => {
                            store.delete(&key).unwrap();
                        }
                    }
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {t} {j}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

/// Per thread, the states its keys may be in: one when the last round was checked,
/// several (one per possibly durable in-flight write) when it was not.
type Candidates = Vec<BTreeMap<String, String>>;

fn own_keys(all: &BTreeMap<String, String>, t: usize) -> BTreeMap<String, String> {
    let prefix = format!("t{t}-");
    all.iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The states thread `t` may have left: from any candidate start, its first `acked`
/// operations, plus perhaps the one in flight when the child died.
fn after_round(start: &Candidates, round: u64, t: usize, acked: usize) -> Candidates {
    let mut out: Candidates = Vec::new();
    for c in start {
        let mut state = c.clone();
        for j in 0..acked {
            apply_crash_op(&mut state, crash_op(round, t, j));
        }
        out.push(state.clone());
        if acked < CRASH_OPS {
            apply_crash_op(&mut state, crash_op(round, t, acked));
            out.push(state);
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn sigkill_never_loses_an_acknowledged_write() {
    const ROUNDS: u64 = 30;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let _exclusive = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng::new(0x00C0_FFEE);
    let mut cands: Vec<Candidates> = vec![vec![BTreeMap::new()]; CRASH_THREADS];
    let (mut torn_tails, mut killed_rounds, mut cut_compactions) = (0, 0, 0);
    for round in 0..ROUNDS {
        let target = 1 + rng.below(400) as usize;
        let stderr_path = work.path().join(format!("child-{round}.stderr"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR_ENV, &data)
            .env(CHILD_ROUND_ENV, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut acked = [0usize; CRASH_THREADS];
        let (mut seen, mut killed) = (0, false);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
                break;
            }
            // The harness prints `test crash_child ... ` without a newline before the
            // test runs, so the first ack may share its line.
            let Some(at) = line.find("ack ") else {
                continue; // the harness's own lines
            };
            let rest = line[at + 4..].trim_end();
            let (t, j) = rest.split_once(' ').unwrap();
            let (t, j): (usize, usize) = (t.parse().unwrap(), j.parse().unwrap());
            assert_eq!(j, acked[t], "thread {t} acknowledges in order");
            acked[t] = j + 1;
            seen += 1;
            // Acks already in the pipe when the child dies still count: read them all.
            if seen == target && !killed {
                let _ = child.kill(); // SIGKILL
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        let names: Vec<String> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let journals = names.iter().filter(|n| n.ends_with(".kvj")).count();
        let mid_compaction = journals > 1 || names.iter().any(|n| n.ends_with(".tmp"));
        cut_compactions += usize::from(mid_compaction);
        if !killed {
            assert!(
                status.success() && seen == CRASH_THREADS * CRASH_OPS,
                "round {round}: the child failed after {seen} acks ({status}):\n{}",
                fs::read_to_string(&stderr_path).unwrap()
            );
        } else {
            killed_rounds += 1;
        }
        for (t, c) in cands.iter_mut().enumerate() {
            *c = after_round(c, round, t, acked[t]);
        }
        // Check every other round; otherwise the next child recovers the crash itself.
        if round % 2 == 1 && round + 1 != ROUNDS {
            continue;
        }
        let store = StoreBuilder::new()
            .open::<String>(&data, PersistOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: reopening after SIGKILL: {e}"));
        torn_tails += usize::from(store.recovery().torn_tail.is_some());
        let got = dump(&store);
        drop(store);
        let owned: usize = (0..CRASH_THREADS).map(|t| own_keys(&got, t).len()).sum();
        assert_eq!(
            owned,
            got.len(),
            "round {round}: only the threads' keys exist"
        );
        for (t, c) in cands.iter_mut().enumerate() {
            let mine = own_keys(&got, t);
            assert!(
                c.contains(&mine),
                "round {round}, thread {t}: {} acks; recovered {mine:?}\nexpected one of {c:?}",
                acked[t]
            );
            *c = vec![mine];
        }
    }
    eprintln!(
        "sigkill: {killed_rounds} of {ROUNDS} rounds killed, {cut_compactions} mid-compaction, \
         {torn_tails} torn tails"
    );
    assert!(
        killed_rounds >= ROUNDS / 2,
        "the child should usually be killed mid-run"
    );
}

#[test]
fn a_dropped_store_unlocks_even_while_another_thread_spawns_processes() {
    let _exclusive = SPAWNING.write().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let opts = PersistOptions::default().fsync(Fsync::No);
    let stop = AtomicBool::new(false);
    let (mut locked, mut opens) = (0, 0);
    /// Stops the spawning thread however the opening loop ends, a failed assertion
    /// included, so that a failure is reported instead of hanging the scope.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, SeqCst);
        }
    }
    thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| {
            while !stop.load(SeqCst) {
                // The child runs no test: `crash_child` returns at once without its env.
                let status = Command::new(&exe)
                    .args(["--exact", "crash_child", "--test-threads", "1"])
                    .env_remove(CHILD_DIR_ENV)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        });
        for _ in 0..1000 {
            match StoreBuilder::new().open::<String>(dir.path(), opts) {
                Ok(store) => {
                    opens += 1;
                    drop(store);
                }
                Err(Error::Locked { pid, .. }) => {
                    assert_eq!(pid, Some(std::process::id()), "only this process opens it");
                    locked += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(
        locked,
        0,
        "{locked} of {} opens right after a drop failed with Locked naming this very \
         process ({opens} succeeded)",
        locked + opens
    );
}
