"""compare's machinery: variants, pairing, resume, failures, bad input."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from dqnlab import seeding
from dqnlab.analysis.report import build_report
from dqnlab.cli import cli
from dqnlab.engine.envs import make_env
from dqnlab.errors import DqnlabError
from dqnlab.api import compare
from dqnlab.experiments.backends.local import FAULT_VARIABLE
from dqnlab.experiments.runner import FAIL_VARIABLE, check_experiment, plan
from dqnlab.rundir.layout import run_dir_for
from dqnlab.rundir.ownership import output_dir
from dqnlab.experiments.spec import build_experiment, parse_variant_option
from dqnlab.engine.training import initial_network

TINY = {"network": {"hidden": [8]}}


def tiny_experiment(seeds=2, variants=None, samples=300, common=None):
    return build_experiment("tutorial", samples, seeds, variants, common or TINY)


def episodes(out, variant, seed):
    rows = csv.DictReader((run_dir_for(out, variant, seed) / "episodes.csv").open())
    return [(row["samples"], row["score"], row["length"]) for row in rows]


@pytest.mark.parametrize(
    "text, name, table",
    [
        ("replay16:replay.batch_size=16,replay.warmup=16", "replay16", {"replay": {"batch_size": 16, "warmup": 16}}),
        ("slow:agent=naive,learner.lr=1e-5", "slow", {"agent": "naive", "learner": {"lr": 1e-5}}),
        ("big:network.hidden=[256, 256],replay.with_replacement=false", "big",
         {"network": {"hidden": [256, 256]}, "replay": {"with_replacement": False}}),
        ("naive", "naive", {}),
        ("ring:replay.capacity=1000", "ring", {"replay": {"capacity": 1000}}),
    ],
)  # fmt: skip
def test_variant_options(text, name, table):
    assert parse_variant_option(text) == (name, table)


def test_variants_resolve_to_the_settings_they_name():
    experiment = tiny_experiment(
        variants={"naive": {"agent": "naive"}, "b16": {"replay": {"batch_size": 16, "warmup": 16}}, "replay": {}}
    )
    naive, b16, replay = (experiment.config(v, 0) for v in experiment.variants)
    assert naive.agent == "naive" and naive.replay.capacity == 1
    assert b16.agent == "replay" and b16.replay.batch_size == 16 and b16.network.hidden == (8,)
    assert replay.agent == "replay" and replay.replay.batch_size == 64  # a variant named replay is the replay agent


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"seeds": 0}, "number of seeds must be >= 1"),
        ({"seeds": [1, 1]}, "seeds must not repeat"),
        ({"variants": {"bad": {"replay": {"batchsize": 4}}}}, "unknown key replay.batchsize"),
        ({"variants": {"bad": {"agent": "lazy"}}}, "agent 'lazy'"),
        ({"variants": {"bad name": {}}}, "variant name 'bad name'"),
        ({"variants": {"bad": {"replay": {"batch_size": 0}}}}, "replay.batch_size must be >= 1"),
        ({"variants": {}}, "at least one variant"),
        ({"samples": 0}, "samples must be an integer >= 1"),
    ],
)
def test_bad_experiments_are_refused(kwargs, fragment):
    with pytest.raises(DqnlabError, match=fragment):
        tiny_experiment(**kwargs)


def test_seed_k_pairs_weights_and_starts_across_variants():
    experiment = tiny_experiment(variants={"naive": {"agent": "naive"}, "replay": {}, "wide": {"network": {"hidden": [16]}}})
    configs = {v.name: experiment.config(v, 1) for v in experiment.variants}
    _, spec = make_env(configs["naive"].env)
    naive, replay = (initial_network(configs[name], spec) for name in ("naive", "replay"))
    assert all(torch.equal(a, b) for a, b in zip(naive.parameters(), replay.parameters()))
    other_seed = initial_network(experiment.config(experiment.variants[0], 0), spec)
    assert not torch.equal(naive.layers[0].weight, other_seed.layers[0].weight)
    starts = [seeding.ResetSeeds(config.run.seed) for config in configs.values()]
    assert len({tuple(s.next() for _ in range(10)) for s in starts}) == 1


def test_paired_runs_are_identical_when_only_the_learning_differs(tmp_path):
    """With learning switched off (lr 1e-30), naive and replay act identically: same weights, starts, exploration."""
    experiment = tiny_experiment(seeds=2, common={**TINY, "learner": {"lr": 1e-30}})
    compare(experiment, tmp_path, workers=2)
    for seed in (0, 1):
        assert episodes(tmp_path, "naive", seed) == episodes(tmp_path, "replay", seed)
    assert episodes(tmp_path, "naive", 0) != episodes(tmp_path, "naive", 1)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "exp"
    summary = compare(tiny_experiment(seeds=2), out, workers=2)
    return out, summary


def test_a_results_directory_holds_every_run(finished):
    out, summary = finished
    for variant in ("naive", "replay"):
        for seed in (0, 1):
            assert json.loads((run_dir_for(out, variant, seed) / "result.json").read_text())["status"] == "complete"
    assert summary["runs"]["complete"] == 4 and (out / "summary.json").is_file()
    assert json.loads((out / "experiment.json").read_text())["seeds"] == [0, 1]


def test_a_run_written_before_terminations_were_recorded_is_redone(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    old = run_dir_for(out, "naive", 0) / "episodes.csv"
    with old.open() as handle:
        rows = [{k: v for k, v in row.items() if k != "terminated"} for row in csv.DictReader(handle)]
    with old.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    work = plan(tiny_experiment(seeds=2), out)
    assert work.redone == {"naive/seed-000": "written by an older dqnlab (episodes.csv has no terminated column)"}
    summary = build_report(out)  # the report leaves it out, and says why
    assert summary["runs"]["outdated"] == 1 and summary["variants"]["naive"]["n"] == 1
    assert any("written before episodes.csv recorded terminations" in entry for entry in summary["runs"]["excluded"])


def test_resume_keeps_finished_runs_and_redoes_partial_and_corrupt_ones(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    experiment = tiny_experiment(seeds=3)  # one more seed than before
    killed = run_dir_for(out, "naive", 1)
    (killed / "result.json").unlink()  # as if the run was killed mid-way
    rows = (killed / "episodes.csv").read_text().splitlines()
    (killed / "episodes.csv").write_text("\n".join(rows[:3]) + "\n")
    (run_dir_for(out, "replay", 0) / "result.json").write_text("{not json")
    kept_before = (run_dir_for(out, "replay", 1) / "episodes.csv").read_text()
    work = plan(experiment, out)
    assert sorted(work.kept) == ["naive/seed-000", "replay/seed-001"]
    assert work.redone == {"naive/seed-001": "partial (no result.json)", "replay/seed-000": (
        "corrupt (result.json is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")}
    assert sorted(t.key for t in work.tasks) == ["naive/seed-001", "naive/seed-002", "replay/seed-000", "replay/seed-002"]
    summary = compare(experiment, out, workers=2)
    assert summary["runs"]["complete"] == 6
    assert (run_dir_for(out, "replay", 1) / "episodes.csv").read_text() == kept_before  # untouched
    assert episodes(out, "naive", 1) == episodes(finished[0], "naive", 1)  # redone, same seed, same result
    assert plan(experiment, out).tasks == []  # nothing left: no duplicates, nothing lost


def test_a_changed_configuration_is_redone(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    config_path = run_dir_for(out, "replay", 0) / "config.json"
    config = json.loads(config_path.read_text())
    config["learner"]["lr"] = 0.5
    config_path.write_text(json.dumps(config))
    assert plan(tiny_experiment(seeds=2), out).redone == {"replay/seed-000": "configuration changed"}


def test_a_run_written_before_a_key_existed_is_redone_and_says_why(finished, tmp_path):
    """A run made by a dqnlab without the replay lab's keys: its config.json lacks them, so it is redone, named as old."""
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    config_path = run_dir_for(out, "naive", 1) / "config.json"
    config = json.loads(config_path.read_text())
    for key in ("target_update", "target_every", "target_tau", "double", "n_step"):
        del config["learner"][key]
    config_path.write_text(json.dumps(config))
    reason = "written by an older dqnlab (config.json has no learner.target_update and more)"
    assert plan(tiny_experiment(seeds=2), out).redone == {"naive/seed-001": reason}


