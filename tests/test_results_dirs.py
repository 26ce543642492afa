"""Output directories under misuse: foreign folders, links, two writers, full and read-only disks, exit codes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dqnlab.rundir import disk
from dqnlab.cli import LEFT_OUT_EXIT
from dqnlab.errors import DqnlabError
from dqnlab.experiments.backends.local import FAULT_VARIABLE, Unit, run_unit
from dqnlab.experiments.events import Finished
from dqnlab.experiments.runner import plan, raise_disk_error
from dqnlab.experiments.spec import build_experiment
from dqnlab.rundir.disk import DiskError
from dqnlab.rundir.locking import LOCK, DirectoryLock
from dqnlab.rundir.ownership import MARKER, output_dir, remove_owned
from tests.clitools import invoke, refused

TINY = ["--set", "network.hidden=[8]", "--samples", "300"]
COMPARE = ["compare", "--preset", "quick", "--samples", "300", "--seeds", "2", "--set", "network.hidden=[8]",
           "--backend", "population", "-q"]  # fmt: skip


def tree(path: Path) -> dict[str, bytes | None]:
    """Every entry under `path` (links not followed) with its bytes: a snapshot to prove nothing changed."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = Path(root) / name
            found[str(entry.relative_to(path))] = None if entry.is_dir() or entry.is_symlink() else entry.read_bytes()
    return found


