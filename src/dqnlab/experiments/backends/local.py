"""The embedded backend: local worker processes, one torch thread each.

Workers are long-lived spawned processes, so torch is imported once per
worker, not once per run. The parent hands each worker one task at a time
over its own pipe and so always knows which run a worker holds; workers
answer on the same pipe ("progress", "done"). If a worker process dies
(killed, out of memory, a crash in native code), the parent reports the run it
held as failed (the sweep marks it) and starts a replacement, so the sweep goes on.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from dqnlab.experiments.events import Advanced, Finished, OnEvent, Started
from dqnlab.experiments.runner import RunTask, run_task

FAULT_VARIABLE = "DQNLAB_KILL_WORKER_AT"  # a run key; its worker process exits abruptly (fault injection)


def _worker(connection: Connection, progress_every: int, parent: int) -> None:
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it terminates us
    _die_with_parent(parent)
    torch.set_num_threads(1)  # one thread per worker: workers, not threads, fill the cores
    while (task := connection.recv()) is not None:
        if os.environ.get(FAULT_VARIABLE) == task.key:  # tests kill a worker mid-sweep this way
            os._exit(70)

        def progress(samples: int, key: str = task.key) -> None:
            if samples % progress_every == 0:
                connection.send(Advanced(key, samples))

        connection.send(Finished(task.key, run_task(task, progress)))


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
    task: RunTask | None = None


def run_local(tasks: list[RunTask], workers: int, on_event: OnEvent, progress_every: int = 2000) -> None:
    """Execute `tasks` on `workers` processes; call `on_event` in this process for every event."""
    context = multiprocessing.get_context("spawn")
    queue = deque(tasks)

    def start_slot() -> _Slot:
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, progress_every, os.getpid()), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def assign(slot: _Slot) -> None:
        slot.task = queue.popleft() if queue else None
        slot.connection.send(slot.task)  # None: the worker stops
        if slot.task is not None:
            on_event(Started(slot.task.key))

    slots = [start_slot() for _ in range(max(0, min(workers, len(tasks))))]
    try:
        for slot in slots:
            assign(slot)
        while busy := [slot for slot in slots if slot.task is not None]:
            ready = set(wait([s.connection for s in busy] + [s.process.sentinel for s in busy]))
            for slot in busy:
                if slot.connection not in ready and slot.process.sentinel not in ready:
                    continue
                state = _receive(slot, on_event)
                if state == "finished":
                    assign(slot)
                elif state == "dead":
                    _bury(slot, on_event)
                    slots[slots.index(slot)] = replacement = start_slot()
                    assign(replacement)
    finally:
        for slot in slots:
            slot.process.join(timeout=5) if slot.task is None else slot.process.terminate()


def _receive(slot: _Slot, on_event: OnEvent) -> str:
    """Pass on one event; "finished" (the worker is free), "busy", or "dead" when its end of the pipe is gone."""
    try:
        if not slot.connection.poll():
            return "busy" if slot.process.is_alive() else "dead"
        message = slot.connection.recv()
    except (EOFError, OSError):
        return "dead"
    on_event(message)
    return "finished" if isinstance(message, Finished) else "busy"


def _bury(slot: _Slot, on_event: OnEvent) -> None:
    """A worker died holding a run: report that run failed."""
    reason = f"worker process died (exit code {slot.process.exitcode})"
    on_event(Finished(slot.task.key, {"status": "failed", "error": reason}))
    slot.connection.close()
