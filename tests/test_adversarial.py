"""Corrupt files fed to every command that reads them: one line, exit code 2, never a traceback.

One tiny trained run (with checkpoints, probed once) and one tiny comparison
are made per module; each case copies one, damages a file as a disk, an
editor or an attacker might, and runs the command through the CLI. A command
must refuse with exactly one `error:` line on stderr that names the file and
the problem, and must never pass on a library's advice to load unsafely
(torch's `weights_only=False`, numpy's `allow_pickle=True`). The report and
a resumed comparison must not refuse a results directory because one run in
it is corrupt: the report lists that run as left out, with the reason, and
the comparison redoes it.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from dqnlab.rundir.layout import run_dir_for
from tests.clitools import UNSAFE_ADVICE, invoke, refused

TINY = ["--set", "network.hidden=[8]", "--samples", "300", "--seed", "0"]
COMPARE = ["compare", "--samples", "300", "--seeds", "1", "--set", "network.hidden=[8]", "--backend", "population"]


class Thing:
    """Not a tensor: torch.load(weights_only=True) must refuse to build it."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 300-sample run with three checkpoints, probed once (so its probe_set.npz can be reused)."""
    run = tmp_path_factory.mktemp("adversarial") / "run"
    result = invoke("train", "--agent", "naive", *TINY, "--checkpoint-every", "100", "-q", "--out", run)
    assert result.exit_code == 0, result.output
    assert invoke("probe", run).exit_code == 0
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("adversarial") / "compare"
    result = invoke(*COMPARE, "-q", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def results(compared, tmp_path):
    copy = tmp_path / "compare"
    shutil.copytree(compared, copy)
    return copy


# ---------------------------------------------------------------- weights, for play and probe


def _state(run: Path) -> dict:
    return torch.load(run / "weights.pt", weights_only=True)


def _save(run: Path, value, **kwargs) -> None:
    torch.save(value, run / "weights.pt", **kwargs)


def _zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "not a tensor in sight")


WEIGHTS = {  # damage -> what the error line must say
    "empty": (lambda run: (run / "weights.pt").write_bytes(b""), "weights.pt is not a readable weights file: it is empty"),
    "garbage": (lambda run: (run / "weights.pt").write_bytes(b"\x00garbage\xff" * 20), "torch.save did not write it"),
    "zip": (lambda run: _zip(run / "weights.pt"), "it is a zip archive that torch.save did not write"),
    "truncated": (lambda run: (run / "weights.pt").write_bytes((run / "weights.pt").read_bytes()[:400]), "it is truncated or corrupt"),
    "object": (lambda run: _save(run, {**_state(run), "layers.0.weight": Thing()}), "it holds objects other than tensors"),
    "pickle": (lambda run: (run / "weights.pt").write_bytes(pickle.dumps(Thing(), protocol=4)), "is not a readable weights file"),
    "string": (lambda run: _save(run, {**_state(run), "layers.0.weight": "x"}), "layers.0.weight is a str, not a tensor"),
    "list": (lambda run: _save(run, list(_state(run).values())), "it holds a list, not a state_dict"),
    "shape": (lambda run: _save(run, {**_state(run), "layers.1.weight": torch.zeros(3, 8)}),
              "layers.1.weight has shape (3, 8); a 4-8-2 Q-network (4 observations, hidden [8], 2 actions) needs (2, 8)"),
    "missing": (lambda run: _save(run, {k: v for k, v in _state(run).items() if k != "layers.1.bias"}), "it lacks layers.1.bias"),
    "extra": (lambda run: _save(run, {**_state(run), "layers.2.weight": torch.zeros(2, 2)}), "it holds layers.2.weight as well"),
    "foreign": (lambda run: _save(run, {**_state(run), "optimizer": torch.zeros(1)}), "it holds the entry 'optimizer'"),
    "nan": (lambda run: _save(run, {**_state(run), "layers.0.bias": torch.full((8,), float("nan"))}),
            "layers.0.bias holds NaN or infinite values"),
    "integer": (lambda run: _save(run, {**_state(run), "layers.0.bias": torch.zeros(8, dtype=torch.int64)}),
                "layers.0.bias holds int64 values; weights must be floating-point"),
}


@pytest.mark.parametrize("command", ["play", "probe"])
@pytest.mark.parametrize("damage", list(WEIGHTS))
def test_corrupt_weights_are_refused_in_one_line(run, command, damage):
    spoil, fragment = WEIGHTS[damage]
    spoil(run)
    refused(invoke(command, run), f"{run / 'weights.pt'}", fragment)


def test_a_corrupt_checkpoint_is_refused_by_probe(run):
    checkpoint = run / "checkpoints" / "samples-000000200.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:300])
    refused(invoke("probe", run, "--probe-set", run / "probe" / "probe_set.npz"), str(checkpoint), "it is truncated or corrupt")


