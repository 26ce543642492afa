"""Process-level settings: the torch device, and subnormals flushed in elementwise passes.

`resolve_device` turns `run.device` into a torch device, refusing CUDA where
there is none.

Adam's second moment v = 0.999 v + 0.001 g^2 becomes subnormal (below 1.2e-38
in float32) wherever gradients fall below ~1e-19, and a CPU computes on
subnormals 10-100x slower: the naive agent's Adam step on the tutorial network
grew from 0.3 ms to 3.4 ms within 1,500 samples. `flushed_subnormals` runs
such a pass on one thread with subnormals flushed to zero (x86's FTZ/DAZ).
In Adam this leaves the weights as they are: the step divides by
sqrt(v) + eps with eps = 1e-8, and a subnormal
v adds less than half a unit in the last place to eps; a subnormal m moves a
weight by less than 1e-33, below the last place of any weight larger than
~1e-26. Every comparison made (tests/test_kernel.py, and the training runs in
benchmarks/RESULTS.md) gave the same weights bit for bit.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

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


@contextlib.contextmanager
def flushed_subnormals(device: torch.device) -> Iterator[None]:
    """On the CPU, run the block on one thread with subnormal floats flushed to zero; restore both after.

    One thread, because the flag belongs to each CPU thread and torch's worker
    threads, started by whatever first ran in parallel, cannot be given it.
    """
    if device.type != "cpu":
        yield
        return
    threads, flushing = torch.get_num_threads(), bool(np.float32(1e-39) * np.float32(1.0) == 0)
    if threads != 1:
        torch.set_num_threads(1)
    if not flushing:
        torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not flushing:
            torch.set_flush_denormal(False)
        if threads != 1:
            torch.set_num_threads(threads)