def test_a_different_experiment_is_refused_unless_overwrite(finished, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished[0], out)
    with pytest.raises(DqnlabError, match="holds a different experiment \\(samples 300 there, 400 here\\)"):
        check_experiment(out, tiny_experiment(samples=400))
    with pytest.raises(DqnlabError, match="variant 'replay' has other settings there"):
        check_experiment(out, tiny_experiment(variants={"replay": {"replay": {"batch_size": 8, "warmup": 8}}}))
    assert (run_dir_for(out, "naive", 0) / "result.json").is_file()  # nothing lost
    with output_dir(out, "results", "test", overwrite=True):
        assert not (out / "runs").exists() and (out / ".dqnlab").is_file()
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "cat.jpg").write_text("meow")
    with pytest.raises(DqnlabError, match="dqnlab did not write"):
        with output_dir(stranger, "results", "test", overwrite=True):
            pass
    assert sorted(p.name for p in stranger.iterdir()) == ["cat.jpg"]


def test_failures_do_not_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "replay/seed-000")  # that run's worker process dies abruptly
    monkeypatch.setenv(FAIL_VARIABLE, "broken")  # each of that variant's runs raises in its worker process
    variants = {"naive": {"agent": "naive"}, "replay": {}, "broken": {"replay": {"batch_size": 8}}}
    summary = compare(tiny_experiment(seeds=2, variants=variants), tmp_path, workers=2)
    runs = summary["runs"]
    assert (runs["complete"], runs["failed"]) == (3, 3)
    failure = json.loads((run_dir_for(tmp_path, "replay", 0) / "result.json").read_text())
    assert failure["status"] == "failed" and "worker process died" in failure["error"]
    broken = json.loads((run_dir_for(tmp_path, "broken", 1) / "result.json").read_text())
    assert broken["error"] == "RuntimeError: a run made to fail (fault injection)"
    assert "replay/seed-000: failed" in runs["excluded"]
    assert any(line.startswith("3 of 6 runs are left out of the per-variant figures") for line in summary["conclusion"])


