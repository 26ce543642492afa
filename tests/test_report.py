"""The report a user opens: summary.md, report.html and plots/, rebuilt from saved runs.

One tiny experiment (2 variants x 3 seeds x 300 samples, greedy evaluations)
is trained once per module with the real runner; the other cases are derived
from it by editing run directories or the summary, as a user's disk would.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dqnlab.analysis.plots import plot_curves, plot_measures, write_plots
from dqnlab.analysis.strips import _strip, plot_strips
from dqnlab.reporting.formatting import fmt, interval
from dqnlab.analysis.render import render_html, render_markdown
from dqnlab.analysis.report import build_report
from dqnlab.analysis.runs import Run, load_experiment
from dqnlab.analysis.measures import CARTPOLE_MEASURES
from dqnlab.cli import cli
from dqnlab.api import compare
from dqnlab.experiments.spec import build_experiment

MEASURES, HEADLINE, COMPARED = CARTPOLE_MEASURES.measures, CARTPOLE_MEASURES.headline, CARTPOLE_MEASURES.compared  # the tutorial: CartPole
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_NAMES = {"curves.png", "strips.png", "measures.png"}
VARIANTS = {"naive": {"agent": "naive"}, "replay": {"agent": "replay", "replay": {"batch_size": 8, "warmup": 8}}}
# numbers the report's fixed prose states (95% CIs, the middle 50%, 0.5 and p < 0.05, the paper's year,
# the final 20% of the budget, collapses at 12, rates per 1,000 samples): everything else must come from summary.json
PROSE_NUMBERS = {"95", "50", "0.5", "0.05", "2021", "20", "12", "1,000"}


def tiny_experiment(samples: int = 300, seeds: int = 3, eval_every: int | None = 100):
    common = {"network": {"hidden": [8]}, **({"run": {"eval_every": eval_every}} if eval_every else {})}
    return build_experiment(preset_name="tutorial", samples=samples, seeds=seeds, variant_tables=VARIANTS, common=common)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "results"
    compare(tiny_experiment(), out, workers=1)
    return out


@pytest.fixture(scope="module")
def summary(results) -> dict:
    return json.loads((results / "summary.json").read_text())


@pytest.fixture(scope="module")
def markdown(results) -> str:
    return (results / "summary.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(results) -> str:
    return (results / "report.html").read_text(encoding="utf-8")


def html_text(page: str) -> str:
    """The words a reader sees: no tags, no embedded images, entities decoded."""
    page = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return html.unescape(page)


def png_images(page: str) -> list[bytes]:
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", page)
    assert len(sources) == len(re.findall(r"<img\b", page))
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in sources)
    return [base64.b64decode(src[len(prefix) :], validate=True) for src in sources]


def assert_valid_png(data: bytes) -> None:
    assert data[:8] == PNG_SIGNATURE
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and min(image.size) > 100


# ---------------------------------------------------------------- files


def test_compare_writes_every_report_file(results):
    for name in ("summary.json", "summary.md", "report.html"):
        assert (results / name).stat().st_size > 0
    assert {p.name for p in (results / "plots").iterdir()} == PLOT_NAMES  # and no leftover .tmp
    assert not list(results.glob("*.tmp"))
    for path in (results / "plots").iterdir():
        assert_valid_png(path.read_bytes())


def test_html_embeds_every_plot_as_a_png_data_uri(results, report):
    images = png_images(report)
    assert len(images) == len(PLOT_NAMES)
    for data in images:
        assert_valid_png(data)
    assert sorted(images) == sorted(p.read_bytes() for p in (results / "plots").iterdir())


def test_html_is_self_contained(report):
    assert "http://" not in report and "https://" not in report
    sources = re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"'\s>]*)", report, flags=re.I)
    assert sources and all(src.startswith("data:image/png;base64,") for src in sources)
    for tag in ("<script", "<link", "<iframe", "url("):
        assert tag not in report.lower()


def test_markdown_links_the_plots(markdown):
    for name in PLOT_NAMES:
        assert f"](plots/{name})" in markdown


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("key", list(MEASURES))
def test_every_variant_measure_is_shown_as_in_summary_json(summary, markdown, report, key):
    text = html_text(report)
    if summary["measures"][key]["axis"] == "detectors" and not any(b["measures"][key].get("n") for b in summary["variants"].values()):
        assert summary["measures"][key]["label"] not in markdown  # no run had checkpoints to count from: not shown
        return
    for block in summary["variants"].values():
        m = block["measures"][key]
        shown = tuple(interval(m.get(stat), m.get(f"{stat}_low"), m.get(f"{stat}_high")) for stat in ("iqm", "mean"))
        row = f"| {summary['measures'][key]['label']} | "
        assert any(row in line and all(s in line for s in shown) for line in markdown.splitlines())
        assert all(s in text for s in shown)
    if key in HEADLINE:
        assert all(fmt(block["measures"][key]["iqm"]) in markdown for block in summary["variants"].values())


def test_every_comparison_is_shown_as_in_summary_json(summary, markdown, report):
    text = html_text(report)
    measured = [key for key in COMPARED if any(b["measures"][key].get("n") for b in summary["variants"].values())]
    assert [row["measure"] for row in summary["comparisons"]] == measured
    for row in summary["comparisons"]:
        cells = (interval(row["win_rate"], row["win_low"], row["win_high"]), interval(row["p_b_better"], row["low"], row["high"]),
                 fmt(row["sign_test_p"]), fmt(row["holm_p"]),
                 f"{fmt(row['b_wins'])} / {fmt(row['a_wins'])} / {fmt(row['ties'])}")  # fmt: skip
        start = f"| {row['b']} vs {row['a']} | {summary['measures'][row['measure']]['label']} | "
        line = next(line for line in markdown.splitlines() if line.startswith(start))
        assert all(cell in line for cell in cells)
        assert all(cell in text for cell in cells)


def test_evaluation_table_matches_summary_json(summary, markdown):
    assert set(summary["evaluation"]) == {"naive", "replay"}
    for name, block in summary["evaluation"].items():
        for i, samples in enumerate(block["samples"]):
            greedy = interval(block["greedy"]["iqm"][i], block["greedy"]["iqm_low"][i], block["greedy"]["iqm_high"][i])
            assert any(line.startswith(f"| {name} | {fmt(samples)} | {greedy} |") for line in markdown.splitlines())


def numbers_in(value, found: set[str]) -> set[str]:
    """`fmt` of every number in summary.json (and of numeric keys such as reach thresholds)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.isdigit():
                found.add(fmt(int(key)))
            numbers_in(item, found)
    elif isinstance(value, list):
        found.add(fmt(len(value)))  # counts of seeds, runs
        for item in value:
            numbers_in(item, found)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.add(fmt(value))
    return found


