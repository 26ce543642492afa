"""The whole `dqnlab train` command against the tutorial's whole script, as a user runs them.

Each cell is a fresh process timed from outside (bench_startup.process_seconds): the
tutorial's program (benchmarks/tutorial_script.py, the printed code with a
budget) and `python -m dqnlab train --preset tutorial --agent AGENT
--samples S --out ...`, both with torch's default threads, both printing
their per-episode lines into a pipe. A third cell, `dqnlab train --samples 1`,
is the command's fixed cost (start-up, setting up, writing the run
directory). With `--baseline SRC` (another dqnlab's src folder) the dqnlab
cells run there too. Cells are interleaved over repeats; medians of seconds.

    python benchmarks/bench_command.py [--samples 2500,10000] [--agent replay] [--repeats 3] [--baseline SRC]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from bench_startup import ROOT, process_seconds, timed


def tutorial_seconds(agent: str, samples: int, scratch: Path) -> float:
    script = ROOT / "benchmarks" / "tutorial_script.py"
    return process_seconds([sys.executable, str(script), "--agent", agent, "--samples", str(samples)], scratch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="2500,10000", help="budgets, comma-separated")
    parser.add_argument("--agent", choices=("replay", "naive"), default="replay")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, default=None, help="another dqnlab's src folder")
    args = parser.parse_args()
    budgets = [int(s) for s in args.samples.split(",")]
    sides = {"dqnlab": ROOT / "src", **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    train = ["train", "--preset", "tutorial", "--agent", args.agent, "--out", "{out}"]
    seconds: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for side, src in sides.items():  # one untimed run each: the file cache warm for every side alike
            timed(src, [*train, "--samples", "1"], Path(scratch))
        for _ in range(args.repeats):
            for side, src in sides.items():
                seconds.setdefault((f"{side} fixed", 1), []).append(timed(src, [*train, "--samples", "1"], Path(scratch)))
            for samples in budgets:
                seconds.setdefault(("tutorial", samples), []).append(tutorial_seconds(args.agent, samples, Path(scratch)))
                for side, src in sides.items():
                    seconds.setdefault((side, samples), []).append(timed(src, [*train, "--samples", str(samples)], Path(scratch)))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"agent {args.agent}, {args.repeats} repeats, medians of whole processes (seconds; each repeat's in brackets)")  # fmt: skip
    print("| samples | tutorial script | " + " | ".join(sides) + " | " + " | ".join(f"tutorial / {s}" for s in sides) + " |")
    print("|--:|--:|" + "--:|" * (2 * len(sides)))

    def cell(key):
        values = seconds[key]
        return f"{statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

    for side in sides:
        print(f"| 1 (`{side}` fixed cost) | | {cell((f'{side} fixed', 1))} |")
    for samples in budgets:
        tutorial = statistics.median(seconds["tutorial", samples])
        ratios = [tutorial / statistics.median(seconds[side, samples]) for side in sides]
        print(f"| {samples:,} | {cell(('tutorial', samples))} | " + " | ".join(cell((side, samples)) for side in sides)
              + " | " + " | ".join(f"**{r:.2f}x**" for r in ratios) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
