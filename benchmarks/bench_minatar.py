"""MinAtar Breakout throughput: dqnlab's engine at N = 1 and N = 16 against a DQN written the straightforward way.

Each cell is a fresh process on one torch thread (pin the whole benchmark to
one core with `taskset -c 0`), training the `minatar` preset's agent (Young &
Tian's DQN: conv 16 then 128 units, centered RMSProp, Huber loss, a target
network every 1,000 learn steps, batches of 32 from a 100,000-transition
ring) on MinAtar/Breakout-v0 for `--samples` member-steps after a warm-up of
`--warmup` transitions, timed from set-up to the last sample:

- baseline: what a user writes from MinAtar's README and PyTorch's DQN
  tutorial: a Python loop over the Gymnasium environment, an `nn.Module`
  Q-network, a replay list of per-transition tensors drawn with
  `random.sample` and stacked with `torch.cat`, `torch.optim.RMSprop`;
- dqnlab N = 1: `dqnlab.engine.training.train` (a population of one);
- dqnlab N = 16: `train_population` of 16 seeds, counted as member-steps.

`--agent naive` times the agents without replay instead (learning from each
transition as it arrives). Cells are interleaved over repeats; medians of
member-steps per second are reported, with each cell's ratio to the baseline.

    taskset -c 0 python benchmarks/bench_minatar.py [--samples 3000] [--warmup 1000] [--repeats 3] [--agent replay]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time

CELLS = ("baseline", "dqnlab N=1", "dqnlab N=16")


def baseline(agent: str, samples: int, warmup: int) -> float:
    """A plain DQN on MinAtar: the loop, network, list memory and optimizer as a user would write them."""
    import gymnasium as gym
    import minatar.gym
    import torch
    from torch import nn
    from torch.nn import functional as F

    start = time.perf_counter()
    minatar.gym.register_envs()
    env = gym.make("MinAtar/Breakout-v0")
    channels, actions = env.observation_space.shape[2], env.action_space.n

    class QNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(channels, 16, 3)
            self.hidden = nn.Linear(8 * 8 * 16, 128)
            self.out = nn.Linear(128, actions)

        def forward(self, x):
            x = F.relu(self.conv(x))
            return self.out(F.relu(self.hidden(x.flatten(1))))

    online, target = QNet(), QNet()
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.RMSprop(online.parameters(), lr=2.5e-4, alpha=0.95, eps=0.01, centered=True)
    memory, capacity, batch = [], 100_000, 32 if agent == "replay" else 1

    def as_state(obs):
        return torch.tensor(obs, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)  # (1, C, 10, 10)

    state, learn_steps, total = as_state(env.reset(seed=0)[0]), 0, warmup + samples
    for frame in range(total):
        epsilon = max(0.1, 1.0 - 0.9 * frame / 100_000)
        if random.random() < epsilon:
            action = random.randrange(actions)
        else:
            with torch.no_grad():
                action = int(online(state).argmax(dim=1))
        obs, reward, terminated, truncated, _ = env.step(action)
        next_state = as_state(obs)
        transition = (state, torch.tensor([[action]]), torch.tensor([reward], dtype=torch.float32), next_state,
                      torch.tensor([terminated]))  # fmt: skip
        if agent == "replay":  # a ring: append until full, then overwrite the oldest
            if len(memory) < capacity:
                memory.append(transition)
            else:
                memory[frame % capacity] = transition
        sample = random.sample(memory, batch) if agent == "replay" and len(memory) >= max(batch, warmup) else [transition]
        if agent == "naive" or len(memory) >= warmup:
            states, taken, rewards, next_states, ended = (torch.cat(column) for column in zip(*sample))
            q = online(states).gather(1, taken).squeeze(1)
            with torch.no_grad():
                bootstrap = target(next_states).max(dim=1).values * (~ended)
            loss = F.smooth_l1_loss(q, rewards + 0.99 * bootstrap)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            learn_steps += 1
            if learn_steps % 1000 == 0:
                target.load_state_dict(online.state_dict())
        state = as_state(env.reset()[0]) if terminated or truncated else next_state
    return total / (time.perf_counter() - start)


def dqnlab_cell(agent: str, samples: int, warmup: int, members: int) -> float:
    import dataclasses

    from dqnlab.config import resolve
    from dqnlab.engine.training import train_population

    total = warmup + samples
    overrides = [f"run.samples={total}"] + ([f"replay.warmup={warmup}"] if agent == "replay" else [])
    config = resolve("minatar", agent, overrides=overrides)
    configs = [dataclasses.replace(config, run=dataclasses.replace(config.run, seed=seed)) for seed in range(members)]
    start = time.perf_counter()
    train_population(configs)
    return members * total / (time.perf_counter() - start)


def measure(cell: str, agent: str, samples: int, warmup: int) -> float:
    import torch

    torch.set_num_threads(1)
    if cell == "baseline":
        return baseline(agent, samples, warmup)
    return dqnlab_cell(agent, samples, warmup, int(cell.partition("N=")[2]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000, help="member-steps timed after the warm-up, per member")
    parser.add_argument("--warmup", type=int, default=1000, help="transitions stored before the replay agent learns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agent", choices=("replay", "naive"), default="replay")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        print(json.dumps(measure(args.cell, args.agent, args.samples, args.warmup)))
        return
    import torch

    print(f"machine: {platform.machine()}, Python {platform.python_version()}, torch {torch.__version__}, one thread; "
          f"{args.agent} agent, {args.warmup:,} + {args.samples:,} steps per member, {args.repeats} interleaved rounds")  # fmt: skip
    rates: dict[str, list[float]] = {cell: [] for cell in CELLS}
    for _ in range(args.repeats):
        for cell in CELLS:
            command = [sys.executable, __file__, "--cell", cell, "--agent", args.agent, "--samples", str(args.samples),
                       "--warmup", str(args.warmup)]  # fmt: skip
            rates[cell].append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    base = statistics.median(rates["baseline"])
    for cell in CELLS:
        median = statistics.median(rates[cell])
        runs = ", ".join(f"{rate:,.0f}" for rate in rates[cell])
        print(f"{cell:>12}: {median:8,.0f} member-steps/s  {median / base:5.2f}x the baseline  (runs: {runs})")


if __name__ == "__main__":
    main()
