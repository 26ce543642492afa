"""Every measure of one run, on one agent's clock: the numbers summary.json aggregates and compares.

`MEASURES` names each measure, the axis it speaks for and which way is
better; `run_measures` computes them for one run from its episodes, its
result.json and its clock (`analysis.clocks`). Per-second measures use one
agent's seconds, whichever backend trained the run.

A learner that does not act (result.json "behaviour" other than "self")
trained on its behaviour's episodes: their scores and failures are the
behaviour's, not the learner's, so every measure read from episodes is
undefined (NaN) for it, and it is measured by its greedy evaluations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dqnlab.analysis import metrics
from dqnlab.analysis.clocks import Clock, Timing, own_clock
from dqnlab.analysis.runs import Run
from dqnlab.reporting.formatting import fmt

# key: (what it measures, the axis it speaks for, higher is better; None: no better)
MEASURES = {
    "episode_score": ("mean score of the first {episodes} episodes", "episode", True),
    "final_failure_rate": ("failures per 1,000 samples in the last 20% of the budget", "samples", False),
    "failure_rate": ("sample efficiency: failures per 1,000 samples over the whole budget", "samples", False),
    "time_failure_rate": ("failures per 1,000 samples in the last 20% of the first {seconds:.3g} agent-seconds", "seconds", False),
    "collapse_rate": ("collapses (episodes scoring <= 12) per 1,000 samples after first reaching 200", "forgetting", False),
    "relative_drawdown": ("largest relative fall of samples per failure below its running peak (20 equal windows)", "forgetting", False),
    "learn_steps": ("learn steps", "cost", None),
    "transitions_processed": ("transitions processed (learn steps x batch size)", "cost", None),
    "agent_seconds": ("one agent's wall-clock seconds for the whole budget", "cost", None),
    "greedy_final": ("greedy evaluation score at the last evaluation (mean over its episodes)", "greedy", True),
    "greedy_mean": ("greedy evaluation score, mean over all evaluations (the area under the greedy curve)", "greedy", True),
    "excess_repurposed_share": ("excess repurposing: share of live units repurposed, minus the matched-noise null's", "detectors", False),
    "repurposed_share": ("share of live units repurposed per checkpoint interval (pattern correlation < 0.5)", "detectors", False),
    "null_repurposed_share": ("the same share for the start network moved by random noise of the same size", "detectors", None),
    "relative_weight_change": ("relative weight change per checkpoint interval", "detectors", None),
    "dead_units": ("dead units per interval (fire on no probe state at one end of the interval or both)", "detectors", None),
    "near_silent_units": ("near-silent units per interval (not dead; fire on under 1% of probe states at one end or both)", "detectors", None),
}  # fmt: skip
HEADLINE = ("episode_score", "final_failure_rate", "failure_rate", "time_failure_rate")
FORGETTING = ("collapse_rate", "relative_drawdown")
GREEDY = ("greedy_final", "greedy_mean")  # only where runs were evaluated (run.eval_every)
COMPARED = (*HEADLINE, *FORGETTING, "excess_repurposed_share", *GREEDY)  # one Holm family per pair of variants
DETECTORS = tuple(key for key, (_, axis, _) in MEASURES.items() if axis == "detectors")


def acted(run: Run) -> bool:
    """The run chose its own actions: its episodes are its own (every run before shadow learners existed)."""
    return run.result.get("behaviour", "self") == "self"


# Measures read from the run's episodes (and first reaching of scores): undefined for a learner that did not act.
FROM_EPISODES = ("episode_score", "final_failure_rate", "failure_rate", "time_failure_rate", *FORGETTING)


def shares_clock(run: Run) -> bool:
    """The run's wall seconds are a batch's (result.json "clock": "shared"), not one agent's."""
    return run.result.get("clock", "own") != "own"


def run_clock(run: Run, timings: dict[str, Timing]) -> Clock | None:
    """The run's own clock, or its variant's timing run where it shared a clock; None if there is none."""
    if not shares_clock(run):
        return own_clock(run.episodes, float(run.result.get("samples", 0)), float(run.result.get("wall_seconds", 0.0)))
    timing = timings.get(run.variant)
    return timing.clock if timing is not None else None


