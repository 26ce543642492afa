"""Shadow learners (engine/behaviour.py, engine/stream.py): one behaviour's transitions, fed to learners that do not act."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

import dqnlab.engine.training as training
from dqnlab import seeding
from dqnlab.analysis.measures import greedy_measures, run_measures
from dqnlab.analysis.runs import Run
from dqnlab.config import resolve, validate
from dqnlab.engine import cartpole
from dqnlab.engine.behaviour import acting_config, play_stream
from dqnlab.engine.envs import make_env
from dqnlab.engine.learner import Learner
from dqnlab.engine.sampling import Sampler
from dqnlab.engine.stream import Stream, StreamEnvs
from dqnlab.engine.training import behaviour_stream, train, train_population
from dqnlab.errors import DqnlabError
from dqnlab.experiments.limits import run_cost
from dqnlab.experiments.trainrun import behaviour_network
from dqnlab.handset import handset_network
from dqnlab.rundir.writer import save_weights

SAMPLES = 600


def small(agent: str, *more: str):
    """The quick preset (its replay settings: what a learning behaviour uses) on a 16-unit network, 600 samples."""
    return resolve("quick", agent, overrides=["network.hidden=[16]", f"run.samples={SAMPLES}", *more])


def shadow(agent: str, actor: str, seed: int = 3, *more: str):
    return small(agent, f"run.seed={seed}", "run.eval_every=200", f"behaviour.actor={actor}", *more)


def fields(stream: Stream) -> list[torch.Tensor]:
    return [stream.obs, stream.action, stream.reward, stream.next_obs, stream.terminated, stream.truncated]


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.network.parameters(), b.network.parameters()))


def record_additions(monkeypatch) -> list[list[torch.Tensor]]:
    """Every transition handed to any replay memory, in order, as copies."""
    seen: list[list[torch.Tensor]] = []
    add = Sampler.add

    def spy(self, obs, action, reward, next_obs, terminated, truncated):
        seen.append([t.clone() for t in (obs, action, reward, next_obs, terminated, truncated)])
        return add(self, obs, action, reward, next_obs, terminated, truncated)

    monkeypatch.setattr(Sampler, "add", spy)
    return seen


@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_a_learner_shadowing_its_own_agent_is_that_agent_bit_for_bit(agent):
    """Shadowing the preset's agent of one's own kind reproduces the acting run exactly: the stream is what it did."""
    acting = train(small(agent, "run.seed=3", "run.eval_every=200"))
    config = shadow(agent, agent)
    shadowing = train(config)
    assert same_weights(acting, shadowing) and acting.learn_steps == shadowing.learn_steps
    assert [dataclasses.replace(e, wall_seconds=0.0) for e in acting.episodes] == [
        dataclasses.replace(e, wall_seconds=0.0) for e in shadowing.episodes
    ]
    assert acting.evaluations == shadowing.evaluations


@pytest.mark.parametrize("actor", ["random", "handset", "replay"])
def test_every_learner_gets_the_behaviours_transitions_in_its_order(monkeypatch, actor):
    """Naive and replay learners of one behaviour and seed add identical transitions, in order: the recorded stream's."""
    configs = {agent: shadow(agent, actor) for agent in ("naive", "replay")}
    stream = behaviour_stream([configs["naive"]], torch.device("cpu"))
    assert stream.steps == SAMPLES and stream.members == 1
    added = {}
    for agent, config in configs.items():
        seen = record_additions(monkeypatch)
        train(config, stream=stream if actor == "replay" else None)  # a fixed behaviour: recorded by train itself
        added[agent] = seen
        monkeypatch.undo()
    for agent in configs:
        assert len(added[agent]) == SAMPLES
        for t, transition in enumerate(added[agent]):
            for got, want in zip(transition, fields(stream)):
                assert torch.equal(got, want[t]), (agent, t)


