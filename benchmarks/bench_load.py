"""Populations on a shared machine: one process on every core vs one single-threaded process per core, quiet and under load.

The population backend once trained a variant's seeds as one population in
one process on all of torch's threads. On a machine where another process
is busy, OpenMP's threads wait for each other at every operation, and one
of them is always the one the other process displaced: the population lost
most of its speed. It now cuts the seeds into one population per worker
process, one torch thread each. This script measures both layouts, each with
the same N members of the `quick` preset's replay agent in total, each alone
on the machine ("quiet") and beside one busy process ("loaded": a
single-threaded NumPy matmul loop, not pinned, as another user's job would
be). Rates are member-steps per second: N x samples over the wall-clock
seconds of the training, set-up excluded, over all processes of the layout.

    python benchmarks/bench_load.py [--members 32] [--samples 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time

from bench_jax import LOAD_LOOP, ONE_THREAD  # the same busy process and one-thread settings as the JAX comparison


def train_cell(seeds: range, samples: int, threads: int) -> dict[str, float]:
    """Train a population of `seeds` on `threads` torch threads; when it started and ended (time.time())."""
    import torch

    from dqnlab.config import resolve
    from dqnlab.engine.training import train_population

    torch.set_num_threads(threads)
    base = resolve("quick", "replay", overrides=[f"run.samples={samples}"])
    configs = [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in seeds]
    start = time.time()
    train_population(configs)
    return {"start": start, "end": time.time()}


def layout_rate(members: int, samples: int, processes: int) -> float:
    """Member-steps per second of `members` seeds cut into `processes` single-threaded populations side by side
    (processes 1: one population on every core's thread)."""
    cores = os.cpu_count() or 1
    threads = cores if processes == 1 else 1
    share = -(-members // processes)
    commands = [
        [sys.executable, __file__, "--cell", f"{first},{min(first + share, members)},{threads}", "--samples", str(samples)]
        for first in range(0, members, share)
    ]
    env = {**os.environ, **(ONE_THREAD if threads == 1 else {})}
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) for command in commands]
    spans = [json.loads(p.communicate()[0]) for p in running]
    return members * samples / (max(s["end"] for s in spans) - min(s["start"] for s in spans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=32)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        first, last, threads = (int(x) for x in args.cell.split(","))
        print(json.dumps(train_cell(range(first, last), args.samples, threads)))
        return
    import torch

    cores = os.cpu_count() or 1
    layouts = {f"1 process, {cores} threads": 1, f"{cores} processes, 1 thread each": cores}
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeats):  # cells interleaved over rounds
        for load in ("quiet", "loaded"):
            busy = subprocess.Popen([sys.executable, "-c", LOAD_LOOP], env={**os.environ, **ONE_THREAD}) if load == "loaded" else None
            try:
                for name, processes in layouts.items():
                    rates.setdefault((name, load), []).append(layout_rate(args.members, args.samples, processes))
            finally:
                if busy is not None:
                    busy.terminate()
                    busy.wait()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}, torch {torch.__version__}")
    print(f"{args.members} members of the quick preset's replay agent, {args.samples} samples each; member-steps per "
          f"second, median of {args.repeats} (all rounds: quiet / loaded)\n")  # fmt: skip
    print("| layout | quiet | with one busy process | loaded / quiet |")
    print("|---|--:|--:|--:|")
    for name in layouts:
        quiet, loaded = (statistics.median(rates[(name, load)]) for load in ("quiet", "loaded"))
        rounds = " / ".join(f"{q:,.0f}/{l:,.0f}" for q, l in zip(rates[(name, "quiet")], rates[(name, "loaded")]))
        print(f"| {name} | {quiet:,.0f} | {loaded:,.0f} | {loaded / quiet:.2f} ({rounds}) |")


if __name__ == "__main__":
    main()