def test_compare_command_line(tmp_path):
    out = tmp_path / "cli"
    args = ["compare", "--seeds", "2", "--samples", "300", "--set", "network.hidden=[8]", "--workers", "2", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--variant", "naive", "--variant", "b8:replay.batch_size=8,replay.warmup=8"])
    assert result.exit_code == 0, result.output
    assert "2 variants x 2 seeds = 4 runs" in result.stdout and f"report: {out / 'report.html'}" in result.stdout
    again = CliRunner().invoke(cli, [*args, "--variant", "naive", "--variant", "b8:replay.batch_size=8,replay.warmup=8"])
    assert "4 already done, 0 to run" in again.stdout
    for bad, fragment in [
        (["--seeds", "0"], "number of seeds must be >= 1"),
        (["--variant", "x:replay.nope=1"], "unknown key replay.nope"),
        (["--samples", "400"], "holds a different experiment"),
    ]:
        result = CliRunner().invoke(cli, [*args, *bad])
        assert result.exit_code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1


def test_first_seed_names_held_out_seeds(tmp_path):
    out = tmp_path / "held-out"
    args = ["compare", "--seeds", "2", "--first-seed", "1000", "--samples", "100", "--set", "network.hidden=[8]",
            "--variant", "naive", "--workers", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "experiment.json").read_text())["seeds"] == [1000, 1001]
    assert run_dir_for(out, "naive", 1001).is_dir()
    for bad, fragment in [
        (["--first-seed", "3"], "--first-seed needs --seeds N"),
        (["--seeds", "2", "--first-seed", "-1"], "-1 is not in the range x>=0"),
    ]:
        result = CliRunner().invoke(cli, ["compare", *bad, "--out", str(tmp_path / "never")])
        assert result.exit_code == 2 and fragment in result.stderr and not (tmp_path / "never").exists()


def test_experiment_file(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(
        'preset = "tutorial"\nsamples = 300\nseeds = [3, 5]\n[common.network]\nhidden = [8]\n'
        '[variants.naive]\nagent = "naive"\n[variants.b8]\nreplay = { batch_size = 8, warmup = 8 }\n'
    )
    from dqnlab.experiments.assemble import experiment_from

    experiment = experiment_from(str(path), None, None, None, (), ("learner.lr=0.01",), None)
    assert experiment.seeds == (3, 5) and [v.name for v in experiment.variants] == ["naive", "b8"]
    config = experiment.config(experiment.variants[1], 5)
    assert (config.replay.batch_size, config.network.hidden, config.learner.lr, config.run.seed) == (8, (8,), 0.01, 5)
    path.write_text('samples = 300\n[variant.naive]\nagent = "naive"\n')
    with pytest.raises(DqnlabError, match="unknown key 'variant'"):
        experiment_from(str(path), None, None, None, (), (), None)


def test_compare_trains_every_run_on_the_env_it_names(tmp_path):
    out = tmp_path / "acrobot"
    args = ["compare", "--env", "Acrobot-v1", "--seeds", "1", "--samples", "200", "--set", "network.hidden=[8]",
            "--set", "env.max_episode_steps=100", "--workers", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"]["name"] == "Acrobot" and "failure" not in " ".join(summary["conclusion"])
    assert json.loads((run_dir_for(out, "replay", 0) / "config.json").read_text())["env"]["id"] == "Acrobot-v1"
    twice = CliRunner().invoke(cli, [*args, "--set", 'env.id="CartPole-v1"'])
    assert twice.exit_code == 2 and "env.id is given two different values" in twice.stderr and "--env" in twice.stderr