def test_learners_that_do_not_act_never_touch_the_environment_or_choose_an_action(monkeypatch):
    """Given a recorded stream, training makes no environment, steps no CartPole and never calls act."""
    config = shadow("replay", "random")
    stream = behaviour_stream([config], torch.device("cpu"))

    def refuse(*args, **kwargs):
        raise AssertionError("a learner that does not act touched the environment or acted")

    for module, name in ((training, "make_member_envs"), (cartpole, "step"), (cartpole, "initial_state"), (Learner, "act")):
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr("gymnasium.make", refuse)
    evaluated = []  # greedy evaluations do play (in their own environment): stood in for here, and counted
    monkeypatch.setattr(training, "evaluate", lambda network, config, samples, steps: evaluated.append(samples) or _no_play(samples, steps))
    result = train(config, stream=stream)
    assert result.samples == SAMPLES and evaluated == [200, 400, 600]


def _no_play(samples, learn_steps):
    from dqnlab.engine.records import EvaluationRecord

    return EvaluationRecord.of(samples, learn_steps, [1.0], 0)


def test_a_fixed_behaviours_stream_is_continuous_and_restarts_from_the_seeds_starts():
    """obs[t+1] is next_obs[t] within an episode; after an ending, the seed's next environment start (as any run's)."""
    config = shadow("naive", "random", 5)
    stream = play_stream([config], torch.device("cpu"))
    resets = seeding.ResetSeeds(5, "env")
    assert torch.equal(stream.obs[0, 0], torch.as_tensor(cartpole.initial_state(resets.next()), dtype=torch.float32))
    ended = (stream.terminated | stream.truncated)[:, 0]  # (S,)
    assert ended.sum() > 10  # random actions fail often
    for t in range(SAMPLES - 1):
        if ended[t]:
            fresh = torch.as_tensor(cartpole.initial_state(resets.next()), dtype=torch.float32)
            assert torch.equal(stream.obs[t + 1, 0], fresh)
        else:
            assert torch.equal(stream.obs[t + 1, 0], stream.next_obs[t, 0])


def test_random_and_handset_behaviours_choose_as_they_say():
    random_stream = play_stream([shadow("naive", "random", 5)], torch.device("cpu"))
    share = random_stream.action.float().mean().item()
    assert 0.4 < share < 0.6  # uniform over two actions
    greedy = play_stream([shadow("naive", "handset", 5, "behaviour.epsilon=0.0")], torch.device("cpu"))
    network = handset_network()
    with torch.no_grad():
        wanted = network(greedy.obs[:, 0]).argmax(dim=1)  # (S,)
    assert torch.equal(greedy.action[:, 0], wanted)
    exploring = play_stream([shadow("naive", "handset", 5, "behaviour.epsilon=0.5")], torch.device("cpu"))
    with torch.no_grad():
        agree = (network(exploring.obs[:, 0]).argmax(dim=1) == exploring.action[:, 0]).float().mean().item()
    assert 0.65 < agree < 0.85  # a random action half the time, equal to the greedy one half of those: 0.75


def test_a_learning_behaviours_stream_is_what_the_acting_run_stored():
    """The replay agent's memory (unbounded, so it keeps every transition) holds exactly the recorded stream."""
    acting = train(small("replay", "run.seed=3"), keep_replay=True)
    stream = behaviour_stream([shadow("naive", "replay")], torch.device("cpu"))
    ring = acting.replay
    assert ring.added == SAMPLES
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        assert np.array_equal(getattr(ring, name), getattr(stream, name)[:, 0].numpy()), name


def test_a_shadow_seed_learns_alike_alone_and_in_a_population():
    alone = train(shadow("replay", "handset", 8))
    together = train_population([shadow("replay", "handset", seed) for seed in (2, 8, 11)])[1]
    assert same_weights(alone, together) and alone.evaluations == together.evaluations


