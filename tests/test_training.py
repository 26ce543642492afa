from __future__ import annotations

import dataclasses
import math

import pytest

from dqnlab.config import resolve
from dqnlab.envs import make_env
from dqnlab.errors import DqnlabError
from dqnlab.config import EnvConfig
from dqnlab.training import train
from tests.conftest import tiny_config


def outcomes(result):
    """Everything about the episodes except the wall clock."""
    return [dataclasses.replace(e, wall_seconds=0.0) for e in result.episodes]


@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_same_seed_same_episodes_different_seed_different(agent):
    first = train(tiny_config(agent, "run.seed=1"))
    again = train(tiny_config(agent, "run.seed=1"))
    other = train(tiny_config(agent, "run.seed=2"))
    assert outcomes(first) == outcomes(again)
    assert [e.length for e in first.episodes] != [e.length for e in other.episodes]
    for a, b in zip(first.learner.network.parameters(), again.learner.network.parameters()):
        assert a.equal(b)


def test_budget_is_exact_and_the_unfinished_episode_is_not_reported():
    result = train(tiny_config("replay", "run.samples=333"))
    episodes = result.episodes
    assert result.samples == 333 and result.buffer.added == 333
    assert [e.episode for e in episodes] == list(range(len(episodes)))
    assert sum(e.length for e in episodes) == episodes[-1].samples <= 333
    # samples counts up by each episode's length
    assert all(b.samples - a.samples == b.length for a, b in zip(episodes, episodes[1:]))
    assert all(e.score == e.length for e in episodes)  # CartPole pays 1 per step
    assert [e.high_score for e in episodes] == [max(x.score for x in episodes[: i + 1]) for i in range(len(episodes))]


def test_store_then_learn_from_warmup_on():
    replay = train(tiny_config("replay", "run.samples=300", "replay.warmup=20"))
    assert replay.learner.learn_steps == 300 - 20 + 1  # the 20th stored transition triggers the first step
    assert replay.transitions_processed == replay.learner.learn_steps * 8
    naive = train(tiny_config("naive", "run.samples=300"))
    assert naive.learner.learn_steps == 300 and naive.transitions_processed == 300


@pytest.mark.parametrize("updates, expected", [(0.25, 70), (2.0, 562), (1.5, 421), (0.1, 28)])
def test_updates_per_step(updates, expected):
    result = train(tiny_config("replay", "run.samples=300", "replay.warmup=20", f"replay.updates_per_step={updates}"))
    assert result.learner.learn_steps == expected  # int(281 * updates)


def test_time_limit_truncates_and_is_stored_as_truncated():
    result = train(tiny_config("replay", "env.max_episode_steps=5", "learner.epsilon=1.0", "run.samples=100"))
    assert max(e.length for e in result.episodes) == 5
    buffer = result.buffer
    cut = buffer.truncated[: len(buffer)]
    assert cut.sum() > 0 and not (cut & buffer.terminated[: len(buffer)]).any()


def test_unwrapped_cartpole_has_no_time_limit():
    result = train(tiny_config("replay", "run.samples=2000", "learner.epsilon=0.0"))
    assert not result.buffer.truncated[: len(result.buffer)].any()


def test_replay_memory_is_bounded_by_capacity_and_budget():
    assert train(tiny_config("replay", "replay.capacity=50")).buffer.capacity == 50
    assert train(tiny_config("replay", "run.samples=120")).buffer.capacity == 120  # unbounded: the budget


def test_checkpoints_every_k_samples():
    seen = []
    train(tiny_config("replay", "run.samples=250", "run.checkpoint_every=100"), on_checkpoint=lambda n, net: seen.append(n))
    assert seen == [100, 200]


def test_episode_resets_are_paired_across_agents():
    """Seed k starts episode i from the same state whatever the agent did before."""
    starts = []
    for agent in ("naive", "replay"):
        config = tiny_config(agent, "run.samples=300")
        env, _ = make_env(config.env)
        from dqnlab import seeding

        seeds = seeding.ResetSeeds(config.run.seed)
        starts.append([env.reset(seed=seeds.next())[0].tolist() for _ in range(5)])
    assert starts[0] == starts[1]


@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0"])
def test_other_discrete_environments_train(env_id):
    result = train(tiny_config("replay", f"env.id={env_id}", "env.max_episode_steps=50", "run.samples=120"))
    assert result.spec.id == env_id and len(result.episodes) == 2


@pytest.mark.parametrize(
    "env_id, fragment",
    [
        ("Pendulum-v1", "Box action space; dqnlab needs a Discrete one"),
        ("FrozenLake-v1", "Discrete observation space"),
        ("NoSuchEnv-v0", "unknown environment 'NoSuchEnv-v0'"),
    ],
)
def test_unsupported_environments_are_refused(env_id, fragment):
    with pytest.raises(DqnlabError, match=fragment):
        make_env(EnvConfig(id=env_id))


def test_cuda_is_refused_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DqnlabError, match="no CUDA GPU"):
        train(resolve("tutorial", overrides=["run.device=cuda"]))


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_matches_the_cpu_run_closely():
    """On a GPU the same seed gives the same episodes until float rounding makes them drift."""
    gpu = train(tiny_config("replay", "run.device=cuda", "run.samples=300"))
    assert str(gpu.learner.device).startswith("cuda")
    assert all(p.is_cuda for p in gpu.learner.network.parameters())
    cpu = train(tiny_config("replay", "run.samples=300"))
    assert gpu.episodes[0].length == cpu.episodes[0].length  # before learning has moved anything
    assert gpu.learner.learn_steps == cpu.learner.learn_steps


def test_a_non_finite_loss_stops_training_and_says_where():
    result = train(tiny_config("replay", "learner.lr=1e10", "run.samples=2000"))
    assert result.status == "diverged"
    divergence = result.divergence
    assert divergence.learn_step == result.learner.learn_steps and divergence.sample == result.samples < 2000
    assert not math.isfinite(divergence.loss)
    assert f"at learn step {divergence.learn_step} (sample {divergence.sample}" in str(divergence)
    assert train(tiny_config("replay")).status == "complete"


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
    import dqnlab.training as training

    clock = [0.0]
    real_play = training.play

    def slow_play(*args, **kwargs):  # every evaluation "takes" 1000 seconds
        clock[0] += 1000.0
        return real_play(*args, **kwargs)

    monkeypatch.setattr(training.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(training, "play", slow_play)
    result = train(tiny_config("replay", "run.eval_every=100", "run.samples=300"))
    assert len(result.evaluations) == 3 and result.wall_seconds == 0.0
