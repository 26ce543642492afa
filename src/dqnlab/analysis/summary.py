"""From runs to numbers: per-variant measures, curves, paired comparisons, a conclusion.

`summarize(experiment, runs)` returns one JSON-ready dict (summary.json);
the plots and the report render it and nothing else, so what they show is
what summary.json says.

Only runs that finished their whole budget enter the statistics; diverged,
failed and missing runs are counted and named, never silently dropped. Two
variants are compared on the seeds both finished (pairs share initial
weights and environment starts).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dqnlab.analysis import metrics, stats
from dqnlab.analysis.formatting import fmt, interval
from dqnlab.analysis.runs import Run
from dqnlab.experiments.spec import Experiment

CURVE_POINTS = 100
SIGNIFICANCE = 0.05  # two-sided sign test level a verdict also needs
# key: (what it measures, the axis it speaks for, higher is better)
MEASURES = {
    "episode_score": ("mean score of the first {episodes} episodes", "episode", True),
    "final_score": ("final score: mean of episodes finished in the last 20% of the budget", "samples", True),
    "sample_efficiency": ("sample efficiency: mean training score over the sample budget", "samples", True),
    "time_score": ("mean training score over the first {seconds:.3g} wall-clock seconds", "seconds", True),
    "collapse_share": ("share of episodes scoring <= 12 after first reaching 200", "forgetting", False),
    "largest_drawdown": ("largest fall of the 20-episode moving average below its peak", "forgetting", False),
    "learn_steps": ("learn steps", "cost", None),
    "transitions_processed": ("transitions processed (learn steps x batch size)", "cost", None),
    "wall_seconds": ("wall-clock seconds of training", "cost", None),
    "repurposed_units": ("units repurposed between checkpoints (probe-set pattern correlation < 0.5)", "detectors", False),
}
HEADLINE = ("episode_score", "final_score", "sample_efficiency", "time_score")


def summarize(experiment: Experiment, runs: list[Run], repurposed: dict[tuple[str, int], float] | None = None) -> dict[str, Any]:
    """The experiment's numbers; `repurposed` holds each run's repurposing events where checkpoints allowed a count."""
    usable = [run for run in runs if _enters_statistics(run)]
    names = [variant.name for variant in experiment.variants]
    common = _common_limits(usable, experiment.samples)
    per_run = {(run.variant, run.seed): _run_measures(run, experiment.samples, common) for run in usable}
    for key, values in per_run.items():
        values["repurposed_units"] = (repurposed or {}).get(key, math.nan)
    summary: dict[str, Any] = {
        "experiment": experiment.to_dict(),
        "runs": _run_counts(runs),
        "limits": common,
        "measures": {key: {"label": label.format(**common), "axis": axis, "higher_is_better": better}
                     for key, (label, axis, better) in MEASURES.items()},  # fmt: skip
        "variants": {name: _variant_block(name, usable, per_run, experiment) for name in names},
        "comparisons": _comparisons(names, per_run),
        "curves": _curves(names, usable, experiment.samples, common),
        "evaluation": _evaluation(names, usable),
        "backends": {name: _backend(run for run in usable if run.variant == name) for name in names},
    }
    summary["conclusion"] = conclusion(summary)
    return json_ready(summary)


def _backend(runs) -> str:
    """How a variant's runs were computed, which is what its wall-clock seconds measure."""
    singles, sizes = False, set()
    for run in runs:
        if run.result.get("backend", "single") == "single":
            singles = True
        else:
            sizes.add(int(run.result.get("population", 1)))
    parts = ["single runs"] if singles else []
    if sizes:
        low, high = min(sizes), max(sizes)
        parts.append(f"population of {low}" if low == high else f"populations of {low} to {high}")
    if not parts:
        return "no runs"
    return parts[0] if len(parts) == 1 else "mixed: " + " and ".join(parts)


