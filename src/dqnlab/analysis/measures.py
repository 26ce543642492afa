"""Every measure of one run, on one agent's clock: the numbers summary.json aggregates and compares.

Which measures a run has follows its environment's profile
(`config.profiles`): `measures_for(profile, targets)` gives the measure set,
each measure's label, the axis it speaks for and which way is better, and
which are headline, forgetting and compared. A failures profile (CartPole)
is measured by failures per 1,000 samples; a returns profile (every other
environment) by the returns of its episodes (`analysis.metrics`).
`run_measures` computes one run's measures from its episodes, its
result.json and its clock (`analysis.clocks`). Per-second measures use one
agent's seconds, whichever backend trained the run.

A learner that does not act (result.json "behaviour" other than "self")
trained on its behaviour's episodes: their scores and failures are the
behaviour's, not the learner's, so every measure read from episodes is
undefined (NaN) for it, and it is measured by its greedy evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dqnlab.analysis import metrics
from dqnlab.analysis.clocks import Clock, Timing, own_clock
from dqnlab.analysis.runs import Run
from dqnlab.config.profiles import CARTPOLE, REACH_EPISODES, Profile, profile
from dqnlab.reporting.formatting import fmt

Label = tuple[str, str, bool | None]  # (what it measures, the axis it speaks for, higher is better; None: no better)

FAILURES = {  # a failures profile's measures read from episodes; {low} and {target}: the profile's collapse score and first target
    "episode_score": ("mean score of the first {episodes} episodes", "episode", True),
    "final_failure_rate": ("failures per 1,000 samples in the last 20% of the budget", "samples", False),
    "failure_rate": ("sample efficiency: failures per 1,000 samples over the whole budget", "samples", False),
    "time_failure_rate": ("failures per 1,000 samples in the last 20% of the first {seconds:.3g} agent-seconds", "seconds", False),
    "collapse_rate": ("collapses (episodes scoring <= {low}) per 1,000 samples after first reaching {target}", "forgetting", False),
    "relative_drawdown": ("largest relative fall of samples per failure below its running peak (20 equal windows)", "forgetting", False),
}  # fmt: skip
RETURNS = {  # a returns profile's measures read from episodes; the return curve: `metrics.return_curve`
    "episode_score": ("mean return of the first {episodes} episodes", "episode", True),
    "final_return": ("mean return of the episodes that ended in the last 20% of the budget", "samples", True),
    "return_auc": ("area under the return curve per sample (mean over 20 equal windows of the budget)", "samples", True),
    "time_return_auc": ("area under the return curve over the first {seconds:.3g} agent-seconds (mean over 20 equal windows of their samples)", "seconds", True),
    "return_drawdown": ("largest fall of the return curve below its running best (20 equal windows of the budget)", "forgetting", False),
    "return_shortfall": ("mean fall of the return curve below its running best (20 equal windows of the budget)", "forgetting", False),
}  # fmt: skip
GOAL = {  # a returns profile whose terminations are the goal reached: descriptive, never compared
    "goal_share": ("share of the episodes that ended in the last 20% of the budget that reached the goal", "outcome", True),
}
SHARED = {  # every profile's: cost, greedy evaluations and detectors
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
GREEDY = ("greedy_final", "greedy_mean")  # only where runs were evaluated (run.eval_every)
DETECTORS = tuple(key for key, (_, axis, _) in SHARED.items() if axis == "detectors")
RATES = ("final_failure_rate", "failure_rate", "time_failure_rate")  # failure rates: shown with their reciprocal


@dataclass(frozen=True)
class MeasureSet:
    """The measures of one profile and its targets: labels, axes, directions, and what the report groups and compares."""

    profile: Profile
    targets: tuple[float, ...]  # the target returns whose first reaching every run reports
    targets_from: str  # where they come from: the profile's source, or env.targets
    measures: dict[str, Label]  # key -> label; summary.json's "measures" in this order

    def keys(self, axis: str) -> tuple[str, ...]:
        """The measures that speak for `axis` ("episode", "samples", "seconds", "forgetting", "greedy", ...), in order."""
        return tuple(key for key, (_, where, _) in self.measures.items() if where == axis)

    @property
    def headline(self) -> tuple[str, ...]:
        return (*self.keys("episode"), *self.keys("samples"), *self.keys("seconds"))

    @property
    def forgetting(self) -> tuple[str, ...]:
        return self.keys("forgetting")

    @property
    def compared(self) -> tuple[str, ...]:
        """One Holm family per pair of variants."""
        return (*self.headline, *self.forgetting, "excess_repurposed_share", *GREEDY)

    @property
    def rates(self) -> tuple[str, ...]:
        return tuple(key for key in RATES if key in self.measures)

    @property
    def from_episodes(self) -> tuple[str, ...]:
        """Measures read from the run's episodes (and first reaching of targets): undefined for a learner that did not act."""
        return (*self.headline, *self.forgetting, *self.keys("outcome"))


