"""Terminal output for long commands: a live progress display with plain lines above it (train, compare).

Off a terminal (a pipe, a log file, CI) the bars are off and only the lines
are printed, so logs stay readable.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dqnlab.experiments.events import (
    Advanced,
    Ended,
    Event,
    Finished,
    Planned,
    Retried,
    Started,
    TimingAlone,
    outcome_line,
)

if TYPE_CHECKING:
    from dqnlab.engine.records import EpisodeRecord, TrainResult
    from dqnlab.experiments.sweep import Remaining


class LiveDisplay:
    """A rich Progress on stdout; `line` prints above it unless quiet."""

    def __init__(self, *columns: Any, quiet: bool = False, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self.quiet = quiet
        self.console = Console(highlight=False, markup=False, soft_wrap=True)
        self.progress = Progress(
            *columns, console=self.console, disable=quiet or not self.console.is_terminal, transient=transient
        )

    def __enter__(self) -> "LiveDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.progress.stop()

    def line(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)


class TrainDisplay:
    """`dqnlab train`: a progress bar over the sample budget with the tutorial's lines above it."""

    def __init__(self, total: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("samples"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        self.live = LiveDisplay(*columns, quiet=quiet, transient=True)
        self.task = self.live.progress.add_task("train", total=total)

    def advance(self, samples: int) -> None:
        self.live.progress.update(self.task, completed=samples)

    def episode(self, record: EpisodeRecord) -> None:
        if not self.live.quiet:
            self.advance(record.samples)
            self.live.line(episode_line(record))


def episode_line(record: EpisodeRecord) -> str:
    """The tutorial's line. Its `last-episode-time` counted from 1 (length + 1); this prints the length."""
    return (
        f"total samples: {record.samples}, ep {record.episode}: high-score {record.high_score:12.3f}, "
        f"score {record.score:12.3f}, length {record.length:4d}"
    )


def summary_line(result: TrainResult, summary: dict) -> str:
    """The run's totals; for a run with greedy evaluations, its last one (what measures a run that did not act)."""
    line = (
        f"done: {summary['episodes']} episodes, {result.samples:,} samples, {summary['learn_steps']:,} learn steps, "
        f"{summary['transitions_processed']:,} transitions processed, {result.wall_seconds:.1f} s; "
        f"replay memory {summary['replay_bytes_per_transition']} bytes/transition"
    )
    if result.evaluations:
        last = result.evaluations[-1]
        line += (f"\nlast greedy evaluation (sample {last.samples:,}): mean score {last.mean_score:.1f} over "
                 f"{last.episodes} episodes, {last.capped} reached the {result.config.run.eval_max_steps:,}-step cap")  # fmt: skip
    return line


class SweepDisplay:
    """`dqnlab compare`: the plan, runs done / total, a bar per unit in progress, and a line per finished run."""

    def __init__(self, budget: int, out: Path, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description:>24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.live = LiveDisplay(*columns, quiet=quiet)
        self.budget, self.out, self.failed = budget, out, 0
        self.done = self.total = 0
        self.overall: Any = None
        self.bars: dict[str, Any] = {}
        self.started, self.finished, self.samples = time.monotonic(), 0, 0  # throughput of this invocation

    def event(self, event: Event) -> None:
        progress = self.live.progress
        if isinstance(event, Planned):
            self._planned(event)
        elif isinstance(event, Started):
            self.bars[event.key] = progress.add_task(event.key, total=self.budget)
        elif isinstance(event, Advanced) and event.key in self.bars:
            progress.update(self.bars[event.key], completed=event.samples)
        elif isinstance(event, Ended) and event.key in self.bars:
            progress.remove_task(self.bars.pop(event.key))
        elif isinstance(event, Retried):
            self.live.line(f"retrying {event.key}: {event.reason}")
        elif isinstance(event, Finished):
            self._finished(event)
        elif isinstance(event, TimingAlone):
            self.live.line(f"timing one agent alone: {event.variant}, seed {event.seed}, on one thread "
                           "(per-second figures of runs that shared a clock use this)")  # fmt: skip

    def _planned(self, plan: Planned) -> None:
        self.done, self.total = plan.kept, plan.kept + plan.to_run
        self.overall = self.live.progress.add_task("runs", total=self.total, completed=self.done)
        self.live.line(f"{plan.variants} variants x {plan.seeds} seeds = {self.total} runs of {plan.samples:,} samples "
                       f"-> {self.out}; {plan.kept} already done, {plan.to_run} to run {plan.how}")  # fmt: skip
        for key, why in sorted(plan.redone.items()):
            if not self.live.quiet:
                click.echo(f"redoing {key}: {why}", err=True)

    def _finished(self, event: Finished) -> None:
        self.failed += event.failed
        self.done += 1
        if event.key in self.bars:
            self.live.progress.remove_task(self.bars.pop(event.key))
        if self.overall is not None:
            self.live.progress.update(self.overall, completed=self.done)
        self.finished, self.samples = self.finished + 1, self.samples + int(event.outcome.get("samples") or 0)
        minutes = max(time.monotonic() - self.started, 1e-9) / 60
        rate = f"{self.finished / minutes:.1f} runs/min, {self.samples / minutes / 60:,.0f} samples/s"
        self.live.line(f"[{self.done}/{self.total}] {event.key}: {outcome_line(event.outcome)} ({rate} so far)")


def remaining_line(remaining: Remaining) -> str:
    """What a sweep stopped by its time limit left, and what the rest costs at the pace measured in it."""
    head = f"time limit reached: {remaining.done} of {remaining.total} runs done ({remaining.to_go} to go); "
    if remaining.seconds is None:
        timed_any = any(cost.unit_seconds is not None for cost in remaining.costs)
        which = " of " + ", ".join(remaining.untimed) if timed_any else ""  # some variant's pace is known, not all
        return head + (f"no {remaining.unit}{which} finished in this sweep, so what the rest costs cannot be estimated yet; "
                       "rerun the same command to resume")  # fmt: skip
    paces = ", ".join(f"{cost.variant} {cost.unit_seconds:,.0f} s" for cost in remaining.costs if cost.to_go)
    sizes = sorted({cost.runs_per_unit for cost in remaining.costs if cost.to_go})
    unit = f"population of {sizes[0]} seeds" if remaining.unit == "population" and len(sizes) == 1 else remaining.unit
    workers = f"{remaining.parallel} worker{'s' if remaining.parallel != 1 else ''}"
    return head + (f"at the median times per {unit} measured here ({paces}; {workers}), the rest needs about "
                   f"{duration_text(remaining.seconds)} on this machine; rerun the same command to resume")  # fmt: skip


def duration_text(seconds: float) -> str:
    """Seconds in the unit a person plans with: 45 s, 12 min, 7.8 h, 2.5 days."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