def _common_limits(usable: list[Run], budget: int) -> dict[str, float]:
    """The episode count and wall time every usable run reached: the fair windows for two axes."""
    if not usable:
        return {"episodes": 0, "seconds": 0.0, "budget": budget}
    return {
        "episodes": int(min(len(run.episodes["score"]) for run in usable)),
        "seconds": float(min(run.result.get("wall_seconds", run.episodes["wall_seconds"][-1]) for run in usable)),
        "budget": budget,
    }


def _run_measures(run: Run, budget: int, common: dict[str, float]) -> dict[str, float]:
    e = run.episodes
    scores, samples, seconds = e["score"], e["samples"], e["wall_seconds"]  # (E,) each
    unfinished = run.result.get("unfinished_episode", {}).get("score", 0.0)
    final, censored = metrics.final_score(samples, scores, budget, unfinished)
    values = {
        "episode_score": metrics.episode_mean(scores, int(common["episodes"])),
        "final_score": final,
        "final_censored": float(censored),
        "sample_efficiency": metrics.area_under_curve(samples, scores, budget),
        "time_score": metrics.area_under_curve(seconds, scores, common["seconds"]) if common["seconds"] > 0 else math.nan,
        "collapse_share": metrics.collapse_share(scores),
        "largest_drawdown": metrics.largest_drawdown(scores),
        "learn_steps": float(run.result.get("learn_steps", e["learn_steps"][-1])),
        "transitions_processed": float(run.result.get("transitions_processed", math.nan)),
        "wall_seconds": float(run.result.get("wall_seconds", seconds[-1])),
    }
    for threshold in metrics.REACH_THRESHOLDS:
        values[f"samples_to_{threshold}"] = metrics.first_reach(scores, samples, threshold)
        values[f"seconds_to_{threshold}"] = metrics.first_reach(scores, seconds, threshold)
    return values


def _enters_statistics(run: Run) -> bool:
    """Finished its budget with at least one finished episode to measure."""
    return run.usable and len(run.episodes.get("score", ())) > 0


def _run_counts(runs: list[Run]) -> dict[str, Any]:
    counts: dict[str, Any] = {"total": len(runs)}
    for status in ("complete", "diverged", "failed", "incomplete", "missing"):
        counts[status] = sum(run.status == status for run in runs)
    counts["no_episodes"] = sum(run.usable and not _enters_statistics(run) for run in runs)
    counts["used"] = sum(_enters_statistics(run) for run in runs)
    counts["retried"] = sum(int(run.result.get("attempts", 1)) > 1 for run in runs)  # lost a worker (Ray backend)
    counts["excluded"] = [
        f"{run.variant}/seed-{run.seed:03d}: {run.status if not run.usable else 'no finished episode'}"
        for run in runs
        if not _enters_statistics(run)
    ]
    return counts


def _variant_block(name: str, usable: list[Run], per_run: dict, experiment: Experiment) -> dict[str, Any]:
    seeds = [run.seed for run in usable if run.variant == name]
    block: dict[str, Any] = {"seeds": seeds, "n": len(seeds), "measures": {}, "reach": {}}
    if not seeds:
        return block
    for key in MEASURES:
        values = np.array([per_run[(name, seed)][key] for seed in seeds])  # (n,)
        finite = values[np.isfinite(values)]  # (n',)
        block["measures"][key] = stats.aggregate(finite) if len(finite) else {"n": 0}
    block["final_censored_runs"] = int(sum(per_run[(name, seed)]["final_censored"] for seed in seeds))
    for threshold in metrics.REACH_THRESHOLDS:
        samples = np.array([per_run[(name, seed)][f"samples_to_{threshold}"] for seed in seeds])  # (n,)
        seconds = np.array([per_run[(name, seed)][f"seconds_to_{threshold}"] for seed in seeds])  # (n,)
        block["reach"][str(threshold)] = {
            "reached": int(np.isfinite(samples).sum()),
            "n": len(seeds),
            # runs that never reach count as infinitely late: the median is honest, a mean would not be
            "median_samples": float(np.median(samples)),
            "median_seconds": float(np.median(seconds)),
        }
    return block


