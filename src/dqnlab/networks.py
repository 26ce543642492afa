"""A run's Q-network, built from its checked files: what play, probe and the detector measures run; and the
hand-set network written as a run directory (`dqnlab handset`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from dqnlab.config import Config, config_to_json
from dqnlab.engine.envs import make_env
from dqnlab.engine.network import QNetwork
from dqnlab.handset import HANDSET_STATUS, NEURONS, handset_config, handset_network
from dqnlab.rundir.disk import write_json, write_text
from dqnlab.rundir.layout import CONFIG, RESULT, WEIGHTS
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.reading import load_config
from dqnlab.rundir.weights import read_weights
from dqnlab.rundir.writer import save_weights


def load_network(path: str | Path, obs_dim: int, n_actions: int, device: torch.device | str = "cpu",
                 hidden: tuple[int, ...] | None = None, conv: tuple[int, ...] | None = None,
                 frame: tuple[int, int, int] | None = None) -> QNetwork:  # fmt: skip
    """A Q-network from a weights file, every tensor checked (`rundir.weights`).

    `hidden`, `conv`: the widths and convolution channels the network must have (a run's config.json); None
    reads them from the file. `frame`: (H, W, C) of the environment's image observations, None for vectors.
    """
    state, hidden, conv = read_weights(path, obs_dim, n_actions, hidden, conv, frame)
    network = QNetwork(obs_dim, n_actions, hidden, conv, frame if conv else None)
    network.load_state_dict(state)  # every name and shape was checked
    return network.to(device)


def load_run_network(run_dir: str | Path, device: torch.device | str = "cpu",
                     weights: str | Path | None = None) -> tuple[Config, QNetwork]:  # fmt: skip
    """A run's configuration and its final Q-network (or the weights file named), of the configured shape."""
    config = load_config(run_dir)
    env, spec = make_env(config.env)
    env.close()
    network = load_network(weights or Path(run_dir) / WEIGHTS, spec.obs_dim, spec.n_actions, device, config.network.hidden,
                           config.network.conv, spec.frame)  # fmt: skip
    return config, network


def write_handset_run(out: Path, overwrite: bool = False) -> Path:
    """config.json, weights.pt, neurons.json and result.json for the hand-set network."""
    config = handset_config()
    with output_dir(out, "run", "dqnlab handset", overwrite=overwrite):
        write_text(out / CONFIG, config_to_json(config))
        save_weights(handset_network().state_dict(), out / WEIGHTS)
        write_json(out / "neurons.json", [asdict(n) for n in NEURONS])
        result = {"status": HANDSET_STATUS, "samples": 0, "learn_steps": 0, "neurons": len(NEURONS),
                  "note": "weights set by hand (dqnlab.handset), not trained"}  # fmt: skip
        write_json(out / RESULT, result)
    return out
