"""compare's run order and time limit, the estimate of what is left, and `dqnlab study`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from dqnlab import api
from dqnlab.cli.display import duration_text, remaining_line
from dqnlab.errors import DqnlabError
from dqnlab.experiments import runner
from dqnlab.experiments.backends.population import interleave, populations
from dqnlab.experiments.events import Started
from dqnlab.experiments.runner import paired_first, plan
from dqnlab.experiments.spec import build_experiment
from dqnlab.experiments.sweep import Remaining, VariantCost, remaining_seconds
from tests.clitools import invoke, refused

TINY = {"network": {"hidden": [8]}}
SMALL = ["--samples", "300", "--seeds", "2", "--set", "network.hidden=[8]", "--variant", "naive", "--variant", "b8:replay.batch_size=8,replay.warmup=8"]  # fmt: skip
STUDY = 'preset = "quick"\nsamples = 300\nseeds = 2\n[variants.naive]\nagent = "naive"\n[variants.replay]\nagent = "replay"\n'


def tiny_experiment(seeds=3):
    return build_experiment("tutorial", 300, seeds, None, TINY)


def keys(tasks):
    return [task.key for task in tasks]


def run_keys(out: Path) -> list[str]:
    return sorted(f"{path.parent.name}/{path.name}" for path in (out / "runs").glob("*/seed-*") if (path / "result.json").is_file())


@pytest.fixture
def ticking(monkeypatch):
    """The time limit's clock, `step` seconds later at every reading: the same stop on any machine, at any load."""

    def install(step: float) -> None:
        readings = itertools.count(0, step)
        monkeypatch.setattr(runner, "clock", lambda: next(readings))

    return install


# ---------------------------------------------------------------- run order


def test_runs_start_seed_major_so_a_cut_sweep_leaves_whole_pairs():
    tasks = plan(tiny_experiment(seeds=3), Path("/nonexistent")).tasks
    assert keys(tasks)[:2] == ["naive/seed-000", "naive/seed-001"]  # planned variant by variant
    assert keys(paired_first(tasks)) == ["naive/seed-000", "replay/seed-000", "naive/seed-001", "replay/seed-001",
                                         "naive/seed-002", "replay/seed-002"]  # fmt: skip
    partly_done = [task for task in tasks if task.key not in ("naive/seed-000", "naive/seed-001")]
    assert keys(paired_first(partly_done)) == ["naive/seed-002", "replay/seed-002", "replay/seed-000", "replay/seed-001"]


def test_the_local_backend_starts_runs_seed_major(tmp_path):
    started = []
    api.compare(tiny_experiment(seeds=2), tmp_path, workers=1,
                on_event=lambda event: started.append(event.key) if isinstance(event, Started) else None)  # fmt: skip
    assert started == ["naive/seed-000", "replay/seed-000", "naive/seed-001", "replay/seed-001"]


def test_populations_of_each_variant_take_turns():
    tasks = plan(tiny_experiment(seeds=5), Path("/nonexistent")).tasks
    chunks = interleave(populations(tasks, size=2))
    assert [(chunk[0].variant, [task.seed for task in chunk]) for chunk in chunks] == [
        ("naive", [0, 1]), ("replay", [0, 1]), ("naive", [2, 3]), ("replay", [2, 3]), ("naive", [4]), ("replay", [4])]  # fmt: skip


# ---------------------------------------------------------------- the estimate


@pytest.mark.parametrize(
    "costs, parallel, expected",
    [
        ([("replay", 93, 1, 301.0)], 2, 93 * 301.0 / 2),  # 93 runs, two at a time
        ([("naive", 70, 1, 60.0), ("replay", 71, 1, 165.0)], 2, (70 * 60.0 + 71 * 165.0) / 2),  # each variant at its pace
        ([("naive", 1, 1, 60.0), ("replay", 0, 1, 165.0)], 2, 60.0),  # one run left on two workers takes a run's time
        ([("naive", 10, 4, 100.0)], 2, 150.0),  # populations of 4: 3 populations to go, 2 side by side
        ([("naive", 10, 1, 60.0), ("replay", 10, 1, None)], 2, None),  # replay's pace is not known: no estimate
        ([("naive", 0, 1, None)], 2, 0.0),  # nothing left
    ],
)  # fmt: skip
def test_what_the_rest_costs(costs, parallel, expected):
    assert remaining_seconds([VariantCost(*cost) for cost in costs], parallel) == expected


