"""One learn step on the tutorial network (4 -> 1024 -> 512 -> 2), per setting.

Times `Learner.learn` for the naive agent (batch 1) and the replay agent
(batch 64) under: torch's default for-loop Adam vs the fused Adam dqnlab uses,
and glibc's default allocator thresholds vs `runtime.tune_allocator()`.
The allocator setting is process-wide, so each cell runs in its own process;
cells are interleaved over repeats and medians reported.

    python benchmarks/bench_learn.py [--repeats 5] [--steps 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

CELLS = [(batch, fused, tuned) for batch in (1, 64) for fused in (False, True) for tuned in (False, True)]


def measure(batch: int, fused: bool, tuned: bool, steps: int, threads: int) -> dict:
    import numpy as np
    import torch

    from dqnlab import runtime
    from dqnlab.config import LearnerConfig
    from dqnlab.learner import Learner
    from dqnlab.networks import build_network
    from dqnlab.replay import ReplayBuffer

    if tuned:
        runtime.tune_allocator()
    torch.set_num_threads(threads)
    network = build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))
    learner = Learner(network, LearnerConfig(), np.random.default_rng(0))
    if not fused:
        learner.optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    buffer, rng = ReplayBuffer(1000, 4), np.random.default_rng(0)
    for i in range(1000):
        buffer.add(rng.normal(size=4), i % 2, 1.0, rng.normal(size=4), i % 20 == 19, False)
    batches = [buffer.sample(batch, rng) for _ in range(steps + 20)]
    for b in batches[:20]:
        learner.learn(b)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for b in batches[20:]:
        learner.learn(b)
    elapsed = time.perf_counter() - start
    return {"ms": elapsed / steps * 1e3, "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        batch, fused, tuned = (int(x) for x in args.cell.split(","))
        print(json.dumps(measure(batch, bool(fused), bool(tuned), args.steps, args.threads)))
        return
    import torch

    print(f"machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, {args.threads} threads")
    results = {cell: [] for cell in CELLS}
    for _ in range(args.repeats):
        for cell in CELLS:
            flags = ",".join(str(int(x)) for x in cell)
            command = [sys.executable, __file__, "--cell", flags, "--steps", str(args.steps), "--threads", str(args.threads)]
            results[cell].append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    print(f"median of {args.repeats} processes x {args.steps} learn steps")
    print(f"{'batch':>5} {'adam':>9} {'allocator':>10} {'ms/step':>8} {'faults/step':>12} {'vs default':>11}")
    for batch in (1, 64):
        base = statistics.median(r["ms"] for r in results[(batch, False, False)])
        for fused in (False, True):
            for tuned in (False, True):
                runs = results[(batch, fused, tuned)]
                ms = statistics.median(r["ms"] for r in runs)
                faults = statistics.median(r["faults"] for r in runs)
                print(f"{batch:>5} {'fused' if fused else 'for-loop':>9} {'tuned' if tuned else 'default':>10} "
                      f"{ms:>8.2f} {faults:>12.0f} {base / ms:>10.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
