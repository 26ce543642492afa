"""The population backend: stacked networks, per-member Adam, replay, the loop, and equivalence with single runs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from dqnlab import seeding
from dqnlab.config import LearnerConfig
from dqnlab.errors import DqnlabError
from dqnlab.learner import Learner
from dqnlab.networks import build_network
from dqnlab.population.draws import HIGH, MemberDraws
from dqnlab.population.learner import PopulationLearner
from dqnlab.population.network import StackedQNetwork
from dqnlab.population.replay import PopulationReplay
from dqnlab.population.training import check_population, train_population
from dqnlab.replay import Batch, ReplayBuffer
from dqnlab.training import initial_network
from tests.conftest import tiny_config


def networks(n, hidden=(16, 8), obs_dim=4, n_actions=2):
    return [build_network(obs_dim, n_actions, hidden, torch.Generator().manual_seed(100 + k)) for k in range(n)]


def members(agent, seeds, *overrides):
    config = tiny_config(agent, *overrides)
    return [dataclasses.replace(config, run=dataclasses.replace(config.run, seed=seed)) for seed in seeds]


def random_batch(rng, shape, obs_dim=4, n_actions=2):
    """A Batch of random transitions with leading dimensions `shape`, e.g. (N, B) or (B,)."""
    return Batch(
        torch.as_tensor(rng.normal(size=(*shape, obs_dim)), dtype=torch.float32),
        torch.as_tensor(rng.integers(n_actions, size=shape)),
        torch.as_tensor(rng.normal(size=shape), dtype=torch.float32),
        torch.as_tensor(rng.normal(size=(*shape, obs_dim)), dtype=torch.float32),
        torch.as_tensor(rng.random(size=shape) < 0.2),
        torch.zeros(shape, dtype=torch.bool),
    )  # fmt: skip


def member_batch(batch, k):
    return Batch(*(field[k] for field in batch))


# ------------------------------------------------------------------ network


def test_a_stacked_network_computes_each_members_network():
    nets = networks(3)
    stacked = StackedQNetwork(nets)
    x = torch.randn(3, 5, 4)  # (N, B, obs_dim)
    q = stacked(x)  # (N, B, A)
    for k, net in enumerate(nets):
        torch.testing.assert_close(q[k], net(x[k]), rtol=1e-6, atol=1e-6)
        member = stacked.member(k)
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), net.state_dict().values()))
    with pytest.raises(ValueError, match="same shape"):
        StackedQNetwork([*nets, *networks(1, hidden=(4,))])


def test_members_start_from_the_single_runs_initial_weights():
    # lr 1e-30: Adam's steps vanish in float32, so the final weights are the initial ones
    configs = members("replay", [0, 3], "learner.lr=1e-30", "run.samples=100")
    results = train_population(configs)
    for config, result in zip(configs, results):
        single = initial_network(config, result.spec, torch.device("cpu"))
        final = result.learner.network.state_dict()
        assert all(torch.equal(final[name], value) for name, value in single.state_dict().items())


# ------------------------------------------------------------------ learning


@pytest.mark.parametrize("implementation", ["for-loop", "fused"])
def test_one_adam_over_stacked_parameters_is_per_member_adam(implementation):
    """Adam is elementwise: stepping (N, ...) parameters at once equals N separate Adams.

    Bit for bit with the for-loop implementation; the fused kernel (which
    dqnlab uses) rounds its SIMD body and scalar tail differently, so elements
    that land in different parts differ in the last bit, never more.
    """
    rng = np.random.default_rng(0)
    options = {"fused": True} if implementation == "fused" else {"foreach": False}
    stacked = torch.nn.Parameter(torch.as_tensor(rng.normal(size=(4, 7, 3)), dtype=torch.float32))
    singles = [torch.nn.Parameter(stacked[k].detach().clone()) for k in range(4)]
    population_adam = torch.optim.Adam([stacked], lr=1e-2, **options)
    member_adams = [torch.optim.Adam([p], lr=1e-2, **options) for p in singles]
    for _ in range(25):
        grad = torch.as_tensor(rng.normal(size=(4, 7, 3)) * rng.choice([1e-3, 1, 1e3]), dtype=torch.float32)
        stacked.grad = grad.clone()
        population_adam.step()
        for k, (p, adam) in enumerate(zip(singles, member_adams)):
            p.grad = grad[k].clone()
            adam.step()
    with torch.no_grad():
        for k, p in enumerate(singles):
            if implementation == "for-loop":
                assert torch.equal(stacked[k], p)
            else:
                torch.testing.assert_close(stacked[k], p, rtol=2e-7, atol=2e-8)


@pytest.mark.parametrize("td_gradient", ["full", "semi"])
@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("n, batch_size", [(1, 8), (3, 8), (3, 1)])
def test_a_population_makes_each_single_learners_updates(td_gradient, loss, n, batch_size):
    """Population of N on member k's batches == N single-run learners on the same batches."""
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient=td_gradient, loss=loss)
    nets = networks(n)
    singles = [Learner(build_network(4, 2, (16, 8), torch.Generator().manual_seed(100 + k)), config, np.random.default_rng()) for k in range(n)]
    population = PopulationLearner(StackedQNetwork(nets), config, batch_size)
    rng = np.random.default_rng(1)
    alive = torch.ones(n, dtype=torch.bool)
    for _ in range(30):
        batch = random_batch(rng, (n, batch_size))  # (N, B, ...)
        losses = population.learn(batch, alive)  # (N,)
        for k, single in enumerate(singles):
            torch.testing.assert_close(losses[k], single.learn(member_batch(batch, k)), rtol=1e-5, atol=1e-6)
    for k, single in enumerate(singles):
        for a, b in zip(population.network.member(k).parameters(), single.network.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_diverged_member_cannot_touch_the_others():
    config = LearnerConfig(lr=1e-3)
    clean, poisoned = (PopulationLearner(StackedQNetwork(networks(3)), config, 8) for _ in range(2))
    with torch.no_grad():
        poisoned.network.weights[1][1].fill_(float("nan"))  # member 1's first layer
    rng = np.random.default_rng(2)
    for step in range(5):
        batch = random_batch(rng, (3, 8))
        clean.learn(batch, torch.ones(3, dtype=torch.bool))
        losses = poisoned.learn(batch, torch.tensor([True, step > 0, True]))  # masked out, then not
        assert math.isnan(losses[1])
    for k in (0, 2):
        for a, b in zip(poisoned.network.member(k).parameters(), clean.network.member(k).parameters()):
            assert torch.equal(a, b)


def test_epsilon_greedy_takes_random_actions_at_the_configured_rate():
    learner = PopulationLearner(StackedQNetwork(networks(2)), LearnerConfig(epsilon=0.25), 8)
    draws = MemberDraws([np.random.default_rng(3), np.random.default_rng(4)], 2, torch.device("cpu"))
    obs = torch.zeros(2, 4)
    greedy = learner.network(obs.unsqueeze(1)).squeeze(1).argmax(dim=1)  # (2,)
    actions = torch.stack([learner.act(obs, draws.next()) for _ in range(8000)])  # (T, 2)
    off_greedy = (actions != greedy).float().mean(dim=0)  # a random action differs from greedy half the time
    assert torch.allclose(off_greedy, torch.tensor([0.125, 0.125]), atol=0.015)


# ------------------------------------------------------------------ replay and draws


def test_each_members_ring_is_the_single_run_ring():
    rng = np.random.default_rng(4)
    population = PopulationReplay(2, capacity=5, obs_dim=3, device=torch.device("cpu"))
    singles = [ReplayBuffer(5, 3) for _ in range(2)]
    for _ in range(8):  # wraps around
        t = (rng.normal(size=(2, 3)), rng.integers(2, size=2), rng.normal(size=2), rng.normal(size=(2, 3)), rng.random(2) < 0.5, rng.random(2) < 0.5)
        population.add(*(torch.as_tensor(np.asarray(v, dtype=np.float32) if v.dtype == np.float64 else v) for v in t))
        for k, single in enumerate(singles):
            single.add(*(v[k] for v in t))
    for k, single in enumerate(singles):
        copy = population.member(k)
        assert (copy.cursor, copy.size, copy.added) == (single.cursor, single.size, single.added)
        assert all(np.array_equal(getattr(copy, f), getattr(single, f)) for f in ("obs", "action", "reward", "next_obs", "terminated", "truncated"))
    index = torch.tensor([[0, 4], [2, 2]])
    batch = population.gather(index)
    assert batch.obs.shape == (2, 2, 3) and batch.action.dtype == torch.int64
    assert np.array_equal(batch.obs[1, 0].numpy(), singles[1].obs[2]) and np.array_equal(batch.obs[0, 1].numpy(), singles[0].obs[4])
    assert population.bytes_per_transition == singles[0].bytes_per_transition


def test_sampling_is_uniform_with_and_without_replacement():
    population = PopulationReplay(1, capacity=10, obs_dim=1, device=torch.device("cpu"))
    for _ in range(10):
        population.add(*(torch.zeros(1, *s) for s in ((1,), (), (), (1,), ())), torch.zeros(1))
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, HIGH, (4000, 6), generator=gen)  # 4000 members' worth of draws, batch 6
    with_replacement = population.indices(raw[:, :6], replace=True)
    distinct = torch.cat([PopulationReplay.indices(population, raw[i : i + 1], replace=False) for i in range(0, 4000, 4)])
    for index in (with_replacement, distinct):
        counts = torch.bincount(index.flatten(), minlength=10).double()
        expected = index.numel() / 10
        assert ((counts - expected) ** 2 / expected).sum() < 30  # chi-square, 9 dof: p < 0.001 above 27.9
    assert all(len(set(row.tolist())) == 6 for row in distinct)  # never a repeat within a batch
    population.size = 4
    with pytest.raises(DqnlabError, match="cannot draw 6 distinct"):
        population.indices(raw[:1], replace=False)