@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_a_stream_whose_last_transition_ends_an_episode_trains_to_its_end(agent):
    """The loop resets an episode that ends on the budget's last sample; the stream has nothing after it."""
    stream = play_stream([shadow(agent, "random", 5)], torch.device("cpu"))
    last = int(torch.nonzero(stream.terminated[:, 0])[3, 0]) + 1  # the 4th episode's end, as a budget
    config = shadow(agent, "random", 5, f"run.samples={last}", f"run.eval_every={last}")  # one evaluation, at the end
    result = train(config, stream=stream.rows(0, last))
    assert result.samples == last and len(result.episodes) == 4 and result.unfinished_length == 0
    assert [e.samples for e in result.evaluations] == [last]
    recorded_here = train(config)  # the same, recording its own stream
    assert [e.score for e in recorded_here.episodes] == [e.score for e in result.episodes]


def test_a_stream_that_runs_out_or_does_not_fit_is_refused():
    config = shadow("naive", "random")
    short = play_stream([dataclasses.replace(config, run=dataclasses.replace(config.run, samples=100))], torch.device("cpu"))
    with pytest.raises(DqnlabError, match="the stream ends after 100 transitions"):
        train(config, stream=short)
    with pytest.raises(DqnlabError, match="holds 1 member"):
        StreamEnvs(short, 2, torch.device("cpu"))
    elsewhere = dataclasses.replace(config, env=dataclasses.replace(config.env, id="Acrobot-v1"))
    with pytest.raises(DqnlabError, match="the stream was recorded on CartPole-v1; these members train on Acrobot-v1"):
        train(elsewhere, stream=short)


def test_behaviour_settings_are_checked():
    with pytest.raises(DqnlabError, match="behaviour.actor must be one of self, random, handset, weights, naive, replay"):
        validate(shadow("naive", "teacher"))
    with pytest.raises(DqnlabError, match="run.eval_every must be set when behaviour.actor is not self"):
        resolve("quick", "naive", overrides=["behaviour.actor=random"])
    with pytest.raises(DqnlabError, match=r"behaviour.epsilon must be in \[0, 1\]"):
        validate(shadow("naive", "handset", 3, "behaviour.epsilon=1.5"))
    mountain = resolve("quick", "naive", overrides=['env.id="MountainCar-v0"', "run.eval_every=10", "behaviour.actor=handset"])
    with pytest.raises(DqnlabError, match=r"behaviour.actor handset: the hand-set network \(CartPole's\) takes 4 observations "
                                          "and 2 actions; MountainCar-v0 has 2 and 3"):  # fmt: skip
        behaviour_stream([mountain], torch.device("cpu"))
    with pytest.raises(DqnlabError, match="behaviour.weights must name a weights file"):
        validate(shadow("naive", "weights"))
    with pytest.raises(DqnlabError, match="behaviour.weights is read only when behaviour.actor is weights"):
        validate(shadow("naive", "random", 3, 'behaviour.weights="w.pt"'))
    with pytest.raises(DqnlabError, match="behaviour.actor weights plays a saved network: load behaviour.weights"):
        behaviour_stream([shadow("naive", "weights", 3, 'behaviour.weights="w.pt"')], torch.device("cpu"))


def test_a_saved_networks_behaviour_plays_as_that_network(tmp_path):
    """The hand-set network saved to a file and played as "weights" makes the "handset" behaviour's stream, bit for bit."""
    path = tmp_path / "handset.pt"
    save_weights(handset_network().state_dict(), path)
    saved = shadow("naive", "weights", 5, f'behaviour.weights="{path}"', "behaviour.epsilon=0.3")
    loaded = behaviour_network(saved)
    assert loaded.hidden == (4,) and behaviour_network(shadow("naive", "handset")) is None
    from_file = behaviour_stream([saved], torch.device("cpu"), loaded)
    handset = behaviour_stream([shadow("naive", "handset", 5, "behaviour.epsilon=0.3")], torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(fields(from_file), fields(handset)))
    wide = tmp_path / "wide.pt"
    save_weights(handset_network().state_dict() | {"layers.0.weight": torch.zeros(4, 3)}, wide)
    with pytest.raises(DqnlabError, match=r"^behaviour.weights: .*wide.pt"):
        behaviour_network(shadow("naive", "weights", 5, f'behaviour.weights="{wide}"'))


