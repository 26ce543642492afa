"""Reading a replay.npz back: the transitions a run kept with --save-replay, every array checked.

The file is written by `writer.save_replay`: `meta` = (capacity, obs_dim,
added) and one array per transition field (REPLAY_FIELDS), oldest first.
`read_replay` refuses a pickled, malformed or inconsistent file with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dqnlab.errors import DqnlabError
from dqnlab.rundir.layout import REPLAY_FIELDS
from dqnlab.rundir.npzfile import check_array, read_npz

WHAT = "a dqnlab replay file"
KINDS = {"meta": "iu", "obs": "f", "action": "iu", "reward": "f", "next_obs": "f", "terminated": "b", "truncated": "b"}
DTYPES = {"obs": np.float32, "action": np.int64, "reward": np.float32, "next_obs": np.float32,
          "terminated": np.bool_, "truncated": np.bool_}  # fmt: skip


@dataclass(frozen=True)
class StoredReplay:
    """A saved replay memory: its capacity, the transitions ever added, and the stored ones (S of them)."""

    capacity: int
    added: int
    arrays: dict[str, np.ndarray]  # field -> (S, ...) array, oldest first

    def __len__(self) -> int:
        return len(self.arrays["action"])


def read_replay(path: str | Path) -> StoredReplay:
    data = read_npz(path, ("meta", *REPLAY_FIELDS), WHAT)
    arrays = {name: check_array(path, WHAT, name, data[name], kind, 2 if name.endswith("obs") else 1) for name, kind in KINDS.items()}
    meta = arrays.pop("meta")
    if meta.shape != (3,):
        raise DqnlabError(f"{path} is not {WHAT}: meta holds {len(meta)} numbers; expected 3 (capacity, obs_dim, added)")
    capacity, obs_dim, added = (int(v) for v in meta)
    size = len(arrays["action"])
    if (capacity < 1 or obs_dim < 1 or not size <= min(capacity, added) or any(len(a) != size for a in arrays.values())
            or any(arrays[name].shape[1] != obs_dim for name in ("obs", "next_obs"))):  # fmt: skip
        raise DqnlabError(f"{path} is inconsistent: {size} transitions for capacity {capacity}, obs_dim {obs_dim}, "
                          f"{added} added; expected at most min(capacity, added) transitions of obs_dim numbers each")  # fmt: skip
    return StoredReplay(capacity, added, {name: array.astype(DTYPES[name]) for name, array in arrays.items()})