def _comparisons(names: list[str], per_run: dict) -> list[dict[str, Any]]:
    rows = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            seeds = sorted({s for v, s in per_run if v == first} & {s for v, s in per_run if v == second})
            for key in (*HEADLINE, "repurposed_units"):
                sign = 1 if MEASURES[key][2] else -1  # lower is better: compare negated values
                a = sign * np.array([per_run[(first, s)][key] for s in seeds])  # (n,)
                b = sign * np.array([per_run[(second, s)][key] for s in seeds])  # (n,)
                keep = np.isfinite(a) & np.isfinite(b)  # (n,)
                if not keep.any():
                    continue
                p, low, high = stats.paired_probability_of_improvement_ci(b[keep], a[keep])
                b_wins, a_wins, ties = stats.wins(b[keep], a[keep])
                sign_p = stats.sign_test(b_wins, a_wins)
                # a verdict needs both: the CI of P(b > a) excludes 1/2, and the paired wins are no coin flip
                clear = sign_p < SIGNIFICANCE
                rows.append({
                    "a": first, "b": second, "measure": key, "n_pairs": int(keep.sum()),
                    "p_b_better": float(p), "low": float(low), "high": float(high),
                    "b_wins": int(b_wins), "a_wins": int(a_wins), "ties": int(ties), "sign_test_p": sign_p,
                    "verdict": second if clear and low > 0.5 else first if clear and high < 0.5 else "inconclusive",
                })  # fmt: skip
    return rows


def _curves(names: list[str], usable: list[Run], budget: int, common: dict[str, float]) -> dict[str, Any]:
    longest = max((run.result.get("wall_seconds", 0.0) for run in usable), default=0.0)
    grids = {
        "samples": np.linspace(budget / CURVE_POINTS, budget, CURVE_POINTS),  # (G,)
        "seconds": np.linspace(longest / CURVE_POINTS, longest, CURVE_POINTS) if longest > 0 else np.zeros(0),
    }
    curves: dict[str, Any] = {}
    for axis, column in (("episode", None), ("samples", "samples"), ("seconds", "wall_seconds")):
        curves[axis] = {}
        for name in names:
            runs = [run for run in usable if run.variant == name]
            if not runs:
                continue
            if axis == "episode":  # each variant to the episode count all its runs reached
                count = min(len(run.episodes["score"]) for run in runs)
                grid = np.unique(np.linspace(0, count - 1, min(CURVE_POINTS, count)).round())  # (G,)
                ends = [np.arange(len(run.episodes["score"])) for run in runs]
            else:
                grid, ends = grids[axis], [run.episodes[column] for run in runs]
            matrix = np.stack([metrics.curve(end, run.episodes["score"], grid) for end, run in zip(ends, runs)])  # (n, G)
            curves[axis][name] = {"x": grid, **_curve_aggregate(matrix)}
    return curves


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


# ---------------------------------------------------------------- words


def conclusion(summary: dict[str, Any]) -> list[str]:
    """The report's opening: which variant wins on which axis, by how much, or that it is unclear."""
    names = list(summary["variants"])
    lines = []
    runs = summary["runs"]
    if runs["used"] < runs["total"]:
        lines.append(
            f"{runs['total'] - runs['used']} of {runs['total']} runs are left out of the statistics below: "
            f"{runs['diverged']} diverged, {runs['failed']} failed, {runs['incomplete'] + runs['missing']} incomplete "
            f"or missing, {runs['no_episodes']} finished no episode."
        )
    if runs.get("retried"):
        lines.append(f"{runs['retried']} run(s) lost their worker and were rerun from the start (Ray backend).")
    if len(names) < 2:
        return lines + ["Only one variant: nothing to compare."]
    baseline = names[0]
    for other in names[1:]:
        lines.append(_headline(summary, baseline, other))
        for key in (*HEADLINE, "repurposed_units"):
            row = _find(summary["comparisons"], baseline, other, key)
            if row is not None:
                lines.append(_sentence(summary, row))
        backends = summary.get("backends", {})
        if {backends.get(baseline), backends.get(other)} - {"single runs", None}:
            lines.append(
                f"Clock: {baseline} ran as {backends[baseline]}, {other} as {backends[other]}; members of a "
                "population share its clock, so per-second figures compare like with like only within one backend."
            )
        cost_a = summary["variants"][baseline]["measures"].get("transitions_processed", {})
        cost_b = summary["variants"][other]["measures"].get("transitions_processed", {})
        if cost_a.get("mean") and cost_b.get("mean"):
            lines.append(
                f"Cost: {other} processed {fmt(cost_b['mean'] / cost_a['mean'])}x the transitions of {baseline} "
                f"({fmt(cost_b['mean'])} vs {fmt(cost_a['mean'])} per run)."
            )
    return lines


