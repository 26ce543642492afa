"""The training loop: budget and schedule, episodes, time limits, callbacks, divergence, and what a seed guarantees."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import dqnlab.engine.training as training
from dqnlab import seeding
from dqnlab.config import EnvConfig, resolve
from dqnlab.engine.envs import make_env
from dqnlab.engine.training import check_population, initial_network, train, train_population
from dqnlab.errors import DqnlabError
from tests.conftest import tiny_config


def outcomes(result):
    """Everything about the episodes except the wall clock."""
    return [dataclasses.replace(e, wall_seconds=0.0) for e in result.episodes]


def members(agent, seeds, *overrides):
    config = tiny_config(agent, *overrides)
    return [dataclasses.replace(config, run=dataclasses.replace(config.run, seed=seed)) for seed in seeds]


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.network.parameters(), b.network.parameters()))


@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_same_seed_same_run_different_seed_different(agent):
    first = train(tiny_config(agent, "run.seed=1"))
    again = train(tiny_config(agent, "run.seed=1"))
    other = train(tiny_config(agent, "run.seed=2"))
    assert outcomes(first) == outcomes(again) and same_weights(first, again)
    assert [e.length for e in first.episodes] != [e.length for e in other.episodes]


@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_a_seed_trains_bit_for_bit_alike_alone_and_among_any_companions(agent):
    """Seed 7's run alone (a single run) == seed 7 in a population of 3 == seed 7 in a population of 20."""
    samples = "run.samples=1500"
    alone = train(members(agent, [7], samples)[0])
    among_three = train_population(members(agent, [4, 7, 2], samples))[1]
    seeds = list(range(30, 50))
    seeds[12] = 7
    among_twenty = train_population(members(agent, seeds, samples))[12]
    for member in (among_three, among_twenty):
        assert outcomes(member) == outcomes(alone) and same_weights(member, alone)
        assert member.learn_steps == alone.learn_steps and member.samples == alone.samples == 1500
    assert (alone.population, among_three.population, among_twenty.population) == (1, 3, 20)


REPLAY_LAB = {
    "hard target": ['learner.td_gradient="semi"', 'learner.target_update="hard"', "learner.target_every=50"],
    "polyak target, double": ['learner.td_gradient="semi"', 'learner.target_update="polyak"', "learner.double=true"],
    "n-step": ["learner.n_step=3", "learner.gamma=0.99"],
    "prioritized": ["replay.prioritized=true"],
    "combined": ["replay.combined=true"],
    "combined distinct": ["replay.combined=true", "replay.with_replacement=false"],
    "annealed epsilon": ["learner.epsilon=1.0", "learner.epsilon_final=0.05", "learner.epsilon_decay_samples=500"],
}


@pytest.mark.parametrize("option", REPLAY_LAB)
def test_each_replay_lab_option_trains_a_seed_alike_alone_and_in_a_population(option):
    """A population of 3 == the 3 single runs, bit for bit: episodes, learn steps and final weights."""
    seeds, settings = [5, 6, 7], ["run.samples=1200", "replay.capacity=300", *REPLAY_LAB[option]]
    together = train_population(members("replay", seeds, *settings))
    for seed, member in zip(seeds, together):
        alone = train(members("replay", [seed], *settings)[0])
        assert outcomes(member) == outcomes(alone) and same_weights(member, alone) and member.learn_steps == alone.learn_steps
    assert not same_weights(together[0], train(members("replay", [5], "run.samples=1200", "replay.capacity=300")[0]))


def test_a_seed_draws_the_same_random_numbers_in_any_population(monkeypatch):
    """Every exploration and replay draw member 7 consumes, alone and beside companions."""
    drawn: dict[int, list] = {}
    real_next = seeding.MemberDraws.next

    def spy(self):
        row = real_next(self)
        drawn.setdefault(id(self), []).append((len(self.rngs), self.width, row.clone()))
        return row

    monkeypatch.setattr(seeding.MemberDraws, "next", spy)
    train(members("replay", [7], "run.samples=300")[0])
    alone = dict(drawn)
    drawn.clear()
    train_population(members("replay", [3, 7], "run.samples=300"))
    among = dict(drawn)
    for width, stream in ((2, "explore"), (8, "replay")):  # (coin, action) per step; a batch of 8 per learn step
        (mine,) = [rows for rows in alone.values() if rows[0][1] == width]
        (theirs,) = [rows for rows in among.values() if rows[0][1] == width]
        assert len(mine) == len(theirs) > 0
        assert all(torch.equal(a[2][0], b[2][1]) for a, b in zip(mine, theirs))  # member 7: row 0 alone, row 1 among
        expected = seeding.numpy_generator(7, stream).integers(0, seeding.HIGH, size=(len(mine), width))  # its own stream
        assert np.array_equal(torch.stack([row[2][0] for row in mine]).numpy(), expected)


