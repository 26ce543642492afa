"""`dqnlab compare --backend population`: the same results directory and, seed for seed, the same runs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dqnlab.analysis import metrics
from dqnlab.analysis.clocks import OWN
from dqnlab.cli import cli
from dqnlab.api import compare
from dqnlab.experiments.backends import Population
from dqnlab.experiments.backends.local import FAULT_VARIABLE
from dqnlab.experiments.backends.population import populations
from dqnlab.experiments.runner import plan
from dqnlab.rundir.layout import run_dir_for
from dqnlab.engine import training
from dqnlab.engine.training import train_population
from dqnlab.experiments.spec import build_experiment

TINY = {"network": {"hidden": [8]}}


def tiny_experiment(seeds=3, samples=300):
    return build_experiment("tutorial", samples, seeds, None, TINY)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same tiny experiment run by each backend."""
    root = tmp_path_factory.mktemp("backends")
    local = compare(tiny_experiment(), root / "local", workers=2)
    population = compare(tiny_experiment(), root / "population", workers=2, backend="population")
    return root, local, population


def test_both_backends_write_the_same_kind_of_results_directory(both):
    root, local, population = both
    for variant in ("naive", "replay"):
        for seed in range(3):
            a, b = run_dir_for(root / "local", variant, seed), run_dir_for(root / "population", variant, seed)
            assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
            ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
            assert sorted(ra) == sorted(rb) and rb["status"] == "complete" and rb["samples"] == 300
            # 2 workers: each variant's 3 seeds cut into populations of 2 and 1, side by side
            assert (ra["backend"], ra["population"], rb["backend"], rb["population"]) == ("single", 1, "population", 2 if seed < 2 else 1)
            assert (a / "config.json").read_text() == (b / "config.json").read_text()
            with (b / "episodes.csv").open() as handle:
                assert next(csv.reader(handle)) == next(csv.reader((a / "episodes.csv").open()))
    assert population["runs"]["complete"] == local["runs"]["complete"] == 6
    assert set(local) == set(population) and (root / "population" / "report.html").is_file()


def test_population_members_are_the_local_backends_runs_bit_for_bit(both):
    root = both[0]
    for variant in ("naive", "replay"):
        for seed in range(3):
            a, b = run_dir_for(root / "local", variant, seed), run_dir_for(root / "population", variant, seed)
            assert episodes_without_clock(a) == episodes_without_clock(b) and len(episodes_without_clock(a)) > 5
            weights = [torch.load(d / "weights.pt", weights_only=True) for d in (a, b)]
            assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def episodes_without_clock(run_dir):
    with (run_dir / "episodes.csv").open() as handle:
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in csv.DictReader(handle)]


def test_the_report_says_how_each_clock_was_obtained(both):
    root, local, population = both
    for name in ("naive", "replay"):
        assert population["clocks"][name]["how"].startswith("one agent timed alone: seed 0")
        assert population["clocks"][name]["population_sizes"] == [2]  # seed 2, a population of one, had its own clock
        assert population["clocks"][name]["population_member_samples_per_second"] > 0
        assert local["clocks"][name]["how"] == OWN and local["clocks"][name]["population_member_samples_per_second"] is None
        assert (root / "population" / "clock" / f"{name}.json").is_file() and not (root / "local" / "clock").exists()
    assert any(line.startswith("Clock of replay: one agent timed alone") for line in population["conclusion"])
    assert any(line.startswith("Throughput (not per-agent time)") for line in population["conclusion"])


def test_each_backends_agent_seconds_come_from_the_clock_it_names(both):
    """Local runs count their own seconds; population members that shared a clock count the timed-alone agent's.

    This checks where the seconds come from, exactly, not how fast anything ran: that the two backends then
    give one agent about the same seconds is a measurement (benchmarks/bench_clocks.py).
    """
    root, local, population = both

    def wall_seconds(backend, name, seed):
        """The run's own clock at its end: result.json's seconds (rounded to the millisecond), never behind
        its last episode's (episodes.csv), as `analysis.clocks.own_clock` builds it."""
        run_dir = run_dir_for(root / backend, name, seed)
        with (run_dir / "episodes.csv").open() as handle:
            last = max((float(row["wall_seconds"]) for row in csv.DictReader(handle)), default=0.0)
        return max(json.loads((run_dir / "result.json").read_text())["wall_seconds"], last)

    totals = {"local": [], "population": []}  # each run's seconds for the whole budget, as its clock gives them
    for name in ("naive", "replay"):
        own = [wall_seconds("local", name, seed) for seed in range(3)]
        alone = json.loads((root / "population" / "clock" / f"{name}.json").read_text())
        assert alone["samples"][-1] == 300 and alone["seconds"][-1] > 0
        mapped = [alone["seconds"][-1], alone["seconds"][-1], wall_seconds("population", name, 2)]  # seed 2: a population of one
        for backend, summary, seconds in (("local", local, own), ("population", population, mapped)):
            assert summary["variants"][name]["measures"]["agent_seconds"]["mean"] == pytest.approx(np.mean(seconds), rel=1e-9)
            totals[backend] += seconds
    for backend, summary in (("local", local), ("population", population)):  # the per-second window: the fewest seconds any run took for the budget
        assert summary["limits"]["seconds"] == pytest.approx(min(totals[backend]), rel=1e-9)


