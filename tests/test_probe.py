"""`dqnlab probe`: the probe set, unit statistics, stability across checkpoints, the report, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dqnlab.cli import cli
from dqnlab.config import EnvConfig
from dqnlab.errors import DqnlabError
from dqnlab.handset import handset_network
from dqnlab.engine.network import QNetwork, build_network
from dqnlab.probe.commands import write_handset_run
from dqnlab.probe.probeset import GRID, ProbeSet, activations, build_probe_set
from dqnlab.probe.report import probe_run
from dqnlab.probe.stability import compare_patterns
from dqnlab.probe.units import describe, lifetime_sparsity, unit_stats
from dqnlab.rundir import save_weights


def known_network() -> QNetwork:
    """Unit 0 = relu(theta); unit 1 = relu(-x_dot); unit 2 never fires; Q(right) = unit 0, Q(left) = unit 1."""
    network = QNetwork(4, 2, (3,))
    hidden, output = network.layers
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([[0.0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 0]]))
        hidden.bias.copy_(torch.tensor([0.0, 0, -1]))
        output.weight.copy_(torch.tensor([[0.0, 1, 0], [1, 0, 0]]))
        output.bias.zero_()
    return network


@pytest.fixture(scope="module")
def probe():
    return build_probe_set([known_network()], EnvConfig(), seed=0)


def test_the_probe_set_has_three_parts_and_repeats_for_a_seed(probe):
    assert len(probe) >= 10_000 and probe.states.shape[1] == 4
    assert [len(probe.part(p)) for p in ("greedy", "epsilon", "grid")] == [4000, 4000, GRID * GRID]
    grid = probe.states[probe.part("grid")]
    assert np.all(grid[:, :2] == 0) and np.isclose(grid[:, 2].max(), 0.2095) and np.isclose(grid[:, 3].min(), -2.0)
    again = build_probe_set([known_network()], EnvConfig(), seed=0)
    assert np.array_equal(again.states, probe.states)
    assert not np.array_equal(build_probe_set([known_network()], EnvConfig(), seed=1).states, probe.states)


def test_a_saved_probe_set_reads_back_and_knows_its_environment(probe, tmp_path):
    probe.save(tmp_path / "p.npz")
    loaded = ProbeSet.load(tmp_path / "p.npz")
    assert loaded.env_id == "CartPole-v1" and np.array_equal(loaded.states, probe.states)
    with pytest.raises(DqnlabError, match="states of CartPole-v1, but the run is for Acrobot-v1"):
        loaded.check("Acrobot-v1", 6, where="the run")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DqnlabError, match="is not a dqnlab probe set"):
        ProbeSet.load(tmp_path / "bad.npz")


def test_unit_statistics_where_the_answer_is_known(probe):
    network = known_network()
    hidden, q = activations(network, probe.states)
    (theta, back, dead), = unit_stats(network, hidden, probe.states, q)
    grid = probe.part("grid")
    assert np.isclose((hidden[0][grid, 0] > 0).mean(), 0.5)  # theta > 0 on half the grid
    assert theta.active == pytest.approx((probe.states[:, 2] > 0).mean())
    assert np.allclose(hidden[0][grid, 0], np.maximum(probe.states[grid, 2], 0))  # relu(theta), exactly
    assert theta.correlations[2] > 0.8
    assert back.correlations[1] < -0.8  # fires when the cart moves left
    assert dead.dead and dead.top == () and np.isnan(dead.selectivity)
    assert theta.effect == (0.0, 1.0) and back.effect == (1.0, 0.0)
    assert probe.states[theta.top[0], 2] == probe.states[:, 2].max()  # top state: the largest lean right
    assert describe(theta, "CartPole-v1", 2).startswith("fires when the pole leans right")
    assert describe(theta, "CartPole-v1", 2).endswith("raises Q(right) over Q(left)")
    assert describe(back, "CartPole-v1", 2).startswith("fires when the cart moves left")
    assert describe(dead, "CartPole-v1", 2) == "never fires on the probe set (dead)"


def test_selectivity_is_the_treves_rolls_sparsity():
    acts = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 2.0], [1.0, 0.0, 0.0]])  # (S=4, 3)
    sparsity = lifetime_sparsity(acts)
    assert sparsity[0] == pytest.approx(0.0)  # responds alike to every state
    assert sparsity[1] == pytest.approx(1.0) and sparsity[2] == pytest.approx(1.0)  # to one state only


def test_repurposing_is_zero_for_identical_checkpoints_and_finds_a_scrambled_unit(probe):
    network = build_network(4, 2, (16, 8), torch.Generator().manual_seed(0))
    first = activations(network, probe.states)[0]
    scrambled = build_network(4, 2, (16, 8), torch.Generator().manual_seed(0))
    with torch.no_grad():  # unit 5 of layer 0 now fires where it was silent
        scrambled.layers[0].weight[5] *= -1
        scrambled.layers[0].bias[5] *= -1
    result = compare_patterns([0, 1000, 2000], [first, first, activations(scrambled, probe.states)[0]])
    assert result.repurposed[0].tolist() == [0, 0]  # identical checkpoints
    assert result.repurposed[1, 0] == 1 and np.nanargmin(result.correlations[0][1]) == 5
    assert result.correlations[0][0][~np.isnan(result.correlations[0][0])].min() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def handset_report(tmp_path_factory):
    run = write_handset_run(tmp_path_factory.mktemp("runs") / "handset")
    (run / "checkpoints").mkdir()
    for samples in (1000, 2000):  # two identical checkpoints: one interval in which nothing moved
        save_weights(handset_network(), run / "checkpoints" / f"samples-{samples:09d}.pt")
    return run, probe_run(run)


def test_the_report_files_exist_and_reference_only_existing_images(handset_report):
    run, report = handset_report
    out = run / "probe"
    for name in ("probe.json", "probe.md", "probe.html", "probe_set.npz", "frames.png", "heatmaps.png", "stability.png"):
        assert (out / name).is_file(), name
    markdown = (out / "probe.md").read_text()
    linked = re.findall(r"\]\(\./([^)]+)\)", markdown)
    assert sorted(linked) == ["frames.png", "heatmaps.png", "stability.png"] and all((out / n).is_file() for n in linked)
    html = (out / "probe.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and 'src="http' not in html and "src='" not in html
    assert json.loads((out / "probe.json").read_text()) == report
    assert report["layers"][0]["width"] == 4 and report["stability"]["total_repurposed"] == 0  # hand-set: nothing moved


def test_the_hand_set_network_is_probed_as_any_other(handset_report):
    _, report = handset_report
    units = {u["key"]: u for u in report["layers"][0]["units"]}
    assert units["L0.0"]["effect"] == [0.0, 1.0] and "raises Q(right)" in units["L0.0"]["description"]
    assert units["L0.0"]["correlations"][3] > 0.5  # the "pole falling right" neuron follows theta_dot


def test_command_line_and_bad_input(handset_report, tmp_path):
    run, _ = handset_report
    result = CliRunner().invoke(cli, ["probe", str(run), "--out", str(tmp_path / "p"), "--probe-set", str(run / "probe" / "probe_set.npz")])
    assert result.exit_code == 0, result.output
    assert "layer 0: 4 units, 0 dead" in result.stdout and "0 units repurposed over 1 checkpoint interval" in result.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((run / "config.json").read_text())  # a run that never finished
    acrobot = ProbeSet("Acrobot-v1", np.zeros((5, 6), np.float32), np.zeros(5, np.int8), np.zeros(0), np.zeros(0), 0)
    acrobot.save(tmp_path / "acrobot.npz")
    wrong = tmp_path / "wrong"
    write_handset_run(wrong)
    torch.save(build_network(6, 3, (4,), torch.Generator()).state_dict(), wrong / "weights.pt")
    for args, fragment in [
        ([str(empty)], "the run has no weights"),
        ([str(tmp_path / "nowhere")], "is not a dqnlab run directory"),
        ([str(run), "--out", str(tmp_path / "q"), "--probe-set", str(tmp_path / "acrobot.npz")], "states of Acrobot-v1"),
        ([str(wrong)], "maps 6 inputs to 3 actions, but the environment has 4 observations and 2 actions"),
    ]:
        result = CliRunner().invoke(cli, ["probe", *args])
        assert result.exit_code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1, result.output
    assert not (tmp_path / "q").exists()  # refused before anything was written


def test_handset_writes_a_run_that_play_plays(tmp_path):
    out = tmp_path / "hs"
    result = CliRunner().invoke(cli, ["handset", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "10 of 10 seeded episodes reached the 10,000-step cap" in result.stdout
    played = CliRunner().invoke(cli, ["play", str(out), "--episodes", "2", "--max-steps", "600", "--gif", str(tmp_path / "hs.gif")])
    assert played.exit_code == 0 and "2 reached the 600-step cap" in played.stdout and "note:" not in played.output
    assert (tmp_path / "hs.gif").stat().st_size > 0
    again = CliRunner().invoke(cli, ["handset", "--out", str(out)])
    assert again.exit_code == 2 and "pass --overwrite" in again.stderr


def test_compare_counts_repurposed_units_per_variant_with_one_shared_probe_set(tmp_path):
    from dqnlab.analysis.report import build_report
    from dqnlab.experiments.compare import compare
    from dqnlab.experiments.spec import build_experiment

    experiment = build_experiment("tutorial", 600, 2, None, {"network": {"hidden": [8]}, "run": {"checkpoint_every": 200}})
    summary = compare(experiment, tmp_path, workers=2, quiet=True, backend="population")
    for variant in ("naive", "replay"):
        assert summary["variants"][variant]["measures"]["repurposed_units"]["n"] == 2
    assert any(row["measure"] == "repurposed_units" for row in summary["comparisons"])
    shared = tmp_path / "probe" / "probe_set.npz"
    before = shared.read_bytes()
    assert ProbeSet.load(shared).env_id == "CartPole-v1"
    assert build_report(tmp_path)["variants"] == summary["variants"] and shared.read_bytes() == before  # reused as it was
    assert "Detector stability" in (tmp_path / "summary.md").read_text()
