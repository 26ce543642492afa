"""Replay sampling: the tutorial's Python list vs dqnlab's replay memory (one member), side by side.

For each memory size, both stores hold the same CartPole-shaped transitions;
each timed call draws a batch of 64 uniformly with replacement and turns it
into the learner's tensors (float32 states, int64 actions, bool dones): for
dqnlab, the member's next raw draws, the indices and the gather, as the
training loop does. Also times adding one transition (as tensors, as the
loop adds them). Prints medians over repeats and the ratio.

    python benchmarks/bench_replay.py [--repeats 7] [--calls 2000]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
import tracemalloc

import numpy as np
import torch

from dqnlab.engine.replay import Replay, bytes_per_transition
from dqnlab.seeding import MemberDraws

BATCH = 64


def tutorial_sample(memory: list, batch_size: int):
    """The tutorial's learn() up to the tensors, as printed in the tutorial."""
    randomMemories = random.choices(memory, k=batch_size)
    memories = np.stack(np.array(randomMemories, dtype=object))
    states, actions, rewards, states_, dones = memories.T
    states, actions, rewards, states_, dones = (
        np.stack(states), np.stack(actions), np.stack(rewards), np.stack(states_), np.stack(dones)
    )
    return (
        torch.tensor(states).float(), torch.tensor(actions.astype(np.int64)), torch.tensor(rewards).float(),
        torch.tensor(states_).float(), torch.tensor(dones.astype(bool)),
    )  # fmt: skip


def timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6  # microseconds per call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}")
    print(f"batch {BATCH}, median of {args.repeats} repeats x {args.calls} calls, microseconds per call")
    print(f"{'memory':>8} {'tutorial sample':>16} {'dqnlab sample':>14} {'ratio':>7} {'tutorial add':>13} {'dqnlab add':>11}")
    rng = np.random.default_rng(0)
    for size in (1_000, 10_000, 50_000):
        states = rng.normal(size=(size + 1, 4)).astype(np.float32)
        memory = [[states[i], int(i % 2), 1.0, states[i + 1], False] for i in range(size)]
        replay = Replay(1, size + args.calls * args.repeats, 4, "cpu")
        replay.obs[0, :size] = torch.from_numpy(states[:size])
        replay.next_obs[0, :size] = torch.from_numpy(states[1:])
        replay.action[0, :size] = torch.arange(size) % 2
        replay.reward[0, :size] = 1.0
        replay.cursor = replay.size = replay.added = size
        draws = MemberDraws([1], "replay", BATCH)
        one = [torch.from_numpy(states[:1]), torch.ones(1, dtype=torch.int64), torch.ones(1), torch.from_numpy(states[1:2]),
               torch.zeros(1, dtype=torch.bool), torch.zeros(1, dtype=torch.bool)]  # fmt: skip
        tut, ours, tut_add, our_add = [], [], [], []
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            tut.append(timed(lambda: tutorial_sample(memory, BATCH), args.calls))
            ours.append(timed(lambda: replay.gather(replay.indices(draws.next())), args.calls))
            scratch = list(memory[:10])
            tut_add.append(timed(lambda: scratch.append([states[0], 1, 1.0, states[1], False]), args.calls))
            our_add.append(timed(lambda: replay.add(*one), args.calls))
        t, o = statistics.median(tut), statistics.median(ours)
        print(f"{size:>8} {t:>16.1f} {o:>14.1f} {t / o:>6.1f}x {statistics.median(tut_add):>13.2f} {statistics.median(our_add):>11.2f}")
    print(f"memory per transition: tutorial list {list_bytes_per_transition():.0f} bytes, "
          f"dqnlab ring {bytes_per_transition(4)} bytes")  # fmt: skip


def list_bytes_per_transition(count: int = 20_000) -> float:
    """Bytes the tutorial's list holds per transition: a 5-item list, two fresh float32 arrays, a float."""
    rng = np.random.default_rng(0)
    tracemalloc.start()
    memory = []
    for i in range(count):
        memory.append([rng.normal(size=4).astype(np.float32), i % 2, 1.0, rng.normal(size=4).astype(np.float32), False])
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return size / count


if __name__ == "__main__":
    main()
