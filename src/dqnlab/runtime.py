"""Process-level settings: the torch device, and a faster CPU allocator.

`resolve_device` turns `run.device` into a torch device, refusing CUDA where
there is none.

Each learn step frees and reallocates a few multi-megabyte gradient and Adam
temporaries. glibc's malloc hands blocks that large back to the kernel on
free (mmap/munmap, heap trimming), so every step then page-faults the memory
in again: about 1,000 minor faults per learn step on the tutorial network,
which doubled the naive agent's step time (benchmarks/RESULTS.md). Raising
glibc's mmap and trim thresholds keeps those blocks in the heap for reuse.
It changes no numbers, only where memory comes from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import torch

from dqnlab.errors import DqnlabError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers


@functools.cache
def tune_allocator() -> bool:
    """Keep large freed blocks in glibc's heap; True if applied (False elsewhere)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has mallopt's thresholds  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # 32 MiB: glibc's largest allowed value
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def resolve_device(name: str) -> torch.device:
    """The torch device for `run.device`, refusing CUDA where there is none."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DqnlabError(f"run.device is {name!r} but this machine has no CUDA GPU (or torch is a CPU build)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DqnlabError(f"run.device is {name!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device