def test_a_members_draws_depend_on_its_seed_alone():
    def rows(seeds, k, count):
        draws = MemberDraws([seeding.numpy_generator(s, "replay") for s in seeds], 64, torch.device("cpu"))
        return torch.stack([draws.next()[k] for _ in range(count)])  # spans several refills

    alone = rows([7], 0, 200)
    assert torch.equal(alone, rows([1, 2, 7], 2, 200))
    assert not torch.equal(alone, rows([1, 2, 7], 1, 200))
    assert int(alone.min()) >= 0 and int(alone.max()) < HIGH


# ------------------------------------------------------------------ the loop


def episodes_of(result):
    return [(e.samples, e.score, e.length, e.learn_steps, e.td_loss) for e in result.episodes]


def test_members_differ_and_a_population_repeats_exactly():
    configs = members("replay", [0, 1, 2], "run.samples=600")
    first, second = train_population(configs), train_population(configs)
    assert [episodes_of(r) for r in first] == [episodes_of(r) for r in second]
    assert len({tuple(episodes_of(r)) for r in first}) == 3
    assert all(r.status == "complete" and r.samples == 600 and r.backend == "population" and r.population == 3 for r in first)


def test_a_members_run_does_not_depend_on_the_others():
    alone = train_population(members("naive", [2], "run.samples=500"))[0]
    among = train_population(members("naive", [0, 1, 2], "run.samples=500"))[2]
    assert episodes_of(alone) == episodes_of(among)