AXES = {"per episode": ("episode_score",), "per sample": ("final_score", "sample_efficiency"),
        "per wall-clock second": ("time_score",)}  # fmt: skip


def _headline(summary: dict[str, Any], a: str, b: str) -> str:
    """One sentence: who wins on which of the tutorial's three axes."""
    verdicts = {}
    for axis, keys in AXES.items():
        found = {row["verdict"] for key in keys if (row := _find(summary["comparisons"], a, b, key)) is not None}
        verdicts[axis] = found.pop() if len(found) == 1 else "mixed" if found else "unmeasured"
    pairs = min((row["n_pairs"] for row in summary["comparisons"] if row["a"] == a and row["b"] == b), default=0)
    parts = []
    for outcome in (b, a, "inconclusive", "mixed", "unmeasured"):
        axes = [axis for axis, verdict in verdicts.items() if verdict == outcome]
        if not axes:
            continue
        where = ", ".join(axes[:-1]) + (" and " if len(axes) > 1 else "") + axes[-1]
        words = {b: f"{b} beats {a}", a: f"{a} beats {b}", "inconclusive": "the evidence is inconclusive",
                 "mixed": "the measures disagree", "unmeasured": "nothing could be measured"}[outcome]  # fmt: skip
        parts.append(f"{words} {where}")
    budget = summary["experiment"]["samples"]
    return f"Over {pairs} paired seeds of {fmt(budget)} samples each: " + "; ".join(parts) + "."


def _find(rows: list[dict], a: str, b: str, measure: str) -> dict | None:
    return next((r for r in rows if r["a"] == a and r["b"] == b and r["measure"] == measure), None)


AXIS_WORDS = {"episode_score": "Per episode", "final_score": "Per sample (final score)",
              "sample_efficiency": "Per sample (sample efficiency)", "time_score": "Per wall-clock second",
              "repurposed_units": "Detector stability"}  # fmt: skip


def _sentence(summary: dict[str, Any], row: dict[str, Any]) -> str:
    a, b, key = row["a"], row["b"], row["measure"]
    ma, mb = summary["variants"][a]["measures"][key], summary["variants"][b]["measures"][key]
    label = summary["measures"][key]["label"]
    numbers = (
        f"IQM {interval(mb['iqm'], mb['iqm_low'], mb['iqm_high'])} for {b} vs "
        f"{interval(ma['iqm'], ma['iqm_low'], ma['iqm_high'])} for {a}"
    )
    odds = (
        f"P({b} {'>' if summary['measures'][key]['higher_is_better'] else '<'} {a}) = "
        f"{interval(row['p_b_better'], row['low'], row['high'])}; "
        f"{b} better on {row['b_wins']} of {row['n_pairs']} paired seeds, sign test p = {fmt(row['sign_test_p'])}"
    )
    if row["verdict"] == "inconclusive":
        verdict = f"inconclusive: neither {a} nor {b} is reliably better"
    else:
        winner = row["verdict"]
        loser = a if winner == b else b
        verdict = f"{winner} beats {loser}"
    return f"{AXIS_WORDS[key]}: {verdict} ({label}: {numbers}; {odds})."


def json_ready(value: Any) -> Any:
    """NumPy to Python, NaN and infinity to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