def strings_in(value, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(key)
            strings_in(item, found)
    elif isinstance(value, list):
        for item in value:
            strings_in(item, found)
    elif isinstance(value, str):
        found.add(value)
    return found


@pytest.mark.parametrize("which", ["markdown", "report"])
def test_every_displayed_number_comes_from_summary_json(summary, markdown, report, which):
    text = markdown if which == "markdown" else html_text(report)
    text = re.sub(r"\]\(plots/[^)]*\)", "]", text)
    for string in sorted(strings_in(summary, set()), key=len, reverse=True):  # labels, sentences, names: verbatim
        if re.search(r"\d", string) and re.search(r"[A-Za-z]", string):
            text = text.replace(string, " ")
    allowed = numbers_in(summary, set()) | PROSE_NUMBERS
    shown = re.findall(r"(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]\d+)?", text)
    assert shown and not sorted(set(shown) - allowed)


def test_conclusion_comes_before_every_table(summary, markdown, report):
    assert summary["conclusion"]
    first_table = markdown.index("\n| ")
    for line in summary["conclusion"]:
        assert markdown.index(f"- {line}") < first_table
    first_table = report.index("<table")
    for line in summary["conclusion"]:
        assert report.index(html.escape(line)) < first_table


def test_report_states_the_setup(summary, markdown):
    assert "3 paired seeds (0–2)" in markdown and "a budget of 300 environment samples" in markdown
    assert "| replay | replay | replay.batch_size = 8, replay.warmup = 8 | 3 of 3 |" in markdown
    assert "network.hidden = [8], run.eval_every = 100" in markdown
    assert "No run is left out of the per-variant figures." in markdown
    assert f"the first {fmt(summary['limits']['episodes'])} episodes" in markdown


# ---------------------------------------------------------------- the command


def test_report_command_rebuilds_the_report(results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(results, out)
    for name in ("summary.md", "report.html", "summary.json"):
        (out / name).unlink()
    shutil.rmtree(out / "plots")
    result = CliRunner().invoke(cli, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "summary.md").read_text(encoding="utf-8") == (results / "summary.md").read_text(encoding="utf-8")
    assert {p.name for p in (out / "plots").iterdir()} == PLOT_NAMES
    assert len(png_images((out / "report.html").read_text(encoding="utf-8"))) == len(PLOT_NAMES)
    summary = json.loads((out / "summary.json").read_text())
    assert result.output.splitlines()[0] == summary["conclusion"][0]


# ---------------------------------------------------------------- robustness


def test_a_variant_whose_runs_all_failed_is_reported_as_excluded(results, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(results, out)
    for seed_dir in sorted((out / "runs" / "replay").iterdir()):
        (seed_dir / "result.json").write_text(json.dumps({"status": "failed", "error": "killed by the test"}))
    summary = build_report(out)
    assert summary["runs"]["failed"] == 3 and summary["variants"]["replay"]["n"] == 0
    assert summary["comparisons"] == []
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "3 failed" in markdown and "Left out of the per-variant figures:" in markdown
    for entry in summary["runs"]["excluded"]:
        assert f"- {entry}" in markdown and html.escape(entry) in page
    assert markdown.index(f"- {summary['conclusion'][0]}") < markdown.index("\n| ")
    assert "| replay | replay | replay.batch_size = 8, replay.warmup = 8 | 0 of 3 |" in markdown
    assert "No comparison: fewer than two variants" in markdown
    for data in png_images(page):
        assert_valid_png(data)


def test_a_single_seed_too_short_to_finish_an_episode_still_reports(tmp_path):
    """Five samples and no episode ended: no failure in the budget, and no episode to score."""
    out = tmp_path / "short"
    summary = compare(tiny_experiment(samples=5, seeds=1, eval_every=None), out, workers=1)
    for block in summary["variants"].values():
        assert block["n"] == 1 and block["measures"]["failure_rate"]["iqm"] == 0.0
        assert block["measures"]["episode_score"] == {"n": 0, "undefined": 1}
    markdown = (out / "summary.md").read_text(encoding="utf-8")
    assert summary["limits"]["episodes"] == 0 and "No run is left out of the per-variant figures." in markdown
    assert {p.name for p in (out / "plots").iterdir()} == {"curves.png", "measures.png"}  # no episode to strip
    page = (out / "report.html").read_text(encoding="utf-8")
    assert len(png_images(page)) == 2 and "(No plot: nothing to draw.)" in page


def _no_curves(summary: dict) -> None:
    for axis in summary["curves"].values():
        for curve in axis.values():
            for key, values in curve.items():
                if isinstance(values, list):
                    curve[key] = [None] * len(values)


def _one_point_curves(summary: dict) -> None:
    for axis in summary["curves"].values():
        for curve in axis.values():
            for key, values in curve.items():
                if isinstance(values, list):
                    curve[key] = [values[0]] + [None] * (len(values) - 1)


def _no_evaluation(summary: dict) -> None:
    summary["evaluation"] = {}


def _empty_variant(summary: dict) -> None:
    summary["variants"]["replay"] = {"seeds": [], "n": 0, "measures": {}, "reach": {}}
    for axis in summary["curves"].values():
        axis.pop("replay", None)
    summary["evaluation"].pop("replay", None)
    summary["comparisons"] = []


def _none_measures(summary: dict) -> None:
    for block in summary["variants"].values():
        block["measures"] = {key: {**m, "iqm_low": None, "iqm_high": None} for key, m in block["measures"].items()}
        block["measures"]["episode_score"] = {"n": 0}


@pytest.mark.parametrize("damage", [_no_curves, _one_point_curves, _no_evaluation, _empty_variant, _none_measures])
def test_plots_and_pages_skip_what_cannot_be_drawn(results, summary, tmp_path, damage):
    damaged = copy.deepcopy(summary)
    damage(damaged)
    _, runs = load_experiment(results)
    paths = write_plots(tmp_path, damaged, runs)
    assert {p.name for p in paths} == PLOT_NAMES
    for path in paths:
        assert_valid_png(path.read_bytes())
    assert "## Conclusion" in render_markdown(damaged)
    page = render_html(damaged, {p.name: p.read_bytes() for p in paths})
    assert len(png_images(page)) == len(PLOT_NAMES)


def test_strips_need_runs_with_episodes(summary):
    assert plot_strips(summary, []) is None
    assert plot_strips(summary, [Run("naive", 0, "failed", {}, {}, {})]) is None
    assert plot_curves(summary) is not None and plot_measures(summary) is not None


def test_a_short_collapse_survives_the_strip_resolution():
    """Each column shows the lowest score it covers: a 9 between two 500s is never averaged away."""
    samples = np.array([500.0, 509.0, 1009.0])  # episode ends: 500, then 9, then 500 samples long
    run = Run("replay", 0, "complete", {}, {"samples": samples, "score": np.array([500.0, 9.0, 500.0])}, {})
    strip = _strip(run, np.linspace(0.0, 1100.0, 12))  # 11 columns of 100 samples
    np.testing.assert_array_equal(strip[:5], [500.0] * 5)
    assert strip[5] == 9.0  # the column holding samples 500..600
    np.testing.assert_array_equal(strip[6:10], [500.0] * 4)
    assert strip[10] == 500.0 and math.isnan(_strip(run, np.linspace(0.0, 2000.0, 21))[-1])


@pytest.mark.parametrize(
    "value, shown",
    [(None, "—"), (float("nan"), "—"), (10000, "10,000"), (635968.0, "635,968"), (999.6, "1,000"), (44.10159, "44.1"),
     (0.109375, "0.109"), (0.5, "0.5"), (7.0, "7"), (0, "0"), (-3.14159, "-3.14"), (True, "true")],
)  # fmt: skip
def test_fmt(value, shown):
    assert fmt(value) == shown