def measures_for(profile: Profile, configured: tuple[float, ...] | None = None) -> MeasureSet:
    """The measure set of a profile; `configured` is `env.targets` (None: the profile's targets)."""
    targets = profile.targets if configured is None else tuple(sorted(float(t) for t in configured))
    source = profile.targets_from if configured is None else "env.targets, set in the experiment's settings"
    if profile.measured_by == "failures":
        words = {"low": fmt(profile.collapse_at), "target": fmt(targets[0]) if targets else "a target (none is set)"}
        episodes = {key: (label.replace("{low}", words["low"]).replace("{target}", words["target"]), axis, better)
                    for key, (label, axis, better) in FAILURES.items()}  # fmt: skip
    else:
        episodes = {**RETURNS, **(GOAL if profile.termination == "success" else {})}
    return MeasureSet(profile, targets, source if targets else "", {**episodes, **SHARED})


CARTPOLE_MEASURES = measures_for(CARTPOLE)


def profile_block(measured: MeasureSet, env_id: str) -> dict[str, Any]:
    """summary.json's "profile": the environment, its profile and the targets the runs were measured against."""
    profile = measured.profile
    block = {"env_id": env_id, "name": profile.name, "measured_by": profile.measured_by, "termination": profile.termination,
             "ends_when": profile.ends_when, "targets": list(measured.targets), "targets_from": measured.targets_from,
             "reach": profile.reach}  # fmt: skip
    if profile.reach == "episodes":
        block["reach_episodes"] = REACH_EPISODES
    if profile.collapse_at is not None:
        block["collapse_at"] = profile.collapse_at
    return block


def measures_of(summary: dict[str, Any]) -> MeasureSet:
    """The measure set a summary was made with, from its "profile" block (CartPole's for a summary without one).

    The profile is its environment's (`config.profiles.profile`); the targets and their source are the block's.
    """
    block = summary.get("profile")
    if not block:
        return CARTPOLE_MEASURES
    measured = measures_for(profile(block["env_id"]), tuple(block["targets"]))
    return replace(measured, targets_from=block["targets_from"])


def acted(run: Run) -> bool:
    """The run chose its own actions: its episodes are its own (every run before shadow learners existed)."""
    return run.result.get("behaviour", "self") == "self"


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


def run_measures(run: Run, clock: Clock | None, budget: int, common: dict[str, float],
                 measured: MeasureSet | None = None) -> dict[str, float]:  # fmt: skip
    """Every measure of one run that finished its budget (NaN where undefined), plus reach times.

    `measured` defaults to the measure set of the run's environment (result.json "env_id"; CartPole without one).
    """
    measured = measured or measures_for(profile(str(run.result.get("env_id", "CartPole-v1"))))
    by_episodes = _failure_measures if measured.profile.measured_by == "failures" else _return_measures
    values = {
        **by_episodes(run, clock, budget, common, measured),
        "learn_steps": float(run.result.get("learn_steps", math.nan)),
        "transitions_processed": float(run.result.get("transitions_processed", math.nan)),
        "agent_seconds": float(clock.at(budget)) if clock is not None else math.nan,
        **greedy_measures(run.evaluations),
    }
    for target in measured.targets:
        samples, seconds = _reach(run, clock, target, measured.profile)
        values[f"samples_to_{target:g}"] = samples
        values[f"seconds_to_{target:g}"] = seconds if clock is not None else math.nan
    if not acted(run):
        values.update({key: math.nan for key in values
                       if key in measured.from_episodes or key.startswith(("samples_to_", "seconds_to_"))})  # fmt: skip
    return values


