"""summary.json in words and tables: summary.md and a self-contained report.html.

Both are rendered from one document (`document(summary)`: headings,
paragraphs, lists, tables, figures), so the two files always say the same
thing. Every number in them is formatted by `fmt` from a value in the
summary, so a test can recompute each displayed number from summary.json;
the conclusion's sentences come ready-made from `summary["conclusion"]`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from dqnlab.analysis.formatting import MISSING, fmt, interval
from dqnlab.analysis.summary import HEADLINE

NOT_REACHED = "not reached by the median run"
NO_PLOT = "(No plot: nothing to draw.)"
FIGURES = {  # file in plots/ -> caption
    "curves.png": "Training score per episode, per environment sample and per wall-clock second: "
    "IQM over seeds with its 95% CI (band) and the mean (dashed); diamonds: greedy evaluations.",
    "measures.png": "Headline measures: IQM (dot, thick bar) and mean (diamond, thin bar) with 95% CIs.",
    "strips.png": "Every training episode of every seed, coloured by its score (red: 12 or less).",
}


# ---------------------------------------------------------------- the document


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    css: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    name: str  # file name in plots/
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def document(summary: dict[str, Any]) -> list[Block]:
    """The report, conclusion first, as a list of blocks every renderer walks in order."""
    names = list(summary["variants"])
    blocks: list[Block] = [Heading(1, f"dqnlab comparison: {' vs '.join(names) or 'no variants'}")]
    blocks += [Heading(2, "Conclusion"), Bullets(tuple(summary["conclusion"]) or ("No conclusion: no usable runs.",), "conclusion")]
    blocks += _setup(summary)
    blocks += [Heading(2, "Learning curves"), Figure("curves.png", FIGURES["curves.png"])]
    blocks += _measures(summary)
    blocks += _reach(summary)
    blocks += _comparisons(summary)
    blocks += _evaluation(summary)
    blocks += [Heading(2, "Stability per seed"), Figure("strips.png", FIGURES["strips.png"])]
    blocks += _how_to_read(summary)
    return blocks


def _setup(summary: dict[str, Any]) -> list[Block]:
    experiment, runs = summary["experiment"], summary["runs"]
    seeds = experiment["seeds"]
    blocks: list[Block] = [
        Heading(2, "Experiment"),
        Paragraph(
            f"{fmt(len(seeds))} paired seeds ({_seed_list(seeds)}) per variant; a budget of {fmt(experiment['samples'])} "
            f"environment samples per run; preset {experiment['preset']}. Seed k gives every variant the same "
            "initial weights and environment starts; only the variant's settings differ."
        ),
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
            f"{fmt(runs['failed'])} failed, {fmt(runs['incomplete'])} incomplete, {fmt(runs['missing'])} missing. "
            + ("Excluded from the statistics:" if runs["excluded"] else "No run is excluded from the statistics.")
        )
    )
    if runs["excluded"]:
        blocks.append(Bullets(tuple(runs["excluded"])))
    return blocks


def _measures(summary: dict[str, Any]) -> list[Block]:
    groups = {
        "Headline measures": [key for key in HEADLINE if key in summary["measures"]],
        "Forgetting": [key for key, m in summary["measures"].items() if m["axis"] == "forgetting"],
        "Cost": [key for key, m in summary["measures"].items() if m["axis"] == "cost"],
        "Detector stability (runs with checkpoints)": [
            key for key, m in summary["measures"].items()
            if m["axis"] == "detectors" and any(v.get("measures", {}).get(key, {}).get("n") for v in summary["variants"].values())
        ],
    }
    better = {True: "higher", False: "lower", None: MISSING}
    blocks: list[Block] = [
        Heading(2, "Measures per variant"),
        Paragraph("Over the runs that finished their budget: IQM and mean, each with its 95% bootstrap CI; n runs."),
    ]
    for title, keys in groups.items():
        if not keys:
            continue
        rows = []
        for key in keys:
            for name, variant in summary["variants"].items():
                m = variant.get("measures", {}).get(key, {})
                rows.append((summary["measures"][key]["label"], name, interval(m.get("iqm"), m.get("iqm_low"), m.get("iqm_high")),
                             interval(m.get("mean"), m.get("mean_low"), m.get("mean_high")), fmt(m.get("n", 0)),
                             better[summary["measures"][key]["higher_is_better"]]))  # fmt: skip
        blocks += [Heading(3, title), Table(("measure", "variant", "IQM [95% CI]", "mean [95% CI]", "n", "better"), tuple(rows))]
    censored = [(name, v["final_censored_runs"]) for name, v in summary["variants"].items() if v.get("final_censored_runs")]
    if censored:
        which = ", ".join(f"{fmt(count)} run(s) of {name}" for name, count in censored)
        blocks.append(Paragraph(f"Final score is a lower bound for {which}: one episode outlasted the final 20% of the "
                                "budget, so the score of the episode still running at the end stands in."))  # fmt: skip
    blocks.append(Figure("measures.png", FIGURES["measures.png"]))
    return blocks


def _reach(summary: dict[str, Any]) -> list[Block]:
    rows = []
    for name, variant in summary["variants"].items():
        for threshold, reach in variant.get("reach", {}).items():
            samples, seconds = reach.get("median_samples"), reach.get("median_seconds")
            score = fmt(int(threshold)) if threshold.isdigit() else threshold
            rows.append((name, score, f"{fmt(reach['reached'])} of {fmt(reach['n'])}",
                         fmt(samples) if samples is not None else NOT_REACHED,
                         fmt(seconds) if seconds is not None else NOT_REACHED))  # fmt: skip
    if not rows:
        return [Heading(2, "Time to reach a score"), Paragraph("No usable runs.")]
    return [
        Heading(2, "Time to reach a score"),
        Paragraph("When a run first finished an episode with at least this score. A run that never did counts as "
                  "infinitely late, so the median is honest and is missing when most runs never got there."),  # fmt: skip
        Table(("variant", "score at least", "runs that reached it", "median samples", "median seconds"), tuple(rows)),
    ]


def _comparisons(summary: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Paired comparisons")]
    if not summary["comparisons"]:
        return blocks + [Paragraph("No comparison: fewer than two variants have usable runs on shared seeds.")]
    rows = []
    for row in summary["comparisons"]:
        a, b = row["a"], row["b"]
        verdict = "inconclusive" if row["verdict"] == "inconclusive" else f"{row['verdict']} is better"
        rows.append((f"{b} vs {a}", summary["measures"][row["measure"]]["label"], interval(row["p_b_better"], row["low"], row["high"]),
                     f"{fmt(row['b_wins'])} / {fmt(row['a_wins'])} / {fmt(row['ties'])}", fmt(row["n_pairs"]),
                     fmt(row["sign_test_p"]), verdict))  # fmt: skip
    headers = ("b vs a", "measure", "P(b better) [95% CI]", "b wins / a wins / ties", "pairs", "sign test p", "verdict")
    return blocks + [Table(headers, tuple(rows))]


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


def _how_to_read(summary: dict[str, Any]) -> list[Block]:
    limits = summary["limits"]
    return [
        Heading(2, "How to read this"),
        Bullets((
            "IQM (interquartile mean) is the mean of the middle 50% of runs: robust to a few outlier runs, "
            "less noisy than the median.",
            "Every [low, high] is a 95% percentile-bootstrap confidence interval over seeds.",
            "P(b > a) is the probability of improvement of rliable (Agarwal et al. 2021): the chance that b scores "
            "higher than a on a run; ties count one half. Its CI comes from a paired bootstrap over shared seeds.",
            "A verdict needs both: the CI of P(b > a) excludes 0.5, and a two-sided sign test on the paired wins "
            "gives p < 0.05. Otherwise the comparison is inconclusive.",
            "Diverged, failed, incomplete and missing runs are excluded from the statistics and counted above.",
            f"Common windows: per-episode measures use the first {fmt(limits['episodes'])} episodes and per-second "
            f"measures the first {fmt(limits['seconds'])} wall-clock seconds, the most every usable run reached; "
            f"per-sample measures use the whole budget of {fmt(limits['budget'])} samples.",
            "Wall-clock seconds depend on how runs were computed: "
            + "; ".join(f"{name}: {how}" for name, how in summary.get("backends", {}).items())
            + ". Single runs each had one core; members of a population share the population's clock.",
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


def blocks_markdown(blocks: Sequence[Block], plots: Iterable[str] | None = None, folder: str = "plots") -> str:
    """Markdown for a document; `plots` names the image files in `folder` that exist."""
    available = set(plots or ())
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += [_md_row(block.headers), "|" + "---|" * len(block.headers)]
            lines += [_md_row(row) for row in block.rows] + [""]
        elif isinstance(block, Figure) and plots is not None:
            shown = f"![{block.caption}]({folder}/{block.name})" if block.name in available else NO_PLOT
            lines += [shown, ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d232a;
       max-width: 1180px; margin: 2rem auto; padding: 0 1.2rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: 0.4rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d5dae0; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
ul.conclusion { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: 0.8rem 1rem 0.8rem 2rem; }
ul.conclusion li { margin: 0.3rem 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-variant-numeric: tabular-nums; font-size: 0.92rem; }
th, td { border: 1px solid #d5dae0; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #56606b; font-size: 0.9rem; margin-top: 0.3rem; }
"""


def render_html(summary: dict[str, Any], images: Mapping[str, bytes]) -> str:
    """report.html: one file, inline CSS, the PNGs embedded as data URIs; nothing is fetched from anywhere."""
    return blocks_html(document(summary), images)


def blocks_html(blocks: Sequence[Block], images: Mapping[str, bytes]) -> str:
    """A self-contained HTML page for a document; its first heading is the title."""
    e = html.escape
    title = next(block.text for block in blocks if isinstance(block, Heading))
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, Bullets):
            css = f' class="{e(block.css)}"' if block.css else ""
            body.append(f"<ul{css}>" + "".join(f"<li>{e(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{e(cell)}</th>" for cell in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure) and block.name in images:
            data = base64.b64encode(images[block.name]).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(block.caption)}">'
                        f"<figcaption>{e(block.caption)}</figcaption></figure>")  # fmt: skip
        elif isinstance(block, Figure):
            body.append(f"<p>{e(NO_PLOT)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