def test_a_population_results_directory_resumes(both, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(both[0] / "population", out)
    (run_dir_for(out, "replay", 1) / "result.json").unlink()
    work = plan(tiny_experiment(seeds=4), out)
    assert sorted(t.key for t in work.tasks) == ["naive/seed-003", "replay/seed-001", "replay/seed-003"]
    assert [[t.key for t in chunk] for chunk in populations(work.tasks, size=None)] == [
        ["naive/seed-003"], ["replay/seed-001", "replay/seed-003"]]  # fmt: skip
    summary = compare(tiny_experiment(seeds=4), out, workers=1, backend="population", population_size=1)
    assert summary["runs"]["complete"] == 8 and plan(tiny_experiment(seeds=4), out).tasks == []


def test_populations_are_cut_by_variant_and_size():
    tasks = plan(tiny_experiment(seeds=5), __import__("pathlib").Path("/nonexistent")).tasks
    sizes = [(chunk[0].variant, len(chunk)) for chunk in populations(tasks, size=2)]
    assert sizes == [("naive", 2), ("naive", 2), ("naive", 1), ("replay", 2), ("replay", 2), ("replay", 1)]
    parts = [(chunk[0].variant, len(chunk)) for chunk in populations(tasks, parts=2)]  # one per worker: near-equal
    assert parts == [("naive", 3), ("naive", 2), ("replay", 3), ("replay", 2)]
    assert [len(chunk) for chunk in populations(tasks[:1], parts=4)] == [1]  # never an empty population


def test_the_population_backend_says_how_it_will_run():
    tasks = plan(tiny_experiment(seeds=5), __import__("pathlib").Path("/nonexistent")).tasks
    assert Population(None, 2).describe(tasks) == "as 4 population(s) of up to 3 seeds on 2 worker processes, one thread each"
    assert Population(None, 1).describe(tasks) == "as 2 population(s) of up to 5 seeds in this process, one thread each"
    assert Population(2, 3).describe(tasks) == "as 6 population(s) of up to 2 seeds on 3 worker processes, one thread each"


def test_a_crashing_population_marks_its_members_failed(tmp_path, monkeypatch):
    import dqnlab.experiments.backends.population as backend

    def crash(configs, **callbacks):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(backend, "train_population", crash)
    summary = compare(tiny_experiment(seeds=2), tmp_path, workers=1, backend="population")
    assert summary["runs"]["failed"] == 4
    failure = json.loads((run_dir_for(tmp_path, "replay", 1) / "result.json").read_text())
    assert failure == {"status": "failed", "error": "RuntimeError: out of memory"}


def test_command_line(tmp_path):
    args = ["compare", "--seeds", "2", "--samples", "200", "--set", "network.hidden=[8]", "--out", str(tmp_path / "cli")]
    result = CliRunner().invoke(cli, [*args, "--backend", "population", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "4 to run as 2 population(s) of up to 2 seeds in this process, one thread each" in result.stdout
    bad_cases = [
        (["--backend", "cluster"], "'cluster' is not one of 'local', 'population'"),
        (["--backend", "population", "--population-size", "0"], "0 is not in the range x>=1"),
        (["--population-size", "4"], "--population-size applies to --backend population or ray only"),
    ]
    if not torch.cuda.is_available():
        bad_cases.append((["--backend", "population", "--device", "cuda"], "run.device is 'cuda' but this machine has no CUDA GPU"))
    for bad, fragment in bad_cases:
        result = CliRunner().invoke(cli, [*args, *bad])
        assert result.exit_code == 2 and fragment in result.stderr, result.output


def sample_efficiency(out, variant, seeds):
    """Failures per 1,000 samples over the budget of 2,500 (lower is better), of runs on disk."""
    values = []
    for seed in seeds:
        rows = list(csv.DictReader((run_dir_for(out, variant, seed) / "episodes.csv").open()))
        ends, terminated = (np.array([float(r[c]) for r in rows]) for c in ("samples", "terminated"))
        values.append(metrics.failure_rate(metrics.failure_samples(ends, terminated), 0, 2500))
    return np.array(values)


def trained_efficiency(results):
    """The same measure of TrainResults."""
    values = []
    for result in results:
        ends, terminated = (np.array([getattr(e, c) for e in result.episodes], dtype=float) for c in ("samples", "terminated"))
        values.append(metrics.failure_rate(metrics.failure_samples(ends, terminated), 0, 2500))
    return np.array(values)


def mean_difference_ci(x, y, reps=10_000, seed=0):
    """95% percentile-bootstrap interval of mean(x) - mean(y), the groups resampled independently."""
    rng = np.random.default_rng(seed)
    diffs = x[rng.integers(len(x), size=(reps, len(x)))].mean(1) - y[rng.integers(len(y), size=(reps, len(y)))].mean(1)
    return np.percentile(diffs, [2.5, 97.5])


def nudged(initial_network):
    """`training.initial_network` with every initial weight moved one unit in the last place: the size of the
    difference another summation order (more threads, a GPU) makes in one rounding."""
    def network(config, spec):
        built = initial_network(config, spec)
        with torch.no_grad():
            for parameter in built.parameters():
                parameter.copy_(torch.nextafter(parameter, torch.full_like(parameter, math.inf)))
        return built

    return network


def test_runs_that_round_apart_still_agree_in_distribution(tmp_path, monkeypatch):
    """Where arithmetic rounds differently, seed for seed runs drift apart but agree in distribution.

    Every backend trains on one thread per run or population, where members
    are bit for bit the single runs (above). Runs on more threads (`dqnlab
    train --threads 2` on a 1,024-wide layer) or on a GPU round differently
    in the last bit, as a matter of the machine. Here the difference is
    made on purpose, so that it does not depend on the machine or its load:
    each seed trains again from initial weights moved by one unit in the
    last place, and the runs drift apart. Over 16 seeds their sample
    efficiency agrees with the single runs', by an interval that does tell
    apart a real difference of the size at stake (naive vs replay excludes 0).
    One thread, seeded: the outcome is the same on every run.
    """
    seeds = 16
    common = {"network": {"hidden": [256, 8]}, "learner": {"lr": 1e-3}}
    experiment = build_experiment("tutorial", 2500, seeds, {"replay": {}}, common)
    compare(experiment, tmp_path / "single", workers=2, backend="population")  # each member is its single run, bit for bit
    naive = build_experiment("tutorial", 2500, seeds, {"naive": {"agent": "naive"}}, common)
    compare(naive, tmp_path / "naive", workers=2, backend="population")
    monkeypatch.setattr(training, "initial_network", nudged(training.initial_network))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        apart = trained_efficiency(train_population([experiment.config(experiment.variants[0], seed) for seed in range(seeds)]))
    finally:
        torch.set_num_threads(previous)
    single = sample_efficiency(tmp_path / "single", "replay", range(seeds))
    assert not np.array_equal(apart, single)  # they did round apart: statistically, not trivially, the same
    low, high = mean_difference_ci(apart, single)
    assert low < 0 < high, (apart.mean(), single.mean(), low, high)
    low, high = mean_difference_ci(sample_efficiency(tmp_path / "naive", "naive", range(seeds)), single)
    assert low > 0, (low, high)  # naive fails more often


def test_a_population_whose_worker_dies_fails_its_members_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "replay/seed-000")  # the worker process holding that run's population dies
    experiment = tiny_experiment(seeds=4)  # 2 workers: each variant's seeds as populations {0, 1} and {2, 3}
    summary = compare(experiment, tmp_path, workers=2, backend="population")
    assert (summary["runs"]["complete"], summary["runs"]["failed"]) == (6, 2)
    for seed in (0, 1):
        failure = json.loads((run_dir_for(tmp_path, "replay", seed) / "result.json").read_text())
        assert failure["status"] == "failed" and "worker process died" in failure["error"]
    monkeypatch.delenv(FAULT_VARIABLE)
    again = compare(experiment, tmp_path, workers=2, backend="population")  # redoes the two failed runs
    assert (again["runs"]["complete"], again["runs"]["failed"]) == (8, 0)
