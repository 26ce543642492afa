"""Population throughput: N seeds as one batched computation vs N single runs on the same cores.

For each network (64x64 and the tutorial's 1024x512, the replay agent of the
tutorial preset otherwise) and each N:

- population: one process with `--threads` torch threads (default: every
  core) trains N members with `dqnlab.engine.training.train_population`;
- single: min(N, cores) processes side by side, one torch thread each (the
  local backend's layout), each training one ordinary run with
  `dqnlab.engine.training.train`; N single runs take N / min(N, cores) rounds of this.

Throughput is aggregate member-steps (environment transitions, each with its
learn step) per second, measured in the steady state: from sample `--skip`
(past the 64-sample warm-up) to the end, by progress timestamps.

Also printed: this machine's peak matmul throughput (a 2048^3 matmul on the
same threads) and the FLOPs of one member-step of the tutorial network, whose
ratio is the matmul-bound limit on member-steps per second.

    python benchmarks/bench_population.py [--sizes 1,8,32,128] [--threads 2] [--repeats 1]
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

NETWORKS = {"64x64": ((64, 64), 1500), "1024x512": ((1024, 512), 300)}  # hidden, samples per cell
BATCH = 64


def configs(network: str, n: int):
    from dqnlab.config import resolve

    hidden, samples = NETWORKS[network]
    base = resolve("tutorial", "replay", overrides=[f"network.hidden={list(hidden)}", f"run.samples={samples}"])
    return [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in range(n)]


def steady_rate(train, skip: int, members: int) -> float:
    """Member-steps per second between sample `skip` and the end of training."""
    stamps = {}
    train(lambda samples: stamps.setdefault(samples, time.perf_counter()))
    first, last = min(s for s in stamps if s >= skip), max(stamps)
    return members * (last - first) / (stamps[last] - stamps[first])


def measure(kind: str, network: str, n: int, threads: int, skip: int) -> float:
    import torch

    torch.set_num_threads(threads)
    if kind == "population":
        from dqnlab.engine.training import train_population

        return steady_rate(lambda progress: train_population(configs(network, n), on_progress=progress, progress_every=10), skip, n)
    from dqnlab.engine.training import train

    return steady_rate(lambda progress: train(configs(network, 1)[0], on_progress=progress, progress_every=10), skip, 1)


def cell(kind: str, network: str, n: int, threads: int, skip: int) -> list[str]:
    return [sys.executable, __file__, "--cell", f"{kind},{network},{n}", "--threads", str(threads), "--skip", str(skip)]


def single_runs(network: str, n: int, cores: int, skip: int) -> float:
    """Aggregate rate of min(n, cores) one-thread processes running side by side."""
    processes = [subprocess.Popen(cell("single", network, 1, 1, skip), stdout=subprocess.PIPE, text=True) for _ in range(min(n, cores))]
    return sum(json.loads(p.communicate()[0]) for p in processes)


def flops_per_member_step(hidden: tuple[int, ...], obs_dim: int = 4, n_actions: int = 2, batch: int = BATCH) -> float:
    """Multiply-adds x 2 of one learn step (full gradient: forward and backward over 2B rows) plus one greedy action."""
    widths = (obs_dim, *hidden, n_actions)
    layers = [fan_in * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:])]
    rows = 2 * batch  # obs and next_obs
    forward = 2 * rows * sum(layers)
    weight_grads = 2 * rows * sum(layers)
    input_grads = 2 * rows * sum(layers[1:])  # the first layer's input is data: no gradient
    return forward + weight_grads + input_grads + 2 * sum(layers)


def peak_matmul(threads: int, size: int = 2048, repeats: int = 10) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,32,128", help="population sizes N, comma-separated")
    parser.add_argument("--networks", default=",".join(NETWORKS), help="networks, comma-separated: " + ", ".join(NETWORKS))
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of the population (and cores for single runs)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip", type=int, default=100, help="steady state starts at this sample")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        kind, network, n = args.cell.split(",")
        print(json.dumps(measure(kind, network, int(n), args.threads, args.skip)))
        return
    import torch

    cores, sizes, networks = args.threads, [int(s) for s in args.sizes.split(",")], args.networks.split(",")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}")
    peak = peak_matmul(cores)
    print(f"peak matmul (2048^3, {cores} threads): {peak / 1e9:.1f} GFLOP/s")
    rates: dict[tuple, list[float]] = {}
    for _ in range(args.repeats):  # cells interleaved over repeats
        for network in networks:
            for n in sizes:
                rates.setdefault(("single", network, n), []).append(single_runs(network, n, cores, args.skip))
                command = cell("population", network, n, cores, args.skip)
                rates.setdefault(("population", network, n), []).append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    print(f"member-steps per second, steady state from sample {args.skip}, median of {args.repeats}")
    print(f"{'network':>9} {'N':>4} {'single runs':>12} {'population':>11} {'ratio':>6}")
    for network in networks:
        for n in sizes:
            single, population = (statistics.median(rates[(kind, network, n)]) for kind in ("single", "population"))
            print(f"{network:>9} {n:>4} {single:>12.1f} {population:>11.1f} {population / single:>5.1f}x")
        hidden = NETWORKS[network][0]
        flops = flops_per_member_step(hidden)
        best = max(statistics.median(rates[("population", network, n)]) for n in sizes)
        print(
            f"{network:>9}: {flops / 1e6:.1f} MFLOP per member-step; matmul-bound limit {peak / flops:.1f} member-steps/s; "
            f"best population {best:.1f}/s = limit / {peak / flops / best:.2f}"
        )


if __name__ == "__main__":
    main()
