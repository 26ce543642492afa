"""dqnlab's population engine side by side with a PureJaxRL-style JAX population, on one core and one thread.

Both train N members (seeds 0..N-1) of the `quick` preset's algorithm (the
tutorial's DQN, 64x64 network) on CartPole, for each agent (replay, naive)
and each N of --sizes. Every cell runs in a fresh subprocess pinned with
`taskset -c CORES` (default core 0), the cells interleaved over --repeats
rounds:

- JAX: benchmarks/jax_population.py, run with the scratch venv's python: the
  whole run compiled into one XLA program (jit of vmap over members of a scan
  over steps). Its rate is N * T over the seconds of one run of the compiled
  program (compilation timed apart and reported).
- dqnlab: this script's hidden `--dqnlab-cell AGENT,N` mode, one torch
  thread, `dqnlab.engine.training.train_population` on the preset's configs;
  its rate is the steady state between sample --skip and the last sample,
  from progress timestamps every 10 samples.

Rates are member-steps per second (environment transitions, each with its
learn step), medians over the rounds. `--load` runs one busy process (a NumPy
matmul loop) on another core (--load-core, default 1) while the cells run.

JAX is not one of dqnlab's dependencies: build a scratch venv for it first,
then run this script with dqnlab's own venv:

    bash benchmarks/jax_venv.sh                # makes /tmp/dqnlab-jax-venv
    .venv/bin/python benchmarks/bench_jax.py --jax-python /tmp/dqnlab-jax-venv/bin/python \\
        [--sizes 1,8,32,128] [--steps 5000] [--repeats 3] [--load]
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
from pathlib import Path

JAX_SCRIPT = Path(__file__).with_name("jax_population.py")
AGENTS = ("replay", "naive")
LOAD_LOOP = "import numpy as np\na = np.random.rand(512, 512)\nwhile True:\n    a @ a"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


# ---------------------------------------------------------------- the dqnlab cell (a subprocess)


def dqnlab_rate(agent: str, members: int, steps: int, skip: int) -> float:
    """dqnlab's steady member-steps per second for N members of the quick preset, on one torch thread."""
    import torch

    from bench_population import steady_rate  # this folder's shared measure of the steady state
    from dqnlab.config import resolve
    from dqnlab.engine.training import train_population

    torch.set_num_threads(1)
    base = resolve("quick", agent, overrides=[f"run.samples={steps}"])
    configs = [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in range(members)]
    return steady_rate(lambda progress: train_population(configs, on_progress=progress, progress_every=10), skip, members)


# ---------------------------------------------------------------- the orchestrator


def run_jax_cell(args: argparse.Namespace, agent: str, members: int) -> dict:
    """One JAX cell in a fresh pinned process: its JSON line."""
    command = ["taskset", "-c", args.cores, args.jax_python, str(JAX_SCRIPT), "--agent", agent,
               "--members", str(members), "--steps", str(args.steps), "--repeats", "1", "--threads", "1"]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, **ONE_THREAD})
    return json.loads(output.stdout.strip().splitlines()[-1])


def run_dqnlab_cell(args: argparse.Namespace, agent: str, members: int, source: str | None = None) -> float:
    """One dqnlab cell in a fresh pinned process: its member-steps per second (`source`: another dqnlab's src folder)."""
    command = ["taskset", "-c", args.cores, sys.executable, __file__, "--dqnlab-cell", f"{agent},{members}",
               "--steps", str(args.steps), "--skip", str(args.skip)]  # fmt: skip
    env = {**os.environ, **ONE_THREAD, **({"PYTHONPATH": source} if source else {})}
    output = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(output.stdout.strip().splitlines()[-1])


def start_load(core: str) -> subprocess.Popen:
    """A busy one-thread NumPy matmul loop pinned to `core`, until terminated."""
    command = ["taskset", "-c", core, sys.executable, "-c", LOAD_LOOP]
    return subprocess.Popen(command, env={**os.environ, **ONE_THREAD})


