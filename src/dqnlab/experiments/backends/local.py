"""The embedded backend: local worker processes, one torch thread each.

Workers are long-lived spawned processes, so torch is imported once per
worker, not once per run. The parent hands each worker one unit of work at a
time over its own pipe, one run (the local backend) or one population (the
population backend), and so always knows which runs a worker holds; workers
answer on the same pipe with events, then `None` when the unit is done. If a
worker process dies (killed, out of memory, a crash in native code), the
parent reports the runs it held and had not finished as failed (the sweep
marks them) and starts a replacement, so the sweep goes on.

One thread per process, not one process on many threads: on a machine
shared with other work, oversubscribed OpenMP threads spin and a
many-threaded population loses most of its speed, while single-threaded
processes lose only the share of the cores the other work takes
(benchmarks/RESULTS.md, "Under load").
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from dqnlab.experiments.backends.population import population_key, run_population
from dqnlab.experiments.events import Advanced, Ended, Finished, OnEvent, Started
from dqnlab.experiments.runner import RunTask, TimeLimit, run_task
from dqnlab.rundir.disk import DiskError

FAULT_VARIABLE = "DQNLAB_KILL_WORKER_AT"  # a run key; its worker process exits abruptly (fault injection)


def _worker(connection: Connection, progress_every: int, parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it terminates us
    _die_with_parent(parent)
    torch.set_num_threads(1)  # one thread per worker: workers, not threads, fill the cores
    while (unit := connection.recv()) is not None:
        if any(os.environ.get(FAULT_VARIABLE) == task.key for task in unit.tasks):  # tests kill a worker mid-sweep this way
            os._exit(70)
        run_unit(unit, connection.send, progress_every)
        connection.send(None)  # free for the next unit


@dataclass(frozen=True)
class Unit:
    """What one worker runs at a time: one run, or the runs of one population."""

    tasks: list[RunTask]
    population: bool

    @property
    def key(self) -> str:
        return population_key(self.tasks) if self.population else self.tasks[0].key


def run_unit(unit: Unit, on_event: OnEvent, progress_every: int) -> None:
    """Train one unit in a worker, reporting its events (a run's Started comes from the parent).

    A disk error ends the unit as each run's failed outcome marked `disk`, on
    which the parent stops the sweep (`runner.raise_disk_error`), as `run_task`
    reports it for one run.
    """
    if unit.population:
        try:
            run_population(unit.tasks, on_event, progress_every)
        except DiskError as error:
            for task in unit.tasks:
                on_event(Finished(task.key, {"status": "failed", "error": str(error), "disk": True}))
        return
    task = unit.tasks[0]

    def progress(samples: int) -> None:
        if samples % progress_every == 0:
            on_event(Advanced(task.key, samples))

    on_event(Finished(task.key, run_task(task, progress)))


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the parent dies (kill -9 included).

    The parent holds the results directory's lock; once it is gone, the next
    command may take the directory over, and an orphaned worker must not
    write into it. Elsewhere, a worker notices only at its next message.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


@dataclass
class _Slot:
    process: Any
    connection: Connection
    unit: Unit | None = None
    finished: set[str] = field(default_factory=set)  # keys of the unit's runs that reported Finished
    since: float = 0.0  # when the unit was handed over (TimeLimit.now)


def run_local(units: list[Unit], workers: int, on_event: OnEvent, progress_every: int = 2000,
              limit: TimeLimit | None = None) -> None:
    """Execute `units` on `workers` processes, in order; call `on_event` in this process for every event.
    No unit starts once `limit` has passed; those in flight finish."""
    context = multiprocessing.get_context("spawn")
    queue = deque(units)
    limit = limit or TimeLimit()

    def start_slot() -> _Slot:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, progress_every, os.getpid()), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def assign(slot: _Slot) -> None:
        slot.unit, slot.finished = (queue.popleft() if queue and limit.may_start() else None), set()
        slot.since = limit.now()
        slot.connection.send(slot.unit)  # None: the worker stops
        if slot.unit is not None and not slot.unit.population:
            on_event(Started(slot.unit.key))  # a population reports its own

    slots = [start_slot() for _ in range(max(0, min(workers, len(units))))]
    limit.parallel, limit.unit = max(1, len(slots)), "population" if any(unit.population for unit in units) else "run"
    try:
        for slot in slots:
            assign(slot)
        while busy := [slot for slot in slots if slot.unit is not None]:
            ready = set(wait([s.connection for s in busy] + [s.process.sentinel for s in busy]))
            for slot in busy:
                if slot.connection not in ready and slot.process.sentinel not in ready:
                    continue
                state = _receive(slot, on_event)
                if state == "free":
                    limit.finished(slot.unit.tasks, limit.now() - slot.since)
                    assign(slot)
                elif state == "dead":
                    _bury(slot, on_event)
                    slots[slots.index(slot)] = replacement = start_slot()
                    assign(replacement)
    finally:
        for slot in slots:
            slot.process.join(timeout=5) if slot.unit is None else slot.process.terminate()


def _receive(slot: _Slot, on_event: OnEvent) -> str:
    """Pass on one event; "free" (the worker finished its unit), "busy", or "dead" when its end of the pipe is gone."""
    try:
        if not slot.connection.poll():
            return "busy" if slot.process.is_alive() else "dead"
        message = slot.connection.recv()
    except (EOFError, OSError):
        return "dead"
    if message is None:
        return "free"
    if isinstance(message, Finished):
        slot.finished.add(message.key)
    on_event(message)
    return "busy"


def _bury(slot: _Slot, on_event: OnEvent) -> None:
    """A worker died holding a unit: report its unfinished runs failed."""
    reason = f"worker process died (exit code {slot.process.exitcode})"
    for task in slot.unit.tasks:
        if task.key not in slot.finished:
            on_event(Finished(task.key, {"status": "failed", "error": reason}))
    if slot.unit.population:
        on_event(Ended(slot.unit.key))
    slot.connection.close()