def test_episode_starts_are_paired_across_agents_and_are_gymnasiums(monkeypatch):
    """Seed k starts episode i from the same state whatever the agent did before: what Gymnasium's reset(seed) gives."""
    starts = []
    real_reset = training.make_member_envs

    def recording(config, seeds, device):
        envs = real_reset(config, seeds, device)
        reset = envs.reset

        def spy(mask):
            obs = reset(mask)
            if mask[0]:
                starts[-1].append(obs[0].tolist())
            return obs

        envs.reset = spy
        return envs

    monkeypatch.setattr(training, "make_member_envs", recording)
    for agent, epsilon in (("naive", 0.1), ("replay", 1.0)):  # different agents, different behaviour
        starts.append([])
        train(tiny_config(agent, "run.seed=3", "run.samples=300", f"learner.epsilon={epsilon}"))
    common = min(map(len, starts))
    assert common >= 5 and starts[0][:common] == starts[1][:common]
    env, _ = make_env(EnvConfig())
    reset_seeds = seeding.ResetSeeds(3, "env")
    expected = [env.reset(seed=reset_seeds.next())[0].tolist() for _ in range(common)]
    assert starts[0][:common] == expected


def test_members_start_from_the_seeds_initial_weights():
    # lr 1e-30: Adam's steps vanish in float32, so the final weights are the initial ones
    configs = members("replay", [0, 3], "learner.lr=1e-30", "run.samples=100")
    for config, result in zip(configs, train_population(configs)):
        initial = initial_network(config, result.spec).state_dict()
        assert all(torch.equal(result.network.state_dict()[name], value) for name, value in initial.items())


def test_budget_is_exact_and_the_unfinished_episode_is_not_reported():
    result = train(tiny_config("replay", "run.samples=333"), keep_replay=True)
    episodes = result.episodes
    assert result.samples == 333 and result.replay.added == 333
    assert [e.episode for e in episodes] == list(range(len(episodes)))
    assert sum(e.length for e in episodes) == episodes[-1].samples <= 333
    assert sum(e.length for e in episodes) + result.unfinished_length == 333
    assert all(b.samples - a.samples == b.length for a, b in zip(episodes, episodes[1:]))  # samples count up by length
    assert all(e.score == e.length for e in episodes)  # CartPole pays 1 per step
    assert [e.high_score for e in episodes] == [max(x.score for x in episodes[: i + 1]) for i in range(len(episodes))]


def test_store_then_learn_from_warmup_on():
    replay = train(tiny_config("replay", "run.samples=300", "replay.warmup=20"))
    assert replay.learn_steps == 300 - 20 + 1  # the 20th stored transition triggers the first step
    assert replay.transitions_processed == replay.learn_steps * 8
    assert replay.episodes[-1].learn_steps == replay.episodes[-1].samples - 19
    naive = train(tiny_config("naive", "run.samples=300"))
    assert naive.learn_steps == 300 and naive.transitions_processed == 300


@pytest.mark.parametrize("updates, expected", [(0.25, 70), (2.0, 562), (1.5, 421), (0.1, 28)])
def test_updates_per_step(updates, expected):
    result = train(tiny_config("replay", "run.samples=300", "replay.warmup=20", f"replay.updates_per_step={updates}"))
    assert result.learn_steps == expected  # int(281 * updates)


def test_time_limit_truncates_and_is_stored_as_truncated():
    result = train(tiny_config("replay", "env.max_episode_steps=5", "learner.epsilon=1.0", "run.samples=100"), keep_replay=True)
    assert max(e.length for e in result.episodes) == 5
    assert result.replay.truncated.sum() > 0 and not (result.replay.truncated & result.replay.terminated).any()


def test_unwrapped_cartpole_has_no_time_limit():
    result = train(tiny_config("replay", "run.samples=2000", "learner.epsilon=0.0"), keep_replay=True)
    assert not result.replay.truncated.any()


def test_replay_memory_is_bounded_by_capacity_and_budget():
    assert train(tiny_config("replay", "replay.capacity=50")).replay_capacity == 50
    assert train(tiny_config("replay", "run.samples=120")).replay_capacity == 120  # unbounded: the budget
    assert train(tiny_config("replay")).replay is None  # kept only when asked


def test_checkpoints_every_k_samples():
    seen = []
    train(tiny_config("replay", "run.samples=250", "run.checkpoint_every=100"), on_checkpoint=lambda n, net: seen.append(n))
    assert seen == [100, 200]