def machine_line(jax_version: str) -> str:
    import torch

    return (
        f"machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, torch {torch.__version__}, jax {jax_version}"
    )


def print_table(args: argparse.Namespace, agents: list[str], sizes: list[int], jax_cells: dict, dqnlab_rates: dict,
                baseline_rates: dict) -> None:  # fmt: skip
    load = f", one busy process on core {args.load_core}" if args.load else ""
    print(f"member-steps per second, {args.steps} steps per member, taskset -c {args.cores}, one thread{load}; "
          f"median of {args.repeats} (dqnlab: steady state from sample {args.skip}; JAX: the whole compiled run)\n")  # fmt: skip
    extra = " dqnlab at --baseline |" if baseline_rates else ""
    print(f"| agent | N | JAX member-steps/s |{extra} dqnlab member-steps/s | dqnlab / JAX |")
    print("|---|--:|--:|--:|--:|" + ("--:|" if baseline_rates else ""))
    for agent in agents:
        for n in sizes:
            jax_rate = statistics.median(cell["member_steps_per_second"] for cell in jax_cells[(agent, n)])
            dqnlab = statistics.median(dqnlab_rates[(agent, n)])
            before = f" {statistics.median(baseline_rates[(agent, n)]):,.0f} |" if baseline_rates else ""
            print(f"| {agent} | {n} | {jax_rate:,.0f} |{before} {dqnlab:,.0f} | {dqnlab / jax_rate:.2f} |")
    compile_times = ", ".join(
        f"{agent} N={n}: {statistics.median(cell['compile_seconds'] for cell in jax_cells[(agent, n)]):.1f}"
        for agent in agents
        for n in sizes
    )
    print(f"\nJAX compile seconds (median, not in the rates): {compile_times}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax-python", default="/tmp/dqnlab-jax-venv/bin/python", help="python of the JAX venv")
    parser.add_argument("--sizes", default="1,8,32,128", help="population sizes N, comma-separated")
    parser.add_argument("--steps", type=int, default=5000, help="environment steps per member")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every cell")
    parser.add_argument("--skip", type=int, default=500, help="dqnlab's steady state starts at this sample")
    parser.add_argument("--cores", default="0", help="taskset core list for every cell")
    parser.add_argument("--load", action="store_true", help="run one busy process on --load-core during the cells")
    parser.add_argument("--load-core", default="1", help="taskset core list of the --load process")
    parser.add_argument("--agents", default=",".join(AGENTS), help="agents, comma-separated: " + ", ".join(AGENTS))
    parser.add_argument("--baseline", help="another dqnlab's src folder (e.g. a git worktree of an older commit), timed in a column of its own")
    parser.add_argument("--dqnlab-cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dqnlab_cell:
        agent, members = args.dqnlab_cell.split(",")
        print(json.dumps(dqnlab_rate(agent, int(members), args.steps, args.skip)))
        return

    sizes, agents = [int(s) for s in args.sizes.split(",")], args.agents.split(",")
    jax_cells: dict[tuple[str, int], list[dict]] = {}
    dqnlab_rates: dict[tuple[str, int], list[float]] = {}
    baseline_rates: dict[tuple[str, int], list[float]] = {}
    load = start_load(args.load_core) if args.load else None
    try:
        for _ in range(args.repeats):  # cells interleaved over rounds
            for agent in agents:
                for n in sizes:
                    jax_cells.setdefault((agent, n), []).append(run_jax_cell(args, agent, n))
                    dqnlab_rates.setdefault((agent, n), []).append(run_dqnlab_cell(args, agent, n))
                    if args.baseline:
                        baseline_rates.setdefault((agent, n), []).append(run_dqnlab_cell(args, agent, n, args.baseline))
    finally:
        if load is not None:
            load.terminate()
            load.wait()
    print(machine_line(jax_cells[(agents[0], sizes[0])][0]["jax"]))
    print_table(args, agents, sizes, jax_cells, dqnlab_rates, baseline_rates)


if __name__ == "__main__":
    main()
