// cargo bench -p kv-benches --bench targets
//! The throughput targets of docs/PERFORMANCE.md as paired ratios, in two tables:
//!
//! - **mixed-90-10**: kvcore against quick_cache, moka and unbounded dashmap on the
//!   mixed 90/10 workload, in each mode (the weight-bounded one against moka with a
//!   weigher and quick_cache with a `Weighter`), and kvcore with a no-op removal
//!   listener against kvcore without one;
//! - **get-with**: kvcore's `get_with` against moka's `get_with` (`get_with_by_ref`)
//!   and quick_cache's `get_or_insert_with`, unbounded, with 10% misses (see
//!   `Op::GetWith`);
//!
//! at 100k and 1M keys, on 1 and 2 threads.
//!
//! The `peers` bench measures one store for a second and a half, then the next; on a
//! shared machine the CPU a benchmark gets changes within seconds, and a ratio of two
//! such figures moves with it. Here the stores of a cell take turns in short bursts
//! (100 ms each, in an order that rotates every round), and every ratio is taken
//! within a round, between bursts run moments apart. The tables give each ratio's
//! median over the rounds and, in brackets, the middle half of them (25th to 75th
//! percentile); under each, how many cells meet each target at the median.
//!
//! Stores and workload are those of the `peers` bench (see `common/workload.rs`); here
//! dashmap runs in every mode of the mixed table, so that each mode's ratio to it is
//! paired too. `KV_BENCH_QUICK=1` runs the 100k size only, with fewer rounds.
//! Arguments after `--` pick cells whose id (`SIZE/MODE/THREADSt`, the get-with
//! cells' `SIZE/get-with/THREADSt`) contains one of them:
//! `cargo bench -p kv-benches --bench targets -- 100k/lru/2t get-with`.

mod common;

use std::time::Duration;

use common::Peer;
use common::workload::{self, OPS, Op, Runner, THREADS, Workload};
use kv_benches::{Mode, quick};

/// A ratio reported: store over store, the least ratio that meets its target, and
/// the column heading.
type Ratio = (Peer, Peer, f64, &'static str);

/// The ratios of the mixed table. kvcore on a `TickingClock` is held to moka's target
/// too, to show what the clock costs; the targets are set on kvcore's default.
const MIXED: [Ratio; 5] = [
    (
        Peer::Kvcore,
        Peer::QuickCache,
        1.0,
        "vs quick_cache (≥ 1.0×)",
    ),
    (Peer::Kvcore, Peer::Moka, 5.0, "vs moka (≥ 5×)"),
    (Peer::Kvcore, Peer::DashMap, 0.5, "vs dashmap (≥ 0.5×)"),
    (
        Peer::KvcoreTick,
        Peer::Moka,
        5.0,
        "kvcore-tick vs moka (≥ 5×)",
    ),
    (
        Peer::KvcoreListener,
        Peer::Kvcore,
        0.9,
        "no-op listener vs none (≥ 0.9×)",
    ),
];

/// The ratios of the get-with table.
const GET_WITH: [Ratio; 2] = [
    (Peer::Kvcore, Peer::Moka, 5.0, "vs moka get_with (≥ 5×)"),
    (
        Peer::Kvcore,
        Peer::QuickCache,
        1.0,
        "vs quick_cache get_or_insert_with (≥ 1.0×)",
    ),
];

/// How the turns are taken.
struct Schedule {
    /// Measured rounds, after a warm-up that sizes each store's bursts.
    rounds: usize,
    /// The length of one store's turn.
    burst: Duration,
}

/// One store's turns: the operations per thread that fill a burst, found while
/// warming up, and where in the traces the next burst starts.
struct Turns<'s> {
    store: &'s dyn Runner,
    op: Op,
    iters: u64,
    cursor: usize,
    /// Operations per second, one per measured round.
    rates: Vec<f64>,
}