def test_checkpoints_and_evaluations_reach_each_member():
    seen = {"checkpoint": [], "evaluation": []}
    configs = members("replay", [0, 1], "run.samples=200", "run.checkpoint_every=100", "run.eval_every=100", "run.eval_episodes=2")
    results = train_population(
        configs,
        on_checkpoint=lambda k, samples, net: seen["checkpoint"].append((k, samples, net.hidden)),
        on_evaluation=lambda k, record: seen["evaluation"].append((k, record.samples, record.episodes)),
    )  # fmt: skip
    assert sorted(seen["checkpoint"]) == [(0, 100, (16,)), (0, 200, (16,)), (1, 100, (16,)), (1, 200, (16,))]
    assert sorted(seen["evaluation"]) == [(0, 100, 2), (0, 200, 2), (1, 100, 2), (1, 200, 2)]
    assert [len(r.evaluations) for r in results] == [2, 2]


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0"])
def test_other_discrete_environments_train(env_id):
    results = train_population(members("replay", [0, 1], f"env.id={env_id}", "env.max_episode_steps=50", "run.samples=120"))
    assert all(r.spec.id == env_id and len(r.episodes) == 2 for r in results)


def test_cuda_is_refused_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DqnlabError, match="no CUDA GPU"):
        train(resolve("tutorial", overrides=["run.device=cuda"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_run_closely():
    """On a GPU the same seed gives the same episodes until float rounding makes them drift."""
    gpu = train(tiny_config("replay", "run.device=cuda", "run.samples=300"))
    assert gpu.device.startswith("cuda")
    cpu = train(tiny_config("replay", "run.samples=300"))
    assert gpu.episodes[0].length == cpu.episodes[0].length  # before learning has moved anything
    assert gpu.learn_steps == cpu.learn_steps


def test_a_non_finite_loss_stops_training_and_says_where():
    result = train(tiny_config("replay", "learner.lr=1e10", "run.samples=2000"))
    assert result.status == "diverged"
    divergence = result.divergence
    assert divergence.learn_step == result.learn_steps and divergence.sample == result.samples < 2000
    assert not math.isfinite(divergence.loss)
    assert divergence.episode == len(result.episodes) and all(e.samples < divergence.sample for e in result.episodes)
    assert f"at learn step {divergence.learn_step} (sample {divergence.sample}" in str(divergence)
    assert train(tiny_config("replay")).status == "complete"


def test_a_diverging_member_stops_alone(monkeypatch):
    """Member 1 starts from NaN weights (members share their settings, so lr cannot differ); member 0 trains on."""
    configs = members("replay", [0, 1], "run.samples=300")
    healthy = train_population(configs)

    class Poisoned(training.StackedQNetwork):
        def __init__(self, networks, device="cpu"):
            super().__init__(networks, device)
            with torch.no_grad():
                self.weights[0][1].fill_(float("nan"))

    monkeypatch.setattr(training, "StackedQNetwork", Poisoned)
    broken = train_population(configs)
    assert broken[1].status == "diverged" and broken[1].divergence.learn_step == 1 and broken[1].samples == 8  # warm-up 8
    assert broken[0].status == "complete" and outcomes(broken[0]) == outcomes(healthy[0]) and same_weights(broken[0], healthy[0])


def test_members_may_differ_only_in_their_seed():
    configs = members("replay", [0, 1])
    other = dataclasses.replace(configs[1], learner=dataclasses.replace(configs[1].learner, lr=0.5))
    with pytest.raises(DqnlabError, match="differ only in run.seed"):
        check_population([configs[0], other])
    with pytest.raises(DqnlabError, match="at least one member"):
        check_population([])


def test_greedy_evaluations_face_the_same_starts_and_stay_off_the_clock():
    # lr 1e-30: Adam's steps vanish in float32, so the network (and its greedy play) never changes
    frozen = train(tiny_config("replay", "learner.lr=1e-30", "run.eval_every=100", "run.eval_episodes=3", "run.samples=300"))
    assert [e.samples for e in frozen.evaluations] == [100, 200, 300]
    assert len({(e.mean_score, e.min_score, e.max_score) for e in frozen.evaluations}) == 1
    assert frozen.evaluations[0].episodes == 3
    capped = train(tiny_config("replay", "run.eval_every=300", "run.eval_max_steps=5"))
    # a CartPole episode lasts at least 8 steps, so a 5-step cap stops all 10
    assert (capped.evaluations[0].max_score, capped.evaluations[0].capped) == (5.0, 10)


def test_evaluation_time_is_not_training_time(monkeypatch):
    clock = [0.0]
    real_play = training.greedy_episodes

    def slow_play(*args, **kwargs):  # every evaluation "takes" 1000 seconds
        clock[0] += 1000.0
        return real_play(*args, **kwargs)

    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(training, "greedy_episodes", slow_play)
    result = train(tiny_config("replay", "run.eval_every=100", "run.samples=300"))
    assert len(result.evaluations) == 3 and result.wall_seconds == 0.0


def test_the_package_docstrings_example_runs():
    import doctest

    import dqnlab

    outcome = doctest.testmod(dqnlab)
    assert outcome.attempted == 5 and outcome.failed == 0
