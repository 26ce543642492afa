"""From runs to numbers: per-variant measures, curves, paired comparisons, a conclusion.

`summarize(experiment, runs, ...)` returns one JSON-ready dict (summary.json);
the plots and the report render it and nothing else, so what they show is
what summary.json says.

Runs that finished their whole budget enter the per-variant figures;
diverged runs enter the paired comparisons as the worst outcome
(`analysis.comparisons`) and are counted; failed, missing and unreadable
runs are counted and named, never silently dropped. Per-second figures use one
agent's clock (`analysis.clocks`), whichever backend trained the run; a
population's own clock is reported apart, as throughput. The measures, the
curves and the targets follow the experiment's environment's profile
(`config.profiles`, `analysis.measures.measures_for`), stored as
summary.json's "profile".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dqnlab.analysis import metrics, stats
from dqnlab.analysis.clocks import OWN, Clock, Timing
from dqnlab.analysis.comparisons import comparisons
from dqnlab.analysis.conclusion import conclusion
from dqnlab.analysis.measures import (
    DETECTORS,
    MeasureSet,
    acted,
    common_limits,
    has_terminations,
    measures_for,
    profile_block,
    run_clock,
    run_measures,
    samples_per_failure,
    shares_clock,
)
from dqnlab.analysis.runs import UNREADABLE, Run
from dqnlab.config.profiles import profile
from dqnlab.experiments.spec import Experiment
from dqnlab.rundir.disk import json_ready

CURVE_POINTS = 100


def summarize(experiment: Experiment, runs: list[Run], repurposing: dict[tuple[str, int], dict[str, float]] | None = None,
              timings: dict[str, Timing] | None = None) -> dict[str, Any]:  # fmt: skip
    """The experiment's numbers.

    `repurposing` holds each run's detector measures where checkpoints allowed
    them (`analysis.detectors`); `timings` each variant's timing run, for runs
    that shared a clock (`analysis.runs.load_timings`).
    """
    timings = timings or {}
    env = experiment.env()
    measured = measures_for(profile(env.id), env.targets)
    usable = [run for run in runs if run.usable and has_terminations(run)]
    diverged = {(run.variant, run.seed) for run in runs if run.status == "diverged"}
    names = [variant.name for variant in experiment.variants]
    clocks = {(run.variant, run.seed): run_clock(run, timings) for run in usable}
    common = common_limits(usable, clocks, experiment.samples)
    per_run = {(run.variant, run.seed): run_measures(run, clocks[(run.variant, run.seed)], experiment.samples, common, measured)
               for run in usable}  # fmt: skip
    for key, values in per_run.items():
        found = (repurposing or {}).get(key, {})
        values.update({measure: float(found.get(measure, math.nan)) for measure in DETECTORS})
    summary: dict[str, Any] = {
        "experiment": experiment.to_dict(),
        "profile": profile_block(measured, env.id),
        "runs": _run_counts(runs, usable),
        "limits": common,
        "measures": {key: {"label": label.format(**common), "axis": axis, "higher_is_better": better}
                     for key, (label, axis, better) in measured.measures.items()},  # fmt: skip
        "variants": {name: _variant_block(name, usable, per_run, runs, measured) for name in names},
        "comparisons": comparisons(names, per_run, diverged, measured),
        "curves": _curves(names, usable, clocks, experiment.samples, common["rate_window"], measured),
        "evaluation": _evaluation(names, usable),
        "clocks": {name: _clock_block(name, usable, clocks, timings) for name in names},
    }
    summary["conclusion"] = conclusion(summary, measured)
    return json_ready(summary)


def _run_counts(runs: list[Run], usable: list[Run]) -> dict[str, Any]:
    counts: dict[str, Any] = {"total": len(runs)}
    for status in ("complete", "diverged", "failed", "incomplete", "missing", UNREADABLE):
        counts[status] = sum(run.status == status for run in runs)
    counts["outdated"] = sum(run.usable and not has_terminations(run) for run in runs)
    counts["used"] = len(usable)
    counts["retried"] = sum(int(run.result.get("attempts", 1)) > 1 for run in runs)  # lost a worker (Ray backend)
    ids = {(run.variant, run.seed) for run in usable}
    counts["excluded"] = [
        f"{run.variant}/seed-{run.seed:03d}: " + (
            "diverged (in the paired comparisons as the worst outcome)" if run.status == "diverged"
            else "written before episodes.csv recorded terminations; rerun compare to redo it" if run.usable
            else f"unreadable ({run.reason}); rerun compare to redo it" if run.status == UNREADABLE
            else run.status)
        for run in runs if (run.variant, run.seed) not in ids
    ]  # fmt: skip
    return counts


def _variant_block(name: str, usable: list[Run], per_run: dict, runs: list[Run], measured: MeasureSet) -> dict[str, Any]:
    seeds = [run.seed for run in usable if run.variant == name]
    block: dict[str, Any] = {
        "seeds": seeds, "n": len(seeds), "measures": {}, "reach": {},
        "diverged": sum(run.status == "diverged" for run in runs if run.variant == name),
        # runs that learned from a behaviour's stream: their episode measures are undefined (analysis.measures)
        "shadow_runs": sum(not acted(run) for run in usable if run.variant == name),
    }  # fmt: skip
    if not seeds:
        return block
    for key in measured.measures:
        values = np.array([per_run[(name, seed)][key] for seed in seeds])  # (n,)
        finite = values[np.isfinite(values)]  # (n',)
        block["measures"][key] = {**(stats.aggregate(finite) if len(finite) else {"n": 0}), "undefined": int(len(values) - len(finite))}
        if key in measured.rates and len(finite):  # the reciprocal a reader thinks in: samples per failure
            block["measures"][key]["samples_per_failure_at_iqm"] = samples_per_failure(block["measures"][key]["iqm"])
    for target in measured.targets if not block["shadow_runs"] else ():  # a shadow's scores are not its own
        samples = np.array([per_run[(name, seed)][f"samples_to_{target:g}"] for seed in seeds])  # (n,)
        seconds = np.array([per_run[(name, seed)][f"seconds_to_{target:g}"] for seed in seeds])  # (n,)
        block["reach"][f"{target:g}"] = {
            "reached": int(np.isfinite(samples).sum()),
            "n": len(seeds),
            # runs that never reach count as infinitely late: the median is honest, a mean would not be
            "median_samples": float(np.median(samples)),
            "median_seconds": float(np.median(seconds)) if not np.isnan(seconds).any() else math.nan,
        }
    return block


def _clock_block(name: str, usable: list[Run], clocks: dict, timings: dict[str, Timing]) -> dict[str, Any]:
    """How a variant's agent-seconds were obtained, and its population's own throughput where it had one."""
    mine = [run for run in usable if run.variant == name]
    shared = [run for run in mine if shares_clock(run)]
    untimed = sum(clocks[(run.variant, run.seed)] is None for run in mine)
    if not mine:
        how = "no usable runs"
    elif not shared:
        how = OWN
    elif name in timings:
        how = timings[name].how + ("" if len(shared) == len(mine) else f" (for {len(shared)} of {len(mine)} runs; the rest timed themselves)")
    else:
        how = "not known: runs shared a clock and no timing run is on record (rerun compare to time one)"
    throughput = [float(run.result["population"]) * float(run.result["samples"]) / float(run.result["wall_seconds"])
                  for run in shared if run.result.get("wall_seconds") and run.result.get("population")]  # fmt: skip
    return {
        "how": how, "shared_clock_runs": len(shared), "untimed_runs": untimed,
        "population_member_samples_per_second": float(np.median(throughput)) if throughput else None,
        "population_sizes": sorted({int(run.result.get("population", 1)) for run in shared}),
    }  # fmt: skip


def _curves(names: list[str], usable: list[Run], clocks: dict[tuple[str, int], Clock | None], budget: int,
            window: float, measured: MeasureSet) -> dict[str, Any]:
    """Per episode: the score's moving average. Per sample and per agent-second, over the trailing `window`
    samples: failures per 1,000 samples (failures profiles), which counts an unfinished episode's samples as
    they pass, or the mean return of the episodes that ended there (returns profiles; NaN where none did)."""
    timed = [clock for clock in clocks.values() if clock is not None]
    longest = max((float(clock.at(budget)) for clock in timed), default=0.0)
    curves: dict[str, Any] = {"episode": {}, "samples": {}, "seconds": {}}
    samples_grid = np.linspace(budget / CURVE_POINTS, budget, CURVE_POINTS)  # (G,)
    seconds_grid = np.linspace(longest / CURVE_POINTS, longest, CURVE_POINTS) if longest > 0 else np.zeros(0)  # (G,)
    for name in names:
        runs = [run for run in usable if run.variant == name and acted(run)]  # a shadow's episodes are its behaviour's
        with_episodes = [run for run in runs if len(run.episodes["score"])]
        if with_episodes:  # each variant to the episode count all its runs reached
            count = min(len(run.episodes["score"]) for run in with_episodes)
            grid = np.unique(np.linspace(0, count - 1, min(CURVE_POINTS, count)).round())  # (G,)
            matrix = np.stack([metrics.curve(np.arange(len(run.episodes["score"])), run.episodes["score"], grid)
                               for run in with_episodes])  # fmt: skip  (n, G)
            curves["episode"][name] = {"x": grid, **_curve_aggregate(matrix)}
        if runs:
            trailing = [_trailing(run, window, measured) for run in runs]  # per run: sample grid (G,) -> (G,)
            matrix = np.stack([curve(samples_grid) for curve in trailing])  # (n, G)
            curves["samples"][name] = {"x": samples_grid, **_curve_aggregate(matrix)}
            timed_runs = [(f, clock) for f, run in zip(trailing, runs) if (clock := clocks[(run.variant, run.seed)]) is not None]
            if timed_runs and len(seconds_grid):
                # a run that has finished holds its last value: that is the agent one would have then
                matrix = np.stack([f(np.minimum(c.samples_at(seconds_grid), budget)) for f, c in timed_runs])  # (n, G)
                curves["seconds"][name] = {"x": seconds_grid, **_curve_aggregate(matrix)}
    return curves


def _trailing(run: Run, window: float, measured: MeasureSet):
    """The run's trailing-window curve as a function of a sample grid (G,) -> (G,), as its profile measures it."""
    ends = run.episodes["samples"]  # (E,)
    if measured.profile.measured_by == "failures":
        failures = metrics.failure_samples(ends, run.episodes["terminated"])  # (F,)
        return lambda grid: metrics.rate_curve(failures, grid, window)
    return lambda grid: metrics.trailing_return(ends, run.episodes["score"], grid, window)


