"""Does this dqnlab's learn step compute exactly what another version's computes? (Not a timing.)

Runs the same 30 TD updates of a population of 3 (64x64 networks, seeded
random batches) through `dqnlab.engine.kernel.LearnStep` in this checkout
and in another dqnlab's source folder (`--baseline`, e.g. a git worktree of
an older commit), in 16 settings (gamma 1 and 0.99, batches of 64 and 37,
MSE and Huber, full and semi gradient), and says for each whether the final
weights and the last losses are equal bit for bit.

    python benchmarks/check_arithmetic.py --baseline /tmp/before/src
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile

SETTINGS = list(itertools.product((1.0, 0.99), (64, 37), ("mse", "huber"), ("full", "semi")))


def updates(path: str) -> None:
    """Run every setting's updates with whichever dqnlab is importable; save weights and losses to `path`."""
    import numpy as np
    import torch

    from dqnlab.config import LearnerConfig
    from dqnlab.engine.kernel import LearnStep
    from dqnlab.engine.network import StackedQNetwork, build_network
    from dqnlab.engine.replay import Batch

    torch.set_num_threads(1)
    results = []
    for gamma, batch, loss, gradient in SETTINGS:
        network = StackedQNetwork([build_network(4, 2, (64, 64), torch.Generator().manual_seed(seed)) for seed in range(3)])
        step = LearnStep(network, LearnerConfig(lr=1e-3, gamma=gamma, loss=loss, td_gradient=gradient), batch)
        rng = np.random.default_rng(0)
        for _ in range(30):
            transitions = Batch(
                torch.tensor(rng.normal(size=(3, batch, 4)), dtype=torch.float32),  # (N, B, 4)
                torch.tensor(rng.integers(2, size=(3, batch))),  # (N, B)
                torch.ones(3, batch),
                torch.tensor(rng.normal(size=(3, batch, 4)), dtype=torch.float32),
                torch.tensor(rng.random((3, batch)) < 0.1),
                torch.zeros(3, batch, dtype=torch.bool),
            )  # fmt: skip
            losses = step(transitions, torch.ones(3, dtype=torch.bool))  # (N,)
        results.append((network.params.detach().clone(), losses.clone()))
    torch.save(results, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="another dqnlab's src folder")
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.save:
        updates(args.save)
        return
    import torch

    with tempfile.TemporaryDirectory() as folder:
        paths = {name: os.path.join(folder, f"{name}.pt") for name in ("this", "baseline")}
        for name, source in (("this", None), ("baseline", args.baseline)):
            env = {**os.environ, **({"PYTHONPATH": source} if source else {})}
            subprocess.run([sys.executable, __file__, "--save", paths[name]], check=True, env=env)
        this, baseline = torch.load(paths["this"]), torch.load(paths["baseline"])
    for (gamma, batch, loss, gradient), (weights, losses), (old_weights, old_losses) in zip(SETTINGS, this, baseline):
        same = torch.equal(weights, old_weights) and torch.equal(losses, old_losses)
        print(f"gamma {gamma}, batch {batch}, {loss}, {gradient}: {'the same bit for bit' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
