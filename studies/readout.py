"""A study's result as the README's tables, read from its results directory.

    python studies/readout.py same-stream [--results results/same-stream]

Every figure comes from what `dqnlab compare` (or `dqnlab study`) wrote:
summary.json's per-variant measures and paired comparisons, and for
`long-naive` and `minatar-replay` each run's evaluations.csv or episodes.csv. IQMs carry their 95% bootstrap CIs
(`dqnlab.analysis.stats.aggregate`); verdicts are the paired sign tests
summary.json holds (Holm-adjusted within each pair's measures), or for
`long-naive` an exact sign test per row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dqnlab.analysis import metrics, stats
from dqnlab.analysis.comparisons import find
from dqnlab.analysis.runs import load_experiment
from dqnlab.reporting.formatting import fmt, interval

BEHAVIOURS = ("random", "handset", "naive", "replay")
WIDTHS = (8, 32, 128, 512, 1024)
REPLAY_BUDGET = 20_000  # long-naive: the replay agent is read at this evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=sorted(READOUTS))
    parser.add_argument("--results", type=Path, default=None, help="the results directory [default: results/STUDY]")
    args = parser.parse_args(argv)
    out = args.results or Path("results") / args.study
    if args.study not in STUDIES_OF_GAMES and not (out / "summary.json").is_file():
        print(f"error: {out} holds no summary.json; run the study first", file=sys.stderr)
        return 2
    print(READOUTS[args.study](out))
    return 0


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text())


def _iqm(summary: dict[str, Any], name: str, key: str) -> str:
    block = summary["variants"].get(name, {}).get("measures", {}).get(key, {})
    return interval(block.get("iqm"), block.get("iqm_low"), block.get("iqm_high")) if block.get("n") else "—"


def _verdict(summary: dict[str, Any], a: str, b: str, key: str) -> tuple[str, str]:
    """("b better on k of n seeds", "Holm p, verdict") from summary.json's paired comparison of a and b."""
    row = find(summary["comparisons"], a, b, key)
    if row is None:
        return "—", "—"
    return f"{row['b_wins']} of {row['n_pairs']} ({row['ties']} ties)", f"{fmt(row['holm_p'])}, {row['verdict']}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def same_stream(out: Path) -> str:
    """Per behaviour: the naive rule against the replay rule on that behaviour's stream, by greedy evaluation."""
    summary, rows = _summary(out), []
    for behaviour in BEHAVIOURS:
        naive, replay = f"naive-on-{behaviour}", f"replay-on-{behaviour}"
        for key, what in (("greedy_final", "last"), ("greedy_mean", "mean")):
            wins, verdict = _verdict(summary, naive, replay, key)
            rows.append((behaviour, what, _iqm(summary, naive, key), _iqm(summary, replay, key), wins, verdict))
    header = ("behaviour", "greedy score", "naive rule IQM [CI]", "replay rule IQM [CI]", "replay rule better on", "Holm p, verdict")
    return _table(header, rows)


def width(out: Path) -> str:
    """Per width: both agents' final failure rate, forgetting and excess repurposing, and replay against naive."""
    summary, rows = _summary(out), []
    for w in WIDTHS:
        naive, replay = f"naive-{w}", f"replay-{w}"
        if naive not in summary["variants"]:
            continue
        for name in (naive, replay):
            wins, verdict = _verdict(summary, naive, replay, "final_failure_rate") if name == replay else ("", "")
            rows.append((str(w), name.split("-")[0], _iqm(summary, name, "final_failure_rate"), _iqm(summary, name, "relative_drawdown"),
                         _iqm(summary, name, "collapse_rate"), _iqm(summary, name, "excess_repurposed_share"), wins, verdict))  # fmt: skip
    header = ("width", "agent", "failures per 1,000, last 20%", "relative drawdown", "collapses per 1,000 after 200",
              "excess repurposed share", "replay better (final failures) on", "Holm p, verdict")  # fmt: skip
    return _table(header, rows)


def long_naive(out: Path) -> str:
    """The naive agent against the replay agent at 20,000 samples, seed by seed, at each evaluation point: by its
    greedy score there, and by its failures per 1,000 training samples over the window of 4,000 samples before it
    (the last 20% of a 20,000-sample budget, the report's final failure rate)."""
    experiment, runs = load_experiment(out)
    return _greedy_table(experiment, runs) + "\n\n" + _failure_table(experiment, runs)


