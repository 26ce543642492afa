"""A sweep: plan an experiment's runs in a results directory, run what is missing on a backend, time one agent alone.

Nothing here prints: everything that happens is a typed event (`events.py`)
passed to `on_event`. The results directory is held (marker and lock,
`rundir.ownership.output_dir`) from planning to the end of `finish`, which
the caller uses to build the report under the same lock.

A time limit (`runner.TimeLimit`) stops the sweep from starting work once it
has passed; what is left, and what it costs at the pace measured here, is
returned as `Remaining`, and rerunning resumes.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from dqnlab.experiments.backends import Backend
from dqnlab.experiments.clock import time_one_agent, variants_to_time
from dqnlab.experiments.events import Event, Finished, OnEvent, Planned, TimingAlone
from dqnlab.experiments.runner import (
    KEPT_STATUSES,
    Plan,
    TimeLimit,
    check_experiment,
    plan,
    raise_disk_error,
    write_experiment,
)
from dqnlab.experiments.spec import Experiment
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.writer import write_failure


@dataclass(frozen=True)
class VariantCost:
    """One variant's runs left, and the pace its own finished units set (variants differ: replay costs more)."""

    variant: str
    to_go: int  # its runs not finished
    runs_per_unit: int  # median runs per finished unit of it (a population's seeds; 1 for single runs)
    unit_seconds: float | None  # median seconds per finished unit of it; None when none finished in this sweep


@dataclass(frozen=True)
class Remaining:
    """What a sweep stopped by its time limit left to do, and its cost at the pace measured in that sweep."""

    total: int  # runs of the experiment
    done: int  # finished runs (complete or diverged), kept from before or finished in this sweep
    deferred: int  # runs this sweep never started (missing from the report by choice, not by failure)
    unit: str  # what the backend times: "run", or "population"
    costs: tuple[VariantCost, ...]  # per variant, in the experiment's order
    parallel: int  # units side by side
    seconds: float | None  # the estimate for the rest; None when it cannot be made yet

    @property
    def to_go(self) -> int:
        return self.total - self.done

    @property
    def untimed(self) -> list[str]:
        """Variants with runs to go and no finished unit to set their pace."""
        return [cost.variant for cost in self.costs if cost.to_go and cost.unit_seconds is None]


@dataclass(frozen=True)
class Swept:
    plan: Plan
    finished: Any  # what `finish(out)` returned
    remaining: Remaining | None  # set when the time limit stopped the sweep before every run had started


def remaining_seconds(costs: Sequence[VariantCost], parallel: int) -> float | None:
    """Seconds the runs left need: each variant's units to go at its own median unit time, that work shared by
    `parallel` workers, and never less than the longest unit (one run left on two workers takes a run's time).

    None when a variant with runs to go has no timed unit: its pace is not known.
    """
    going = [cost for cost in costs if cost.to_go > 0]
    if not going:
        return 0.0
    if any(cost.unit_seconds is None for cost in going):
        return None
    work = sum(math.ceil(cost.to_go / max(1, cost.runs_per_unit)) * cost.unit_seconds for cost in going)
    return max(work / max(1, parallel), max(cost.unit_seconds for cost in going))


def remaining_after(limit: TimeLimit, totals: dict[str, int], done: dict[str, int], deferred: int) -> Remaining:
    """The `Remaining` of a sweep that `limit` stopped: `totals` and `done` runs per variant, the units it timed."""
    costs = []
    for variant, total in totals.items():
        units = [(runs, seconds) for name, runs, seconds in limit.units if name == variant]
        costs.append(VariantCost(
            variant, total - done[variant], round(statistics.median([runs for runs, _ in units])) if units else 1,
            statistics.median([seconds for _, seconds in units]) if units else None,
        ))  # fmt: skip
    return Remaining(total=sum(totals.values()), done=sum(done.values()), deferred=deferred, unit=limit.unit,
                     costs=tuple(costs), parallel=limit.parallel, seconds=remaining_seconds(costs, limit.parallel))  # fmt: skip


def sweep(
    experiment: Experiment,
    out: Path,
    backend: Backend,
    overwrite: bool = False,
    on_event: OnEvent | None = None,
    finish: Callable[[Path], Any] | None = None,
    limit: TimeLimit | None = None,
) -> Swept:
    """Run the experiment's missing runs into `out`, starting none once `limit` has passed; then `finish(out)`.

    Raises DqnlabError before anything is written for a device or cluster that
    cannot run it, a directory that is not dqnlab's or is in use, or a
    different experiment there (unless `overwrite`); DiskError when the disk
    refuses a write (the sweep stops; rerunning resumes); KeyboardInterrupt as
    it came (finished runs are kept). A sweep the limit stopped skips timing
    one agent alone (that is a run too); the rerun that finishes does it.
    """
    emit = on_event or (lambda event: None)
    limit = limit or TimeLimit()
    limit.start()
    devices = {experiment.config(variant, experiment.seeds[0]).run.device for variant in experiment.variants}
    with backend.session(devices):  # the devices checked, Ray joined (or refused), before anything is written
        with output_dir(out, "results", "dqnlab compare", overwrite=overwrite, keep=True):
            check_experiment(out, experiment)  # nothing has been written yet
            work = plan(experiment, out)
            write_experiment(out, experiment)
            emit(Planned(len(experiment.variants), len(experiment.seeds), experiment.samples, len(work.kept),
                         len(work.tasks), backend.describe(work.tasks), dict(work.redone)))  # fmt: skip

            run_dirs = {task.key: task.run_dir for task in work.tasks}
            ended: dict[str, bool] = {}  # key -> finished (complete or diverged)

            def relay(event: Event) -> None:  # failures are marked here, once, whatever the backend
                if isinstance(event, Finished):
                    ended[event.key] = event.outcome.get("status") in KEPT_STATUSES
                    if event.failed:
                        raise_disk_error(event.outcome)
                        write_failure(run_dirs[event.key], event.outcome.get("error", ""))
                emit(event)

            backend.run(work.tasks, relay, limit)
            remaining = None
            if limit.reached:
                totals = {variant.name: len(experiment.seeds) for variant in experiment.variants}
                done = {name: sum(key.split("/")[0] == name for key in work.kept) for name in totals}
                for task in work.tasks:
                    done[task.variant] += ended.get(task.key, False)
                remaining = remaining_after(limit, totals, done, len(work.tasks) - len(ended))
            else:
                for name in variants_to_time(experiment, out):  # shared clocks: time one agent alone
                    emit(TimingAlone(name, experiment.seeds[0]))
                    time_one_agent(experiment, out, name)
            return Swept(work, finish(out) if finish is not None else None, remaining)
