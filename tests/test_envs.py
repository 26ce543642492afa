"""Environments: checking ids, the tensor CartPole against Gymnasium's, and the vector fallback."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.engine import cartpole
from dqnlab.engine.envs import GymVectorEnvs, TensorCartPole, make_env, make_member_envs
from dqnlab.errors import DqnlabError


def test_reset_states_are_gymnasiums():
    env = gym.make("CartPole-v1").unwrapped
    for reset_seed in (0, 1, 12345, 2**31 - 2):
        obs, _ = env.reset(seed=reset_seed)
        assert np.array_equal(cartpole.initial_state(reset_seed), env.state)  # float64, bit for bit
        assert np.array_equal(cartpole.initial_state(reset_seed).astype(np.float32), obs)


@pytest.mark.parametrize(("kind", "n"), [("numpy", 512), ("numpy", cartpole.SCALAR_BELOW - 1), ("torch", 512)])
def test_dynamics_match_gymnasium_over_random_trajectories(kind, n):
    """n carts from random states (some far off-centre) with random actions, until each terminates.

    NumPy arrays (the engine's CPU path: as arrays from SCALAR_BELOW carts, one
    cart at a time below) give Gymnasium's float64 states bit for bit, with
    `math`'s sin and cos as Gymnasium's. Torch's (a GPU's path) may round its
    sin and cos apart in the last bit, so its observations agree within 1e-6.
    """
    rng = np.random.default_rng(7)
    steps = 400
    start = rng.uniform(-0.05, 0.05, size=(n, 4))  # (N, 4)
    start[: n // 2] *= rng.uniform(1, 40, size=(n // 2, 1))  # wide states reach every bound
    actions = rng.integers(2, size=(steps, n))  # (T, N)
    envs = [gym.make("CartPole-v1").unwrapped for _ in range(n)]
    for env, state in zip(envs, start):
        env.reset(seed=0)
        env.state = state.copy()
    state = start.copy() if kind == "numpy" else torch.as_tensor(start)  # (N, 4) float64
    alive = np.ones(n, dtype=bool)
    compared = terminations = 0
    for t in range(steps):
        state, terminated = cartpole.step(state, actions[t] if kind == "numpy" else torch.as_tensor(actions[t]))
        for k in np.flatnonzero(alive):
            obs, reward, term, trunc, _ = envs[k].step(int(actions[t, k]))
            if kind == "numpy":
                assert np.array_equal(state[k], np.asarray(envs[k].state)) and np.array_equal(state[k].astype(np.float32), obs)
            else:
                np.testing.assert_allclose(state[k].float().numpy(), obs, rtol=1e-6, atol=1e-6)
            assert bool(terminated[k]) == term and reward == 1.0 and not trunc
            compared += 1
            if term:
                alive[k] = False
                terminations += 1
    assert terminations == n and compared > 10 * n  # every cart fell or left, after many steps on average


def test_members_start_where_single_runs_start():
    """Member k's episode i starts where a single run of seed k starts episode i, whatever the others do."""
    seeds = [0, 1, 5]
    envs = TensorCartPole(EnvConfig(), make_env(EnvConfig())[1], seeds, torch.device("cpu"))
    first = envs.reset(np.ones(3, dtype=bool))
    starts = [[first[k].numpy()] for k in range(3)]
    for mask in ([True, False, True], [True, False, False], [False, True, False]):
        obs = envs.reset(np.array(mask))
        for k in np.flatnonzero(mask):
            starts[k].append(obs[k].numpy())
    for k, seed in enumerate(seeds):
        single, _ = make_env(EnvConfig())
        resets = seeding.ResetSeeds(seed, "env")
        expected = [single.reset(seed=resets.next())[0] for _ in starts[k]]
        assert len(expected) == [3, 2, 2][k] and all(np.array_equal(a, b) for a, b in zip(starts[k], expected))


def test_the_time_limit_truncates():
    config = EnvConfig(max_episode_steps=3)
    envs = make_member_envs(config, [0, 1], torch.device("cpu"))
    assert isinstance(envs, TensorCartPole)
    envs.reset(np.ones(2, dtype=bool))
    flags = [envs.step(torch.zeros(2, dtype=torch.long)).truncated.tolist() for _ in range(3)]
    assert flags == [[False, False], [False, False], [True, True]]


def test_other_environments_step_gymnasiums_vector_env():
    config = EnvConfig(id="Acrobot-v1", max_episode_steps=5)
    envs = make_member_envs(config, [3, 4], torch.device("cpu"))
    assert isinstance(envs, GymVectorEnvs) and envs.spec.obs_dim == 6 and envs.spec.n_actions == 3
    obs = envs.reset(np.ones(2, dtype=bool))
    single, _ = make_env(config)
    expected, _ = single.reset(seed=seeding.ResetSeeds(3, "env").next())
    assert torch.equal(obs[0], torch.as_tensor(expected))
    for _ in range(5):
        step = envs.step(torch.tensor([0, 2]))
    assert step.truncated.tolist() == [True, True] and step.next_obs.shape == (2, 6)
    obs = envs.reset(np.array([True, False]))  # only member 0 starts over
    assert torch.equal(obs[1], step.next_obs[1]) and not torch.equal(obs[0], step.next_obs[0])
    envs.close()


@pytest.mark.parametrize(
    "env_id, fragment",
    [
        ("Pendulum-v1", "Box action space; dqnlab needs a Discrete one"),
        ("FrozenLake-v1", "Discrete observation space"),
        ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
    ],
)
def test_unsupported_environments_are_refused_in_one_line(env_id, fragment):
    with pytest.raises(DqnlabError, match=fragment):
        make_env(EnvConfig(id=env_id))
    with pytest.raises(DqnlabError, match=fragment):
        make_member_envs(EnvConfig(id=env_id), [0], torch.device("cpu"))
