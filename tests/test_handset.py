"""The hand-set CartPole network: few named neurons, each doing what its name says, and it balances.

The unwrapped check (100 episodes of 10,000 steps) would take about a minute
through `play()`, one forward pass per step. `simulate` plays the same
episodes faster and just as honestly: 100 Gymnasium CartPole environments
reset from play's own seeded starts, stepped by Gymnasium, with the actual
QNetwork choosing all 100 greedy actions in one batched forward pass per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from dqnlab import seeding
from dqnlab.config import EnvConfig
from dqnlab.engine.envs import make_env
from dqnlab.handset import NEURONS, control_signal, handset_network
from dqnlab.engine.network import QNetwork, greedy_action
from dqnlab.play import play

EPISODES, SEED = 100, 0
UNWRAPPED_STEPS = 10_000
TRACK_EDGE = 2.4  # CartPole-v1 ends the episode when |x| > 2.4


@dataclass(frozen=True)
class Simulation:
    reset_seeds: list[int]
    lengths: np.ndarray  # (E,) steps survived, at most max_steps
    capped: np.ndarray  # (E,) bool: still up after max_steps
    peak: np.ndarray  # (4,) largest |x|, |x_dot|, |theta|, |theta_dot| seen while up
    last_obs: np.ndarray  # (E, 4)


def simulate(network: QNetwork, episodes: int, seed: int, max_steps: int) -> Simulation:
    """Play's unwrapped greedy episodes, stepped side by side with one batched forward pass per step."""
    reset_seeds = seeding.ResetSeeds(seed, "evaluate")
    seeds = [reset_seeds.next() for _ in range(episodes)]
    envs = [make_env(EnvConfig(max_episode_steps=None))[0] for _ in range(episodes)]
    obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seeds)])  # (E, 4)
    alive, lengths = np.ones(episodes, bool), np.zeros(episodes, int)  # (E,) each
    peak = np.abs(obs).max(axis=0)  # (4,)
    for _ in range(max_steps):
        if not alive.any():
            break
        with torch.no_grad():
            actions = network(torch.as_tensor(obs)).argmax(dim=1).numpy()  # (E,)
        for i in np.flatnonzero(alive):
            obs[i], _, terminated, _, _ = envs[i].step(int(actions[i]))
            lengths[i] += 1
            alive[i] = not terminated
        if alive.any():
            peak = np.maximum(peak, np.abs(obs[alive]).max(axis=0))  # (4,)
    for env in envs:
        env.close()
    return Simulation(seeds, lengths, alive, peak, obs)


@pytest.fixture(scope="module")
def network() -> QNetwork:
    return handset_network()


@pytest.fixture(scope="module")
def unwrapped(network) -> Simulation:
    return simulate(network, EPISODES, SEED, UNWRAPPED_STEPS)


# ---------------------------------------------------------------- the design


def test_at_most_ten_hidden_neurons_each_named(network):
    assert network.obs_dim == 4 and network.n_actions == 2
    assert sum(network.hidden) <= 10
    assert network.hidden == (len(NEURONS),)
    names = [neuron.name for neuron in NEURONS]
    assert all(name.strip() for name in names) and len(set(names)) == len(names)
    assert all(neuron.feature.strip() for neuron in NEURONS)


def test_weights_are_the_table(network):
    hidden, output = network.layers
    assert hidden.weight.tolist() == [list(map(_f32, n.weights)) for n in NEURONS]
    assert hidden.bias.tolist() == [_f32(n.bias) for n in NEURONS]
    assert output.weight.T.tolist() == [list(map(_f32, n.votes)) for n in NEURONS]
    assert output.bias.tolist() == [0.0, 0.0]


def test_each_neurons_own_activation_matches_the_network(network):
    obs = torch.randn(200, 4, generator=torch.Generator().manual_seed(1))  # (N, 4)
    (hidden,) = network.activations(obs)  # (N, H)
    for index, neuron in enumerate(NEURONS):
        torch.testing.assert_close(hidden[:, index], neuron.activation(obs))


def test_q_right_minus_q_left_is_the_linear_control_law(network):
    obs = torch.randn(1000, 4, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 1.0, 0.1, 1.0])  # (N, 4)
    with torch.no_grad():
        q = network(obs)  # (N, 2)
    torch.testing.assert_close(q[:, 1] - q[:, 0], control_signal(obs), atol=1e-6, rtol=1e-5)


