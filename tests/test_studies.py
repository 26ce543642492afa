"""The shipped study files: each resolves, holds what its page in docs/studies says it holds, and runs at a tiny budget."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dqnlab import api
from dqnlab.cli import cli
from dqnlab.config import resolve
from dqnlab.experiments.assemble import experiment_from, study_from
from dqnlab.experiments.spec import find_study

STUDIES = Path(__file__).resolve().parent.parent / "studies"


def test_the_replay_design_study_compares_five_designs_over_twenty_held_out_seeds():
    experiment = experiment_from(STUDIES / "replay-designs.toml")
    assert [variant.name for variant in experiment.variants] == ["uniform", "prioritized", "combined", "nstep3", "target"]
    assert experiment.seeds == tuple(range(3000, 3020)) and experiment.samples == 20_000
    configs = {variant.name: experiment.config(variant, 3000) for variant in experiment.variants}
    assert all(c.learner.td_gradient == "semi" and c.learner.gamma == 0.99 and c.env.max_episode_steps == 500 for c in configs.values())
    assert configs["prioritized"].replay.prioritized and configs["combined"].replay.combined
    assert configs["nstep3"].learner.n_step == 3 and configs["target"].learner.target_update == "hard"
    uniform = configs["uniform"]
    assert not any((uniform.replay.prioritized, uniform.replay.combined, uniform.learner.n_step > 1, uniform.learner.target_update != "none"))


def test_the_replay_design_study_runs_from_its_file_at_a_tiny_budget(tmp_path):
    out = tmp_path / "study"
    result = CliRunner().invoke(cli, ["compare", "--experiment", str(STUDIES / "replay-designs.toml"), "--samples", "300",
                                      "--seeds", "2", "--backend", "population", "--workers", "1", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "report.html").is_file() and summary["conclusion"]
    assert sorted(path.name for path in (out / "runs").iterdir()) == ["combined", "nstep3", "prioritized", "target", "uniform"]


# ---------------------------------------------------------------- the tutorial's open questions (issue: shipped studies)


def compare_tiny(tmp_path, name: str, *options: str) -> dict:
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["compare", "--experiment", str(STUDIES / f"{name}.toml"), "--seeds", "2",
                                      "--backend", "population", "--workers", "1", "--out", str(out), "-q", *options])  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def test_the_same_stream_study_pairs_the_two_rules_under_four_behaviours(tmp_path):
    experiment = experiment_from(STUDIES / "same-stream.toml")
    assert experiment.seeds == tuple(range(4000, 4020)) and experiment.samples == 20_000 and experiment.preset == "quick"
    configs = {variant.name: experiment.config(variant, 4000) for variant in experiment.variants}
    for behaviour in ("random", "handset", "naive", "replay"):
        naive, replay = configs[f"naive-on-{behaviour}"], configs[f"replay-on-{behaviour}"]
        assert (naive.agent, replay.agent) == ("naive", "replay")
        assert naive.behaviour == replay.behaviour and naive.behaviour.actor == behaviour
        assert naive.run.eval_every == replay.run.eval_every == 2000
    assert len(configs) == 8
    summary = compare_tiny(tmp_path, "same-stream", "--samples", "300", "--eval-every", "100")
    for behaviour in ("random", "handset", "naive", "replay"):
        measures = {row["measure"] for row in summary["comparisons"] if (row["a"], row["b"]) == (f"naive-on-{behaviour}", f"replay-on-{behaviour}")}
        assert measures == {"greedy_final", "greedy_mean"}  # a shadow's episodes are its behaviour's: only greedy measures
    readout = subprocess.run([sys.executable, str(STUDIES / "readout.py"), "same-stream", "--results", str(tmp_path / "same-stream")],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert readout.count("\n| ") == 8 and "| handset | last |" in readout


def test_the_width_study_spans_8_to_1024_detectors_for_both_agents(tmp_path):
    experiment = experiment_from(STUDIES / "width.toml")
    configs = {variant.name: experiment.config(variant, 5000) for variant in experiment.variants}
    assert sorted(configs) == sorted(f"{agent}-{w}" for agent in ("naive", "replay") for w in (8, 32, 128, 512, 1024))
    assert all(c.network.hidden == (int(name.split("-")[1]),) and c.run.checkpoint_every == 2000 for name, c in configs.items())
    assert experiment.seeds == tuple(range(5000, 5020))
    summary = compare_tiny(tmp_path, "width", "--samples", "300", "--set", "run.checkpoint_every=100")
    assert summary["runs"]["used"] == 20 and summary["variants"]["replay-1024"]["measures"]["excess_repurposed_share"]["n"] == 2


def test_the_long_naive_study_gives_both_agents_ten_times_the_budget_with_evaluations(tmp_path):
    experiment = experiment_from(STUDIES / "long-naive.toml")
    assert experiment.samples == 200_000 and [v.agent for v in experiment.variants] == ["naive", "replay"]
    assert all(experiment.config(v, 6000).run.eval_every == 10_000 for v in experiment.variants)
    summary = compare_tiny(tmp_path, "long-naive", "--samples", "400", "--eval-every", "200")
    assert summary["runs"]["used"] == 4 and set(summary["evaluation"]) == {"naive", "replay"}


def test_the_tutorial_100_study_is_the_tutorial_preset_over_100_paired_seeds(tmp_path):
    experiment = experiment_from(STUDIES / "tutorial-100.toml")
    assert experiment.preset == "tutorial" and experiment.samples == 50_000 and experiment.seeds == tuple(range(1000, 1100))
    assert experiment.config(experiment.variants[1], 1000) == resolve("tutorial", "replay", overrides=["run.seed=1000"])
    summary = compare_tiny(tmp_path, "tutorial-100", "--samples", "200")
    assert summary["runs"]["used"] == 4


def test_the_deploy_study_times_both_agents_and_the_handset_after_training(tmp_path, monkeypatch):
    monkeypatch.chdir(STUDIES.parent)  # `dqnlab study NAME` reads studies/NAME.toml from here
    study = study_from(find_study("deploy"))
    ((folder, experiment),), play = study.parts, study.play
    assert folder == ""
    assert experiment.preset == "tutorial" and [v.agent for v in experiment.variants] == ["naive", "replay"]
    assert (play.episodes, play.max_steps, play.handset) == (10, 1000, True)
    tiny = dataclasses.replace(experiment, samples=200, seeds=(0, 1))
    compared = api.compare_sweep(tiny, tmp_path / "deploy", 1, play=dataclasses.replace(play, episodes=2, max_steps=50))
    rows = {row["name"]: row for row in compared.deploy["rows"]}
    assert set(rows) == {"naive", "replay", "handset"} and rows["naive"]["runs"] == rows["replay"]["runs"] == 2
    assert json.loads((tmp_path / "deploy" / "deploy.json").read_text()) == compared.deploy
    assert all(row["median_us"] > 0 for row in rows.values())


# ---------------------------------------------------------------- a published result reproduced (MinAtar)


def test_the_minatar_study_is_the_papers_dqn_with_and_without_replay_on_two_games():
    study = study_from(STUDIES / "minatar-replay.toml")
    assert [folder for folder, _ in study.parts] == ["Breakout-v0", "SpaceInvaders-v0"]
    for folder, experiment in study.parts:
        assert experiment.env().id == f"MinAtar/{folder}" and experiment.samples == 300_000
        assert experiment.seeds == tuple(range(8000, 8008)) and [v.name for v in experiment.variants] == ["noreplay", "replay"]
        noreplay, replay = (experiment.config(v, 8000) for v in experiment.variants)
        expected = resolve("minatar", "replay", overrides=[f'env.id="MinAtar/{folder}"', "run.samples=300000", "run.seed=8000"])
        assert replay == expected  # the preset exactly
        assert (noreplay.replay.capacity, noreplay.replay.batch_size) == (1, 1) and noreplay.learner == replay.learner


def tiny_study(folder: Path, samples: int = 300) -> None:
    """studies/minatar-replay.toml at a tiny budget, in `folder`/studies/, as a user would edit a copy."""
    (folder / "studies").mkdir()
    text = (STUDIES / "minatar-replay.toml").read_text()
    text = text.replace("samples = 300000", f"samples = {samples}").replace("8002, 8003, 8004, 8005, 8006, 8007", "")
    text += "\n[common.replay]\nwarmup = 100\ncapacity = 300\n"
    (folder / "studies" / "minatar-replay.toml").write_text(text)


def test_the_minatar_study_runs_from_its_file_once_per_game_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_study(tmp_path)
    first = CliRunner().invoke(cli, ["study", "minatar-replay", "--backend", "population", "--workers", "1", "-q"])
    assert first.exit_code == 0, first.output
    for game in ("Breakout-v0", "SpaceInvaders-v0"):
        summary = json.loads((tmp_path / "results" / "minatar-replay" / game / "summary.json").read_text())
        assert summary["runs"]["used"] == 4 and summary["experiment"]["seeds"] == [8000, 8001]
        assert not any("failure" in line for line in summary["conclusion"])  # MinAtar is measured by returns
    again = CliRunner().invoke(cli, ["study", "minatar-replay", "--backend", "population", "--workers", "1"])
    assert again.exit_code == 0 and again.output.count("4 already done, 0 to run") == 2, again.output
    readout = subprocess.run([sys.executable, str(STUDIES / "readout.py"), "minatar-replay"], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    assert readout.count("| final_return | ") == 2 and "paper (mean of 30 runs)" in readout


def test_a_time_limit_spent_on_the_first_game_leaves_the_second_for_the_rerun(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_study(tmp_path, samples=200)
    times = iter(range(0, 10_000, 100))  # every clock read 100 s later: the limit passes during the first game
    monkeypatch.setattr(api.time, "monotonic", lambda: float(next(times)))
    result = CliRunner().invoke(cli, ["study", "minatar-replay", "--workers", "1", "--time-limit", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "time limit reached: MinAtar/SpaceInvaders-v0 not started" in result.output
    assert not (tmp_path / "results" / "minatar-replay" / "SpaceInvaders-v0").exists()


def test_compare_refuses_a_study_files_envs_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["compare", "--experiment", str(STUDIES / "minatar-replay.toml"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "envs belongs to study files; run it with dqnlab study" in result.stderr
    assert not (tmp_path / "x").exists()
