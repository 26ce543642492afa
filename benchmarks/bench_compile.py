"""torch.compile against dqnlab's hand-written learn step (`kernel.LearnStep`), on one thread.

For N members of the `quick` preset's replay agent (64x64 network, batches
of 64, the tutorial's full gradient), the same seeded TD updates three ways:

- kernel: `LearnStep`, as training runs it;
- eager: the same update as a function of the weights and the batch (the
  forward over [obs; next_obs], the TD head, the backward by hand) returning
  each layer's gradients, which are copied into the kernel's flat gradient
  and stepped by the kernel's Adam;
- compiled: that function through `torch.compile(fullgraph=True,
  dynamic=False)` with inductor (each of --modes), its Adam as eager's.

The kernel itself does not compile: dynamo refuses its `out=` writes into
strided views of the flat gradient (N > 1), and inductor fails on
`torch._fused_adam_` ("mutating a non-functional tensor with a functional
tensor"), hence the function. Each cell runs in a fresh process with a fresh
inductor cache, so its first call is a cold compile, the cost a user's first
run would pay. The rate is the median over --repeats timings of --updates
updates after --warmup; "same bits" says whether the weights after every
update equal the kernel's after the same updates.

    python benchmarks/bench_compile.py [--members 1,8,32] [--modes default] [--cores 0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

def gradients(weights, biases, obs, next_obs, action, reward, terminated, gamma: float):
    """Each member's mean squared TD error (N,) and the gradients of their sum, layer by layer [(dW, db), ...].

    `kernel.LearnStep`'s update with "full" gradients and MSE, written as a
    function: weights [(N, out, in)], biases [(N, 1, out)], a batch of
    (N, B, ...) tensors.
    """
    batch = obs.shape[1]
    x = torch.cat((obs, next_obs), dim=1)  # (N, 2B, obs_dim)
    inputs, last = [x], len(weights) - 1
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(bias, inputs[-1], weight.transpose(1, 2))  # (N, 2B, out)
        inputs.append(h if i == last else h.clamp_min(0))
    q = inputs.pop()  # (N, 2B, A)
    taken = action.unsqueeze(2)  # (N, B, 1)
    q_taken = q[:, :batch].gather(2, taken).squeeze(2)  # (N, B)
    next_value, best = q[:, batch:].max(dim=2)  # (N, B) each
    bootstrap = torch.where(terminated, 0.0, gamma)  # (N, B)
    error = q_taken - (reward + bootstrap * next_value)  # (N, B)
    losses = (error * error).sum(dim=1) / batch  # (N,)
    grad = error * (2.0 / batch)  # (N, B)
    dh = torch.zeros_like(q)  # (N, 2B, A)
    dh[:, :batch].scatter_(2, taken, grad.unsqueeze(2))
    dh[:, batch:].scatter_(2, best.unsqueeze(2), (-grad * bootstrap).unsqueeze(2))
    layers = []
    for i in range(last, -1, -1):
        below = inputs[i]  # (N, 2B, in)
        if i:
            layers.append((torch.bmm(dh.transpose(1, 2), below), dh.sum(dim=1, keepdim=True)))  # (N, out, in), (N, 1, out)
            dh = torch.bmm(dh, weights[i]) * (below > 0)  # (N, 2B, in): through the ReLU
        else:  # the first layer's as the kernel computes it: x^T dh, transposed
            layers.append((torch.bmm(below.transpose(1, 2), dh).transpose(1, 2), dh.sum(dim=1, keepdim=True)))
    return losses, layers[::-1]


def cell(way: str, members: int, mode: str, updates: int, warmup: int, repeats: int) -> dict:
    """One way's first-call seconds, steady microseconds per update, and its weights' equality with the kernel's."""
    import dataclasses

    from dqnlab.config import resolve
    from dqnlab.engine.envs import make_env
    from dqnlab.engine.kernel import LearnStep
    from dqnlab.engine.network import StackedQNetwork
    from dqnlab.engine.replay import Batch
    from dqnlab.engine.training import initial_network

    torch.set_num_threads(1)
    base = resolve("quick", "replay")
    configs = [dataclasses.replace(base, run=dataclasses.replace(base.run, seed=seed)) for seed in range(members)]
    _, spec = make_env(base.env)
    size, gamma = base.replay.batch_size, base.learner.gamma
    generator = torch.Generator().manual_seed(0)
    batches = [
        Batch(torch.randn(members, size, spec.obs_dim, generator=generator), torch.randint(0, spec.n_actions, (members, size), generator=generator),
              torch.ones(members, size), torch.randn(members, size, spec.obs_dim, generator=generator),
              torch.rand(members, size, generator=generator) < 0.05, torch.zeros(members, size, dtype=torch.bool))
        for _ in range(16)
    ]  # fmt: skip

    def learner() -> tuple[StackedQNetwork, LearnStep]:
        network = StackedQNetwork([initial_network(config, spec) for config in configs])
        return network, LearnStep(network, base.learner, size)

    network, step = learner()
    if way == "kernel":
        update = step
    else:
        function = gradients if way == "eager" else torch.compile(gradients, fullgraph=True, dynamic=False, mode=mode)
        into = [buffer for pair in zip(step.grad_weights, step.grad_biases) for buffer in pair]

        def update(batch):
            losses, layers = function(network.weights, network.biases, batch.obs, batch.next_obs, batch.action,
                                      batch.reward, batch.terminated, gamma)  # fmt: skip
            for buffer, grad in zip(into, (g for layer in layers for g in layer)):
                buffer.copy_(grad)
            step.optimizer.step()
            return losses

    start = time.perf_counter()
    update(batches[0])
    first = time.perf_counter() - start
    for k in range(1, 1 + warmup):
        update(batches[k % 16])
    timings, done = [], 1 + warmup
    for _ in range(repeats):
        start = time.perf_counter()
        for k in range(done, done + updates):
            update(batches[k % 16])
        timings.append((time.perf_counter() - start) / updates)
        done += updates
    reference, reference_step = learner()
    for k in range(done):
        reference_step(batches[k % 16])
    same = bool(torch.equal(network.params, reference.params))
    return {"way": way, "members": members, "first_s": first, "us": statistics.median(timings) * 1e6, "same": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="1,8,32", help="population sizes N, comma-separated")
    parser.add_argument("--modes", default="default", help="torch.compile modes, comma-separated (default, max-autotune-no-cudagraphs)")
    parser.add_argument("--updates", type=int, default=1000, help="updates per timing")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", default="0", help="taskset's core list for every cell")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        way, members, mode = args.cell.split(",")
        print(json.dumps(cell(way, int(members), None if mode == "default" else mode, args.updates, args.warmup, args.repeats)))
        return
    print("| N | way | first call (s) | us per update | x kernel | same bits as the kernel |\n|--:|---|--:|--:|--:|---|")
    for members in (int(m) for m in args.members.split(",")):
        cells = [("kernel", "default"), ("eager", "default"), *(("compiled", mode) for mode in args.modes.split(","))]
        kernel_us = None
        for way, mode in cells:
            with tempfile.TemporaryDirectory() as cache:
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
                command = ["taskset", "-c", args.cores, sys.executable, __file__, "--cell", f"{way},{members},{mode}",
                           "--updates", str(args.updates), "--warmup", str(args.warmup), "--repeats", str(args.repeats)]  # fmt: skip
                result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout.splitlines()[-1])
            kernel_us = result["us"] if way == "kernel" else kernel_us
            name = way if way != "compiled" else f"compiled ({mode})"
            print(f"| {members} | {name} | {result['first_s']:.2f} | {result['us']:,.1f} | {result['us'] / kernel_us:.2f} | "
                  f"{'yes' if result['same'] else 'no'} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
