"""Which directories are dqnlab's: the marker it writes, the layouts it expects, and removal that never follows a link.

Every directory dqnlab creates for its output (a run, a results directory,
a probe report) holds a marker file, `.dqnlab`, written before anything
else. dqnlab replaces or clears a directory only when

- it holds the marker, naming the expected kind;
- nothing on the way down from the directory is a symbolic link; and
- every entry in it is one that dqnlab writes there (the kind's layout).

Anything else is refused with one line before a single file is removed, so a
user's files are never deleted: not through `--overwrite`, not through a
symlink placed inside a results directory, and never outside the directory.
Removal itself (`shutil.rmtree`, on a directory checked as above) unlinks
symbolic links it meets instead of following them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Iterator

from dqnlab import __version__
from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import TMP, disk_errors, json_text, make_dir, parse_json, write_text
from dqnlab.rundir.locking import LOCK, DirectoryLock, held_by

MARKER = ".dqnlab"
KINDS = ("run", "results", "probe")

# kind -> {pattern of an entry's name: None for a file, or the layout of a folder ({} = any regular files)}
_PROBE = {"probe_set.npz": None, "probe.json": None, "probe.md": None, "probe.html": None, "*.png": None}
_RUN = {
    "config.json": None, "episodes.csv": None, "evaluations.csv": None, "weights.pt": None, "replay.npz": None,
    "result.json": None, "neurons.json": None,
    "checkpoints": {"samples-*.pt": None}, "tensorboard": {"*": None}, "probe": "probe",
}  # fmt: skip
_RESULTS = {
    "experiment.json": None, "summary.json": None, "summary.md": None, "report.html": None,
    "plots": {"*.png": None}, "clock": {"*.json": None}, "probe": {"probe_set.npz": None}, "runs": {"*": {"*": "run"}},
}  # fmt: skip
LAYOUTS = {"run": _RUN, "results": _RESULTS, "probe": _PROBE}


@contextlib.contextmanager
def output_dir(path: str | Path, kind: str, command: str, overwrite: bool = False, keep: bool = False,
               create: bool = True) -> Iterator[DirectoryLock]:
    """Hold `path` as this command's dqnlab `kind` directory, locked, for the block.

    A new or empty directory is created and marked. One that holds files must
    be dqnlab's `kind` directory; then `overwrite` empties it first (after
    checking that everything in it is dqnlab's), `keep` reopens it as it is
    (resuming), and without either it is refused. `create=False` refuses a
    directory that does not exist yet (commands that only rebuild).
    """
    path = Path(path)
    _refuse_inside_busy_results(path)
    if not create and marker_kind(path) != kind:
        why = "does not exist" if not path.exists() else f"has no {MARKER} marker for one"
        raise DqnlabError(f"{path} is not a dqnlab {kind} directory (it {why}); give the --out of the command that wrote it")
    _existing(path, kind, overwrite, keep)  # refused before the lock file is written into someone's folder
    make_dir(path)
    with DirectoryLock(path, command) as lock:
        link = _first_link(path)
        if link is not None:
            raise DqnlabError(f"{path} holds a symbolic link, {link}; dqnlab never writes or deletes through links: "
                              "remove the link or choose another --out")  # fmt: skip
        if _existing(path, kind, overwrite, keep):
            if overwrite:
                clear_owned(path, kind)
            else:
                remove_leftover_tmp(path, kind)
        claim(path, kind)
        yield lock


def _refuse_inside_busy_results(path: Path) -> None:
    """Refuse a directory inside a results directory that a command holds (runs/VARIANT/seed-K/probe lies 4 levels down)."""
    for ancestor in list(path.absolute().parents)[:4]:
        if marker_kind(ancestor) == "results":
            holder = held_by(ancestor)
            if holder is not None:
                raise DqnlabError(f"{path} lies inside {ancestor}, which is in use by {holder}; "
                                  "wait for it to finish, or choose another --out")  # fmt: skip


def _first_link(path: Path) -> Path | None:
    """The first symbolic link anywhere under `path` (links are not followed), or None."""
    for root, dirs, files in os.walk(path):
        for name in sorted(dirs + files):
            if (Path(root) / name).is_symlink():
                return Path(root) / name
    return None


def _existing(path: Path, kind: str, overwrite: bool, keep: bool) -> bool:
    """Whether `path` already holds files; refuse a link, a file, someone else's folder, or a clobber."""
    refuse_link(path)
    if path.exists() and not path.is_dir():
        raise DqnlabError(f"{path} exists and is not a directory; choose another --out")
    if not path.is_dir() or not any(entry.name not in (MARKER, LOCK) for entry in path.iterdir()):
        return False
    if marker_kind(path) != kind:
        _not_ours(path, kind)
    if not overwrite and not keep:
        raise DqnlabError(f"{path} already holds a dqnlab {kind}; pass --overwrite to replace it, or choose another --out")
    return True


def _not_ours(path: Path, kind: str) -> None:
    raise DqnlabError(f"{path} holds files that dqnlab did not write as a {kind} directory (it has no {MARKER} "
                      "marker for one); dqnlab will not write there or replace it: choose another --out")  # fmt: skip


def marker_kind(path: Path) -> str | None:
    """The kind named by `path`'s marker, or None when it has no readable marker."""
    marker = path / MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return None
        data = parse_json(marker.read_bytes(), str(marker))
    except (OSError, DqnlabError):
        return None
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in KINDS else None


