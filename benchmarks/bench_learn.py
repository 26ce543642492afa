"""One learn step on the tutorial network (4 -> 1024 -> 512 -> 2), per implementation and setting.

Times one TD update for the naive agent (batch 1) and the replay agent
(batch 64), a population of one, with:

- autograd: the idiomatic update, `learner.td_loss` on a `QNetwork` (one
  nn.Module, a Parameter per layer), backward, torch's fused Adam;
- kernel: `kernel.LearnStep`, the update written out by hand, which training runs;

each cell in its own process with subnormals flushed on all its threads
(set before torch starts them), so that both sides are timed on their
arithmetic; cells are interleaved over repeats and medians reported.

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

CELLS = [(batch, kernel) for batch in (1, 64) for kernel in (False, True)]


def measure(batch: int, kernel: bool, steps: int, threads: int) -> dict:
    import numpy as np
    import torch

    torch.set_flush_denormal(True)  # before any parallel region: torch's threads inherit it
    from dqnlab.config import LearnerConfig
    from dqnlab.engine.kernel import LearnStep
    from dqnlab.engine.learner import make_optimizer, td_loss
    from dqnlab.engine.network import StackedQNetwork, build_network
    from dqnlab.engine.replay import Batch

    torch.set_num_threads(threads)
    config = LearnerConfig()
    network = build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))
    alive = torch.ones(1, dtype=torch.bool)
    if kernel:
        learn = LearnStep(StackedQNetwork([network]), config, batch)
    else:
        optimizer = make_optimizer(network.parameters(), config.lr)

        def learn(b, alive):
            loss = td_loss(network, Batch(*(None if field is None else field[0] for field in b)), config.gamma, config.td_gradient, config.loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    rng = np.random.default_rng(0)
    batches = [
        Batch(torch.as_tensor(rng.normal(size=(1, batch, 4)), dtype=torch.float32), torch.as_tensor(rng.integers(2, size=(1, batch))),
              torch.ones(1, batch), torch.as_tensor(rng.normal(size=(1, batch, 4)), dtype=torch.float32),
              torch.as_tensor(rng.random((1, batch)) < 0.05), torch.zeros(1, batch, dtype=torch.bool))
        for _ in range(steps + 20)
    ]  # fmt: skip
    for b in batches[:20]:
        learn(b, alive)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for b in batches[20:]:
        learn(b, alive)
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
        batch, kernel = (int(x) for x in args.cell.split(","))
        print(json.dumps(measure(batch, bool(kernel), args.steps, args.threads)))
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
    print(f"{'batch':>5} {'update':>9} {'ms/step':>8} {'faults/step':>12} {'vs autograd':>12}")
    for batch in (1, 64):
        base = statistics.median(r["ms"] for r in results[(batch, False)])
        for kernel in (False, True):
            runs = results[(batch, kernel)]
            ms = statistics.median(r["ms"] for r in runs)
            faults = statistics.median(r["faults"] for r in runs)
            print(f"{batch:>5} {'kernel' if kernel else 'autograd':>9} {ms:>8.2f} {faults:>12.0f} {base / ms:>11.2f}x")


if __name__ == "__main__":
    main()
