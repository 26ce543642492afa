"""Process-level settings: the torch device, and subnormals flushed in elementwise passes.

`resolve_device` turns `run.device` into a torch device, refusing CUDA where
there is none.

Adam's second moment v = 0.999 v + 0.001 g^2 becomes subnormal (below 1.2e-38
in float32) wherever gradients fall below ~1e-19, and a CPU computes on
subnormals 10-100x slower: the naive agent's Adam step on the tutorial network
grew from 0.3 ms to 3.4 ms within 1,500 samples. `elementwise` runs such a
pass with subnormals flushed to zero (x86's FTZ/DAZ), on threads of its own,
since the setting belongs to each thread. In Adam this leaves the weights as
they are: the step divides by sqrt(v) + eps with eps = 1e-8, and a subnormal
v adds less than half a unit in the last place to eps; a subnormal m moves a
weight by less than 1e-33, below the last place of any weight larger than
~1e-26. Every comparison made (tests/test_kernel.py, and the training runs in
benchmarks/RESULTS.md) gave the same weights bit for bit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from dqnlab.errors import DqnlabError


def resolve_device(name: str) -> torch.device:
    """The torch device for `run.device`, refusing CUDA where there is none."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DqnlabError(f"run.device is {name!r} but this machine has no CUDA GPU (or torch is a CPU build)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DqnlabError(f"run.device is {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


PARALLEL_FROM = 1 << 20  # elements: below this an elementwise pass is too short to share out


def elementwise(work: Callable[[int, int], None], size: int, device: torch.device, unit: int = 16) -> None:
    """Run `work(start, stop)` over [0, size) with subnormals flushed to zero, then restore the setting.

    On the CPU the range is cut into parts of whole `unit`s, one per torch
    thread once it is `PARALLEL_FROM` long, each run on a thread that flushes
    subnormals (the flag belongs to a thread, and torch's own worker threads
    cannot be given it), with torch's threads set to one meanwhile so that no
    part starts threads of its own. Elsewhere `work(0, size)` runs as is.
    """
    if device.type != "cpu":
        work(0, size)
        return
    threads, flushing = torch.get_num_threads(), bool(np.float32(1e-39) * np.float32(1.0) == 0)
    parts = threads if size >= PARALLEL_FROM else 1
    bounds = [min(size, -(-size * i // parts // unit) * unit) for i in range(parts + 1)]
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        others = [_flushing_threads(parts - 1).submit(work, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
        work(bounds[0], bounds[1])
        for part in others:
            part.result()
    finally:
        torch.set_flush_denormal(flushing)
        torch.set_num_threads(threads)


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _flushing_threads(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` threads (reused) that flush subnormals."""
    global _pool
    if _pool is None or _pool[0] != workers:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = (workers, ThreadPoolExecutor(max(workers, 1), "dqnlab-flush", torch.set_flush_denormal, (True,)))
    return _pool[1]