def claim(path: Path, kind: str) -> Path:
    """Create `path` (if needed) and mark it as dqnlab's `kind` directory; it must be empty or already marked so."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    refuse_link(path)
    if path.exists() and not path.is_dir():
        raise DqnlabError(f"{path} exists and is not a directory; choose another --out")
    make_dir(path)
    if marker_kind(path) != kind:
        if any(entry.name not in (MARKER, LOCK) for entry in path.iterdir()):
            raise DqnlabError(f"{path} holds files that dqnlab did not write there; choose another --out")
        write_text(path / MARKER, json_text({"kind": kind, "written_by": f"dqnlab {__version__}"}))
    return path


def refuse_link(path: Path, below: Path | None = None) -> None:
    """Refuse `path` if it, or any folder between `below` and it, is a symbolic link."""
    path = Path(path)
    chain = [path]
    if below is not None:
        relative = path.relative_to(below)
        chain = [below / Path(*relative.parts[:i]) for i in range(len(relative.parts) + 1)]
    for step in chain:
        if step.is_symlink():
            raise DqnlabError(f"{step} is a symbolic link; dqnlab never writes or deletes through links: "
                              "remove the link or choose another --out")  # fmt: skip


def foreign_entry(path: Path, kind: str) -> str | None:
    """The first entry under `path` that does not fit `kind`'s layout (or is a link), as a path; None if all fit."""
    return _foreign(path, LAYOUTS[kind], top=True)


def _foreign(folder: Path, layout: dict | str, top: bool = False) -> str | None:
    if isinstance(layout, str):  # a nested dqnlab directory: it must carry its own marker
        if marker_kind(folder) != layout:
            return f"{folder} (a folder without dqnlab's {layout} marker)"
        return _foreign(folder, LAYOUTS[layout], top=True)
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        entry_path = Path(entry.path)
        if entry.is_symlink():
            return f"{entry_path} (a symbolic link)"
        if top and entry.name in (MARKER, LOCK):
            continue
        name = entry.name.removesuffix(TMP)
        sub = next((rule for pattern, rule in layout.items() if fnmatch(name, pattern)), _NOT_OURS)
        if sub is _NOT_OURS:
            return str(entry_path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if sub is None or sub == {}:
            if is_dir or not entry.is_file(follow_symlinks=False):
                return f"{entry_path} (expected a file)"
            continue
        if not is_dir:
            return f"{entry_path} (expected a folder)"
        found = _foreign(entry_path, sub)
        if found:
            return found
    return None


_NOT_OURS = object()


def check_owned(path: Path, kind: str) -> None:
    """Refuse unless `path` is a dqnlab `kind` directory that holds only what dqnlab writes there."""
    refuse_link(path)
    if marker_kind(path) != kind:
        _not_ours(path, kind)
    found = foreign_entry(path, kind)
    if found:
        raise DqnlabError(f"{path} holds {found}, which dqnlab did not write; dqnlab will not delete it: "
                          "move it out, or choose another --out")  # fmt: skip


def remove_owned(path: Path, kind: str, root: Path) -> None:
    """Delete the dqnlab `kind` directory `path`, which must lie inside `root`, with no link on the way down."""
    path, root = Path(path), Path(root)
    if not path.resolve().is_relative_to(root.resolve()) or path.resolve() == root.resolve():
        raise DqnlabError(f"{path} is not inside {root}; dqnlab deletes only inside its own results directory")
    refuse_link(path, below=root)
    if not path.exists():
        return
    if not path.is_dir():
        raise DqnlabError(f"{path} is not a directory; dqnlab will not delete it")
    if any(True for _ in path.iterdir()):  # an empty folder is nobody's work
        check_owned(path, kind)
    _rmtree(path)


def clear_owned(path: Path, kind: str) -> None:
    """Empty the dqnlab `kind` directory `path` (checked first), keeping its marker and lock."""
    check_owned(path, kind)
    for entry in path.iterdir():
        if entry.name in (MARKER, LOCK):
            continue
        if entry.is_dir() and not entry.is_symlink():
            _rmtree(entry)
        else:
            _unlink(entry)


def remove_leftover_tmp(path: Path, kind: str) -> None:
    """Delete NAME.tmp files that a killed process left in a dqnlab directory and its folders of files.

    Only names of the kind's layout are touched; run directories inside a
    results directory are left to resume, which redoes unfinished runs whole.
    """
    _remove_tmp(path, LAYOUTS[kind])


def _remove_tmp(folder: Path, layout: dict) -> None:
    for entry in folder.iterdir():
        if entry.is_symlink():
            continue
        rule = next((rule for pattern, rule in layout.items() if fnmatch(entry.name.removesuffix(TMP), pattern)), _NOT_OURS)
        if entry.name.endswith(TMP) and rule is None and entry.is_file():
            _unlink(entry)
        elif isinstance(rule, dict) and rule and all(sub is None for sub in rule.values()) and entry.is_dir():
            _remove_tmp(entry, rule)


def _rmtree(path: Path) -> None:
    assert shutil.rmtree.avoids_symlink_attacks, "this platform's rmtree could follow links"
    with disk_errors(path):
        shutil.rmtree(path)


def _unlink(path: Path) -> None:
    with disk_errors(path):
        path.unlink()
