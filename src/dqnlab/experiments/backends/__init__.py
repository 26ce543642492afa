"""The backends that run a sweep's tasks, behind one interface: `backend.run(tasks, on_event)`.

- `local`: worker processes, one run each at a time, one torch thread each;
- `population`: each variant's seeds as populations, on worker processes, one torch thread each;
- `cluster`: Ray tasks, one run or one population each, on a cluster or a local Ray instance.

Every backend writes ordinary run directories and reports typed events
(`experiments.events`); resume, failure marking and the display live above it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, ContextManager, Iterator, Protocol

from dqnlab.errors import DqnlabError
from dqnlab.experiments.events import OnEvent
from dqnlab.experiments.spec import BACKENDS
from dqnlab.experiments.runner import RunTask, TimeLimit, paired_first
from dqnlab.runtime import resolve_device


class Backend(Protocol):
    def session(self, devices: set[str]) -> ContextManager[Any]:
        """Held around planning and running: refuses `devices` it cannot run on (and joins a cluster) before anything is written."""

    def describe(self, tasks: list[RunTask]) -> str:
        """How the tasks will run, in words: "on 2 worker(s)"."""

    def run(self, tasks: list[RunTask], on_event: OnEvent, limit: TimeLimit | None = None) -> None:
        """Run the tasks into their directories, seed-major (whole pairs first), reporting events; a run's own
        failure is a Finished event, not an error. Nothing new starts once `limit` has passed."""


@dataclasses.dataclass(frozen=True)
class Local:
    workers: int

    def session(self, devices: set[str]) -> ContextManager[Any]:
        return _on_this_machine(devices)

    def describe(self, tasks: list[RunTask]) -> str:
        return f"on {min(self.workers, max(len(tasks), 1))} worker(s)"

    def run(self, tasks: list[RunTask], on_event: OnEvent, limit: TimeLimit | None = None) -> None:
        from dqnlab.experiments.backends.local import Unit, run_local

        tasks = paired_first(_sharing_cores(tasks, self.workers))
        run_local([Unit([task], population=False) for task in tasks], self.workers, on_event, limit=limit)


@dataclasses.dataclass(frozen=True)
class Population:
    size: int | None  # most seeds per population; None: each variant's seeds cut into one population per worker
    workers: int  # processes side by side, one torch thread each

    def session(self, devices: set[str]) -> ContextManager[Any]:
        return _on_this_machine(devices)

    def describe(self, tasks: list[RunTask]) -> str:
        chunks = self._populations(tasks)
        processes = self._processes(tasks, chunks)
        where = "in this process" if processes == 1 else f"on {processes} worker processes"
        return f"as {len(chunks)} population(s) of up to {max((len(c) for c in chunks), default=0)} seeds {where}, one thread each"

    def run(self, tasks: list[RunTask], on_event: OnEvent, limit: TimeLimit | None = None) -> None:
        from dqnlab.experiments.backends.local import Unit, run_local
        from dqnlab.experiments.backends.population import interleave, run_populations

        tasks = _sharing_cores(tasks, self.workers)
        chunks = interleave(self._populations(tasks))  # the k-th population of every variant, then the next
        if self._processes(tasks, chunks) == 1:
            run_populations(chunks, on_event, limit=limit)
        else:
            run_local([Unit(chunk, population=True) for chunk in chunks], self.workers, on_event, progress_every=500, limit=limit)

    def _populations(self, tasks: list[RunTask]) -> list[list[RunTask]]:
        from dqnlab.experiments.backends.population import populations

        return populations(tasks, self.size, parts=1 if _on_gpu(tasks) else self.workers)

    def _processes(self, tasks: list[RunTask], chunks: list[list[RunTask]]) -> int:
        """Worker processes: one per population up to `workers`; none (this process) with one, or on a GPU."""
        return 1 if _on_gpu(tasks) else max(1, min(self.workers, len(chunks)))


def _sharing_cores(tasks: list[RunTask], workers: int) -> list[RunTask]:
    """The tasks, marked as sharing a clock when more workers than cores run them: their seconds are not one agent's."""
    if min(workers, len(tasks)) > (os.cpu_count() or 1):
        return [dataclasses.replace(task, clock="shared") for task in tasks]
    return tasks


def _on_gpu(tasks: list[RunTask]) -> bool:
    return any(task.config.run.device.startswith("cuda") for task in tasks)


@dataclasses.dataclass(frozen=True)
class Ray:
    size: int | None  # seeds per Ray task; None: one run per task
    address: str | None  # the cluster to join; None: a local Ray instance of `cpus` CPUs
    cpus: int

    def session(self, devices: set[str]) -> ContextManager[Any]:
        from dqnlab.experiments.backends.cluster import ray_session

        return ray_session(self.address, self.cpus, cuda=any(device.startswith("cuda") for device in devices))

    def describe(self, tasks: list[RunTask]) -> str:
        unit = f"populations of up to {self.size} seeds" if self.size else "one run each"
        where = f"the cluster at {self.address}" if self.address else f"a local Ray instance of {self.cpus} CPU(s)"
        return f"as Ray tasks ({unit}) on {where}"

    def run(self, tasks: list[RunTask], on_event: OnEvent, limit: TimeLimit | None = None) -> None:
        from dqnlab.experiments.backends.cluster import run_ray

        run_ray(tasks, on_event, self.size, limit=limit)


@contextlib.contextmanager
def _on_this_machine(devices: set[str]) -> Iterator[None]:
    for device in devices:
        resolve_device(device)  # no GPU where one is asked for: one line now, not a failure per run
    yield


def make_backend(name: str, workers: int, population_size: int | None = None, address: str | None = None) -> Backend:
    """The backend named `name` ("local", "population" or "ray") with the CLI's meaning of each option."""
    if name not in BACKENDS:
        raise DqnlabError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    if population_size is not None and name == "local":
        raise DqnlabError("--population-size applies to --backend population or ray only")
    if address is not None and name != "ray":
        raise DqnlabError("--address applies to --backend ray only")
    if name == "local":
        return Local(workers)
    if name == "population":
        return Population(population_size, workers)
    return Ray(population_size, address, workers)