def common_limits(runs: list[Run], clocks: dict[tuple[str, int], Clock | None], budget: int) -> dict[str, float]:
    """The episode count every run with episodes reached, the agent-seconds every timed run reached, the budget."""
    counts = [len(run.episodes["score"]) for run in runs if len(run.episodes["score"]) and acted(run)]
    totals = [float(clock.at(budget)) for clock in clocks.values() if clock is not None]
    return {"episodes": min(counts, default=0), "seconds": min(totals, default=0.0), "budget": budget,
            "rate_window": budget / metrics.RATE_WINDOWS}  # the curves' trailing window of samples


def run_measures(run: Run, clock: Clock | None, budget: int, common: dict[str, float]) -> dict[str, float]:
    """Every measure of one run that finished its budget (NaN where undefined), plus reach times."""
    e = run.episodes
    ends, scores = e["samples"], e["score"]  # (E,) each
    failures = metrics.failure_samples(ends, e["terminated"])  # (F,)
    reached_200, _ = metrics.first_reach(run.result.get("first_reached", {}), metrics.FORGETTING_REACHED)
    values = {
        "episode_score": metrics.episode_mean(scores, int(common["episodes"])),
        "final_failure_rate": metrics.failure_rate(failures, (1 - metrics.FINAL_FRACTION) * budget, budget),
        "failure_rate": metrics.failure_rate(failures, 0, budget),
        "time_failure_rate": _time_failure_rate(failures, clock, float(common["seconds"]), budget),
        "collapse_rate": metrics.collapse_rate(ends, scores, reached_200, budget),
        "relative_drawdown": metrics.relative_drawdown(failures, budget),
        "learn_steps": float(run.result.get("learn_steps", math.nan)),
        "transitions_processed": float(run.result.get("transitions_processed", math.nan)),
        "agent_seconds": float(clock.at(budget)) if clock is not None else math.nan,
        **greedy_measures(run.evaluations),
    }
    for threshold in metrics.REACH_THRESHOLDS:
        samples, seconds = metrics.first_reach(run.result.get("first_reached", {}), threshold)
        if clock is not None and shares_clock(run) and math.isfinite(samples):
            seconds = float(clock.at(samples))  # a shared clock's stamp is the batch's: map the sample instead
        values[f"samples_to_{threshold}"] = samples
        values[f"seconds_to_{threshold}"] = seconds if clock is not None else math.nan
    if not acted(run):
        values.update({key: math.nan for key in values if key in FROM_EPISODES or key.startswith(("samples_to_", "seconds_to_"))})
    return values


def greedy_measures(evaluations: dict[str, np.ndarray]) -> dict[str, float]:
    """The last greedy evaluation's mean score and the mean over all of them; NaN without evaluations."""
    scores = evaluations.get("mean_score", np.zeros(0))  # (K,) in sample order
    if not len(scores):
        return {"greedy_final": math.nan, "greedy_mean": math.nan}
    return {"greedy_final": float(scores[-1]), "greedy_mean": float(np.mean(scores))}


def _time_failure_rate(failures: np.ndarray, clock: Clock | None, seconds: float, budget: int) -> float:
    """Failures per 1,000 samples among those one agent took in the last 20% of the first `seconds`."""
    if clock is None or not seconds > 0:
        return math.nan
    start, end = np.minimum(clock.samples_at([(1 - metrics.FINAL_FRACTION) * seconds, seconds]), budget)  # (2,)
    return metrics.failure_rate(failures, float(start), float(end))


def has_terminations(run: Run) -> bool:
    """episodes.csv records which episodes the environment terminated (dqnlab wrote it after that column came)."""
    return "terminated" in run.episodes


RATES = ("final_failure_rate", "failure_rate", "time_failure_rate")


def samples_per_failure(rate: float) -> float:
    """A failure rate's reciprocal: the mean samples per failure (inf for no failure)."""
    return metrics.PER / rate if rate > 0 else math.inf


def describe_rate(block: dict[str, Any]) -> str:
    """A rate measure's IQM as its reciprocal in words, from summary.json: 'one failure every 151 samples'."""
    value = block.get("samples_per_failure_at_iqm")
    if value is None:
        return "no failure" if block.get("iqm") == 0 else ""
    return f"one failure every {fmt(value)} samples"