WINDOW = REPLAY_BUDGET // 5  # the last 20% of the replay agent's budget


def _failure_table(experiment, runs) -> str:
    failures = {(run.variant, run.seed): metrics.failure_samples(run.episodes["samples"], run.episodes["terminated"])
                for run in runs if run.usable}  # fmt: skip
    seeds = [s for s in experiment.seeds if ("naive", s) in failures and ("replay", s) in failures]
    if not seeds:
        return "no seed has both agents' episodes yet"

    def rates(variant: str, end: int) -> np.ndarray:  # (n,) failures per 1,000 samples over (end - WINDOW, end]
        return np.array([metrics.failure_rate(failures[(variant, s)], end - WINDOW, end) for s in seeds])

    target = rates("replay", REPLAY_BUDGET)  # (n,)
    rows = [("replay", fmt(REPLAY_BUDGET), _aggregate(target), "—")]
    for end in range(REPLAY_BUDGET, experiment.samples + 1, REPLAY_BUDGET):  # every 20,000 samples
        naive = rates("naive", end)  # (n,)
        wins, losses = int((naive < target).sum()), int((naive > target).sum())
        rows.append(("naive", fmt(end), _aggregate(naive),
                     f"{wins} / {losses} / {len(seeds) - wins - losses} (p {fmt(stats.sign_test(wins, losses))})"))  # fmt: skip
    anywhere = sum(
        any(metrics.failure_rate(failures[("naive", s)], end - WINDOW, end) <= t for end in range(WINDOW, experiment.samples + 1, 1000))
        for s, t in zip(seeds, target)
    )  # fmt: skip
    header = ("agent", "window ends at sample", f"failures per 1,000 over the {fmt(WINDOW)} samples before, IQM [CI]",
              "naive below / above / tied with replay at 20,000 (sign test)")  # fmt: skip
    return (_table(header, rows) + f"\n\nOn {anywhere} of {len(seeds)} seeds at least one of the naive agent's windows of "
            f"{fmt(WINDOW)} samples ending on a multiple of 1,000 (the best of about {experiment.samples // 1000} per seed) had "
            "at most its seed's replay rate at 20,000.")  # fmt: skip


def _greedy_table(experiment, runs) -> str:
    greedy = {}  # (variant, seed) -> {samples: (mean score, learn steps)}
    for run in runs:
        if run.usable and len(run.evaluations.get("samples", ())):
            e = run.evaluations
            greedy[(run.variant, run.seed)] = {int(s): (float(m), int(l)) for s, m, l in zip(e["samples"], e["mean_score"], e["learn_steps"])}
    seeds = [s for s in experiment.seeds if ("naive", s) in greedy and ("replay", s) in greedy]
    if not seeds:
        return "no seed has both agents' evaluations yet"
    target = np.array([greedy[("replay", s)][REPLAY_BUDGET][0] for s in seeds])  # (n,) replay at its budget
    replay_steps = int(np.median([greedy[("replay", s)][REPLAY_BUDGET][1] for s in seeds]))
    rows = [("replay", fmt(REPLAY_BUDGET), _aggregate(target), "—", f"{fmt(replay_steps)} x 64 = {fmt(replay_steps * 64)}")]
    points = sorted(set.intersection(*(set(greedy[("naive", s)]) for s in seeds)))
    for samples in points:
        scores = np.array([greedy[("naive", s)][samples][0] for s in seeds])  # (n,)
        wins, losses = int((scores > target).sum()), int((scores < target).sum())
        steps = int(np.median([greedy[("naive", s)][samples][1] for s in seeds]))
        rows.append(("naive", fmt(samples), _aggregate(scores),
                     f"{wins} / {losses} / {len(seeds) - wins - losses} (p {fmt(stats.sign_test(wins, losses))})", f"{fmt(steps)} x 1 = {fmt(steps)}"))  # fmt: skip
    reached = [next((samples for samples in points if greedy[("naive", s)][samples][0] >= greedy[("replay", s)][REPLAY_BUDGET][0]), None) for s in seeds]
    header = ("agent", "samples", "greedy score IQM [CI]", "naive above / below / tied with replay at 20,000 (sign test)",
              "learn steps x batch = transitions processed (median)")  # fmt: skip
    ever = sum(r is not None for r in reached)
    first = sorted(r for r in reached if r is not None)
    note = (f"\n\nOn {ever} of {len(seeds)} seeds the naive agent's greedy score reached its seed's replay score at 20,000 samples "
            f"at some evaluation" + (f" (first at a median of {fmt(float(np.median(first)))} samples among those)" if first else "") + ".")  # fmt: skip
    return _table(header, rows) + note


