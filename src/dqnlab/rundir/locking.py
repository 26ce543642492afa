"""One writer per output directory: a lock file that names its holder and dies with it.

`DirectoryLock(path, command)` holds an exclusive `flock` on `path/.dqnlab.lock`
for as long as the command runs, and writes who holds it (command, pid, host,
start time) into the file. A second dqnlab process that wants the directory
is refused at once with one line naming the holder. The kernel drops a
`flock` when its process dies (kill -9 included), so a lock file left
behind by a dead process is simply taken over by the next command; the holder
it names is kept as `taken_over` for the command to mention.

`flock` is advisory and local to one machine's kernel: it keeps dqnlab
processes on one machine apart, and on network file systems it is only as
good as the file system's lock support.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from dqnlab.errors import DqnlabError
from dqnlab.rundir.disk import disk_errors

LOCK = ".dqnlab.lock"


class DirectoryLock:
    """An exclusive lock on an existing directory; use as a context manager."""

    def __init__(self, directory: Path, command: str) -> None:
        self.directory, self.command = Path(directory), command
        self.path = self.directory / LOCK
        self.taken_over: str | None = None  # the holder named by a lock file whose process had died
        self._fd: int | None = None

    def acquire(self) -> "DirectoryLock":
        with disk_errors(self.path):
            return self._acquire()

    def _acquire(self) -> "DirectoryLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise DqnlabError(f"{self.directory} is in use by {holder or 'another dqnlab process'}; "
                                  "wait for it to finish, or choose another --out") from None  # fmt: skip
            try:
                current = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                current = None
            opened = os.fstat(fd)
            if current is None or (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                os.close(fd)  # the holder removed the file as we locked it: lock the new one
                continue
            self.taken_over = _holder(fd)
            record = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname(),
                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            self._fd = fd
            return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # still locked: a process that opened it meanwhile retries on a new file
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def held_by(directory: Path) -> str | None:
    """Who holds `directory`'s lock right now ("another dqnlab process" if it does not say); None if nobody does.

    Looks without taking the lock for longer than the look, and creates no lock file.
    """
    try:
        fd = os.open(Path(directory) / LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # no lock file (or none we may open): nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd) or "another dqnlab process"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _holder(fd: int) -> str | None:
    """'dqnlab compare (pid 123 on host, since ...)' from a lock file's content, or None."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"{record['command']} (pid {int(record['pid'])} on {record['host']}, since {record['since']})"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