def leftovers(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.name.endswith(".tmp") or p.name == LOCK)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A finished tiny compare (2 variants x 2 seeds), to copy and abuse."""
    out = tmp_path_factory.mktemp("compare") / "results"
    result = invoke(*COMPARE, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def copy_of(results: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    subprocess.run(["cp", "-a", str(results), str(out)], check=True)
    return out


# ---------------------------------------------------------------- what --overwrite may delete


def test_overwrite_refuses_a_folder_dqnlab_did_not_write(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "src").mkdir()
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "config.json").write_text("{}")
    (project / "experiment.json").write_text("{}")
    (project / "thesis.tex").write_text("\\documentclass{article}")
    before = tree(project)
    monkeypatch.chdir(project)
    refused(invoke("handset", "--out", ".", "--overwrite"), "dqnlab did not write")
    refused(invoke("train", *TINY, "--out", str(project), "--overwrite"), "dqnlab did not write")
    refused(invoke(*COMPARE, "--out", str(project), "--overwrite"), "dqnlab did not write")
    assert tree(project) == before  # not even a lock file was left


def test_overwrite_refuses_a_dqnlab_folder_that_holds_a_users_file(results, tmp_path):
    out = copy_of(results, tmp_path)
    (out / "thesis.tex").write_text("mine")
    (out / "runs" / "naive" / "seed-000" / "notes.txt").write_text("mine too")
    before = tree(out)
    line = refused(invoke(*COMPARE, "--out", str(out), "--overwrite"), "which dqnlab did not write")
    assert "notes.txt" in line or "thesis.tex" in line
    assert tree(out) == before
    (out / "thesis.tex").unlink()
    (out / "runs" / "naive" / "seed-000" / "notes.txt").unlink()
    assert invoke(*COMPARE, "--out", str(out), "--overwrite").exit_code == 0  # only dqnlab's files: replaced
    assert (out / MARKER).is_file() and leftovers(out) == []


def test_a_run_directory_is_replaced_only_when_it_is_dqnlabs(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "-q", "--out", str(out)).exit_code == 0
    refused(invoke("train", *TINY, "-q", "--out", str(out)), "--overwrite")
    assert invoke("train", *TINY, "-q", "--seed", "1", "--out", str(out), "--overwrite").exit_code == 0
    assert json.loads((out / "config.json").read_text())["run"]["seed"] == 1
    (out / "plot.py").write_text("mine")
    refused(invoke("train", *TINY, "-q", "--out", str(out), "--overwrite"), "plot.py")
    assert (out / "plot.py").read_text() == "mine"


# ---------------------------------------------------------------- links


@pytest.mark.parametrize("where", ["variant folder", "seed folder", "file in a run", "results folder"])
def test_links_in_a_results_directory_are_refused_and_never_followed(results, tmp_path, where):
    out = copy_of(results, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    seed_dir = out / "runs" / "naive" / "seed-001"
    (seed_dir / "result.json").unlink()  # unfinished: resume would redo (delete) it
    if where == "variant folder":
        (out / "runs" / "naive").rename(elsewhere / "naive")
        (out / "runs" / "naive").symlink_to(elsewhere / "naive")
        target = out
    elif where == "seed folder":
        seed_dir.rename(elsewhere / "seed-001")
        seed_dir.symlink_to(elsewhere / "seed-001")
        target = out
    elif where == "file in a run":
        (seed_dir / "episodes.csv").rename(elsewhere / "episodes.csv")
        (seed_dir / "episodes.csv").symlink_to(elsewhere / "episodes.csv")
        target = out
    else:
        target = tmp_path / "link"
        target.symlink_to(out)
    before_out, before_elsewhere = tree(out), tree(elsewhere)
    refused(invoke(*COMPARE, "--out", str(target)), "symbolic link")
    refused(invoke(*COMPARE, "--out", str(target), "--overwrite"), "symbolic link")
    assert tree(out) == before_out and tree(elsewhere) == before_elsewhere


def test_removal_never_leaves_the_results_directory(tmp_path):
    root, outside = tmp_path / "results", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    with pytest.raises(DqnlabError, match="not inside"):
        remove_owned(outside, "run", root=root)
    with pytest.raises(DqnlabError, match="not inside"):
        remove_owned(root / ".." / "outside", "run", root=root)
    assert outside.is_dir()


# ---------------------------------------------------------------- one writer


def _start_compare(out: Path, samples: int, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "dqnlab", *COMPARE, "--out", str(out), *extra]
    command[command.index("--samples") + 1] = str(samples)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_run(process: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Until the lock names its holder and a run has started writing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lock = out / LOCK
        if lock.is_file() and lock.read_text().strip() and list(out.glob("runs/*/*/episodes.csv")):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("the first compare never started a run")


def test_a_second_command_is_refused_while_the_first_writes(tmp_path):
    out = tmp_path / "results"
    first = _start_compare(out, samples=4000)
    try:
        _wait_for_run(first, out)
        line = refused(invoke(*COMPARE[:4], "4000", *COMPARE[5:], "--out", str(out)), "is in use by dqnlab compare")
        assert f"pid {first.pid} " in line
        refused(invoke("report", str(out)), "is in use by dqnlab compare")
        refused(invoke(*COMPARE, "--out", str(out), "--overwrite"), "is in use")
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr  # the first one was not disturbed
    assert sorted(p.name for p in out.glob("runs/*/*/result.json")) == ["result.json"] * 4
    assert leftovers(out) == []


def test_a_lock_left_by_a_killed_command_is_taken_over(tmp_path):
    out = tmp_path / "results"
    first = _start_compare(out, 6000, "--backend", "local", "--workers", "1")  # its worker must die with it
    _wait_for_run(first, out)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert (out / LOCK).is_file()  # left behind, naming a dead process
    time.sleep(1.5)
    still = tree(out)
    time.sleep(1.5)  # an orphaned worker would rewrite its episodes.csv every second
    assert tree(out) == still
    result = invoke(*COMPARE[:4], "6000", *COMPARE[5:], "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("runs/*/*/result.json"))) == 4 and leftovers(out) == []


def test_train_and_handset_refuse_a_run_directory_in_use(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "-q", "--out", out).exit_code == 0
    before = tree(out)
    with DirectoryLock(out, "dqnlab train"):  # as if another train were writing there
        refused(invoke("train", *TINY, "-q", "--out", out, "--overwrite"), "is in use by dqnlab train")
        refused(invoke("handset", "--out", out, "--overwrite"), "is in use by dqnlab train")
    assert tree(out) == before


def test_a_run_inside_a_results_directory_in_use_is_refused(results, tmp_path):
    out = copy_of(results, tmp_path)
    seed_dir = out / "runs" / "naive" / "seed-000"
    before = tree(out)
    with DirectoryLock(out, "dqnlab compare"):
        refused(invoke("train", *TINY, "-q", "--out", seed_dir, "--overwrite"), "lies inside", "in use by dqnlab compare")
        refused(invoke("probe", seed_dir), "lies inside", "in use by dqnlab compare")
    assert tree(out) == before
    assert invoke("probe", seed_dir).exit_code == 0  # once nobody holds it


def test_a_lock_is_exclusive_and_released(tmp_path):
    with DirectoryLock(tmp_path, "dqnlab first") as held:
        assert held.taken_over is None
        with pytest.raises(DqnlabError, match=rf"in use by dqnlab first \(pid {os.getpid()} on "):
            DirectoryLock(tmp_path, "dqnlab second").acquire()
    assert not (tmp_path / LOCK).exists()
    (tmp_path / LOCK).write_text(json.dumps({"command": "dqnlab gone", "pid": 999999, "host": "h", "since": "then"}))
    with DirectoryLock(tmp_path, "dqnlab third") as lock:  # nobody holds the file's lock: its writer is dead
        assert lock.taken_over == "dqnlab gone (pid 999999 on h, since then)"


# ---------------------------------------------------------------- full and read-only disks


def failing_disk(monkeypatch, code: int | None, after: int, interrupt: bool = False) -> None:
    """Every file dqnlab writes after the first `after` fails like a disk would: the temporary file is made, then
    the write raises OSError(code) (or KeyboardInterrupt, as Ctrl-C would)."""
    real_open, count = open, [0]

    def fake_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if "w" in mode:
            count[0] += 1
            if count[0] > after:
                handle.write(b"half")
                handle.close()
                raise KeyboardInterrupt if interrupt else OSError(code, os.strerror(code), str(path))
        return handle

    monkeypatch.setattr(disk, "open", fake_open, raising=False)


CODES = {errno.ENOSPC: "no space left", errno.EROFS: "read-only", errno.EACCES: "permission denied"}


@pytest.mark.parametrize("code", list(CODES))
def test_train_on_a_disk_that_refuses_ends_in_one_line(tmp_path, monkeypatch, code):
    failing_disk(monkeypatch, code, after=2)  # the marker and config.json are written; episodes.csv is not
    out = tmp_path / "run"
    refused(invoke("train", *TINY, "--out", str(out)), "cannot write", "episodes.csv", CODES[code])
    assert leftovers(out) == []


@pytest.mark.parametrize("command", ["handset", "play", "probe"])
def test_other_writers_on_a_full_disk_end_in_one_line(results, tmp_path, monkeypatch, command):
    run = results / "runs" / "replay" / "seed-000"
    probe_out, gif = tmp_path / "probe", tmp_path / "out.gif"
    args = {"handset": ["handset", "--out", str(tmp_path / "hand")], "play": ["play", str(run), "--episodes", "1", "--gif", str(gif)],
            "probe": ["probe", str(run), "--out", str(probe_out)]}[command]  # fmt: skip
    failing_disk(monkeypatch, errno.ENOSPC, after=0 if command == "play" else 1)  # after the marker, if any
    refused(invoke(*args), "cannot write", "no space left")
    assert leftovers(tmp_path) == [] and not gif.exists()


def test_compare_stops_on_a_full_disk_and_resumes_after(tmp_path, monkeypatch):
    out = tmp_path / "results"
    failing_disk(monkeypatch, errno.ENOSPC, after=12)  # a few runs' files get written, then the disk is full
    refused(invoke(*COMPARE, "--workers", "1", "--out", str(out)), "cannot write", "no space left")  # in this process
    assert leftovers(out) == []
    monkeypatch.undo()  # space freed
    result = invoke(*COMPARE, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("runs/*/*/result.json"))) == 4


def test_a_population_worker_reports_a_full_disk_for_the_parent_to_stop_on(tmp_path, monkeypatch):
    """What a population's worker process does on a disk error (here in this process, where the fault reaches)."""
    experiment = build_experiment("quick", 300, 2, None, {"network": {"hidden": [8]}})
    tasks = plan(experiment, tmp_path).tasks
    failing_disk(monkeypatch, errno.ENOSPC, after=3)
    events = []
    run_unit(Unit(tasks[:2], population=True), events.append, progress_every=100)
    finished = [event for event in events if isinstance(event, Finished)]
    assert [event.key for event in finished] == [task.key for task in tasks[:2]]
    assert all(event.outcome["disk"] and "no space left" in event.outcome["error"] for event in finished)
    with pytest.raises(DiskError, match="no space left"):
        raise_disk_error(finished[0].outcome)


