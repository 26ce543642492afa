from __future__ import annotations

import dataclasses
import json

import pytest

from dqnlab.config import (
    Config,
    apply_override,
    config_from_dict,
    config_to_dict,
    config_to_json,
    preset,
    resolve,
    with_agent,
)
from dqnlab.errors import DqnlabError


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("env", "id", "CartPole-v1"),
        ("env", "max_episode_steps", None),  # unwrapped: no time limit
        ("network", "hidden", (1024, 512)),
        ("learner", "lr", 1e-4),
        ("learner", "gamma", 1.0),
        ("learner", "epsilon", 0.1),
        ("learner", "td_gradient", "full"),
        ("learner", "loss", "mse"),
        ("replay", "capacity", None),  # never evicts within the budget
        ("replay", "batch_size", 64),
        ("replay", "warmup", 64),
        ("replay", "with_replacement", True),
        ("replay", "updates_per_step", 1.0),
        ("run", "samples", 50_000),
        ("run", "device", "cpu"),
    ],
)
def test_tutorial_preset_matches_the_seed_code(section, key, value):
    assert getattr(getattr(resolve("tutorial"), section), key) == value


def test_naive_agent_is_a_memory_of_one():
    naive = resolve("tutorial", "naive").replay
    assert (naive.capacity, naive.batch_size, naive.warmup, naive.updates_per_step) == (1, 1, 1, 1.0)
    # everything else is the preset's
    assert resolve("tutorial", "naive").learner == resolve("tutorial", "replay").learner


@pytest.mark.parametrize(
    "override, path, expected",
    [
        ("network.hidden=[64, 64]", "network.hidden", (64, 64)),
        ("replay.with_replacement=false", "replay.with_replacement", False),
        ("learner.lr=3e-4", "learner.lr", 3e-4),
        ("learner.gamma=1", "learner.gamma", 1.0),  # an int literal for a float key
        ('learner.td_gradient="semi"', "learner.td_gradient", "semi"),
        ("env.id=Acrobot-v1", "env.id", "Acrobot-v1"),  # a bare word for a string key
        ("env.max_episode_steps=500", "env.max_episode_steps", 500),
        ("replay.capacity=none", "replay.capacity", None),
        (" replay.batch_size = 32 ", "replay.batch_size", 32),
    ],
)
def test_overrides_are_toml_literals(override, path, expected):
    config = apply_override(Config(), override)
    section, key = path.split(".")
    assert getattr(getattr(config, section), key) == expected


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("learner.lrr=1", "unknown key learner.lrr"),
        ("model.hidden=[1]", "unknown section 'model'"),
        ("learner.lr", "section.key=value"),
        ("learner.lr=fast", "not a TOML literal"),
        ("replay.batch_size=1.5", "replay.batch_size must be an integer"),
        ("replay.batch_size=true", "replay.batch_size must be an integer"),
        ("network.hidden=[64, \"a\"]", "network.hidden must be a list of integers"),
        ("learner.td_gradient=3", "learner.td_gradient must be a string"),
        ("env.id=none", None),  # a string key has no "none": it is the word none
    ],
)
def test_bad_overrides_name_the_key(override, fragment):
    if fragment is None:
        assert apply_override(Config(), override).env.id == "none"
        return
    with pytest.raises(DqnlabError, match=fragment):
        apply_override(Config(), override)


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("learner.lr=0", "learner.lr must be > 0"),
        ("learner.gamma=1.5", "learner.gamma must be in"),
        ("learner.epsilon=-0.1", "learner.epsilon must be in"),
        ('learner.td_gradient="half"', "learner.td_gradient must be one of full, semi"),
        ('learner.loss="l1"', "learner.loss must be one of"),
        ("replay.capacity=0", "replay.capacity must be >= 1"),
        ("replay.warmup=0", "replay.warmup must be >= 1"),
        ("replay.updates_per_step=0", "replay.updates_per_step must be > 0"),
        ("run.samples=0", "run.samples must be >= 1"),
        ("run.seed=-1", "run.seed must be in"),
        ('run.device="tpu"', "run.device must be cpu, cuda or cuda:N"),
        ("network.hidden=[]", "network.hidden must be one or more"),
        ("network.hidden=[0]", "network.hidden must be one or more"),
        ("learner.epsilon_final=1.5", "learner.epsilon_final must be in"),
        ("learner.epsilon_decay_samples=0", "learner.epsilon_decay_samples must be >= 1"),
        ('learner.target_update="soft"', "learner.target_update must be one of none, hard, polyak"),
        ("learner.target_every=0", "learner.target_every must be >= 1"),
        ("learner.target_tau=0", "learner.target_tau must be in"),
        ("learner.target_tau=1.5", "learner.target_tau must be in"),
        ('learner.target_update="hard"', "learner.td_gradient must be semi with a target network"),
        ("learner.double=true", "learner.td_gradient must be semi with learner.double"),
        ("learner.n_step=0", "learner.n_step must be >= 1"),
        ("replay.priority_alpha=-1", "replay.priority_alpha must be >= 0"),
        ("replay.priority_beta=1.5", "replay.priority_beta must be in"),
        ("replay.priority_epsilon=0", "replay.priority_epsilon must be > 0"),
    ],
)
def test_out_of_range_values_are_refused(override, fragment):
    with pytest.raises(DqnlabError, match=fragment) as error:
        resolve("tutorial", overrides=[override])
    assert "\n" not in str(error.value)


