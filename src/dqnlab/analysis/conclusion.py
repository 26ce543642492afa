"""The report's opening in words: who wins on which axis, by how much, or that it is unclear.

Every sentence is built from summary.json's numbers; verdicts are the paired
comparisons' (Holm-adjusted sign tests, `analysis.comparisons`). Which
measures speak for which axis is the profile's measure set
(`analysis.measures`): failure rates on CartPole, returns elsewhere.
"""

from __future__ import annotations

from typing import Any

from dqnlab.analysis.comparisons import find
from dqnlab.analysis.measures import MeasureSet, describe_rate, measures_of
from dqnlab.reporting.formatting import fmt, interval

# a measure's axis -> the headline's words for it, in the headline's order
AXES = {"episode": "per episode", "samples": "per sample", "seconds": "per agent-second", "forgetting": "in forgetting",
        "greedy": "in greedy evaluation"}  # fmt: skip
AXIS_WORDS = {"episode_score": "Per episode", "final_failure_rate": "Per sample (final failure rate)",
              "failure_rate": "Per sample (sample efficiency)", "time_failure_rate": "Per agent-second",
              "collapse_rate": "Forgetting (collapses)", "relative_drawdown": "Forgetting (drawdown)",
              "final_return": "Per sample (final return)", "return_auc": "Per sample (area under the return curve)",
              "time_return_auc": "Per agent-second", "return_drawdown": "Forgetting (largest fall)",
              "return_shortfall": "Forgetting (mean fall)", "excess_repurposed_share": "Detector stability (controlled)",
              "greedy_final": "Greedy evaluation (last)", "greedy_mean": "Greedy evaluation (mean over evaluations)"}  # fmt: skip


def axis_measures(measured: MeasureSet) -> dict[str, tuple[str, ...]]:
    """The headline's axes in words and the compared measures that speak for each: {"per sample": (...), ...}."""
    return {words: measured.keys(axis) for axis, words in AXES.items()}


def conclusion(summary: dict[str, Any], measured: MeasureSet | None = None) -> list[str]:
    """Lines: what was left out, then per pair a headline, a sentence per measure, the clocks and the cost.

    `measured` is the summary's measure set (read from its "profile" when omitted).
    """
    measured = measured or measures_of(summary)
    names = list(summary["variants"])
    lines = []
    runs = summary["runs"]
    if runs["used"] < runs["total"]:
        lines.append(
            f"{runs['total'] - runs['used']} of {runs['total']} runs are left out of the per-variant figures: "
            f"{runs['diverged']} diverged (each counted in the paired comparisons as the worst outcome), "
            f"{runs['failed']} failed, {runs['incomplete'] + runs['missing']} incomplete or missing, "
            f"{runs['unreadable']} unreadable, {runs['outdated']} written by an older dqnlab."
        )
    if runs.get("retried"):
        lines.append(f"{runs['retried']} run(s) lost their worker and were rerun from the start (Ray backend).")
    if len(names) < 2:
        return lines + ["Only one variant: nothing to compare."]
    baseline = names[0]
    for other in names[1:]:
        lines.append(_headline(summary, baseline, other, measured))
        lines += [_sentence(summary, row, measured) for key in measured.compared
                  if (row := find(summary["comparisons"], baseline, other, key))]  # fmt: skip
        lines += _clock_lines(summary, (baseline, other))
        cost_a = summary["variants"][baseline]["measures"].get("transitions_processed", {})
        cost_b = summary["variants"][other]["measures"].get("transitions_processed", {})
        if cost_a.get("mean") and cost_b.get("mean"):
            lines.append(
                f"Cost: {other} processed {fmt(cost_b['mean'] / cost_a['mean'])}x the transitions of {baseline} "
                f"({fmt(cost_b['mean'])} vs {fmt(cost_a['mean'])} per run)."
            )
    return lines


