"""The shipped study files: each resolves, holds what the README says it holds, and runs at a tiny budget."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dqnlab.cli import cli
from dqnlab.experiments.assemble import experiment_from

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
