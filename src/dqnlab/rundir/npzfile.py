"""Reading .npz files strictly: plain arrays only, and one line naming the file for anything else.

`np.load` reports a bad file with several exception types and messages that
advise loading with pickle allowed; neither reaches the user. A file that is
empty, not an .npz archive, truncated, missing an array, holding pickled
objects, or holding an array of the wrong kind or shape is refused with a
`DqnlabError`: "PATH is not WHAT: the problem".
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dqnlab.errors import DqnlabError

ZIP_MAGIC = b"PK\x03\x04"
KINDS = {"f": "floating-point", "iu": "integer", "b": "boolean", "U": "text"}  # dtype kinds -> words


def read_npz(path: str | Path, names: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays `names` of the .npz file at `path`, read without pickle; `what` names what the file should be."""
    path = Path(path)

    def refuse(problem: str) -> DqnlabError:
        return DqnlabError(f"{path} is not {what}: {problem}")

    if path.is_dir():
        raise refuse("it is a directory")
    if not path.is_file():
        raise DqnlabError(f"{path} does not exist")
    with path.open("rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    if not head:
        raise refuse("it is empty")
    if not zipfile.is_zipfile(path):
        raise refuse("it is truncated or corrupt" if head == ZIP_MAGIC else "it is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in names if name not in data.files]
            if missing:
                raise refuse(f"it lacks the array{'s' * (len(missing) > 1)} {', '.join(missing)} (expected {', '.join(names)})")
            return {name: np.asarray(data[name]) for name in names}
    except DqnlabError:
        raise
    except ValueError as error:  # numpy's text advises allow_pickle=True: never pass it on
        if "pickle" in str(error) or "Object arrays" in str(error):
            raise refuse("it holds pickled objects; dqnlab reads plain arrays only") from None
        raise refuse("it is truncated or corrupt") from None
    except Exception:  # BadZipFile, zlib.error, EOFError, OSError...: a damaged archive
        raise refuse("it is truncated or corrupt") from None


def check_array(path: str | Path, what: str, name: str, array: np.ndarray, kind: str, ndim: int) -> np.ndarray:
    """`array` if its dtype is of `kind` (a key of KINDS) with `ndim` dimensions, and finite if floating; else DqnlabError."""
    if array.dtype.kind not in kind or array.ndim != ndim:
        shape = "a scalar" if array.ndim == 0 else f"an array of shape {array.shape}"
        expected = "a scalar" if ndim == 0 else f"a {ndim}-d array"
        raise DqnlabError(f"{path} is not {what}: {name} is {shape} of {array.dtype}; expected {expected} of {KINDS[kind]} values")
    if kind == "f" and not np.isfinite(array).all():
        raise DqnlabError(f"{path} is not {what}: {name} holds NaN or infinite values")
    return array