def _aggregate(values: np.ndarray) -> str:
    block = stats.aggregate(values)
    return interval(block["iqm"], block["iqm_low"], block["iqm_high"])


def deploy(out: Path) -> str:
    from dqnlab.deploy import deploy_text

    path = out / "deploy.json"
    if not path.is_file():
        return f"{path} does not exist: run `dqnlab study deploy`"
    return deploy_text(json.loads(path.read_text()))


def conclusion(out: Path) -> str:
    summary = _summary(out)
    runs = summary["runs"]
    return "\n".join([f"{runs['used']} of {runs['total']} runs used.", *summary["conclusion"]])


# Young & Tian (2019), MinAtar's img/learning_curves.gif (repository commit 4241f24): the "moving average of
# returns over 100 episodes", mean of 30 runs, of DQN and of DQN without replay, read off the curves by pixel
# (in each column of the panel, the median row of the curve's colour, mapped through the axis ticks; averaged
# over columns within 0.02 million frames of the point). Their readings are good to about 0.1 of a tick step.
PAPER = {
    "Breakout-v0": {"replay": (4.46, 6.11, 7.22), "noreplay": (2.64, 3.53, 3.87)},
    "SpaceInvaders-v0": {"replay": (16.9, 21.0, 22.6), "noreplay": (3.02, 6.05, 7.77)},
}
PAPER_FRAMES = (100_000, 200_000, 300_000)
LAST_EPISODES = 100  # the paper's moving average


def minatar_replay(out: Path) -> str:
    """Per game, the paper's statistic beside ours at 100,000, 200,000 and 300,000 frames: the mean return of the
    last 100 episodes finished by then, averaged over seeds (the paper: over 30 runs); then our paired verdicts."""
    parts = []
    for game in sorted(path.name for path in out.iterdir() if (path / "summary.json").is_file()):
        experiment, runs = load_experiment(out / game)
        rows = []
        for variant in ("noreplay", "replay"):
            usable = [run for run in runs if run.variant == variant and run.usable]
            for i, frames in enumerate(PAPER_FRAMES):
                if frames > experiment.samples or not usable:
                    continue
                ours = np.array([_last_mean(run, frames) for run in usable])  # (n,)
                block = stats.aggregate(ours)
                paper = PAPER.get(game, {}).get(variant)
                rows.append((game, variant, fmt(frames), fmt(paper[i]) if paper else "—",
                             f"{interval(block['mean'], block['mean_low'], block['mean_high'])} ({len(usable)} seeds)"))  # fmt: skip
        summary = _summary(out / game)
        verdicts = [(key, *_verdict(summary, "noreplay", "replay", key), _iqm(summary, "noreplay", key), _iqm(summary, "replay", key))
                    for key in ("final_return", "return_auc", "time_return_auc", "return_drawdown", "episode_score")]  # fmt: skip
        parts.append(_table(("game", "variant", "frames", "paper (mean of 30 runs)", "dqnlab: mean [95% CI]"), rows))
        parts.append(_table(("measure", "replay better on", "Holm p, verdict", "noreplay IQM [CI]", "replay IQM [CI]"),
                            [(key, wins, verdict, a, b) for key, wins, verdict, a, b in verdicts]))  # fmt: skip
    return "\n\n".join(parts) or f"no game of {out} has a summary.json yet"


def _last_mean(run, frames: int) -> float:
    """The mean return of the last LAST_EPISODES episodes that ended by `frames` (fewer if fewer had)."""
    ends, returns = run.episodes["samples"], run.episodes["score"]  # (E,) each
    done = returns[ends <= frames]  # (E',)
    return float(done[-LAST_EPISODES:].mean()) if len(done) else float("nan")


READOUTS = {"same-stream": same_stream, "width": width, "long-naive": long_naive, "deploy": deploy,
            "tutorial-100": conclusion, "replay-designs": conclusion, "minatar-replay": minatar_replay}  # fmt: skip
STUDIES_OF_GAMES = ("minatar-replay",)  # their results directory holds one results directory per game

if __name__ == "__main__":
    sys.exit(main())
