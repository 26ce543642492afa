"""What each replay-lab option costs per training step, beside plain uniform replay.

Part 1, the whole step: the training loop (`train_population`) of the
`quick` network (64x64) with standard DQN's semi-gradient target, a
50,000-transition ring and batches of 64, for N = 1 and N = 32 members on
one torch thread, for each option alone:

    uniform      the tutorial's uniform draws with replacement (the baseline)
    prioritized  proportional prioritized replay (alpha 0.6, beta 0.4 -> 1)
    combined     the newest transition in every batch
    n-step 3     3-step returns
    hard target  a target network copied every 500 learn steps
    polyak       a target network averaged with tau 0.005 every learn step
    double       double DQN with the hard target network

Every action is random (epsilon 1; the greedy action is still computed), so
every option plays the same episodes and the figures differ by the option's
own work only. Microseconds per loop step (every member's environment step,
store and learn step) in the steady state (past sample `--skip`), median of
`--repeats` interleaved rounds, and each option's overhead over uniform in
the same round.

Part 2, prioritized replay's own operations at capacity 50,000 (every slot
filled), B = 64: `added` (once per environment step), `sample`, `weights` and
`update` (once per learn step), median microseconds per call.

    python benchmarks/bench_options.py [--repeats 3] [--sizes 1,32]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import timeit

sys.path.insert(0, os.path.dirname(__file__))
from bench_population import steady_rate  # noqa: E402

# epsilon 1: every action is random, drawn from the seed's own stream whatever the network says, so every
# option plays the same episodes (the same resets and books) and only the option's own work differs.
BASE = ["network.hidden=[64, 64]", 'learner.td_gradient="semi"', "learner.gamma=0.99", "replay.capacity=50000", "learner.epsilon=1.0"]
OPTIONS = {
    "uniform": [],
    "prioritized": ["replay.prioritized=true"],
    "combined": ["replay.combined=true"],
    "n-step 3": ["learner.n_step=3"],
    "hard target": ['learner.target_update="hard"'],
    "polyak": ['learner.target_update="polyak"'],
    "double": ['learner.target_update="hard"', "learner.double=true"],
}
SAMPLES = {1: 2500, 32: 1500}


def step_microseconds(option: str, members: int, skip: int) -> float:
    from dqnlab.config import resolve
    from dqnlab.engine.training import train_population

    base = resolve("tutorial", "replay", overrides=[*BASE, *OPTIONS[option], f"run.samples={SAMPLES[members]}"])
    configs = [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in range(members)]
    rate = steady_rate(lambda progress: train_population(configs, on_progress=progress, progress_every=10), skip, 1)
    return 1e6 / rate  # one loop step of all members


def prioritized_microseconds(members: int, repeats: int) -> dict[str, float]:
    import torch

    from dqnlab.engine.priority import Priorities
    from dqnlab.seeding import HIGH

    capacity, batch = 50_000, 64
    priorities = Priorities(members, capacity, 0.6, 1e-6, "cpu")
    generator = torch.Generator().manual_seed(0)
    slots = torch.arange(capacity).expand(members, -1)  # (N, C)
    priorities.update(slots, torch.rand(members, capacity, generator=generator))  # every slot filled
    raw = torch.randint(0, HIGH, (members, batch), generator=generator)  # (N, B)
    index, errors = priorities.sample(raw), torch.randn(members, batch, generator=generator)  # (N, B) each
    calls = {
        "added": lambda: priorities.added(1234),
        "sample": lambda: priorities.sample(raw),
        "weights": lambda: priorities.weights(index, capacity, 0.5),
        "update": lambda: priorities.update(index, errors),
    }
    return {name: statistics.median(timeit.repeat(call, number=200, repeat=repeats)) / 200 * 1e6 for name, call in calls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1,32")
    parser.add_argument("--skip", type=int, default=500)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, one thread")
    times = {(option, n): [] for option in OPTIONS for n in sizes}
    for _ in range(args.repeats):  # rounds interleave every cell, so drift hits them alike
        for n in sizes:
            for option in OPTIONS:
                times[option, n].append(step_microseconds(option, n, args.skip))
    print("\nPart 1: microseconds per loop step, median of", args.repeats, "(overhead over uniform, median of the rounds' ratios)")
    print("| option | " + " | ".join(f"N = {n}" for n in sizes) + " |")
    print("|---|" + "--:|" * len(sizes))
    for option in OPTIONS:
        cells = []
        for n in sizes:
            ratios = [mine / uniform for mine, uniform in zip(times[option, n], times["uniform", n])]
            cells.append(f"{statistics.median(times[option, n]):,.0f} ({statistics.median(ratios):.2f}x)")
        print(f"| {option} | " + " | ".join(cells) + " |")
    print("\nPart 2: prioritized replay at capacity 50,000, B = 64, microseconds per call (median of", max(args.repeats, 5), "x 200 calls)")
    print("| members | added | sample | weights | update |")
    print("|--:|--:|--:|--:|--:|")
    for n in sizes:
        cost = prioritized_microseconds(n, max(args.repeats, 5))
        print(f"| {n} | " + " | ".join(f"{cost[name]:,.0f}" for name in ("added", "sample", "weights", "update")) + " |")


if __name__ == "__main__":
    main()
