"""summary.json in words and tables: summary.md and a self-contained report.html.

Both are rendered from one document (`document(summary)`: headings,
paragraphs, lists, tables, figures; `reporting.blocks`), so the two files
always say the same thing. Every number in them is formatted by `fmt` from
a value in the summary, so a test can recompute each displayed number from
summary.json; the conclusion's sentences come ready-made from
`summary["conclusion"]`. The measures shown and the fixed prose around them
follow the summary's profile (`analysis.measures.measures_of`,
`analysis.wording`).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from dqnlab.analysis import wording
from dqnlab.analysis.measures import MeasureSet, describe_rate, measures_of
from dqnlab.reporting.blocks import Block, Bullets, Figure, Heading, Paragraph, Table, blocks_html, blocks_markdown
from dqnlab.reporting.formatting import MISSING, fmt, interval

NOT_REACHED = "not reached by the median run"


# ---------------------------------------------------------------- the document


def document(summary: dict[str, Any]) -> list[Block]:
    """The report, conclusion first, as a list of blocks every renderer walks in order."""
    names = list(summary["variants"])
    measured = measures_of(summary)
    captions = wording.captions(measured)
    blocks: list[Block] = [Heading(1, f"dqnlab comparison: {' vs '.join(names) or 'no variants'}")]
    blocks += [Heading(2, "Conclusion"), Bullets(tuple(summary["conclusion"]) or ("No conclusion: no usable runs.",), "conclusion")]
    blocks += _setup(summary, measured)
    blocks += [Heading(2, "Learning curves"), Figure("curves.png", captions["curves.png"])]
    blocks += _measures(summary, measured)
    blocks += _reach(summary, measured)
    blocks += _comparisons(summary)
    blocks += _clocks(summary)
    blocks += _evaluation(summary)
    blocks += [Heading(2, "Stability per seed"), Figure("strips.png", captions["strips.png"])]
    blocks += _how_to_read(summary, measured)
    return blocks


def _setup(summary: dict[str, Any], measured: MeasureSet) -> list[Block]:
    experiment, runs = summary["experiment"], summary["runs"]
    seeds = experiment["seeds"]
    blocks: list[Block] = [
        Heading(2, "Experiment"),
        Paragraph(
            f"{fmt(len(seeds))} paired seeds ({_seed_list(seeds)}) per variant; a budget of {fmt(experiment['samples'])} "
            f"environment samples per run; preset {experiment['preset']}. Seed k gives every variant the same "
            "initial weights and environment starts; only the variant's settings differ."
        ),
        *(Paragraph(text) for text in wording.environment(summary, measured)),
    ]
    if experiment.get("common"):
        blocks.append(Paragraph(f"Settings shared by every variant: {_settings(experiment['common'])}."))
    rows = []
    for name, table in experiment["variants"].items():
        settings = {section: values for section, values in table.items() if section != "agent"}
        block = summary["variants"].get(name, {})
        used = f"{fmt(block.get('n', 0))} of {fmt(len(seeds))}"
        rows.append((name, str(table.get("agent", "")), _settings(settings) or "the preset's", used))
    blocks.append(Table(("variant", "agent", "settings beyond the preset", "runs used"), tuple(rows)))
    blocks.append(
        Paragraph(
            f"Runs: {fmt(runs['total'])} in all; {fmt(runs['complete'])} complete, {fmt(runs['diverged'])} diverged, "
            f"{fmt(runs['failed'])} failed, {fmt(runs['incomplete'])} incomplete, {fmt(runs['missing'])} missing, "
            f"{fmt(runs.get('unreadable', 0))} unreadable. "
            + ("Left out of the per-variant figures:" if runs["excluded"] else "No run is left out of the per-variant figures.")
        )
    )
    if runs["excluded"]:
        blocks.append(Bullets(tuple(runs["excluded"])))
    return blocks


def _measures(summary: dict[str, Any], measured: MeasureSet) -> list[Block]:
    groups = {
        "Headline measures": [key for key in measured.headline if key in summary["measures"]],
        "Forgetting": [key for key in measured.forgetting if key in summary["measures"]],
        "Episodes that reached the goal": [key for key, m in summary["measures"].items() if m["axis"] == "outcome"],
        "Cost": [key for key, m in summary["measures"].items() if m["axis"] == "cost"],
        "Greedy evaluation (runs with evaluations)": [
            key for key, m in summary["measures"].items()
            if m["axis"] == "greedy" and any(v.get("measures", {}).get(key, {}).get("n") for v in summary["variants"].values())
        ],
        "Detector stability (runs with checkpoints)": [
            key for key, m in summary["measures"].items()
            if m["axis"] == "detectors" and any(v.get("measures", {}).get(key, {}).get("n") for v in summary["variants"].values())
        ],
    }
    better = {True: "higher", False: "lower", None: MISSING}
    blocks: list[Block] = [
        Heading(2, "Measures per variant"),
        Paragraph(wording.measures_note(measured)),
    ]
    shadows = [name for name, variant in summary["variants"].items() if variant.get("shadow_runs")]
    if shadows:
        blocks.append(Paragraph(f"{', '.join(shadows)} did not act: their runs learned from a behaviour's transitions "
                                "(behaviour.actor), so their episodes are the behaviour's and every measure read from "
                                "episodes is undefined for them; their greedy evaluations measure them."))  # fmt: skip
    for title, keys in groups.items():
        if not keys:
            continue
        rows = []
        for key in keys:
            for name, variant in summary["variants"].items():
                m = variant.get("measures", {}).get(key, {})
                iqm = interval(m.get("iqm"), m.get("iqm_low"), m.get("iqm_high"))
                if key in measured.rates and describe_rate(m):
                    iqm += f" ({describe_rate(m)})"
                rows.append((summary["measures"][key]["label"], name, iqm,
                             interval(m.get("mean"), m.get("mean_low"), m.get("mean_high")), fmt(m.get("n", 0)),
                             better[summary["measures"][key]["higher_is_better"]]))  # fmt: skip
        blocks += [Heading(3, title), Table(("measure", "variant", "IQM [95% CI]", "mean [95% CI]", "n", "better"), tuple(rows))]
    blocks.append(Figure("measures.png", wording.captions(measured)["measures.png"]))
    return blocks


def _reach(summary: dict[str, Any], measured: MeasureSet) -> list[Block]:
    heading, note, column = wording.reach_words(measured)
    if not measured.targets:
        return [Heading(2, heading), Paragraph(wording.targets_sentence(measured))]
    rows = []
    for name, variant in summary["variants"].items():
        for threshold, reach in variant.get("reach", {}).items():
            samples, seconds = reach.get("median_samples"), reach.get("median_seconds")
            score = fmt(int(threshold)) if threshold.isdigit() else fmt(float(threshold))
            rows.append((name, score, f"{fmt(reach['reached'])} of {fmt(reach['n'])}",
                         fmt(samples) if samples is not None else NOT_REACHED,
                         fmt(seconds) if seconds is not None else NOT_REACHED))  # fmt: skip
    if not rows:
        return [Heading(2, heading), Paragraph("No usable runs.")]
    return [
        Heading(2, heading),
        Paragraph(note),
        Table(("variant", column, "runs that reached it", "median samples", "median agent-seconds"), tuple(rows)),
    ]


def _comparisons(summary: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Paired comparisons")]
    if not summary["comparisons"]:
        return blocks + [Paragraph("No comparison: fewer than two variants have usable runs on shared seeds.")]
    rows = []
    for row in summary["comparisons"]:
        a, b = row["a"], row["b"]
        verdict = "inconclusive" if row["verdict"] == "inconclusive" else f"{row['verdict']} is better"
        pairs = fmt(row["n_pairs"]) + "".join(
            f", {fmt(row[key])} {words}" for key, words in (("diverged_pairs", "with a diverged run"), ("undefined_pairs", "left out"))
            if row.get(key))  # fmt: skip
        rows.append((f"{b} vs {a}", summary["measures"][row["measure"]]["label"],
                     interval(row["win_rate"], row["win_low"], row["win_high"]), interval(row["p_b_better"], row["low"], row["high"]),
                     f"{fmt(row['b_wins'])} / {fmt(row['a_wins'])} / {fmt(row['ties'])}", pairs,
                     fmt(row["sign_test_p"]), fmt(row["holm_p"]), verdict))  # fmt: skip
    headers = ("b vs a", "measure", "paired win rate of b [95% CI]", "P(b better) across seeds [95% CI]",
               "b wins / a wins / ties", "pairs", "sign test p", "Holm-adjusted p", "verdict")  # fmt: skip
    return blocks + [Table(headers, tuple(rows))]


def _clocks(summary: dict[str, Any]) -> list[Block]:
    rows = []
    for name, clock in (summary.get("clocks") or {}).items():
        rate = clock.get("population_member_samples_per_second")
        rows.append((name, clock["how"], fmt(rate) if rate else MISSING))
    if not rows:
        return []
    return [
        Heading(2, "Clocks"),
        Paragraph("Per-second figures are one agent's seconds alone on one core, whichever backend trained the runs. "
                  "Runs that shared a clock (population members, more runs than cores) are mapped onto a timing run of "
                  "their variant; a population's own clock measures throughput and is shown apart."),  # fmt: skip
        Table(("variant", "agent-seconds obtained by", "population throughput (member-samples per second)"), tuple(rows)),
    ]


def _evaluation(summary: dict[str, Any]) -> list[Block]:
    rows = []
    for name, block in (summary.get("evaluation") or {}).items():
        greedy, training = block["greedy"], block["training"]
        for i, samples in enumerate(block["samples"]):
            rows.append((name, fmt(samples), interval(greedy["iqm"][i], greedy["iqm_low"][i], greedy["iqm_high"][i]),
                         interval(training["iqm"][i], training["iqm_low"][i], training["iqm_high"][i]), fmt(greedy["n"])))  # fmt: skip
    if not rows:
        return []
    return [
        Heading(2, "Greedy evaluation vs training score"),
        Paragraph("At each checkpoint every run played greedy episodes (no exploration, no learning); beside them, "
                  "the training curve at the same samples. IQM over runs with its 95% CI."),  # fmt: skip
        Table(("variant", "samples", "greedy score IQM [95% CI]", "training score IQM [95% CI]", "n"), tuple(rows)),
    ]


def _how_to_read(summary: dict[str, Any], measured: MeasureSet) -> list[Block]:
    limits = summary["limits"]
    return [
        Heading(2, "How to read this"),
        Bullets((
            "IQM (interquartile mean) is the mean of the middle 50% of runs: robust to a few outlier runs, "
            "less noisy than the median.",
            "Every [low, high] is a 95% percentile-bootstrap confidence interval over seeds.",
            "The paired win rate is how often, seed by seed, b did better than a on its own seed (ties count one "
            "half): the comparison the paired design makes. P(b better) across seeds is the probability of "
            "improvement of rliable (Agarwal et al. 2021) between runs of different seeds; same-seed pairs are left "
            "out of it and of its paired bootstrap.",
            "A verdict needs a two-sided sign test on the paired wins with p < 0.05 after Holm-Bonferroni adjustment "
            "across the pair's measures; otherwise the comparison is inconclusive.",
            "Diverged runs are left out of the per-variant figures and enter the paired comparisons as the worst "
            "outcome; failed, incomplete, missing and unreadable runs are excluded and counted above.",
            *wording.reading_notes(summary, measured),
            f"Common windows: per-episode measures use the first {fmt(limits['episodes'])} episodes and per-second "
            f"measures the first {fmt(limits['seconds'])} agent-seconds, the most every usable run reached; "
            f"per-sample measures use the budget of {fmt(limits['budget'])} samples.",
        )),  # fmt: skip
    ]


def _seed_list(seeds: Sequence[int]) -> str:
    """Seeds as ranges: [0, 1, 2, 3, 7] -> '0–3, 7'."""
    parts, start = [], None
    for i, seed in enumerate(seeds):
        start = seed if start is None else start
        if i + 1 == len(seeds) or seeds[i + 1] != seed + 1:
            parts.append(fmt(start) if start == seed else f"{fmt(start)}–{fmt(seed)}")
            start = None
    return ", ".join(parts) or MISSING


def _settings(sections: Mapping[str, Any]) -> str:
    """{"replay": {"batch_size": 8}} -> 'replay.batch_size = 8'."""
    items = []
    for section, values in sections.items():
        if isinstance(values, Mapping):
            items += [f"{section}.{key} = {_value(value)}" for key, value in values.items()]
        else:
            items.append(f"{section} = {_value(values)}")
    return ", ".join(items)


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return fmt(value)


# ---------------------------------------------------------------- renderers


def render_markdown(summary: dict[str, Any], plots: Iterable[str] | None = None) -> str:
    """summary.md; `plots` names the files in plots/ to link as images (none when omitted)."""
    return blocks_markdown(document(summary), plots)


def render_html(summary: dict[str, Any], images: Mapping[str, bytes]) -> str:
    """report.html: one file, inline CSS, the PNGs embedded as data URIs; nothing is fetched from anywhere."""
    return blocks_html(document(summary), images)