def test_compare_refuses_a_missing_behaviour_weights_file_before_any_run(tmp_path):
    from click.testing import CliRunner

    from dqnlab.cli import cli

    missing = tmp_path / "none.pt"
    result = CliRunner().invoke(cli, ["compare", "--preset", "quick", "--samples", "100", "--seeds", "1", "--eval-every", "50",
                                      "--variant", f'n:agent=naive,behaviour.actor=weights,behaviour.weights="{missing}"',
                                      "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and result.output.startswith(f"error: behaviour.weights: {missing} does not exist")
    assert not (tmp_path / "out" / "runs").exists()


def test_the_acting_behaviour_is_the_presets_agent_with_the_shadows_other_settings():
    config = resolve("quick", "naive", overrides=["run.eval_every=100", "behaviour.actor=replay", "learner.lr=0.01", "run.seed=9"])
    actor = acting_config(config)
    assert actor.agent == "replay" and actor.replay == resolve("quick", "replay").replay
    assert actor.behaviour.actor == "self" and actor.learner.lr == 0.01 and actor.run.seed == 9
    assert acting_config(dataclasses.replace(config, behaviour=dataclasses.replace(config.behaviour, actor="naive"))).replay.capacity == 1


def test_a_shadows_episode_measures_are_undefined_and_its_greedy_evaluations_measure_it():
    lengths = np.array([10.0, 30.0, 60.0])
    ends = np.cumsum(lengths)
    episodes = {"samples": ends, "score": lengths, "length": lengths, "terminated": np.ones(3),
                "wall_seconds": ends * 1e-3, "learn_steps": ends}  # fmt: skip
    evaluations = {"samples": np.array([50.0, 100.0]), "mean_score": np.array([20.0, 70.0])}
    result = {"status": "complete", "samples": 100, "wall_seconds": 0.1, "learn_steps": 100, "transitions_processed": 100,
              "clock": "own", "population": 1, "first_reached": {}}  # fmt: skip
    common = {"episodes": 3, "seconds": 0.1, "budget": 100, "rate_window": 10.0}
    acting = run_measures(Run("a", 0, "complete", result, episodes, evaluations), None, 100, common)
    shadowing = run_measures(Run("b", 0, "complete", {**result, "behaviour": "random"}, episodes, evaluations), None, 100, common)
    assert acting["episode_score"] == pytest.approx(100 / 3) and acting["failure_rate"] == pytest.approx(30.0)
    for key in ("episode_score", "failure_rate", "final_failure_rate", "relative_drawdown", "samples_to_200"):
        assert math.isnan(shadowing[key]), key
    assert shadowing["greedy_final"] == acting["greedy_final"] == 70.0
    assert shadowing["greedy_mean"] == acting["greedy_mean"] == 45.0
    assert shadowing["learn_steps"] == 100.0  # its own cost stays its own
    assert all(math.isnan(v) for v in greedy_measures({}).values())


def test_limits_count_the_recorded_stream():
    config = shadow("replay", "random")
    spec = make_env(config.env)[1]
    acting = run_cost(dataclasses.replace(config, behaviour=dataclasses.replace(config.behaviour, actor="self")), spec)
    shadowing = run_cost(config, spec)
    assert acting.stream_bytes == 0
    assert shadowing.stream_bytes == SAMPLES * (2 * 4 * 4 + 8 + 4 + 1 + 1)
    assert shadowing.memory - acting.memory == shadowing.stream_bytes


def test_train_says_a_run_does_not_act_and_ends_with_its_last_greedy_evaluation(tmp_path):
    from click.testing import CliRunner

    from dqnlab.cli import cli

    result = CliRunner().invoke(cli, ["train", "--preset", "quick", "--samples", "300", "--set", "network.hidden=[16]",
                                      "--set", "behaviour.actor=random", "--set", "run.eval_every=150", "--out", str(tmp_path / "run")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "it does not act: it learns from the random behaviour's transitions" in result.output
    assert "last greedy evaluation (sample 300): mean score" in result.output
    assert json.loads((tmp_path / "run" / "result.json").read_text())["behaviour"] == "random"