# What each neuron is named for, as a state that should make it fire; the
# mirror state (every component negated) should leave it silent.
TRIGGERS = {
    "pole falling right": (0.0, 0.0, 0.05, 0.1),  # leaning right and swinging right
    "pole falling left": (0.0, 0.0, -0.05, -0.1),
    "cart drifting right": (0.5, 0.2, 0.0, 0.0),  # right of centre, heading right, pole upright
    "cart drifting left": (-0.5, -0.2, 0.0, 0.0),
}


def test_every_neuron_has_a_trigger():
    assert set(TRIGGERS) == {neuron.name for neuron in NEURONS}


@pytest.mark.parametrize("name", TRIGGERS)
def test_each_neuron_fires_on_its_feature_and_not_on_the_mirror(network, name):
    index = [neuron.name for neuron in NEURONS].index(name)
    state = torch.tensor([TRIGGERS[name]])  # (1, 4)
    (active,) = network.activations(state)  # (1, H)
    (mirror,) = network.activations(-state)  # (1, H)
    assert active[0, index] > 0 and mirror[0, index] == 0
    others = [i for i in range(len(NEURONS)) if i != index and NEURONS[i].votes == NEURONS[index].votes]
    assert all(active[0, i] == 0 for i in others)  # the pole detectors ignore the cart and vice versa


def test_pole_detectors_look_ahead(network):
    """A pole still leaning left but swinging right fast is 'falling right'; theta alone would say left."""
    (h,) = network.activations(torch.tensor([[0.0, 0.0, -0.02, 0.2]]))  # (1, H)
    names = [neuron.name for neuron in NEURONS]
    assert h[0, names.index("pole falling right")] > 0 and h[0, names.index("pole falling left")] == 0


@pytest.mark.parametrize("name", TRIGGERS)
def test_each_detector_raises_the_q_value_of_its_action(network, name):
    """Q(right) rises with the 'right' detectors, Q(left) with the 'left' ones; the greedy action follows."""
    with torch.no_grad():
        q = network(torch.tensor([TRIGGERS[name]]))  # (1, 2)
    action = 1 if name.endswith("right") else 0
    assert q[0, action] > q[0, 1 - action]
    assert greedy_action(network, np.array(TRIGGERS[name], np.float32), torch.device("cpu")) == action


# ---------------------------------------------------------------- it balances


def test_all_100_seeded_episodes_reach_the_500_step_limit(network):
    episodes = play(network, EnvConfig(max_episode_steps=500), episodes=EPISODES, seed=SEED, max_steps=UNWRAPPED_STEPS).episodes
    assert sum(e.score == 500 and e.length == 500 and not e.terminated for e in episodes) == EPISODES


def test_unwrapped_it_lasts_10000_steps_on_95_of_100_seeds(unwrapped):
    assert int(unwrapped.capped.sum()) >= 95
    assert int((unwrapped.lengths == UNWRAPPED_STEPS).sum()) == int(unwrapped.capped.sum())


def test_unwrapped_the_cart_stays_near_the_centre(unwrapped):
    """Not a lucky 10,000 steps at the edge: the cart keeps to the middle half of the track, the pole near upright."""
    x, _, theta, _ = unwrapped.peak
    assert x < TRACK_EDGE / 2
    assert theta < 0.1  # rad; the limit is 0.2095


def test_the_simulation_plays_the_same_episodes_as_play(network, unwrapped):
    """Same reset seeds as play(), and the batched argmax picks what greedy_action picks, state by state."""
    episodes = play(network, EnvConfig(max_episode_steps=None), episodes=EPISODES, seed=SEED, max_steps=1).episodes
    assert unwrapped.reset_seeds == [e.seed for e in episodes]
    with torch.no_grad():
        batched = network(torch.as_tensor(unwrapped.last_obs)).argmax(dim=1).tolist()  # (E,)
    assert batched == [greedy_action(network, obs, torch.device("cpu")) for obs in unwrapped.last_obs]


def test_the_cart_detectors_are_needed():
    """The two pole detectors alone keep the pole up, but the cart wanders off the unwrapped track."""
    pole_only = handset_network(NEURONS[:2])
    assert [n.name for n in NEURONS[:2]] == ["pole falling right", "pole falling left"]
    result = simulate(pole_only, 20, SEED, UNWRAPPED_STEPS)
    assert int(result.capped.sum()) < 10
    ended = ~result.capped  # (E,)
    assert (np.abs(result.last_obs[ended, 0]) > TRACK_EDGE).all()  # each ended with the cart off the track
    assert (np.abs(result.last_obs[ended, 2]) < 0.2095).all()  # not with the pole down


def _f32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))
