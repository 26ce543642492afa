"""Start-up as the user waits for it: whole `dqnlab` processes, from exec to exit.

Each cell is a fresh `python -m dqnlab ...` process, timed from outside with a
monotonic clock: interpreter start, imports, parsing, the work, writing, exit.
With `--baseline SRC` (another dqnlab's src folder, e.g. a git worktree of an
earlier commit) every command runs there too, interleaved with this tree's,
and the table gives the medians side by side and their ratio.

    python benchmarks/bench_startup.py [--repeats 7] [--baseline /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "dqnlab --help": ["--help"],
    "dqnlab train --help": ["train", "--help"],
    "dqnlab compare --help": ["compare", "--help"],
    "dqnlab presets": ["presets"],
    "dqnlab train --samples 64": ["train", "--samples", "64", "--quiet", "--out", "{out}"],
}


def timed(src: Path, args: list[str], scratch: Path) -> float:
    """Seconds one fresh process takes to run `python -m dqnlab ARGS` with `src` first on its path."""
    out = scratch / f"run-{time.monotonic_ns()}"
    env = {**os.environ, "PYTHONPATH": str(src)}
    return process_seconds([sys.executable, "-m", "dqnlab", *(a.format(out=out) for a in args)], scratch, env)


def process_seconds(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds one fresh process of `command` takes, exec to exit, its stdout discarded."""
    start = time.monotonic()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", type=Path, default=None, help="another dqnlab's src folder")
    args = parser.parse_args()
    sides = {"this": ROOT / "src", **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    seconds: dict[tuple[str, str], list[float]] = {(c, s): [] for c in COMMANDS for s in sides}
    with tempfile.TemporaryDirectory() as scratch:
        for name, src in sides.items():  # one untimed run each: the file cache warm for both sides alike
            timed(src, COMMANDS["dqnlab train --samples 64"], Path(scratch))
        for _ in range(args.repeats):
            for command, argv in COMMANDS.items():
                for side, src in sides.items():
                    seconds[command, side].append(timed(src, argv, Path(scratch)))
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{args.repeats} repeats, medians of whole processes")  # fmt: skip
    header = "| command | " + " | ".join(f"{side} (s)" for side in sides) + (" | baseline / this |" if args.baseline else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for command in COMMANDS:
        medians = {side: statistics.median(seconds[command, side]) for side in sides}
        row = f"| `{command}` | " + " | ".join(f"{medians[side]:.3f}" for side in sides)
        if args.baseline:
            row += f" | {medians['baseline'] / medians['this']:.1f}x"
        print(row + " |")


if __name__ == "__main__":
    main()
