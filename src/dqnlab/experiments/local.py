"""The embedded backend: local worker processes, one torch thread each.

Workers are long-lived spawned processes that take tasks from a queue, so
torch is imported once per worker, not once per run. They report events
("start", "progress", "done") on a second queue. If a worker process dies
(killed, out of memory, a crash in native code), the parent marks its run
failed and starts a replacement, so the sweep goes on.
"""

from __future__ import annotations

import multiprocessing
import queue
from typing import Any, Callable

from dqnlab.experiments.runner import RunTask, run_task
from dqnlab.rundir import write_failure

Event = tuple  # ("start", key) | ("progress", key, samples) | ("done", key, outcome)
POLL_SECONDS = 0.5


def _worker(task_queue, event_queue, progress_every: int) -> None:
    import torch

    from dqnlab import runtime

    torch.set_num_threads(1)  # one thread per worker: workers, not threads, fill the cores
    runtime.tune_allocator()
    while True:
        task = task_queue.get()
        if task is None:
            return
        event_queue.put(("start", task.key, multiprocessing.current_process().pid))

        def progress(samples: int, key: str = task.key) -> None:
            if samples % progress_every == 0:
                event_queue.put(("progress", key, samples))

        event_queue.put(("done", task.key, run_task(task, progress)))


def run_local(tasks: list[RunTask], workers: int, on_event: Callable[[Event], None], progress_every: int = 2000) -> None:
    """Execute `tasks` on `workers` processes; call `on_event` in this process for every event."""
    if not tasks:
        return
    context = multiprocessing.get_context("spawn")
    task_queue, event_queue = context.Queue(), context.Queue()
    for task in tasks:
        task_queue.put(task)
    workers = max(1, min(workers, len(tasks)))
    for _ in range(workers):
        task_queue.put(None)  # one stop sign per worker

    def start_worker():
        process = context.Process(target=_worker, args=(task_queue, event_queue, progress_every), daemon=True)
        process.start()
        return process

    by_key = {task.key: task for task in tasks}
    processes = [start_worker() for _ in range(workers)]
    running: dict[int, str] = {}  # worker pid -> key of its current run
    pending = set(by_key)
    restarts = 0
    try:
        while pending:
            for event in _drain(event_queue, timeout=POLL_SECONDS):
                _handle(event, running, pending, on_event)
            for index, process in enumerate(processes):
                if process.is_alive() or process.pid is None:
                    continue
                for event in _drain(event_queue, timeout=0.2):  # what it said before it died
                    _handle(event, running, pending, on_event)
                key = running.pop(process.pid, None)
                if key is not None and key in pending:
                    reason = f"worker process died (exit code {process.exitcode})"
                    write_failure(by_key[key].run_dir, reason)
                    _handle(("done", key, {"status": "failed", "error": reason}), running, pending, on_event)
                if pending and restarts < 10 * len(tasks):
                    if key is not None:
                        task_queue.put(None)  # the dead worker never took its stop sign's place
                    processes[index] = start_worker()
                    restarts += 1
                else:
                    processes[index] = _Finished()
            if pending and not any(p.is_alive() for p in processes):
                for key in sorted(pending):
                    _handle(("done", key, {"status": "failed", "error": "no worker left to run it"}), running, pending, on_event)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)


class _Finished:
    """Stands in for a worker that ended and will not be replaced."""

    pid = None

    def is_alive(self) -> bool:
        return False

    def terminate(self) -> None:
        pass

    def join(self, timeout: float | None = None) -> None:
        pass


def _drain(event_queue, timeout: float) -> list[Event]:
    events = []
    try:
        events.append(event_queue.get(timeout=timeout))
        while True:
            events.append(event_queue.get_nowait())
    except queue.Empty:
        return events


def _handle(event: Event, running: dict[int, str], pending: set[str], on_event: Callable[[Event], None]) -> None:
    kind, key = event[0], event[1]
    if kind == "start":
        running[event[2]] = key
        on_event(("start", key))
    elif kind == "progress":
        on_event(event)
    elif kind == "done" and key in pending:
        pending.discard(key)
        for pid, running_key in list(running.items()):
            if running_key == key:
                del running[pid]
        on_event(event)


def outcome_line(outcome: dict[str, Any]) -> str:
    status = outcome.get("status", "?")
    if status == "failed":
        return f"failed: {outcome.get('error', '')}"
    return f"{status}, {outcome.get('episodes', 0)} episodes, {outcome.get('wall_seconds', 0):.0f} s"