def test_the_remaining_line_in_words():
    costs = (VariantCost("naive", 70, 1, 60.4), VariantCost("replay", 71, 1, 165.2))
    runs = Remaining(total=200, done=59, deferred=141, unit="run", costs=costs, parallel=2, seconds=7977.0)
    assert remaining_line(runs) == (
        "time limit reached: 59 of 200 runs done (141 to go); at the median times per run measured here (naive 60 s, "
        "replay 165 s; 2 workers), the rest needs about 2.2 h on this machine; rerun the same command to resume")  # fmt: skip
    untimed = (VariantCost("naive", 2, 1, None), VariantCost("replay", 2, 1, None))
    none = Remaining(total=4, done=0, deferred=4, unit="population", costs=untimed, parallel=1, seconds=None)
    assert "no population finished in this sweep, so what the rest costs cannot be estimated yet" in remaining_line(none)
    half = Remaining(total=4, done=1, deferred=3, unit="run", costs=(costs[0], VariantCost("replay", 2, 1, None)), parallel=2, seconds=None)
    assert "no run of replay finished in this sweep, so what the rest costs cannot be estimated yet" in remaining_line(half)
    assert [duration_text(s) for s in (45, 720, 27993, 216000)] == ["45 s", "12 min", "7.8 h", "2.5 days"]


# ---------------------------------------------------------------- the time limit


def test_a_passed_time_limit_starts_only_the_first_run_and_the_rerun_finishes(tmp_path, ticking):
    ticking(60)  # a reading every 60 s: the first run starts at 60 s (taken at 120 s); at 180 s the 90 s limit has passed
    out = tmp_path / "limited"
    result = invoke("compare", *SMALL, "--workers", "2", "--out", out, "--time-limit", "1.5")
    assert result.exit_code == 0, result.output
    assert run_keys(out) == ["naive/seed-000"]  # seed-major: the first run of the first pair
    assert "time limit reached: 1 of 4 runs done (3 to go); no run of b8 finished in this sweep, so what the rest " \
           "costs cannot be estimated yet; rerun the same command to resume" in result.stdout  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["runs"]["complete"], summary["runs"]["missing"]) == (1, 3) and (out / "report.html").is_file()
    again = invoke("compare", *SMALL, "--workers", "2", "--out", out)
    assert again.exit_code == 0, again.output
    assert "1 already done, 3 to run" in again.stdout and "time limit" not in again.output
    assert len(run_keys(out)) == 4 and json.loads((out / "summary.json").read_text())["runs"]["complete"] == 4


def test_a_limit_passed_before_any_run_started_cannot_estimate(tmp_path, ticking):
    ticking(1000)
    result = invoke("compare", *SMALL, "--workers", "1", "--out", tmp_path, "--time-limit", "1")
    assert result.exit_code == 0, result.output
    assert "0 of 4 runs done (4 to go); no run finished in this sweep, so what the rest costs cannot be estimated yet" in result.stdout
    assert run_keys(tmp_path) == [] and (tmp_path / "summary.json").is_file()


def test_a_population_sweep_stops_between_populations(tmp_path, ticking):
    ticking(60)
    compared = api.compare_sweep(tiny_experiment(seeds=2), tmp_path, workers=1, backend="population", time_limit_seconds=150)
    assert run_keys(tmp_path) == ["naive/seed-000", "naive/seed-001"]  # one population of two seeds
    assert compared.remaining is not None and compared.remaining.unit == "population"
    assert (compared.remaining.done, compared.remaining.to_go) == (2, 2)
    assert compared.remaining.costs[0] == VariantCost("naive", 0, 2, 60.0) and compared.remaining.untimed == ["replay"]
    assert "no population of replay finished in this sweep" in remaining_line(compared.remaining)