def test_budget_schedule_and_accounting_match_single_runs():
    from dqnlab.training import train

    for agent, overrides in (("replay", ["replay.updates_per_step=0.5"]), ("naive", []), ("replay", ["env.max_episode_steps=20"])):
        config = members(agent, [0], "run.samples=300", *overrides)[0]
        member, single = train_population([config])[0], train(config)
        assert member.learner.learn_steps == single.learner.learn_steps
        assert member.samples == single.samples == 300
        assert sum(e.length for e in member.episodes) + member.unfinished_length == 300
        assert [e.high_score for e in member.episodes] == list(np.maximum.accumulate([e.score for e in member.episodes]))
        if "env.max_episode_steps=20" in overrides:
            assert max(e.length for e in member.episodes) <= 20


def test_diverging_members_stop_where_their_loss_became_non_finite():
    results = train_population(members("replay", [0, 1], "learner.lr=1e10", "run.samples=2000"))
    for result in results:
        assert result.status == "diverged"
        d = result.divergence
        assert not math.isfinite(d.loss) and d.sample == result.samples < 2000
        assert d.learn_step == result.learner.learn_steps and d.episode == len(result.episodes)
        assert all(e.samples < d.sample for e in result.episodes)


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


def test_members_may_differ_only_in_their_seed():
    configs = members("replay", [0, 1])
    other = dataclasses.replace(configs[1], learner=dataclasses.replace(configs[1].learner, lr=0.5))
    with pytest.raises(DqnlabError, match="differ only in run.seed"):
        check_population([configs[0], other])
    with pytest.raises(DqnlabError, match="at least one member"):
        check_population([])


def test_other_environments_learn_batched():
    results = train_population(members("replay", [0, 1], "env.id='Acrobot-v1'", "env.max_episode_steps=50", "run.samples=200"))
    assert all(r.spec.obs_dim == 6 and len(r.episodes) == 4 for r in results)  # 200 samples / 50-step episodes
