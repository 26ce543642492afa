"""`dqnlab compare --backend ray`: the same results as the local backend, faults retried, a clear error without Ray."""

from __future__ import annotations

import builtins
import csv
import json

import pytest

from dqnlab.errors import DqnlabError
from dqnlab.api import compare
from dqnlab.experiments.backends.local import FAULT_VARIABLE
from dqnlab.experiments.runner import FAIL_VARIABLE, plan
from dqnlab.rundir.layout import run_dir_for
from dqnlab.experiments.spec import build_experiment

ray = pytest.importorskip("ray")

TINY = {"network": {"hidden": [8]}}


def experiment(samples=1000):
    return build_experiment("tutorial", samples, 2, None, TINY)


def rows(out, variant, seed):
    with (run_dir_for(out, variant, seed) / "episodes.csv").open() as handle:
        return [(r["episode"], r["samples"], r["score"], r["length"], r["learn_steps"], r["td_loss"]) for r in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance with 2 CPUs for the module (its start-up is the slow part); in its workers every run of
    a variant named "broken" raises (`FAIL_VARIABLE`), which no other test here names."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {FAIL_VARIABLE: "broken"}})  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "exp"
    compare(experiment(), out, workers=2)
    return out


def test_ray_gives_the_local_backends_results(cluster, local, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "replay/seed-001")  # its first attempt's worker dies mid-run
    summary = compare(experiment(), tmp_path, workers=2, backend="ray")
    assert summary["runs"]["complete"] == 4 and summary["runs"]["retried"] == 1
    assert any(line.startswith("1 run(s) lost their worker") for line in summary["conclusion"])
    for variant in ("naive", "replay"):
        for seed in (0, 1):
            assert rows(tmp_path, variant, seed) == rows(local, variant, seed)  # same seeds, same runs
            result = json.loads((run_dir_for(tmp_path, variant, seed) / "result.json").read_text())
            assert result["attempts"] == (2 if (variant, seed) == ("replay", 1) else 1)
            names = sorted(p.name for p in run_dir_for(tmp_path, variant, seed).iterdir())
            assert names == sorted(p.name for p in run_dir_for(local, variant, seed).iterdir())  # nothing extra, nothing lost
    assert plan(experiment(), tmp_path).tasks == []  # resumes to nothing


def test_a_run_that_fails_for_its_own_reasons_is_recorded_not_retried(cluster, tmp_path):
    broken = build_experiment("tutorial", 300, 1, {"ok": {}, "broken": {"replay": {"batch_size": 8}}}, TINY)
    summary = compare(broken, tmp_path, workers=2, backend="ray")
    assert (summary["runs"]["complete"], summary["runs"]["failed"], summary["runs"]["retried"]) == (1, 1, 0)
    failure = json.loads((run_dir_for(tmp_path, "broken", 0) / "result.json").read_text())
    assert failure["status"] == "failed" and failure["error"] == "RuntimeError: a run made to fail (fault injection)"


def test_without_ray_the_backend_says_how_to_install_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(DqnlabError, match=r"--backend ray needs Ray: pip install 'dqnlab\[ray\]'"):
        compare(experiment(), tmp_path / "out", workers=2, backend="ray")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_address_belongs_to_the_ray_backend(tmp_path):
    with pytest.raises(DqnlabError, match="--address applies to --backend ray only"):
        compare(experiment(), tmp_path, workers=2, address="auto")


def test_populations_as_ray_tasks_give_the_population_backends_results(cluster, tmp_path, monkeypatch):
    here = tmp_path / "here"
    compare(experiment(), here, workers=1, backend="population", population_size=2)
    monkeypatch.setenv(FAULT_VARIABLE, "naive/seed-000")  # kills its whole population's first attempt
    summary = compare(experiment(), tmp_path / "ray", workers=2, backend="ray", population_size=2)
    assert summary["runs"]["complete"] == 4 and summary["runs"]["retried"] == 2  # both members of that population
    for variant in ("naive", "replay"):
        for seed in (0, 1):
            assert rows(tmp_path / "ray", variant, seed) == rows(here, variant, seed)
            result = json.loads((run_dir_for(tmp_path / "ray", variant, seed) / "result.json").read_text())
            assert result["backend"] == "population" and result["population"] == 2
            assert result["attempts"] == (2 if variant == "naive" else 1)


def test_the_replay_labs_options_give_the_same_runs_on_every_backend(cluster, tmp_path):
    """Prioritized + combined + 3-step replay, and a Polyak target with double DQN: local processes, populations
    in this process, Ray tasks of single runs and of populations all give each seed the same episodes."""
    variants = {"lab": {"replay": {"prioritized": True, "combined": True}, "learner": {"n_step": 3}},
                "target": {"learner": {"td_gradient": "semi", "target_update": "polyak", "double": True}}}  # fmt: skip
    lab = build_experiment("tutorial", 800, 2, variants, TINY)
    compare(lab, tmp_path / "local", workers=2)
    compare(lab, tmp_path / "population", workers=1, backend="population")
    compare(lab, tmp_path / "ray", workers=2, backend="ray")
    compare(lab, tmp_path / "ray-population", workers=2, backend="ray", population_size=2)
    for variant in variants:
        for seed in (0, 1):
            expected = rows(tmp_path / "local", variant, seed)
            assert len(expected) > 5
            for backend in ("population", "ray", "ray-population"):
                assert rows(tmp_path / backend, variant, seed) == expected, (variant, seed, backend)
