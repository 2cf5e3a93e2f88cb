#!/usr/bin/env python3
# python3 benches/report.py [CRITERION_DIR] [--plot docs/performance-mixed.png]
"""Tables (Markdown) and a plot from the criterion results of the `peers` bench.

Reads every `new/benchmark.json` and `new/estimates.json` under CRITERION_DIR
(default: $CARGO_TARGET_DIR/criterion, else target/criterion), prints throughput
tables in millions of operations per second with kvcore's ratio to each peer, and
with --plot draws mixed 90/10 throughput per mode and store (needs matplotlib).
"""

import json
import os
import sys
from pathlib import Path

SIZES = ["100k", "1M"]
MODES = ["plain", "ttl", "sliding", "lru", "lru+ttl"]
OPS = ["get-hit", "get-miss", "insert", "mixed-90-10", "mixed-50-50"]
STORES = ["kvcore", "kvcore-tick", "moka", "quick_cache", "lru", "dashmap"]
THREADS = ["1t", "2t"]


def load(root):
    """{(size, mode, op, store, threads): Mops/s} from criterion's files."""
    results = {}
    for bench in root.rglob("new/benchmark.json"):
        meta = json.loads(bench.read_text())
        parts = meta["group_id"].split("/")
        if len(parts) != 3:
            continue  # not a `peers` benchmark
        est = json.loads((bench.parent / "estimates.json").read_text())
        # The slope is what criterion reports for linear sampling; else the mean.
        ns = (est.get("slope") or est["mean"])["point_estimate"]
        ops = meta["throughput"]["Elements"]
        size, mode, op = parts
        results[(size, mode, op, meta["function_id"], meta["value_str"])] = ops / ns * 1e3
    return results


def fmt(x):
    return "—" if x is None else f"{x:.2f}"


def ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}×"


def throughput_tables(r):
    out = []
    for size in SIZES:
        for threads in THREADS:
            if not any(k[0] == size and k[4] == threads for k in r):
                continue
            out.append(f"\n#### {size} keys, {threads[0]} thread{'s' if threads != '1t' else ''} (Mops/s)\n")
            out.append("| mode | op | " + " | ".join(STORES) + " |")
            out.append("|---|---|" + "---|" * len(STORES))
            for mode in MODES:
                for op in OPS:
                    cells = [fmt(r.get((size, mode, op, s, threads))) for s in STORES]
                    if all(c == "—" for c in cells):
                        continue
                    out.append(f"| {mode} | {op} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def target_table(r, op="mixed-90-10"):
    """kvcore's ratio to each peer on `op`, the workload the targets are set on; in the
    modes with TTLs, also kvcore-tick's (kvcore on a TickingClock) to moka."""
    out = [
        f"\n#### {op}: kvcore and its ratio to each peer in the same mode "
        "(dashmap: unbounded, any mode)\n",
        "| size | threads | mode | kvcore Mops/s | vs quick_cache (≥ 1.0×) | vs moka (≥ 5×) "
        "| vs lru | vs dashmap (≥ 0.5×) | kvcore-tick vs moka |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in SIZES:
        for threads in THREADS:
            dash = r.get((size, "plain", op, "dashmap", threads))
            for mode in MODES:
                kv = r.get((size, mode, op, "kvcore", threads))
                if kv is None:
                    continue
                peer = lambda s: r.get((size, mode, op, s, threads))
                out.append(
                    f"| {size} | {threads} | {mode} | {fmt(kv)} | {ratio(kv, peer('quick_cache'))} "
                    f"| {ratio(kv, peer('moka'))} | {ratio(kv, peer('lru'))} | {ratio(kv, dash)} "
                    f"| {ratio(peer('kvcore-tick'), peer('moka'))} |"
                )
    return "\n".join(out)


def plot(r, path, op="mixed-90-10", threads="2t"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s for s in SIZES if any(k[0] == s for k in r)]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
    width = 0.14
    colors = {"kvcore": "#1b9e77", "kvcore-tick": "#66a61e", "moka": "#d95f02",
              "quick_cache": "#7570b3", "lru": "#e7298a", "dashmap": "#666666"}
    for ax, size in zip(axes[0], sizes):
        for i, store in enumerate(STORES):
            xs, ys = [], []
            for m, mode in enumerate(MODES):
                v = r.get((size, mode, op, store, threads))
                if store == "dashmap":
                    v = r.get((size, "plain", op, store, threads))
                if v is not None:
                    xs.append(m + (i - 2.5) * width)
                    ys.append(v)
            label = "dashmap (unbounded)" if store == "dashmap" else store
            ax.bar(xs, ys, width, label=label, color=colors[store],
                   hatch="//" if store == "dashmap" else None,
                   alpha=0.55 if store == "dashmap" else 1.0)
        ax.set_xticks(range(len(MODES)), MODES)
        ax.set_title(f"{size} keys, Zipf 0.99, 90% reads, {threads[0]} threads")
        ax.set_ylabel("million operations per second")
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(STORES), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)


def main(argv):
    plot_path = None
    if "--plot" in argv:
        i = argv.index("--plot")
        plot_path = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    default = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    root = Path(argv[1]) if len(argv) > 1 else default
    r = load(root)
    if not r:
        sys.exit(f"no peers results under {root}: run `cargo bench -p kv-benches --bench peers`")
    print(target_table(r))
    print(throughput_tables(r))
    if plot_path:
        plot(r, plot_path)
        print(f"\nplot written to {plot_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
