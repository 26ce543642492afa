"""Where one population step's time goes: the engine's parts, and torch's operations one by one.

For N members of the `quick` preset's replay agent (64x64, batch 64, full
gradient), or its naive agent (--agent naive: batches of one), on one
thread, three looks at the same training loop:

1. the steady rate without any profiler (member-steps per second, and
   microseconds per population step);
2. the engine's parts (acting, the environment, the replay memory, the learn
   step, the books) by cProfile's cumulative time, as shares of the step:
   cProfile slows Python more than native code, so read these as shares;
3. every torch operation by torch.profiler: calls and self time per
   population step, the largest first.

    python benchmarks/profile_step.py [--members 1,8,32] [--agent replay] [--samples 1500]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import time

PARTS = {  # the engine's functions, by file and name, as cProfile names them
    "act (epsilon-greedy forward)": ("learner.py", "act"),
    "environment step": ("envs.py", "step"),
    "replay add": ("replay.py", "add"),
    "replay draw and gather": ("replay.py", "gather"),
    "learn step: forward": ("kernel.py", "forward"),
    "learn step: TD head": ("kernel.py", "head"),
    "learn step: backward": ("kernel.py", "backward"),
    "learn step: Adam": ("kernel.py", "step"),
    "books (episodes, losses)": ("training.py", "stepped"),
    "books (learn steps)": ("training.py", "learned"),
}


def configs(members: int, samples: int, agent: str = "replay"):
    from dqnlab.config import resolve

    base = resolve("quick", agent, overrides=[f"run.samples={samples}"])
    return [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in range(members)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,8,32", help="population sizes N, comma-separated")
    parser.add_argument("--agent", choices=("replay", "naive"), default="replay")
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--skip", type=int, default=300, help="the steady state starts at this sample")
    parser.add_argument("--top", type=int, default=20, help="torch operations listed")
    args = parser.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from dqnlab.engine.training import train_population

    torch.set_num_threads(1)
    for n in (int(m) for m in args.members.split(",")):
        stamps: dict[int, float] = {}
        train_population(configs(n, args.samples, args.agent), on_progress=lambda s: stamps.setdefault(s, time.perf_counter()), progress_every=10)
        first, last = min(s for s in stamps if s >= args.skip), max(stamps)
        per_step = (stamps[last] - stamps[first]) / (last - first)
        print(f"\n## N = {n}: {n / per_step:,.0f} member-steps/s, {per_step * 1e6:,.0f} us per population step\n")

        profiler = cProfile.Profile()
        profiler.runcall(train_population, configs(n, args.samples, args.agent))
        stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, primitive, tottime, cumtime, callers)}
        total = sum(value[2] for value in stats.values())
        print("| part (cProfile) | share of the step |\n|---|--:|")
        for part, (file, name) in PARTS.items():
            cumulative = sum(v[3] for k, v in stats.items() if k[0].endswith(f"engine/{file}") and k[2] == name)
            print(f"| {part} | {cumulative / total:.0%} |")

        with profile(activities=[ProfilerActivity.CPU]) as torch_profile:
            train_population(configs(n, args.samples, args.agent))
        events = sorted(torch_profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        calls = sum(e.count for e in events if e.key.startswith("aten::"))
        print(f"\ntorch operations: {calls / args.samples:.0f} calls per population step (views included)\n")
        print("| operation | calls per step | self us per step |\n|---|--:|--:|")
        for event in events[: args.top]:
            print(f"| {event.key} | {event.count / args.samples:.1f} | {event.self_cpu_time_total / args.samples:.1f} |")


if __name__ == "__main__":
    main()
