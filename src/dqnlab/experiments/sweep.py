"""A sweep: plan an experiment's runs in a results directory, run what is missing on a backend, time one agent alone.

Nothing here prints: everything that happens is a typed event (`events.py`)
passed to `on_event`. The results directory is held (marker and lock,
`rundir.ownership.output_dir`) from planning to the end of `finish`, which
the caller uses to build the report under the same lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dqnlab.experiments.backends import Backend
from dqnlab.experiments.clock import time_one_agent, variants_to_time
from dqnlab.experiments.events import Event, Finished, OnEvent, Planned, TimingAlone
from dqnlab.experiments.runner import Plan, check_experiment, plan, raise_disk_error, write_experiment
from dqnlab.experiments.spec import Experiment
from dqnlab.rundir.ownership import output_dir
from dqnlab.rundir.writer import write_failure


def sweep(
    experiment: Experiment,
    out: Path,
    backend: Backend,
    overwrite: bool = False,
    on_event: OnEvent | None = None,
    finish: Callable[[Path], Any] | None = None,
) -> tuple[Plan, Any]:
    """Run the experiment's missing runs into `out`; returns the plan and what `finish(out)` returned.

    Raises DqnlabError before anything is written for a device or cluster that
    cannot run it, a directory that is not dqnlab's or is in use, or a
    different experiment there (unless `overwrite`); DiskError when the disk
    refuses a write (the sweep stops; rerunning resumes); KeyboardInterrupt as
    it came (finished runs are kept).
    """
    emit = on_event or (lambda event: None)
    devices = {experiment.config(variant, experiment.seeds[0]).run.device for variant in experiment.variants}
    with backend.session(devices):  # the devices checked, Ray joined (or refused), before anything is written
        with output_dir(out, "results", "dqnlab compare", overwrite=overwrite, keep=True):
            check_experiment(out, experiment)  # nothing has been written yet
            work = plan(experiment, out)
            write_experiment(out, experiment)
            emit(Planned(len(experiment.variants), len(experiment.seeds), experiment.samples, len(work.kept),
                         len(work.tasks), backend.describe(work.tasks), dict(work.redone)))  # fmt: skip

            run_dirs = {task.key: task.run_dir for task in work.tasks}

            def relay(event: Event) -> None:  # failures are marked here, once, whatever the backend
                if isinstance(event, Finished) and event.failed:
                    raise_disk_error(event.outcome)
                    write_failure(run_dirs[event.key], event.outcome.get("error", ""))
                emit(event)

            backend.run(work.tasks, relay)
            for name in variants_to_time(experiment, out):  # shared clocks: time one agent alone
                emit(TimingAlone(name, experiment.seeds[0]))
                time_one_agent(experiment, out, name)
            return work, finish(out) if finish is not None else None
