// cargo bench -p kv-benches --bench targets
//! The throughput targets of docs/PERFORMANCE.md as paired ratios: kvcore against
//! quick_cache, moka and unbounded dashmap on the mixed 90/10 workload, in each mode,
//! at 100k and 1M keys, on 1 and 2 threads.
//!
//! The `peers` bench measures one store for a second and a half, then the next; on a
//! shared machine the CPU a benchmark gets changes within seconds, and a ratio of two
//! such figures moves with it. Here the stores of a cell take turns in short bursts
//! (100 ms each, in an order that rotates every round), and every ratio is taken
//! within a round, between bursts run moments apart. The table gives each ratio's
//! median over the rounds and, in brackets, the middle half of them (25th to 75th
//! percentile); under it, how many cells meet each target at the median.
//!
//! Stores and workload are those of the `peers` bench (see `common/workload.rs`); here
//! dashmap runs in every mode, so that each mode's ratio to it is paired too.
//! `KV_BENCH_QUICK=1` runs the 100k size only, with fewer rounds. Arguments after
//! `--` pick cells whose id (`SIZE/MODE/THREADSt`) contains one of them:
//! `cargo bench -p kv-benches --bench targets -- 100k/lru/2t`.

mod common;

use std::time::Duration;

use common::Peer;
use common::workload::{self, OPS, Op, Runner, THREADS, Workload};
use kv_benches::{Mode, quick};

/// The ratios reported: store over store, the least ratio that meets its target, and
/// the column heading. kvcore on a `TickingClock` is held to moka's target too, to
/// show what the clock costs; the targets are set on kvcore's default.
const RATIOS: [(Peer, Peer, f64, &str); 4] = [
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
    iters: u64,
    cursor: usize,
    /// Operations per second, one per measured round.
    rates: Vec<f64>,
}

impl Turns<'_> {
    /// Runs one burst on `threads` threads and returns operations per second and how
    /// long it took.
    fn burst(&mut self, threads: usize) -> (f64, Duration) {
        let took = self
            .store
            .run(Op::Mixed9010, threads, self.iters, self.cursor);
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

/// Measures one cell: every store of `stores` on `threads` threads, in turns.
fn cell<'s>(stores: &'s [Box<dyn Runner + '_>], threads: usize, s: &Schedule) -> Vec<Turns<'s>> {
    let mut turns: Vec<Turns> = stores
        .iter()
        .map(|store| Turns {
            store: store.as_ref(),
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
    let mut rows = Vec::new();
    // Per ratio: cells measured, and cells whose median meets the target.
    let mut tally = [(0usize, 0usize); RATIOS.len()];
    for &(label, n) in sizes {
        // The picked thread counts of each mode; a size with none builds no traces.
        let cells: Vec<(Mode, Vec<usize>)> = Mode::ALL
            .into_iter()
            .map(|mode| {
                let threads: Vec<usize> = THREADS
                    .into_iter()
                    .filter(|t| picked(&format!("{label}/{}/{t}t", mode.name())))
                    .collect();
                (mode, threads)
            })
            .filter(|(_, threads)| !threads.is_empty())
            .collect();
        if cells.is_empty() {
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
            for store in &stores {
                eprintln!("{label}/{}: filling {}", mode.name(), store.peer().name());
                store.prepare();
            }
            for threads in threads {
                eprintln!(
                    "{label}/{}/{threads}t: {} rounds",
                    mode.name(),
                    schedule.rounds
                );
                let turns = cell(&stores, threads, &schedule);
                rows.push(row(&w, mode, threads, &turns, &mut tally));
            }
        }
    }
    print_table(&rows, &tally, &schedule);
}

/// One table row, counting each ratio's cell in `tally`.
fn row(
    w: &Workload,
    mode: Mode,
    threads: usize,
    turns: &[Turns],
    tally: &mut [(usize, usize); RATIOS.len()],
) -> String {
    let kvcore = rates(turns, Peer::Kvcore).map(|r| quantile(&sorted(r.to_vec()), 0.5) / 1e6);
    let mut cells = vec![
        w.label.to_string(),
        format!("{threads}t"),
        mode.name().to_string(),
        kvcore.map_or("—".into(), |x| format!("{x:.2}")),
    ];
    for (i, &(a, b, target, _)) in RATIOS.iter().enumerate() {
        let xs = ratios(turns, a, b);
        if xs.is_empty() {
            cells.push("—".into());
            continue;
        }
        let median = quantile(&xs, 0.5);
        tally[i].0 += 1;
        if median >= target {
            tally[i].1 += 1;
        }
        cells.push(format!(
            "{median:.2}× ({:.2}–{:.2})",
            quantile(&xs, 0.25),
            quantile(&xs, 0.75)
        ));
    }
    format!("| {} |", cells.join(" | "))
}

fn print_table(rows: &[String], tally: &[(usize, usize); RATIOS.len()], s: &Schedule) {
    println!(
        "\n#### mixed-90-10, paired: median ratio over {} rounds of {} ms turns \
         (middle half of the rounds)\n",
        s.rounds,
        s.burst.as_millis()
    );
    let headings: Vec<&str> = RATIOS.iter().map(|r| r.3).collect();
    println!(
        "| size | threads | mode | kvcore Mops/s | {} |",
        headings.join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(RATIOS.len()));
    for row in rows {
        println!("{row}");
    }
    println!();
    for (&(.., heading), &(cells, met)) in RATIOS.iter().zip(tally) {
        println!("- {heading}: met in {met} of {cells} cells");
    }
}