def test_warmup_above_a_bounded_capacity_is_refused():
    with pytest.raises(DqnlabError, match="replay.warmup must be <= replay.capacity, or learning never starts; got 200"):
        resolve("tutorial", overrides=["replay.capacity=100", "replay.warmup=200"])
    assert resolve("tutorial", overrides=["replay.warmup=60000"]).replay.warmup == 60000  # unbounded: allowed


@pytest.mark.parametrize("replacement", ["true", "false"])
def test_capacity_below_batch_size_is_refused(replacement):
    with pytest.raises(DqnlabError, match="replay.capacity must be >= replay.batch_size; got 10"):
        resolve("tutorial", overrides=[f"replay.with_replacement={replacement}", "replay.capacity=10", "replay.warmup=10"])


def test_prioritized_replay_draws_with_replacement():
    with pytest.raises(DqnlabError, match=r"replay.with_replacement must be true with replay.prioritized \(.*\); got False"):
        resolve("tutorial", overrides=["replay.prioritized=true", "replay.with_replacement=false"])


def test_an_n_step_return_needs_n_stored_transitions():
    with pytest.raises(DqnlabError, match="replay.capacity must be >= learner.n_step .*; got 1"):
        resolve("tutorial", "naive", overrides=["learner.n_step=3"])
    assert resolve("tutorial", "naive", overrides=["learner.n_step=1"]).learner.n_step == 1


def test_the_standard_preset_is_standard_dqn_and_the_tutorial_preset_has_no_option_on():
    standard, tutorial = preset("standard"), preset("tutorial")
    assert (standard.learner.td_gradient, standard.learner.loss, standard.learner.gamma) == ("semi", "huber", 0.99)
    assert (standard.learner.target_update, standard.learner.target_every) == ("hard", 500)
    assert (standard.learner.epsilon, standard.learner.epsilon_final, standard.learner.epsilon_decay_samples) == (1.0, 0.05, 10_000)
    assert standard.env.max_episode_steps == 500 and standard.replay.capacity == 50_000
    learner, replay = tutorial.learner, tutorial.replay
    assert (learner.target_update, learner.double, learner.n_step, learner.epsilon_final) == ("none", False, 1, None)
    assert (replay.prioritized, replay.combined) == (False, False)


def test_without_replacement_needs_enough_transitions():
    with pytest.raises(DqnlabError, match="replay.warmup must be >= replay.batch_size"):
        resolve("tutorial", overrides=["replay.with_replacement=false", "replay.warmup=10"])


def test_resolution_order_preset_agent_file_overrides(tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text('preset = "standard"\nagent = "naive"\n[replay]\nupdates_per_step = 2.0\n[learner]\nlr = 0.01\n')
    config = resolve(config_file=toml, overrides=["learner.lr=0.5"])
    assert config.preset == "standard" and config.agent == "naive"
    assert config.learner.gamma == 0.99  # from the preset
    assert config.replay.capacity == 1  # from the agent
    assert config.replay.updates_per_step == 2.0  # the file beats the agent
    assert config.learner.lr == 0.5  # --set beats the file
    # the command line's preset and agent beat the file's
    assert resolve("tutorial", "replay", toml).preset == "tutorial"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[learner]\nlr = ", "not valid TOML"),
        ("[optimizer]\nlr = 1\n", "unknown key 'optimizer'"),
        ("learner = 3\n", "must be a table"),
        ("[learner]\nmomentum = 0.9\n", "unknown key learner.momentum"),
    ],
)
def test_bad_config_files(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(DqnlabError, match=fragment):
        resolve(config_file=path)


def test_missing_config_file(tmp_path):
    with pytest.raises(DqnlabError, match="does not exist"):
        resolve(config_file=tmp_path / "nope.toml")


def test_unknown_preset_and_agent():
    with pytest.raises(DqnlabError, match="unknown preset 'atari'; choose one of: tutorial, quick, standard, minatar"):
        preset("atari")
    with pytest.raises(DqnlabError, match="unknown agent 'lazy'"):
        with_agent(Config(), "lazy")


@pytest.mark.parametrize("preset_name", ["tutorial", "quick", "standard"])
@pytest.mark.parametrize("agent", ["naive", "replay"])
def test_json_round_trip(preset_name, agent):
    config = resolve(preset_name, agent, overrides=["network.hidden=[8, 4]", "run.seed=7"])
    text = config_to_json(config)
    assert config_from_dict(json.loads(text)) == config
    assert json.loads(text)["env"]["max_episode_steps"] == config.env.max_episode_steps


def test_json_with_wrong_types_is_refused():
    data = config_to_dict(Config())
    data["replay"]["batch_size"] = "64"
    with pytest.raises(DqnlabError, match="replay.batch_size must be an integer"):
        config_from_dict(data)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().learner.lr = 1.0  # type: ignore[misc]