@pytest.mark.parametrize("minutes", ["0", "-1", "abc", "nan"])
def test_a_bad_time_limit_is_one_line(tmp_path, minutes):
    refused(invoke("compare", *SMALL, "--out", tmp_path / "never", "--time-limit", minutes), "--time-limit")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("seconds", [0, -5, float("nan"), float("inf"), True])
def test_the_library_refuses_a_bad_time_limit(tmp_path, seconds):
    with pytest.raises(DqnlabError, match="time limit must be a finite number of seconds > 0"):
        api.compare(tiny_experiment(), tmp_path / "never", workers=1, time_limit_seconds=seconds)
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------- dqnlab study


@pytest.fixture
def studies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "tiny.toml").write_text("# Does replay beat naive at 300 samples?\n#\n# more words\n" + STUDY)
    (tmp_path / "studies" / "other.toml").write_text("# Another question?\n" + STUDY)
    return tmp_path


def test_study_lists_the_study_files_and_their_questions(studies):
    result = invoke("study")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["other  Another question?", "tiny   Does replay beat naive at 300 samples?"]


def test_study_without_a_studies_folder_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(invoke("study"), "no study files in studies/")


def test_an_unknown_study_names_the_studies_found(studies):
    refused(invoke("study", "tinyy"), "unknown study 'tinyy'", "studies in studies/: other, tiny")
    refused(invoke("study", "elsewhere/x.toml"), "study file elsewhere/x.toml does not exist")


def test_study_runs_the_file_as_compare_does(studies):
    result = invoke("study", "tiny", "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    assert "report: results/tiny/report.html" in result.stdout and not (studies / "results/tiny/deploy.json").exists()
    compared = invoke("compare", "--experiment", "studies/tiny.toml", "--workers", "1", "-q", "--out", "results/compared")
    assert compared.exit_code == 0, compared.output
    assert run_keys(studies / "results/tiny") == run_keys(studies / "results/compared") == [
        "naive/seed-000", "naive/seed-001", "replay/seed-000", "replay/seed-001"]  # fmt: skip
    for name in ("experiment.json", "runs/replay/seed-001/config.json"):
        assert (studies / "results/tiny" / name).read_text() == (studies / "results/compared" / name).read_text()
    by_path = invoke("study", "studies/tiny.toml", "--workers", "1", "-q")  # a path; the same results directory
    assert by_path.exit_code == 0 and "results/tiny/report.html" in by_path.stdout


def test_a_studys_play_table_measures_decisions_into_deploy_json(studies):
    (studies / "studies" / "played.toml").write_text(STUDY + "[play]\nepisodes = 1\nmax_steps = 20\n")
    refused(invoke("compare", "--experiment", "studies/played.toml", "--out", "never"), "play belongs to study files", "dqnlab study")
    result = invoke("study", "played", "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    table = json.loads((studies / "results/played/deploy.json").read_text())
    assert [row["name"] for row in table["rows"]] == ["naive", "replay"] and all(row["runs"] == 2 for row in table["rows"])
    assert "greedy decision time per step" in result.stdout and "deploy: results/played/deploy.json" in result.stdout


@pytest.mark.parametrize(
    "play, fragment",
    [
        ("episodes = 1\nspeed = 2\n", "[play] has unknown key 'speed'; allowed: episodes, max_steps, handset"),
        ('episodes = "many"\n', "play.episodes must be an integer >= 1; got 'many'"),
        ("max_steps = 0\n", "play.max_steps must be an integer >= 1; got 0"),
        ("handset = 1\n", "play.handset must be true or false; got 1"),
    ],
)
def test_a_bad_play_table_is_one_line(studies, play, fragment):
    (studies / "studies" / "bad.toml").write_text(STUDY + "[play]\n" + play)
    refused(invoke("study", "bad"), fragment)
    assert not (studies / "results").exists()

