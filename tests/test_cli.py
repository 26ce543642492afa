"""The command line as a user meets it: run directories, lines, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner

from dqnlab.cli import cli
from dqnlab.config import config_from_dict
from dqnlab.networks import load_network

TINY = ["--set", "network.hidden=[16]", "--samples", "300"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "naive"
    result = invoke("train", "--agent", "naive", *TINY, "--seed", "3", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out, result


def test_train_writes_a_complete_run_directory(trained):
    out, _ = trained
    assert {p.name for p in out.iterdir()} == {".dqnlab", "config.json", "episodes.csv", "weights.pt", "result.json"}
    config = config_from_dict(json.loads((out / "config.json").read_text()))
    assert (config.agent, config.run.seed, config.run.samples, config.network.hidden) == ("naive", 3, 300, (16,))
    rows = list(csv.DictReader((out / "episodes.csv").open()))
    assert list(rows[0]) == ["episode", "samples", "score", "length", "terminated", "high_score", "learn_steps", "wall_seconds", "td_loss"]
    assert int(rows[-1]["samples"]) <= 300 and int(rows[-1]["learn_steps"]) == int(rows[-1]["samples"])
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "complete" and result["episodes"] == len(rows) and result["learn_steps"] == 300
    assert result["replay_bytes_per_transition"] == 48
    state = torch.load(out / "weights.pt", weights_only=True)
    assert sorted(state) == ["layers.0.bias", "layers.0.weight", "layers.1.bias", "layers.1.weight"]


def test_train_prints_the_tutorials_line(trained):
    out, result = trained
    rows = list(csv.DictReader((out / "episodes.csv").open()))
    first = rows[0]
    expected = (
        f"total samples: {first['samples']}, ep 0: high-score {float(first['high_score']):12.3f}, "
        f"score {float(first['score']):12.3f}, length {int(first['length']):4d}"
    )
    assert expected in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1].startswith(f"done: {len(rows)} episodes, 300 samples, 300 learn steps")


def test_quiet_prints_nothing(tmp_path):
    result = invoke("train", *TINY, "--quiet", "--out", str(tmp_path / "q"))
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "q" / "result.json").is_file()


def test_checkpoints_replay_and_tensorboard_options(tmp_path):
    pytest.importorskip("tensorboard")
    out = tmp_path / "full"
    args = ["train", *TINY, "--checkpoint-every", "100", "--save-replay", "--tensorboard", "-q", "--out", str(out)]
    assert invoke(*args).exit_code == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "samples-000000100.pt", "samples-000000200.pt", "samples-000000300.pt",
    ]  # fmt: skip
    assert any((out / "tensorboard").iterdir())
    from dqnlab.rundir.replayfile import read_replay

    assert len(read_replay(out / "replay.npz")) == 300


def test_same_command_same_episodes(tmp_path):
    for name in ("a", "b"):
        assert invoke("train", *TINY, "-q", "--seed", "5", "--out", str(tmp_path / name)).exit_code == 0

    def episodes(name):
        rows = csv.DictReader((tmp_path / name / "episodes.csv").open())
        return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]

    assert episodes("a") == episodes("b")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--set", "learner.lr=-1"], "learner.lr must be > 0; got -1.0"),
        (["--set", "learner.lrr=1"], "unknown key learner.lrr"),
        (["--env", "Pendulum-v1"], "needs a Discrete one"),
        (["--env", "NoSuchEnv-v0"], "unknown environment 'NoSuchEnv-v0'"),
        (["--samples", "0"], "run.samples must be >= 1"),
        (["--config", "missing.toml"], "config file missing.toml does not exist"),
        (["--device", "cuda:7"], "run.device is 'cuda:7'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    out = tmp_path / "never"
    result = invoke("train", *args, "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and fragment in result.stderr
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_click_usage_errors_exit_2():
    assert invoke("train", "--samples", "many").exit_code == 2
    assert invoke("train", "--agent", "lazy").exit_code == 2
    assert invoke("fly").exit_code == 2


def test_an_existing_run_is_not_overwritten_without_asking(trained, tmp_path):
    out, _ = trained
    before = (out / "episodes.csv").read_text()
    result = invoke("train", *TINY, "--out", str(out))
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert (out / "episodes.csv").read_text() == before
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "cat.jpg").write_text("meow")
    result = invoke("train", *TINY, "--overwrite", "--out", str(stranger))
    assert result.exit_code == 2 and "dqnlab did not write" in result.stderr
    assert (stranger / "cat.jpg").read_text() == "meow"


def test_overwrite_replaces_a_run(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "-q", "--checkpoint-every", "100", "--out", str(out)).exit_code == 0
    assert invoke("train", *TINY, "-q", "--overwrite", "--out", str(out)).exit_code == 0
    assert not (out / "checkpoints").exists() and (out / "result.json").is_file()


def test_play_prints_scores_and_writes_a_gif(trained, tmp_path):
    out, _ = trained
    gif = tmp_path / "play.gif"
    result = invoke("play", str(out), "--episodes", "3", "--max-steps", "40", "--gif", str(gif), "--gif-frames", "25")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["episode 0", "episode 1", "episode 2"]
    assert lines[3].startswith("3 episodes: mean")
    from PIL import Image

    with Image.open(gif) as image:
        assert image.format == "GIF" and 1 <= image.n_frames <= 25 and image.size == (600, 400)


def test_play_is_greedy_and_repeatable(trained):
    out, _ = trained
    first = invoke("play", str(out), "--episodes", "4", "--seed", "1").stdout
    assert first == invoke("play", str(out), "--episodes", "4", "--seed", "1").stdout
    assert first != invoke("play", str(out), "--episodes", "4", "--seed", "2").stdout


@pytest.mark.parametrize("damage", ["no_weights", "not_a_run", "bad_weights", "wrong_shape"])
def test_play_refuses_broken_run_directories(trained, tmp_path, damage):
    import shutil

    out, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    if damage == "no_weights":
        (broken / "weights.pt").unlink()
        fragment = "has no weights"
    elif damage == "not_a_run":
        (broken / "config.json").unlink()
        fragment = "not a dqnlab run directory"
    elif damage == "bad_weights":
        (broken / "weights.pt").write_bytes(b"garbage")
        fragment = "not a readable weights file"
    else:
        config = json.loads((broken / "config.json").read_text())
        config["env"]["id"] = "Acrobot-v1"  # 6 observations, 3 actions
        (broken / "config.json").write_text(json.dumps(config))
        fragment = "maps 4 inputs to 2 actions, but the environment has 6 observations and 3 actions"
    result = invoke("play", str(broken))
    assert result.exit_code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1


def test_weights_load_through_the_public_loader(trained):
    out, _ = trained
    network = load_network(out / "weights.pt", 4, 2)
    assert network.hidden == (16,)


def test_config_and_presets_commands():
    result = invoke("config", "--agent", "naive", "--set", "learner.td_gradient=semi")
    data = json.loads(result.stdout)
    assert data["agent"] == "naive" and data["replay"]["capacity"] == 1 and data["learner"]["td_gradient"] == "semi"
    assert invoke("presets").stdout.split()[0] == "tutorial"


def test_help_and_version():
    for command in ([], ["train"], ["play"], ["config"]):
        assert invoke(*command, "--help").exit_code == 0
    assert "0.1.0" in invoke("--version").stdout


def test_the_installed_command_has_no_traceback_on_bad_input():
    result = subprocess.run(
        [sys.executable, "-m", "dqnlab", "train", "--set", "replay.batch_size=0"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr == "error: replay.batch_size must be >= 1; got 0\n"


def test_a_diverged_run_exits_1_and_is_marked(tmp_path):
    out = tmp_path / "div"
    result = invoke("train", *TINY, "--set", "learner.lr=1e10", "-q", "--out", str(out))
    assert result.exit_code == 1 and result.stderr.startswith("diverged: the loss became")
    summary = json.loads((out / "result.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged"]["learn_step"] >= 1
    played = invoke("play", str(out), "--episodes", "1", "--max-steps", "5")
    # its final weights are NaN (the diverging step's update made them so): nothing to play, one line says why
    assert played.exit_code == 2 and played.stderr.count("\n") == 1
    assert "holds NaN or infinite values, as a run whose loss diverged leaves them" in played.stderr


def test_ctrl_c_keeps_the_finished_episodes(tmp_path, monkeypatch):
    import dqnlab.experiments.trainrun as trainrun

    real_train = trainrun.train

    def interrupted_train(config, on_episode=None, **kwargs):
        def stop_after_three(record):
            on_episode(record)
            if record.episode == 2:
                raise KeyboardInterrupt

        return real_train(config, on_episode=stop_after_three, **kwargs)

    monkeypatch.setattr(trainrun, "train", interrupted_train)
    out = tmp_path / "stopped"
    result = invoke("train", *TINY, "-q", "--out", str(out))
    assert result.exit_code == 130 and "incomplete" in result.stderr
    rows = list(csv.DictReader((out / "episodes.csv").open()))
    assert [row["episode"] for row in rows] == ["0", "1", "2"]
    assert not (out / "result.json").exists() and not (out / "weights.pt").exists()


def test_episodes_csv_on_disk_is_always_whole(tmp_path):
    from dqnlab.config import Config
    from dqnlab.rundir.writer import RunWriter
    from dqnlab.engine.records import EpisodeRecord

    writer = RunWriter(tmp_path, Config(), flush_seconds=3600)
    for i in range(5):
        writer.episode(EpisodeRecord(i, 10 * (i + 1), 10.0, 10, 1, 10.0, 0, 0.1, None))
    assert (tmp_path / "episodes.csv").read_text().count("\n") == 1  # header only: not yet flushed
    writer.close()
    rows = list(csv.DictReader((tmp_path / "episodes.csv").open()))
    assert len(rows) == 5 and rows[-1]["samples"] == "50" and rows[0]["td_loss"] == ""
    assert not list(tmp_path.glob("*.tmp"))


def test_weights_with_a_pickled_payload_are_refused(trained, tmp_path):
    import shutil

    out, _ = trained
    evil = tmp_path / "evil"
    shutil.copytree(out, evil)
    Exploit.target = str(tmp_path / "pwned")
    torch.save({"layers.0.weight": torch.zeros(16, 4), "payload": Exploit()}, evil / "weights.pt")
    result = invoke("play", str(evil))
    assert result.exit_code == 2 and "not a readable weights file" in result.stderr
    assert not (tmp_path / "pwned").exists()


class Exploit:
    """Unpickling this would run code (create `target`); weights_only=True must refuse it."""

    target = ""

    def __reduce__(self):
        return (open, (self.target, "w"))