def _headline(summary: dict[str, Any], a: str, b: str, measured: MeasureSet | None = None) -> str:
    """One sentence: who wins on which of the axes."""
    verdicts = {}
    shadows = any(summary.get("variants", {}).get(name, {}).get("shadow_runs") for name in (a, b))  # a shadow has no episode measures
    for axis, keys in axis_measures(measured or measures_of(summary)).items():
        found = {row["verdict"] for key in keys if (row := find(summary["comparisons"], a, b, key)) is not None}
        winners = found - {"inconclusive"}
        if len(found) == 1:
            verdicts[axis] = found.pop()
        elif len(winners) == 1:  # a winner on some measures of the axis, inconclusive on the others
            verdicts[axis] = "partly " + winners.pop()
        elif found:
            verdicts[axis] = "mixed"
        elif axis != "in greedy evaluation" and not shadows:  # unevaluated runs, and shadows' episodes, are not news
            verdicts[axis] = "unmeasured"
    pairs = max((row["n_pairs"] for row in summary["comparisons"] if row["a"] == a and row["b"] == b), default=0)
    words = {b: f"{b} beats {a}", a: f"{a} beats {b}", f"partly {b}": f"{b} beats {a} on part of the measures",
             f"partly {a}": f"{a} beats {b} on part of the measures", "inconclusive": "the evidence is inconclusive",
             "mixed": "the measures disagree", "unmeasured": "nothing could be measured"}  # fmt: skip
    parts = []
    for outcome, text in words.items():
        axes = [axis for axis, verdict in verdicts.items() if verdict == outcome]
        if axes:
            parts.append(f"{text} {', '.join(axes[:-1]) + (' and ' if len(axes) > 1 else '') + axes[-1]}")
    budget = summary["experiment"]["samples"]
    return (f"Over {pairs} paired seeds of {fmt(budget)} samples each (verdicts: sign tests, Holm-adjusted across "
            f"the pair's {sum(r['a'] == a and r['b'] == b for r in summary['comparisons'])} measures): "
            + ("; ".join(parts) or "nothing could be compared") + ".")  # fmt: skip


def _sentence(summary: dict[str, Any], row: dict[str, Any], measured: MeasureSet) -> str:
    a, b, key = row["a"], row["b"], row["measure"]
    ma, mb = summary["variants"][a]["measures"][key], summary["variants"][b]["measures"][key]
    label = summary["measures"][key]["label"]
    numbers = f"IQM {_iqm(mb, key, measured)} for {b} vs {_iqm(ma, key, measured)} for {a}"
    better = ">" if summary["measures"][key]["higher_is_better"] else "<"
    odds = (
        f"{b} better on {row['b_wins']} of {row['n_pairs']} paired seeds ({row['ties']} ties), "
        f"paired win rate {interval(row['win_rate'], row['win_low'], row['win_high'])}, "
        f"P({b} {better} {a}) across seeds = {interval(row['p_b_better'], row['low'], row['high'])}; "
        f"sign test p = {fmt(row['sign_test_p'])}, Holm-adjusted {fmt(row['holm_p'])}"
    )
    notes = []
    if row.get("diverged_pairs"):
        notes.append(f"{row['diverged_pairs']} pair(s) with a diverged run, counted as its worst outcome")
    if row.get("undefined_pairs"):
        first = fmt(measured.targets[0]) if measured.targets else "a target"
        undefined = f"a run never reached {first}" if key == "collapse_rate" else "the measure is undefined for a run"
        notes.append(f"{row['undefined_pairs']} pair(s) left out where {undefined}")
    verdict = f"inconclusive: neither {a} nor {b} is reliably better" if row["verdict"] == "inconclusive" else (
        f"{row['verdict']} beats {a if row['verdict'] == b else b}")  # fmt: skip
    extra = "; " + "; ".join(notes) if notes else ""
    return f"{AXIS_WORDS[key]}: {verdict} ({label}: {numbers}; {odds}{extra})."


def _iqm(block: dict[str, Any], key: str, measured: MeasureSet) -> str:
    shown = interval(block.get("iqm"), block.get("iqm_low"), block.get("iqm_high"))
    if key in measured.rates and (words := describe_rate(block)):
        shown += f" ({words})"
    return shown


def _clock_lines(summary: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """How each variant's seconds were obtained, and any population's own throughput, apart."""
    clocks = summary.get("clocks", {})
    lines = [f"Clock of {name}: {clocks[name]['how']}." for name in names if name in clocks]
    for name in names:
        rate = clocks.get(name, {}).get("population_member_samples_per_second")
        if rate:
            lines.append(f"Throughput (not per-agent time): {name}'s populations trained {fmt(rate)} member-samples "
                         "per second on their shared clock.")  # fmt: skip
    return lines