def _failure_measures(run: Run, clock: Clock | None, budget: int, common: dict[str, float], measured: MeasureSet) -> dict[str, float]:
    e = run.episodes
    ends, scores = e["samples"], e["score"]  # (E,) each
    failures = metrics.failure_samples(ends, e["terminated"])  # (F,)
    # collapses count after the running episode first reached the first target (CartPole: 200); NaN without targets
    reached = metrics.first_reach(run.result.get("first_reached", {}), measured.targets[0])[0] if measured.targets else math.nan
    return {
        "episode_score": metrics.episode_mean(scores, int(common["episodes"])),
        "final_failure_rate": metrics.failure_rate(failures, (1 - metrics.FINAL_FRACTION) * budget, budget),
        "failure_rate": metrics.failure_rate(failures, 0, budget),
        "time_failure_rate": _time_failure_rate(failures, clock, float(common["seconds"]), budget),
        "collapse_rate": metrics.collapse_rate(ends, scores, reached, budget, float(measured.profile.collapse_at)),
        "relative_drawdown": metrics.relative_drawdown(failures, budget),
    }


def _return_measures(run: Run, clock: Clock | None, budget: int, common: dict[str, float], measured: MeasureSet) -> dict[str, float]:
    e = run.episodes
    ends, returns = e["samples"], e["score"]  # (E,) each
    curve = metrics.return_curve(ends, returns, budget)  # (W,)
    values = {
        "episode_score": metrics.episode_mean(returns, int(common["episodes"])),
        "final_return": metrics.final_return(ends, returns, (1 - metrics.FINAL_FRACTION) * budget, budget),
        "return_auc": metrics.curve_area(curve),
        "time_return_auc": _time_return_auc(ends, returns, clock, float(common["seconds"]), budget),
        "return_drawdown": metrics.return_drawdown(curve),
        "return_shortfall": metrics.return_shortfall(curve),
    }
    if "goal_share" in measured.measures:
        values["goal_share"] = metrics.terminated_share(ends, e["terminated"], (1 - metrics.FINAL_FRACTION) * budget, budget)
    return values


def _reach(run: Run, clock: Clock | None, target: float, profile: Profile) -> tuple[float, float]:
    """(samples, one agent's seconds) at which the run first reached `target`, as the profile reads it; inf if never."""
    if profile.reach == "episodes":
        samples = metrics.episodes_reach(run.episodes["samples"], run.episodes["score"], target)
        return samples, float(clock.at(samples)) if clock is not None and math.isfinite(samples) else math.inf
    samples, seconds = metrics.first_reach(run.result.get("first_reached", {}), target)
    if clock is not None and shares_clock(run) and math.isfinite(samples):
        seconds = float(clock.at(samples))  # a shared clock's stamp is the batch's: map the sample instead
    return samples, seconds


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


def _time_return_auc(ends: np.ndarray, returns: np.ndarray, clock: Clock | None, seconds: float, budget: int) -> float:
    """Area under the return curve over the samples (0, s] one agent took in its first `seconds`, per sample."""
    if clock is None or not seconds > 0:
        return math.nan
    reached = float(np.minimum(clock.samples_at(seconds), budget))
    return metrics.curve_area(metrics.return_curve(ends, returns, reached)) if reached > 0 else math.nan


def has_terminations(run: Run) -> bool:
    """episodes.csv records which episodes the environment terminated (dqnlab wrote it after that column came)."""
    return "terminated" in run.episodes


def samples_per_failure(rate: float) -> float:
    """A failure rate's reciprocal: the mean samples per failure (inf for no failure)."""
    return metrics.PER / rate if rate > 0 else math.inf


def describe_rate(block: dict[str, Any]) -> str:
    """A rate measure's IQM as its reciprocal in words, from summary.json: 'one failure every 151 samples'."""
    value = block.get("samples_per_failure_at_iqm")
    if value is None:
        return "no failure" if block.get("iqm") == 0 else ""
    return f"one failure every {fmt(value)} samples"
