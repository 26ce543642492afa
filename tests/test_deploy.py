"""Greedy decision time: timed in engine.evaluation, returned by play, printed by `dqnlab play`, tabled by deploy."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from dqnlab.config import EnvConfig
from dqnlab import deploy
from dqnlab.deploy import deploy_text, measure_deploy
from dqnlab.engine import evaluation
from dqnlab.engine.network import build_network
from dqnlab.errors import DqnlabError
from dqnlab.handset import handset_config, handset_network
from dqnlab.networks import load_run_network
from dqnlab.play import Played, decision_quartiles, play
from dqnlab.rundir.layout import run_dir_for
from tests.clitools import invoke

TICK = 2.0**-14  # seconds (61.03515625 us): a power of two, so sums and differences of ticks are exact
TINY = ["--preset", "quick", "--samples", "300", "--set", "network.hidden=[8]"]
DECISION_LINE = re.compile(
    r"greedy decision time per step: median (\d+\.\d) us \(quartiles (\d+\.\d)-(\d+\.\d) us\) "
    r"over ([\d,]+) decisions on cpu, (\d+) torch thread\(s\)"
)


SLOW = 1000 * TICK  # what the fake clock charges for every environment step and render: none of it is decision time


@pytest.fixture
def fake_clock(monkeypatch):
    """A fake clock: decision i (from 0) lasts (i + 1) * TICK if `growing`, else TICK; env steps and renders last SLOW."""
    state = {"now": 0.0, "decisions": 0, "growing": True}
    real_action, real_make_env = evaluation.greedy_action, evaluation.make_env

    def timed_action(*args):
        state["decisions"] += 1
        state["now"] += (state["decisions"] if state["growing"] else 1) * TICK
        return real_action(*args)

    def slow(method):
        def call(*args, **kwargs):
            state["now"] += SLOW
            return method(*args, **kwargs)

        return call

    def slow_env(*args, **kwargs):
        env, spec = real_make_env(*args, **kwargs)
        env.step, env.render = slow(env.step), slow(env.render)
        return env, spec

    monkeypatch.setattr(evaluation.time, "perf_counter", lambda: state["now"])
    monkeypatch.setattr(evaluation, "greedy_action", timed_action)
    monkeypatch.setattr(evaluation, "make_env", slow_env)
    return state


def random_network():
    return build_network(4, 2, (8,), torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- engine.evaluation and play


def test_greedy_episodes_times_one_decision_per_step():
    episodes, _, _, seconds = evaluation.greedy_episodes(random_network(), EnvConfig(), episodes=4, seed=1, max_steps=30)
    assert seconds.dtype == np.float64 and seconds.shape == (sum(e.length for e in episodes),)
    assert np.isfinite(seconds).all() and (seconds > 0).all()


def test_the_clock_brackets_greedy_action_and_nothing_else(fake_clock):
    """Decision i must read exactly the (i + 1) ticks greedy_action took, none of the slow env steps and renders."""
    episodes, _, _, seconds = evaluation.greedy_episodes(random_network(), EnvConfig(), episodes=3, seed=2, max_steps=20, frames=5)
    steps = sum(e.length for e in episodes)
    assert steps == fake_clock["decisions"] and fake_clock["now"] > steps * SLOW  # the env did step (and render) on this clock
    np.testing.assert_array_equal(seconds, np.arange(1, steps + 1) * TICK)


def test_play_returns_the_episodes_with_their_decision_times():
    played = play(handset_network(), EnvConfig(max_episode_steps=500), episodes=3, seed=0, max_steps=25)
    assert isinstance(played, Played) and played.device == "cpu" and played.threads == torch.get_num_threads()
    assert [e.length for e in played.episodes] == [25, 25, 25] and played.decision_seconds.shape == (75,)


def test_decision_quartiles_are_in_microseconds():
    assert decision_quartiles(np.array([5.0, 1.0, 3.0, 2.0, 4.0]) * 1e-6) == pytest.approx((2.0, 3.0, 4.0))
    with pytest.raises(DqnlabError, match="no decisions"):
        decision_quartiles(np.array([]))


# ---------------------------------------------------------------- dqnlab play


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "naive"
    result = invoke("train", *TINY, "--agent", "naive", "--seed", "3", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def played_steps(stdout: str) -> int:
    return sum(int(length) for length in re.findall(r"length +(\d+)", stdout))


def test_play_prints_the_decision_time_after_the_summary(trained, fake_clock):
    fake_clock["growing"] = False
    result = invoke("play", trained, "--episodes", "3", "--max-steps", "40")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and lines[3].startswith("3 episodes: mean")  # stdout unchanged: scores only
    steps = played_steps(result.stdout)
    threads = torch.get_num_threads()
    expected = (f"greedy decision time per step: median 61.0 us (quartiles 61.0-61.0 us) "
                f"over {steps:,} decisions on cpu, {threads} torch thread(s)")  # fmt: skip
    assert result.stderr.splitlines() == [expected]
    assert result.output.splitlines()[-1] == expected  # printed after the summary line


def test_play_prints_the_decision_time_of_a_handset_run(tmp_path):
    out = tmp_path / "handset"
    assert invoke("handset", "--out", out).exit_code == 0
    result = invoke("play", out, "--episodes", "2", "--max-steps", "1500")
    assert result.exit_code == 0, result.output
    match = DECISION_LINE.fullmatch(result.stderr.strip())
    assert match, result.stderr
    median, low, high = (float(match.group(k)) for k in (1, 2, 3))
    assert 0 < low <= median <= high and int(match.group(4).replace(",", "")) == played_steps(result.stdout) == 3000


# ---------------------------------------------------------------- deploy


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "compare"
    result = invoke("compare", *TINY, "--seeds", "2", "--workers", "1", "-q", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def steps_played(compared, variant: str, seeds: list[int], episodes: int, max_steps: int, seed: int) -> int:
    """The steps the runs play, counted apart from measure_deploy."""
    total = 0
    for run_seed in seeds:
        config, network = load_run_network(run_dir_for(compared, variant, run_seed))
        total += sum(e.length for e in play(network, config.env, episodes=episodes, seed=seed, max_steps=max_steps).episodes)
    return total


def test_measure_deploy_plays_every_complete_run_and_the_handset(compared, fake_clock):
    fake_clock["growing"] = False
    table = measure_deploy(compared, ["naive", "replay"], [0, 1], episodes=2, max_steps=30, handset=True, seed=5)
    assert (table["device"], table["torch_threads"]) == ("cpu", torch.get_num_threads())
    rows = {row["name"]: row for row in table["rows"]}
    assert list(rows) == ["naive", "replay", "handset"]
    for name in ("naive", "replay"):
        assert (rows[name]["runs"], rows[name]["skipped"], rows[name]["hidden"], rows[name]["parameters"]) == (2, 0, [8], 58)
        assert rows[name]["decisions"] == steps_played(compared, name, [0, 1], 2, 30, seed=5)
    handset_steps = sum(e.length for s in (5, 6) for e in play(handset_network(), handset_config().env, 2, s, 30).episodes)
    assert (rows["handset"]["runs"], rows["handset"]["hidden"], rows["handset"]["decisions"]) == (2, [4], handset_steps)
    for row in table["rows"]:  # every decision lasted one tick
        assert row["run_medians_us"] == [TICK * 1e6] * 2
        assert row["median_us"] == row["iqm_us"] == row["iqm_low_us"] == row["iqm_high_us"] == TICK * 1e6


def test_measure_deploy_skips_and_counts_incomplete_runs(compared, tmp_path):
    copy = tmp_path / "compare"
    shutil.copytree(compared, copy)
    (run_dir_for(copy, "naive", 1) / "result.json").unlink()
    table = measure_deploy(copy, ["naive", "replay"], [0, 1, 2], episodes=1, max_steps=10, handset=True)
    naive, replay, handset = table["rows"]
    assert (naive["runs"], naive["skipped"], naive["skipped_runs"]) == (1, 2, ["naive/seed-001: incomplete", "naive/seed-002: missing"])
    assert (replay["runs"], replay["skipped"]) == (2, 1)
    assert handset["runs"] == 2  # as many repeats as the variant with the most runs
    assert naive["decisions"] == steps_played(copy, "naive", [0], 1, 10, seed=0)
    assert len(naive["run_medians_us"]) == 1 and naive["iqm_low_us"] <= naive["iqm_us"] <= naive["iqm_high_us"]


def test_measure_deploy_with_no_complete_run_has_no_statistics(compared, tmp_path):
    copy = tmp_path / "compare"
    shutil.copytree(compared, copy)
    for seed in (0, 1):
        (run_dir_for(copy, "naive", seed) / "result.json").unlink()
    table = measure_deploy(copy, ["naive"], [0, 1], episodes=1, max_steps=5, handset=True)
    naive, handset = table["rows"]
    assert (naive["runs"], naive["skipped"], naive["median_us"], naive["iqm_us"], naive["hidden"]) == (0, 2, None, None, None)
    assert handset["runs"] == 1  # played once when no variant has a run


def test_measure_deploy_refuses_what_it_cannot_read(compared, tmp_path):
    with pytest.raises(DqnlabError, match="has no runs of variant 'nope'; it has: naive, replay"):
        measure_deploy(compared, ["nope"], [0], episodes=1, max_steps=5, handset=False)
    with pytest.raises(DqnlabError, match="is not a results directory"):
        measure_deploy(tmp_path, ["naive"], [0], episodes=1, max_steps=5, handset=False)


def test_deploy_text_is_a_fixed_width_table():
    row = {"name": "naive", "hidden": [1024, 512], "parameters": 531_970, "runs": 3, "skipped": 1, "decisions": 12_345,
           "median_us": 41.24, "iqm_us": 41.0, "iqm_low_us": 40.04, "iqm_high_us": 42.3}  # fmt: skip
    empty = {**row, "name": "replay", "hidden": None, "parameters": None, "runs": 0, "skipped": 4, "decisions": 0,
             "median_us": None, "iqm_us": None}  # fmt: skip
    table = {"device": "cpu", "torch_threads": 1, "episodes": 10, "max_steps": 10_000, "rows": [row, empty]}
    assert deploy_text(table).splitlines() == [
        "greedy decision time per step (microseconds; median over each run's decisions) on cpu, 1 torch thread(s); "
        "10 episode(s) of up to 10,000 steps per run",
        "name            network   params  runs  skipped   decisions   median  IQM [95% CI]",
        "naive          1024x512  531,970     3        1      12,345     41.2  41.0 [40.0, 42.3]",
        "replay                -        -     0        4           0        -  -",
    ]


def test_measure_deploy_interleaves_its_rows_round_by_round(compared, monkeypatch):
    """Round i plays run i of every variant, then the hand-set network's repeat i: drift moves every row alike."""
    order = []

    def note(network, env_config, episodes, seed, max_steps):
        order.append((network.hidden, seed))
        return 1.0, 1

    monkeypatch.setattr(deploy, "_median_decision_us", note)
    table = measure_deploy(compared, ["naive", "replay"], [0, 1], episodes=1, max_steps=5, handset=True, seed=7)
    trained = load_run_network(run_dir_for(compared, "naive", 0))[1].hidden
    assert order == [(trained, 7), (trained, 7), ((4,), 7), (trained, 7), (trained, 7), ((4,), 8)]
    assert [row["runs"] for row in table["rows"]] == [2, 2, 2]
