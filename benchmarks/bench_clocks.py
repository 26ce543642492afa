"""One agent's seconds on each backend: do the local and population backends time one agent alike?

The local backend times each run on its own clock (one worker process, one
torch thread); the population backend trains the seeds together and times
one agent of each variant alone afterwards (experiments/clock.py). The same
paired seeds (bit for bit the same runs) go through both; this prints each
variant's per-agent seconds (IQM over seeds) on each backend, replay's cost
over naive's, and the share of replay's budget the per-second window covers.
Wall-clock seconds depend on the machine and on what else runs, so this is a
measurement, not a test; run it on a quiet machine.

    python benchmarks/bench_clocks.py [--seeds 4] [--samples 3000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from dqnlab.api import compare
from dqnlab.experiments.spec import build_experiment


def agent_seconds(summary: dict, name: str) -> float:
    return summary["variants"][name]["measures"]["agent_seconds"]["iqm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    experiment = build_experiment("tutorial", args.samples, args.seeds, None, {"network": {"hidden": args.hidden}})
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            summaries = {backend: compare(experiment, Path(scratch) / f"{backend}-{repeat}", workers=1, backend=backend)
                         for backend in ("local", "population")}  # fmt: skip
            for backend, summary in summaries.items():
                for name in ("naive", "replay"):
                    rows.setdefault(f"{backend}: {name} agent-seconds", []).append(agent_seconds(summary, name))
                rows.setdefault(f"{backend}: replay / naive", []).append(agent_seconds(summary, "replay") / agent_seconds(summary, "naive"))
                rows.setdefault(f"{backend}: window / replay's seconds", []).append(summary["limits"]["seconds"] / agent_seconds(summary, "replay"))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; tutorial preset, hidden {args.hidden}, "
          f"{args.seeds} paired seeds x {args.samples} samples, 1 worker; medians of {args.repeats} repeats")  # fmt: skip
    print("| figure | median | repeats |")
    print("|---|---|---|")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")
    for name in ("naive", "replay"):
        ratio = statistics.median(rows[f"population: {name} agent-seconds"]) / statistics.median(rows[f"local: {name} agent-seconds"])
        print(f"{name}: population / local agent-seconds = {ratio:.2f}")


if __name__ == "__main__":
    main()
