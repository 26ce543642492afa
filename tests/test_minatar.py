"""MinAtar's games: binary frames, conv networks, bit-packed replay, and the refusals around them.

MinAtar comes with the `test` extra (`pip install -e '.[test]'`), as with `dqnlab[minatar]`.
"""

from __future__ import annotations

import dataclasses
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dqnlab.cli import cli
from dqnlab.config import EnvConfig, resolve
from dqnlab.engine import envs as envs_module
from dqnlab.engine.envs import make_env, make_member_envs
from dqnlab.engine.training import train, train_population
from dqnlab.errors import DqnlabError

BREAKOUT = "MinAtar/Breakout-v0"
SMALL = ["replay.warmup=100", "replay.capacity=400", "learner.target_every=50", "learner.epsilon_decay_samples=300"]


def small(agent: str, samples: int = 500, *overrides: str):
    return resolve("minatar", agent, overrides=[f"run.samples={samples}", *(SMALL if agent == "replay" else SMALL[2:]), *overrides])


@pytest.fixture
def one_thread():
    """As every backend trains: one torch thread per run or population (see tests/test_kernel.py)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("game, channels, minimal_actions", [("Breakout", 4, 3), ("SpaceInvaders", 6, 4), ("Freeway", 7, 3)])
def test_minatar_games_are_binary_frames_registered_on_demand(game, channels, minimal_actions):
    _, full = make_env(EnvConfig(f"MinAtar/{game}-v0"))
    _, minimal = make_env(EnvConfig(f"MinAtar/{game}-v1"))
    assert full.frame == minimal.frame == (10, 10, channels) and full.obs_dim == 100 * channels and full.binary
    assert (full.n_actions, minimal.n_actions) == (6, minimal_actions)


def test_members_start_each_episode_where_a_single_run_does():
    members = make_member_envs(EnvConfig(BREAKOUT), [3, 4], torch.device("cpu"))
    single = make_member_envs(EnvConfig(BREAKOUT), [4], torch.device("cpu"))
    obs, alone = members.reset(np.ones(2, dtype=bool)), single.reset(np.ones(1, dtype=bool))
    assert obs.shape == (2, 400) and obs.dtype == torch.float32 and set(obs.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(obs[1], alone[0])
    for _ in range(200):
        step, step_alone = members.step(torch.tensor([1, 2])), single.step(torch.tensor([2]))
        assert torch.equal(step.next_obs[1], step_alone.next_obs[0]) and torch.equal(step.terminated[1], step_alone.terminated[0])
        ended = step.terminated.numpy()
        if ended.any():  # an episode ended: reset where it did, as the training loop does
            restarted = members.reset(ended)
            if ended[1]:
                assert torch.equal(restarted[1], single.reset(ended[1:])[0])


def test_a_missing_minatar_package_is_one_line(monkeypatch):
    monkeypatch.setattr(envs_module.gym, "registry", {})  # as if nothing had registered MinAtar yet
    monkeypatch.setitem(sys.modules, "minatar.gym", None)  # and the package were not installed
    with pytest.raises(DqnlabError, match=r"needs the minatar package, which is not installed: pip install 'dqnlab\[minatar\]'"):
        make_env(EnvConfig(BREAKOUT))


class Screen(gym.Env):
    """An Atari-like screen: 0-255 colours, which dqnlab does not take."""

    observation_space = gym.spaces.Box(0, 255, (12, 10, 3), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode


def test_colour_images_and_conv_on_vectors_are_refused_in_one_line_with_exit_2(tmp_path):
    gym.register("TestScreen-v0", entry_point=Screen)
    supported = "dqnlab supports a flat Box"
    with pytest.raises(DqnlabError, match=r"image observations of shape \(12, 10, 3\) with values in \[0, 255\]; " + supported):
        make_env(EnvConfig("TestScreen-v0"))
    cases = [
        (["--env", "TestScreen-v0"], "image observations of shape (12, 10, 3) with values in [0, 255]"),
        (["--set", "network.conv=[16]"], "network.conv [16] needs image observations (H x W x C frames, e.g. MinAtar's); "
                                         "this environment gives a flat vector of 4 numbers"),
        (["--preset", "minatar", "--set", "network.conv=[8, 8, 8, 8, 8]"], "5 3x3 convolutions leave nothing of a 10 x 10 frame"),
    ]  # fmt: skip
    for i, (options, message) in enumerate(cases):
        out = tmp_path / f"run{i}"
        result = CliRunner().invoke(cli, ["train", "--samples", "10", "--quiet", "--out", str(out), *options])
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()  # one line, nothing written


@pytest.mark.parametrize("agent", ["replay", "naive"])
def test_a_minatar_seed_trains_bit_for_bit_alike_alone_and_among_companions(agent, one_thread):
    """Conv network, centered RMSProp, bit-packed replay and Gymnasium's vector env: seed 7 alone == seed 7 in a population."""
    config = small(agent, 600, "run.seed=7")
    alone = train(config)
    population = train_population([dataclasses.replace(config, run=dataclasses.replace(config.run, seed=s)) for s in (2, 7, 11)])
    member = population[1]

    def episodes(result):
        return [dataclasses.replace(e, wall_seconds=0.0) for e in result.episodes]

    assert episodes(member) == episodes(alone) and member.learn_steps == alone.learn_steps > 0
    assert all(torch.equal(a, b) for a, b in zip(member.network.state_dict().values(), alone.network.state_dict().values()))
    assert episodes(population[0]) != episodes(alone)


def test_train_play_and_resume_check_a_minatar_run(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--preset", "minatar", "--samples", "300", "--set", "replay.warmup=100",
                                      "--set", "replay.capacity=300", "--quiet", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = __import__("json").loads((out / "result.json").read_text())
    assert summary["frame"] == [10, 10, 4] and summary["replay_bytes_per_transition"] == 110 and summary["n_actions"] == 6
    played = CliRunner().invoke(cli, ["play", str(out), "--episodes", "2", "--max-steps", "200"])
    assert played.exit_code == 0 and "2 episodes" in played.stdout, played.output
    from dqnlab.rundir.reading import check_run

    assert check_run(out).result["status"] == "complete"  # its conv weights read back against its config and frame