impl Turns<'_> {
    /// Runs one burst on `threads` threads and returns operations per second and how
    /// long it took.
    fn burst(&mut self, threads: usize) -> (f64, Duration) {
        let took = self.store.run(self.op, threads, self.iters, self.cursor);
        let ops = self.iters * OPS;
        self.cursor = self.cursor.wrapping_add(ops as usize);
        (ops as f64 * threads as f64 / took.as_secs_f64(), took)
    }

    /// Runs bursts until one lasts at least half of `burst`, sizing each from the last.
    fn warm_up(&mut self, threads: usize, burst: Duration) {
        loop {
            let (_, took) = self.burst(threads);
            let scale = (burst.as_secs_f64() / took.as_secs_f64()).min(100.0);
            self.iters = ((self.iters as f64 * scale).round() as u64).max(1);
            if took >= burst / 2 {
                return;
            }
        }
    }
}

/// Measures one cell: `op` on every store of `stores` on `threads` threads, in turns.
fn cell<'s>(
    stores: &'s [Box<dyn Runner + '_>],
    op: Op,
    threads: usize,
    s: &Schedule,
) -> Vec<Turns<'s>> {
    let mut turns: Vec<Turns> = stores
        .iter()
        .map(|store| Turns {
            store: store.as_ref(),
            op,
            iters: 1,
            cursor: 0,
            rates: Vec::with_capacity(s.rounds),
        })
        .collect();
    for t in &mut turns {
        t.warm_up(threads, s.burst);
    }
    let n = turns.len();
    for round in 0..s.rounds {
        for k in 0..n {
            let t = &mut turns[(round + k) % n];
            let (rate, _) = t.burst(threads);
            t.rates.push(rate);
        }
    }
    turns
}

/// The value at quantile `q` of sorted `xs` (nearest rank).
fn quantile(xs: &[f64], q: f64) -> f64 {
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut xs: Vec<f64>) -> Vec<f64> {
    xs.sort_by(f64::total_cmp);
    xs
}

/// `peer`'s rates, one per round, if it took part.
fn rates<'t>(turns: &'t [Turns], peer: Peer) -> Option<&'t [f64]> {
    turns
        .iter()
        .find(|t| t.store.peer() == peer)
        .map(|t| t.rates.as_slice())
}

/// Round-by-round ratios of `a`'s rate to `b`'s, sorted; empty if either is absent.
fn ratios(turns: &[Turns], a: Peer, b: Peer) -> Vec<f64> {
    match (rates(turns, a), rates(turns, b)) {
        (Some(a), Some(b)) => sorted(a.iter().zip(b).map(|(x, y)| x / y).collect()),
        _ => Vec::new(),
    }
}

/// One table: its ratios, rows, and per ratio the cells measured and met.
struct Table {
    title: String,
    ratios: &'static [Ratio],
    rows: Vec<String>,
    tally: Vec<(usize, usize)>,
}

impl Table {
    fn new(title: String, ratios: &'static [Ratio]) -> Table {
        Table {
            title,
            ratios,
            rows: Vec::new(),
            tally: vec![(0, 0); ratios.len()],
        }
    }

    /// Adds the row of one cell, counting each ratio's cell in the tally.
    fn row(&mut self, label: &str, threads: usize, mode: &str, turns: &[Turns]) {
        let kvcore = rates(turns, Peer::Kvcore).map(|r| quantile(&sorted(r.to_vec()), 0.5) / 1e6);
        let mut cells = vec![
            label.to_string(),
            format!("{threads}t"),
            mode.to_string(),
            kvcore.map_or("—".into(), |x| format!("{x:.2}")),
        ];
        for (i, &(a, b, target, _)) in self.ratios.iter().enumerate() {
            let xs = ratios(turns, a, b);
            if xs.is_empty() {
                cells.push("—".into());
                continue;
            }
            let median = quantile(&xs, 0.5);
            self.tally[i].0 += 1;
            if median >= target {
                self.tally[i].1 += 1;
            }
            cells.push(format!(
                "{median:.2}× ({:.2}–{:.2})",
                quantile(&xs, 0.25),
                quantile(&xs, 0.75)
            ));
        }
        self.rows.push(format!("| {} |", cells.join(" | ")));
    }