def test_ctrl_c_while_the_report_is_written_leaves_no_temporary_file(results, tmp_path, monkeypatch):
    out = copy_of(results, tmp_path)
    before = (out / "summary.json").read_bytes()
    failing_disk(monkeypatch, None, after=2, interrupt=True)
    result = invoke("report", str(out))
    assert result.exit_code == 130 and result.stderr.startswith("interrupted")
    assert leftovers(out) == [] and (out / "summary.json").read_bytes() == before


# ---------------------------------------------------------------- exit codes and JSON


def test_compare_and_report_exit_3_when_runs_failed(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_VARIABLE, "replay/seed-001")  # that run's worker process dies: the run fails
    out = tmp_path / "results"
    result = invoke(*COMPARE, "--backend", "local", "--workers", "1", "--out", str(out))
    assert result.exit_code == LEFT_OUT_EXIT == 3, result.output
    assert "1 of 4 runs failed or are left out" in result.stderr
    assert (out / "report.html").is_file()
    assert invoke("report", str(out)).exit_code == LEFT_OUT_EXIT
    monkeypatch.delenv(FAULT_VARIABLE)
    assert invoke(*COMPARE, "--out", str(out)).exit_code == 0  # retried: nothing is left out


def test_json_on_disk_is_strict(tmp_path):
    path = tmp_path / "x.json"
    disk.write_json(path, {"loss": float("inf"), "values": [1.0, float("nan")]})
    assert json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name)) == {"loss": None, "values": [1.0, None]}
    path.write_text('{"loss": Infinity}')
    with pytest.raises(DqnlabError, match="Infinity is not a JSON value"):
        disk.read_json_object(path)


def test_an_output_directory_is_marked_before_anything_else(tmp_path):
    with output_dir(tmp_path / "new", "run", "dqnlab test"):
        assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [MARKER, LOCK]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [MARKER]
