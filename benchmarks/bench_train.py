"""Training throughput: the tutorial's code vs `dqnlab train`, same agent, same budget.

Each cell is a fresh process training on unwrapped CartPole-v1 with the
tutorial network (4 -> 1024 -> 512 -> 2) for `--samples` transitions:

- tutorial: the tutorial's own loop and learn functions (tests/tutorial_reference.py)
  with torch's default Adam and allocator, as its script runs;
- dqnlab: `dqnlab.engine.training.train` with the tutorial preset.

Each side is timed from its set-up (environment, network, optimizer) to its
last sample. Cells are interleaved over repeats; medians of samples per
second are reported.

    python benchmarks/bench_train.py [--samples 2000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLS = [(code, agent) for agent in ("naive", "replay") for code in ("tutorial", "dqnlab")]


def measure(code: str, agent: str, samples: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    if code == "dqnlab":
        from dqnlab.config import resolve
        from dqnlab.engine.training import train

        config = resolve("tutorial", agent, overrides=[f"run.samples={samples}"])
        start = time.perf_counter()
        train(config)
        return samples / (time.perf_counter() - start)
    import gymnasium as gym

    sys.path.insert(0, str(ROOT))
    from dqnlab.engine.network import build_network
    from tests import tutorial_reference as tutorial

    start = time.perf_counter()
    env = gym.make("CartPole-v1").unwrapped
    network = build_network(4, 2, (1024, 512), torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    tutorial.run_agent(env, network, optimizer, samples, replay=agent == "replay")
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        code, agent = args.cell.split(",")
        print(json.dumps(measure(code, agent, args.samples, args.threads)))
        return
    import torch

    print(f"machine: {platform.machine()}, {platform.python_version()}, torch {torch.__version__}, {args.threads} threads")
    rates = {cell: [] for cell in CELLS}
    for _ in range(args.repeats):
        for cell in CELLS:
            command = [sys.executable, __file__, "--cell", ",".join(cell), "--samples", str(args.samples), "--threads", str(args.threads)]
            rates[cell].append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    print(f"median of {args.repeats} processes x {args.samples} samples, samples per second")
    for agent in ("naive", "replay"):
        tutorial, ours = (statistics.median(rates[(code, agent)]) for code in ("tutorial", "dqnlab"))
        print(f"{agent:>7}: tutorial {tutorial:7.1f}/s   dqnlab {ours:7.1f}/s   {ours / tutorial:5.2f}x")


if __name__ == "__main__":
    main()