def _curve_aggregate(matrix: np.ndarray) -> dict[str, Any]:
    """Mean and IQM with CIs at each grid point where every run has a value; NaN elsewhere."""
    complete = np.isfinite(matrix).all(axis=0)  # (G,)
    out = {key: np.full(matrix.shape[1], np.nan) for key in ("mean", "mean_low", "mean_high", "iqm", "iqm_low", "iqm_high")}
    if complete.any():
        for key, values in stats.aggregate(matrix[:, complete]).items():
            if key != "n":
                out[key][complete] = values
    return {**out, "n": matrix.shape[0]}


def _evaluation(names: list[str], usable: list[Run]) -> dict[str, Any]:
    """Greedy evaluations at the sample checkpoints all of a variant's runs share, beside training scores."""
    result = {}
    for name in names:
        runs = [run for run in usable if run.variant == name and len(run.evaluations.get("samples", ()))]
        if not runs:
            continue
        checkpoints = sorted(set.intersection(*(set(run.evaluations["samples"].tolist()) for run in runs)))
        if not checkpoints:
            continue
        grid = np.array(checkpoints)  # (K,)
        greedy = np.stack([run.evaluations["mean_score"][np.searchsorted(run.evaluations["samples"], grid)] for run in runs])  # (n, K)
        training = np.stack([metrics.curve(run.episodes["samples"], run.episodes["score"], grid) for run in runs])  # (n, K)
        result[name] = {"samples": grid, "greedy": _curve_aggregate(greedy), "training": _curve_aggregate(training)}
    return result