@pytest.mark.parametrize("name", ["weights.pt", "probe_set.npz"])
def test_a_real_process_prints_one_line_and_no_warning(run, name):
    """Outside CliRunner (and pytest's warning capture): torch warns on stderr about some pickles it refuses."""
    target = run / "weights.pt" if name == "weights.pt" else run / "probe" / name
    target.write_bytes(pickle.dumps(Thing(), protocol=4))
    args = ["play", str(run)] if name == "weights.pt" else ["probe", str(run), "--probe-set", str(target)]
    done = subprocess.run([sys.executable, "-m", "dqnlab", *args], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {target} "), done.stderr
    assert not any(text in done.stderr for text in UNSAFE_ADVICE)


# ---------------------------------------------------------------- config.json and result.json


CONFIGS = {
    "list": (b"[]", "config.json must hold a JSON object {...}; it holds a list"),
    "string": (b'"x"', "config.json must hold a JSON object {...}; it holds a str"),
    "nan": (b'{"run": {"samples": NaN}}', "config.json is not valid JSON: NaN is not a JSON value"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "config.json is not UTF-8 text"),
    "latin1": ('{"agent": "naïve"}'.encode("latin-1"), "config.json is not UTF-8 text"),
    "truncated": (b'{"agent": "naive", "run": {"sam', "config.json is not valid JSON"),
    "value": (b'{"run": {"samples": "many"}}', "config.json: run.samples must be an integer; got 'many'"),
}


@pytest.mark.parametrize("command", ["play", "probe"])
@pytest.mark.parametrize("damage", list(CONFIGS))
def test_a_corrupt_config_is_refused_in_one_line(run, command, damage):
    content, fragment = CONFIGS[damage]
    (run / "config.json").write_bytes(content)
    refused(invoke(command, run), str(run), fragment)


RESULTS = {
    "infinity": (b'{"status": "complete", "samples": Infinity}', "result.json is not valid JSON: Infinity is not a JSON value"),
    "list": (b'["complete"]', "result.json must hold a JSON object {...}; it holds a list"),
    "binary": (b"\xff\xfe\x00\x01", "result.json is not UTF-8 text"),
}


@pytest.mark.parametrize("command", ["play", "probe"])
@pytest.mark.parametrize("damage", list(RESULTS))
def test_a_corrupt_result_is_refused_in_one_line(run, command, damage):
    content, fragment = RESULTS[damage]
    (run / "result.json").write_bytes(content)
    extra = ["--probe-set", run / "probe" / "probe_set.npz"] if command == "probe" else []
    refused(invoke(command, run, *extra), f"{run / 'result.json'}", fragment)


# ---------------------------------------------------------------- probe_set.npz, for probe --probe-set


def _probe_arrays(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "probe" / "probe_set.npz") as data:
        return dict(data)


def _rewrite(run: Path, **changes) -> None:
    arrays = {**_probe_arrays(run), **changes}
    np.savez(run / "probe" / "probe_set.npz", **{k: v for k, v in arrays.items() if v is not None})


PROBE_SETS = {
    "empty": (lambda run: (run / "probe" / "probe_set.npz").write_bytes(b""), "it is empty"),
    "garbage": (lambda run: (run / "probe" / "probe_set.npz").write_bytes(b"not an archive"), "it is not an .npz archive"),
    "truncated": (lambda run: (run / "probe" / "probe_set.npz").write_bytes(
        (run / "probe" / "probe_set.npz").read_bytes()[: (run / "probe" / "probe_set.npz").stat().st_size // 2]),
        "it is truncated or corrupt"),
    "missing": (lambda run: _rewrite(run, source=None, seed=None), "it lacks the arrays source, seed"),
    "flat": (lambda run: _rewrite(run, states=np.zeros(40, dtype=np.float32)),
             "states is an array of shape (40,) of float32; expected a 2-d array of floating-point values"),
    "scalar": (lambda run: _rewrite(run, states=np.float32(1.0)), "states is a scalar of float32; expected a 2-d array"),
    "dtype": (lambda run: _rewrite(run, source=_probe_arrays(run)["source"].astype(np.float32)),
              "source is an array of shape"),
    "pickled": (lambda run: _rewrite(run, env_id=np.array([Thing()], dtype=object)), "it holds pickled objects"),
    "nan": (lambda run: _rewrite(run, states=np.full((10, 4), np.nan, dtype=np.float32), source=np.zeros(10, np.int8),
                                 grid_theta=np.zeros(0, np.float32), grid_theta_dot=np.zeros(0, np.float32)),
            "states holds NaN or infinite values"),
    "ragged": (lambda run: _rewrite(run, source=_probe_arrays(run)["source"][:5]), "states and sources do not line up"),
    "labels": (lambda run: _rewrite(run, source=np.full_like(_probe_arrays(run)["source"], 7)), "source holds values outside 0..2"),
}


@pytest.mark.parametrize("damage", list(PROBE_SETS))
def test_a_corrupt_probe_set_is_refused_in_one_line(run, damage):
    spoil, fragment = PROBE_SETS[damage]
    spoil(run)
    path = run / "probe" / "probe_set.npz"
    refused(invoke("probe", run, "--probe-set", path), f"{path} is not a dqnlab probe set: {fragment}")


# ---------------------------------------------------------------- episodes.csv: report lists the run, compare redoes it


def _edit_episodes(run_dir: Path, edit) -> None:
    lines = (run_dir / "episodes.csv").read_text().splitlines()
    (run_dir / "episodes.csv").write_text("\n".join(edit(lines)) + "\n")


def _set_field(lines: list[str], line: int, column: str, value: str) -> list[str]:
    header = lines[0].split(",")
    fields = lines[line - 1].split(",")
    fields[header.index(column)] = value
    return [*lines[: line - 1], ",".join(fields), *lines[line:]]


def _drop_column(lines: list[str], column: str) -> list[str]:
    index = lines[0].split(",").index(column)
    return [",".join(f for i, f in enumerate(line.split(",")) if i != index) for line in lines]


EPISODES = {  # damage to runs/naive/seed-000 -> the reason the report and compare give
    "hello": (lambda d: _edit_episodes(d, lambda ls: _set_field(ls, 3, "score", "hello")),
              "episodes.csv line 3: score is 'hello', not a number"),
    "inf": (lambda d: _edit_episodes(d, lambda ls: _set_field(ls, 2, "score", "inf")),
            "episodes.csv line 2: score is inf; expected a finite number"),
    "column": (lambda d: _edit_episodes(d, lambda ls: _drop_column(ls, "score")),
               "episodes.csv lacks the column(s) score; expected the header episode,samples,score,"),
    "count": (lambda d: _edit_episodes(d, lambda ls: ls[:-1]), "result.json says"),
    "result": (lambda d: (d / "result.json").write_text('{"status": "complete", "samples": Infinity}'),
               "result.json is not valid JSON: Infinity is not a JSON value"),
    "config": (lambda d: (d / "config.json").write_text("[]"), "config.json must hold a JSON object"),
    "weights": (lambda d: (d / "weights.pt").unlink(), "weights.pt is missing"),
}


@pytest.mark.parametrize("damage", list(EPISODES))
def test_report_lists_an_unreadable_run_as_left_out(results, damage):
    spoil, reason = EPISODES[damage]
    spoil(run_dir_for(results, "naive", 0))
    for name in ("summary.json", "summary.md", "report.html"):
        (results / name).unlink()
    result = invoke("report", results)  # exit code: see test_results_dirs
    assert "Traceback" not in result.output
    summary = json.loads((results / "summary.json").read_text())
    assert summary["runs"]["unreadable"] == 1 and summary["runs"]["used"] == 1
    (entry,) = [e for e in summary["runs"]["excluded"] if e.startswith("naive/seed-000: ")]
    assert entry.startswith(f"naive/seed-000: unreadable ({reason}") and entry.endswith("; rerun compare to redo it"), entry
    markdown = (results / "summary.md").read_text()
    assert "1 unreadable" in markdown and entry in markdown
    assert (results / "report.html").is_file()


@pytest.mark.parametrize("damage", ["hello", "inf", "column"])
def test_compare_redoes_a_run_whose_episodes_do_not_read_back(results, damage):
    spoil, reason = EPISODES[damage]
    run_dir = run_dir_for(results, "naive", 0)
    spoil(run_dir)
    result = invoke(*COMPARE, "--out", results)
    assert result.exit_code == 0, result.output
    assert f"redoing naive/seed-000: corrupt ({reason}" in result.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "complete"
    assert json.loads((results / "summary.json").read_text())["runs"]["used"] == 2


@pytest.mark.parametrize("case", ["binary config", "directory config", "binary experiment", "bad option", "bad value", "no command"])
def test_usage_errors_are_one_line_too(tmp_path, case):
    binary = tmp_path / "x.toml"
    binary.write_bytes(b"x = \xff\n")
    args = {
        "binary config": ["train", "--config", binary], "directory config": ["train", "--config", tmp_path],
        "binary experiment": ["compare", "--experiment", binary], "bad option": ["compare", "--bogus"],
        "bad value": ["train", "--samples", "abc"], "no command": ["nosuch"],
    }[case]  # fmt: skip
    refused(invoke(*args), *(["not UTF-8"] if "binary" in case else ["--help"]))
