"""`dqnlab compare`: plan, run what is missing, then analyse everything."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import click

from dqnlab.analysis.report import build_report
from dqnlab.display import LiveDisplay
from dqnlab.errors import DqnlabError
from dqnlab.runtime import resolve_device
from dqnlab.experiments.clock import time_one_agent, variants_to_time
from dqnlab.experiments.cluster import ray_session, run_ray
from dqnlab.experiments.local import Event, outcome_line, run_local
from dqnlab.experiments.population import populations, run_populations
from dqnlab.experiments.runner import Plan, check_experiment, plan, raise_disk_error, write_experiment
from dqnlab.rundir.ownership import output_dir
from dqnlab.experiments.spec import Experiment


BACKENDS = ("local", "population", "ray")


def compare(
    experiment: Experiment,
    out: Path,
    workers: int,
    overwrite: bool = False,
    quiet: bool = False,
    backend: str = "local",
    population_size: int | None = None,
    address: str | None = None,
) -> dict[str, Any]:
    """Run the experiment's missing runs into `out` and (re)build its report; returns the summary.

    backend "local": `workers` processes, one run each at a time. "population":
    each variant's seeds train together in populations of up to
    `population_size` members (all of them if None), on `workers` torch threads.
    "ray": one Ray task per run (or per population of up to `population_size`
    seeds), on the cluster at `address` or on a local Ray instance of `workers` CPUs.
    """
    if backend not in BACKENDS:
        raise DqnlabError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise DqnlabError("--address applies to --backend ray only")
    devices = {experiment.config(variant, 0).run.device for variant in experiment.variants}
    if backend != "ray":
        for device in devices:
            resolve_device(device)  # no GPU where one is asked for: one line now, not a failure per run
    session = ray_session(address, workers) if backend == "ray" else contextlib.nullcontext()
    with session as ray:  # Ray joined (or refused) before anything is written
        if ray is not None and any(d.startswith("cuda") for d in devices) and not ray.cluster_resources().get("GPU"):
            raise DqnlabError("run.device is cuda but the Ray cluster has no GPU")
        return _compare(experiment, out, workers, overwrite, quiet, backend, population_size, address)


def _compare(experiment, out, workers, overwrite, quiet, backend, population_size, address) -> dict[str, Any]:
    with output_dir(out, "results", "dqnlab compare", overwrite=overwrite, keep=True):
        check_experiment(out, experiment)  # nothing has been written yet
        work = plan(experiment, out)
        write_experiment(out, experiment)
        return _sweep(experiment, out, work, workers, quiet, backend, population_size, address)


def _sweep(experiment, out, work: Plan, workers, quiet, backend, population_size, address) -> dict[str, Any]:
    echo = (lambda *a, **k: None) if quiet else click.echo
    total = len(work.tasks) + len(work.kept)
    if backend == "population":
        chunks = populations(work.tasks, population_size)
        how = f"as {len(chunks)} population(s) of up to {max((len(c) for c in chunks), default=0)} seeds on {workers} thread(s)"
    elif backend == "ray":
        unit = f"populations of up to {population_size} seeds" if population_size else "one run each"
        how = f"as Ray tasks ({unit}) on {'the cluster at ' + address if address else f'a local Ray instance of {workers} CPU(s)'}"
    else:
        how = f"on {min(workers, max(len(work.tasks), 1))} worker(s)"
        if min(workers, len(work.tasks)) > (os.cpu_count() or 1):  # runs share cores: their seconds are not one agent's
            work.tasks = [dataclasses.replace(task, clock="shared") for task in work.tasks]
    echo(
        f"{len(experiment.variants)} variants x {len(experiment.seeds)} seeds = {total} runs of "
        f"{experiment.samples:,} samples -> {out}; {len(work.kept)} already done, {len(work.tasks)} to run {how}"
    )
    for key, why in sorted(work.redone.items()):
        echo(f"redoing {key}: {why}", err=True)
    display = _SweepDisplay(work, experiment.samples, quiet)
    with display.live:
        try:
            if backend == "population":
                run_populations(work.tasks, display.event, population_size, workers)
            elif backend == "ray":
                run_ray(work.tasks, display.event, population_size)
            else:
                run_local(work.tasks, workers, display.event)
            for name in variants_to_time(experiment, out):  # shared clocks: time one agent alone
                display.live.line(f"timing one agent alone: {name}, seed {experiment.seeds[0]}, on one thread "
                                  "(per-second figures of runs that shared a clock use this)")  # fmt: skip
                time_one_agent(experiment, out, name)
        except KeyboardInterrupt:
            display.live.stop()
            click.echo(f"interrupted: finished runs are kept; rerun the same command to resume into {out}", err=True)
            raise SystemExit(130) from None
    if display.failed:
        echo(f"{display.failed} run(s) failed this time; rerunning the same command retries them", err=True)
    return build_report(out)


class _SweepDisplay:
    """Runs done / total, and a bar per run in progress; a line per finished run."""

    def __init__(self, work: Plan, budget: int, quiet: bool) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description:>24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.live = LiveDisplay(*columns, quiet=quiet)
        self.budget, self.failed = budget, 0
        self.done, self.total = len(work.kept), len(work.kept) + len(work.tasks)
        self.overall = self.live.progress.add_task("runs", total=self.total, completed=self.done)
        self.bars: dict[str, Any] = {}
        self.started, self.finished, self.samples = time.monotonic(), 0, 0  # throughput of this invocation

    def event(self, event: Event) -> None:
        kind, key = event[0], event[1]
        progress = self.live.progress
        if kind == "start":
            self.bars[key] = progress.add_task(key, total=self.budget)
        elif kind == "progress" and key in self.bars:
            progress.update(self.bars[key], completed=event[2])
        elif kind == "end" and key in self.bars:
            progress.remove_task(self.bars.pop(key))
        elif kind == "retry":
            self.live.line(f"retrying {key}: {event[2]}")
        elif kind == "done":
            outcome = event[2]
            raise_disk_error(outcome)
            self.failed += outcome.get("status") == "failed"
            self.done += 1
            if key in self.bars:
                progress.remove_task(self.bars.pop(key))
            progress.update(self.overall, completed=self.done)
            self.finished, self.samples = self.finished + 1, self.samples + int(outcome.get("samples") or 0)
            minutes = max(time.monotonic() - self.started, 1e-9) / 60
            rate = f"{self.finished / minutes:.1f} runs/min, {self.samples / minutes / 60:,.0f} samples/s"
            self.live.line(f"[{self.done}/{self.total}] {key}: {outcome_line(outcome)} ({rate} so far)")
