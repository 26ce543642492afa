"""One learn step on the tutorial network (4 -> 1024 -> 512 -> 2), per implementation and setting.

Times one TD update for the naive agent (batch 1) and the replay agent
(batch 64), a population of one, with:

- autograd: the readable reference, `learner.reference_step` (td_loss,
  backward, torch's fused Adam);
- kernel: `kernel.LearnStep`, the update written out by hand, which training runs;

each under glibc's default allocator thresholds and under
`runtime.tune_allocator()`. The allocator setting is process-wide, so each
cell runs in its own process; cells are interleaved over repeats and medians
reported.

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

CELLS = [(batch, kernel, tuned) for batch in (1, 64) for kernel in (False, True) for tuned in (False, True)]


def measure(batch: int, kernel: bool, tuned: bool, steps: int, threads: int) -> dict:
    import numpy as np
    import torch

    from dqnlab import runtime
    from dqnlab.config import LearnerConfig
    from dqnlab.engine.kernel import LearnStep
    from dqnlab.engine.learner import make_optimizer, reference_step
    from dqnlab.engine.network import StackedQNetwork, build_network
    from dqnlab.engine.replay import Batch

    if tuned:
        runtime.tune_allocator()
    torch.set_num_threads(threads)
    config = LearnerConfig()
    network = StackedQNetwork([build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))])
    alive = torch.ones(1, dtype=torch.bool)
    if kernel:
        learn = LearnStep(network, config, batch)
    else:
        optimizer = make_optimizer([network.params], config.lr)

        def learn(b, alive):
            return reference_step(network, optimizer, b, alive, config)

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
        batch, kernel, tuned = (int(x) for x in args.cell.split(","))
        print(json.dumps(measure(batch, bool(kernel), bool(tuned), args.steps, args.threads)))
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
    print(f"{'batch':>5} {'update':>9} {'allocator':>10} {'ms/step':>8} {'faults/step':>12} {'vs autograd, default':>21}")
    for batch in (1, 64):
        base = statistics.median(r["ms"] for r in results[(batch, False, False)])
        for kernel in (False, True):
            for tuned in (False, True):
                runs = results[(batch, kernel, tuned)]
                ms = statistics.median(r["ms"] for r in runs)
                faults = statistics.median(r["faults"] for r in runs)
                print(f"{batch:>5} {'kernel' if kernel else 'autograd':>9} {'tuned' if tuned else 'default':>10} "
                      f"{ms:>8.2f} {faults:>12.0f} {base / ms:>20.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