    fn print(&self) {
        if self.rows.is_empty() {
            return;
        }
        println!("\n#### {}\n", self.title);
        let headings: Vec<&str> = self.ratios.iter().map(|r| r.3).collect();
        println!(
            "| size | threads | mode | kvcore Mops/s | {} |",
            headings.join(" | ")
        );
        println!("|---|---|---|---|{}", "---|".repeat(self.ratios.len()));
        for row in &self.rows {
            println!("{row}");
        }
        println!();
        for (&(.., heading), &(cells, met)) in self.ratios.iter().zip(&self.tally) {
            println!("- {heading}: met in {met} of {cells} cells");
        }
    }
}

/// Fills `stores` (the ones not filled yet), saying so.
fn fill(stores: &[Box<dyn Runner + '_>], id: &str) {
    for store in stores {
        eprintln!("{id}: filling {}", store.peer().name());
        store.prepare();
    }
}

fn main() {
    let quick = quick();
    let schedule = Schedule {
        rounds: if quick { 5 } else { 15 },
        burst: Duration::from_millis(100),
    };
    let sizes: &[(&str, usize)] = if quick {
        &[("100k", 100_000)]
    } else {
        &[("100k", 100_000), ("1M", 1_000_000)]
    };
    // cargo passes `--bench`; the other arguments are filters.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let picked = |id: &str| filters.is_empty() || filters.iter().any(|f| id.contains(f));
    let paired = |what: &str| {
        format!(
            "{what}, paired: median ratio over {} rounds of {} ms turns (middle half of the rounds)",
            schedule.rounds,
            schedule.burst.as_millis()
        )
    };
    let mut mixed = Table::new(paired("mixed-90-10"), &MIXED);
    let mut get_with = Table::new(paired("get-with, 10% misses"), &GET_WITH);
    let modes: Vec<Mode> = Mode::ALL.into_iter().chain([Mode::Weight]).collect();
    for &(label, n) in sizes {
        // The picked thread counts of each mode; a size with none builds no traces.
        let cells: Vec<(Mode, Vec<usize>)> = modes
            .iter()
            .map(|&mode| {
                let threads: Vec<usize> = THREADS
                    .into_iter()
                    .filter(|t| picked(&format!("{label}/{}/{t}t", mode.name())))
                    .collect();
                (mode, threads)
            })
            .filter(|(_, threads)| !threads.is_empty())
            .collect();
        let loads: Vec<usize> = THREADS
            .into_iter()
            .filter(|t| picked(&format!("{label}/get-with/{t}t")))
            .collect();
        if cells.is_empty() && loads.is_empty() {
            continue;
        }
        let w = Workload::new(label, n);
        for (mode, threads) in cells {
            // dashmap, unbounded and without TTLs, is the ceiling of every mode; lru
            // has no target.
            let peers: Vec<Peer> = Peer::ALL
                .into_iter()
                .filter(|p| p.supports(mode) || *p == Peer::DashMap)
                .filter(|p| *p != Peer::Lru)
                .collect();
            let stores = workload::stores(&w, mode, &peers);
            fill(&stores, &format!("{label}/{}", mode.name()));
            for threads in threads {
                eprintln!(
                    "{label}/{}/{threads}t: {} rounds",
                    mode.name(),
                    schedule.rounds
                );
                let turns = cell(&stores, Op::Mixed9010, threads, &schedule);
                mixed.row(w.label, threads, mode.name(), &turns);
            }
        }
        if !loads.is_empty() {
            let peers = [Peer::Kvcore, Peer::Moka, Peer::QuickCache];
            let stores = workload::stores(&w, Mode::Plain, &peers);
            fill(&stores, &format!("{label}/get-with"));
            for threads in loads {
                eprintln!("{label}/get-with/{threads}t: {} rounds", schedule.rounds);
                let turns = cell(&stores, Op::GetWith, threads, &schedule);
                get_with.row(w.label, threads, "plain", &turns);
            }
        }
    }
    mixed.print();
    get_with.print();
}
