"""Every file dqnlab writes or parses as JSON: atomic, strict, and one line when the disk says no.

A file is written to NAME.tmp beside it and renamed over NAME, so a reader
(or a crash) never sees half a file; if the write fails or is interrupted
(Ctrl-C included) the temporary file is removed. A full disk, a read-only
file system or a missing permission (ENOSPC, EDQUOT, EROFS, EACCES, EPERM)
becomes a `DiskError`: one line naming the path and the cause.

JSON is written strictly (no bare NaN or Infinity, which are not JSON: a
non-finite number is written as null) and read strictly (NaN, Infinity,
a file that is not UTF-8, or a top-level value that is not an object are
refused with one line).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np

from dqnlab.errors import DqnlabError

TMP = ".tmp"  # suffix of a file being written
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_CAUSES = {
    errno.ENOSPC: "no space left on the device; free some and rerun the same command (it resumes where it stopped)",
    errno.EDQUOT: "disk quota exceeded; free some space and rerun the same command (it resumes where it stopped)",
    errno.EROFS: "the file system is read-only; choose an --out on a writable disk",
    errno.EACCES: "permission denied; choose an --out you may write to",
    errno.EPERM: "operation not permitted; choose an --out you may write to",
}


class DiskError(DqnlabError):
    """The disk refused a write: full, read-only or not permitted."""


def is_disk_error(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in DISK_ERRNOS


def disk_error(error: OSError, path: str | Path | None = None) -> DiskError:
    """A one-line DiskError for an OSError whose errno is in DISK_ERRNOS."""
    where = path if path is not None else (error.filename or "a file")
    return DiskError(f"cannot write {where}: {_CAUSES.get(error.errno, error.strerror)}")


@contextlib.contextmanager
def disk_errors(path: str | Path) -> Iterator[None]:
    """Inside the block, a disk's refusal (DISK_ERRNOS) comes out as a DiskError naming `path`."""
    try:
        yield
    except OSError as error:
        if is_disk_error(error):
            raise disk_error(error, path) from None
        raise


def write_with(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(handle) on PATH.tmp, then rename it to PATH; on any failure remove PATH.tmp and re-raise.

    Disk errors (see DISK_ERRNOS) come out as DiskError.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):  # a failed cleanup must not hide the error being raised
            tmp.unlink(missing_ok=True)
        if is_disk_error(error):
            raise disk_error(error, path) from None
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    write_with(path, lambda handle: handle.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def make_dir(path: str | Path) -> Path:
    """mkdir -p; a disk error becomes DiskError, any other refusal (a file in the way, a name too long) one line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if is_disk_error(error):
            raise disk_error(error, path) from None
        raise DqnlabError(f"cannot create the folder {path}: {error.strerror or error}; choose another path") from None
    return path


# ---------------------------------------------------------------- JSON


def json_ready(value: Any) -> Any:
    """`value` as plain JSON data: NumPy to Python, NaN and infinity to None (JSON has neither), keys as text."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return [json_ready(item) for item in value.tolist()]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def json_text(value: Any, indent: int | None = 2) -> str:
    """Strict JSON (non-finite numbers as null), newline-terminated."""
    return json.dumps(json_ready(value), indent=indent, allow_nan=False) + "\n"


def write_json(path: str | Path, value: Any, indent: int | None = 2) -> None:
    write_text(path, json_text(value, indent))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json(text: str | bytes, what: str) -> Any:
    """Strict JSON; a DqnlabError naming `what` for anything else (NaN and Infinity included)."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise DqnlabError(f"{what} is not UTF-8 text (a binary file?)") from None
    except ValueError as error:  # JSONDecodeError is a ValueError
        raise DqnlabError(f"{what} is not valid JSON: {error}") from None


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file whose top-level value is an object; DqnlabError (one line) otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DqnlabError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DqnlabError(f"{path} is a directory, not a JSON file") from None
    value = parse_json(data, str(path))
    if not isinstance(value, dict):
        raise DqnlabError(f"{path} must hold a JSON object {{...}}; it holds a {type(value).__name__}")
    return value

