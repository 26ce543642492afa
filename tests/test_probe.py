"""`dqnlab probe`: the probe set, unit statistics, stability across checkpoints, the report, bad input."""

from __future__ import annotations

import copy
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
from dqnlab.networks import write_handset_run
from dqnlab.probe.probeset import GRID, ProbeSet, activations, build_probe_set
from dqnlab.probe.report import probe_run
from dqnlab.analysis.detectors import KEYS, repurposing, stability_numbers
from dqnlab.probe.stability import (DEAD, LIVE, NEAR, THRESHOLD, Stability, classify, compare_networks, compare_patterns,
                                    matched_null, relative_change)
from dqnlab.probe.units import describe, lifetime_sparsity, unit_stats
from dqnlab.rundir.writer import save_weights


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


def test_identical_checkpoints_give_no_repurposing_no_weight_change_and_a_zero_null(probe):
    network = build_network(4, 2, (16, 8), torch.Generator().manual_seed(0))
    result = compare_networks([0, 1000], [network, copy.deepcopy(network)], probe.states)
    assert result.real.repurposed.tolist() == [[0, 0]] and result.null.repurposed.tolist() == [[0, 0]]
    assert result.real.share == 0.0 and result.null.share == 0.0 and result.excess_share == 0.0
    assert result.weight_change.tolist() == [0.0] and result.layer_weight_change.tolist() == [[0.0, 0.0, 0.0]]
    null = matched_null(network, network, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(null.parameters(), network.parameters()))  # zero-norm noise: no move at all
    live = result.real.classes[0][0] == LIVE
    assert np.allclose(result.real.correlations[0][0][live], 1.0) and live.sum() == result.real.live[0, 0] > 0


def test_a_negated_unit_is_repurposed(probe):
    network = build_network(4, 2, (16, 8), torch.Generator().manual_seed(0))
    negated = copy.deepcopy(network)
    with torch.no_grad():  # unit 5 of layer 0 now fires where it was silent
        negated.layers[0].weight[5] *= -1
        negated.layers[0].bias[5] *= -1
    result = compare_networks([0, 1000, 2000], [network, network, negated], probe.states)
    assert result.real.repurposed[:, 0].tolist() == [0, 1] and result.real.classes[0][1, 5] == LIVE
    assert np.nanargmin(result.real.correlations[0][1]) == 5 and result.real.correlations[0][1, 5] < THRESHOLD
    assert result.weight_change[0] == 0.0 and result.layer_weight_change[1, 1:].tolist() == [0.0, 0.0]  # only layer 0 moved


def test_unit_classes_on_hand_built_activations():
    fires = np.zeros((200, 6))  # (S=200, 6): the number of states on which each unit fires, at the start
    for unit, count in enumerate((0, 200, 1, 2, 200, 0)):
        fires[:count, unit] = 1.0
    start, end = fires.copy(), fires.copy()
    end[:, 1] = 0.0  # unit 1 fires everywhere at the start, nowhere at the end: dead
    end[:, 5] = 1.0  # unit 5 fires nowhere at the start, everywhere at the end: dead
    end[:, 4] = 0.0
    end[:1, 4] = 1.0  # unit 4: one state of 200 at the end (0.005 < 0.01): near-silent
    assert classify(start, end).tolist() == [DEAD, DEAD, NEAR, LIVE, NEAR, DEAD]  # unit 3: 2 of 200 = 0.01 is not below
    comparison = compare_patterns([[start]], [[end]])
    assert (comparison.dead.tolist(), comparison.near_silent.tolist(), comparison.live.tolist()) == ([[3]], [[2]], [[1]])


def hand_built_stability() -> Stability:
    """Two intervals; layer 0 has four units, layer 1 two; shares and counts worked out in the comments."""
    p = np.linspace(0.0, 1.0, 200)  # (S=200,): fires on 199 states
    zero, one_state = np.zeros(200), np.eye(200)[0]  # silent; fires on 1 state of 200 (near-silent)
    layer1 = np.stack([p, zero], axis=1)  # (S, 2): unit 0 unchanged and live, unit 1 dead throughout
    first = [np.stack([p, p, p, one_state], axis=1), layer1]
    second = [np.stack([2 * p, 1 - p, zero, p], axis=1), layer1]  # r = 1, r = -1, dead, near-silent at the start
    third = [np.stack([1 - p, 1 - p, zero, p], axis=1), layer1]  # r = -1, r = 1, dead, r = 1
    # real: interval 0 repurposes 1 of 3 live units (layer 0: 2, layer 1: 1), interval 1 1 of 4 (3 + 1): 2 / 7
    real = compare_patterns([first, second], [second, third])
    null_ends = [[np.stack([p, p, p, p], axis=1), layer1], [np.stack([1 - p, p, zero, 1 - p], axis=1), layer1]]
    # null: interval 0 repurposes 0 of 4 live (3 + 1), interval 1 3 of 4 (unit 2 is dead; 3 + 1): 3 / 8
    null = compare_patterns([first, second], null_ends)
    return Stability((0, 100, 200), real, null, np.array([0.1, 0.3]), np.array([[0.1, 0.1], [0.3, 0.3]]))


def test_shares_are_repurposed_live_units_over_live_units_on_a_hand_built_case():
    result = hand_built_stability()
    assert result.real.repurposed.tolist() == [[1, 0], [1, 0]] and result.real.live.tolist() == [[2, 1], [3, 1]]
    assert result.real.dead.tolist() == [[1, 1], [1, 1]] and result.real.near_silent.tolist() == [[1, 0], [0, 0]]
    assert result.null.repurposed.tolist() == [[0, 0], [3, 0]] and result.null.live.tolist() == [[3, 1], [3, 1]]
    assert result.real.interval_shares.tolist() == pytest.approx([1 / 3, 1 / 4])
    assert result.real.share == pytest.approx(2 / 7) and result.null.share == pytest.approx(3 / 8)
    assert result.excess_share == pytest.approx(2 / 7 - 3 / 8) and result.total == 2
    assert stability_numbers(result) == pytest.approx({
        "repurposed_share": 2 / 7, "null_repurposed_share": 3 / 8, "excess_repurposed_share": 2 / 7 - 3 / 8,
        "relative_weight_change": 0.2, "dead_units": 2.0, "near_silent_units": 0.5,
    })  # fmt: skip
    assert tuple(stability_numbers(result)) == KEYS


def test_the_null_moves_each_tensor_as_far_as_the_real_change_and_repeats_for_a_seed():
    before = build_network(4, 2, (16, 8), torch.Generator().manual_seed(0))
    after = build_network(4, 2, (16, 8), torch.Generator().manual_seed(1))
    with torch.no_grad():
        after.layers[2].bias.copy_(before.layers[2].bias)  # one tensor that did not change
    null = matched_null(before, after, torch.Generator().manual_seed(7))
    with torch.no_grad():
        for (name, start), end, moved in zip(before.named_parameters(), after.parameters(), null.parameters()):
            real_norm = float(torch.linalg.vector_norm(end - start))
            assert float(torch.linalg.vector_norm(moved - start)) == pytest.approx(real_norm, rel=1e-5, abs=1e-7), name
    assert torch.equal(null.layers[2].bias, before.layers[2].bias)
    again = matched_null(before, after, torch.Generator().manual_seed(7))
    other = matched_null(before, after, torch.Generator().manual_seed(8))
    assert all(torch.equal(a, b) for a, b in zip(null.parameters(), again.parameters()))
    assert not torch.equal(null.layers[0].weight, other.layers[0].weight)
    scaled = copy.deepcopy(before)
    with torch.no_grad():
        for parameter in scaled.parameters():
            parameter.mul_(1.5)
    total, layers = relative_change(before, scaled)
    assert total == pytest.approx(0.5) and layers.tolist() == pytest.approx([0.5, 0.5, 0.5])


def noise_moved(network: QNetwork, scale: float, generator: torch.Generator) -> QNetwork:
    """`network` moved by Gaussian noise of norm `scale` x each tensor's norm."""
    moved = copy.deepcopy(network)
    with torch.no_grad():
        for parameter in moved.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(noise * (scale * parameter.norm() / noise.norm()))
    return moved


def test_random_weight_noise_repurposes_units_but_no_more_than_its_null(probe):
    generator = torch.Generator().manual_seed(100)
    networks = [build_network(4, 2, (64, 64), torch.Generator().manual_seed(0))]
    for _ in range(3):  # the "real" change of each interval is itself random noise of 30% of weight scale
        networks.append(noise_moved(networks[-1], 0.3, generator))
    result = compare_networks([0, 1, 2, 3], networks, probe.states)
    assert result.weight_change.tolist() == pytest.approx([0.3, 0.3, 0.3], rel=1e-4)
    assert result.real.share > 0.04 and result.null.share > 0.04  # ~30 repurposed of ~310 live unit-intervals
    assert abs(result.excess_share) < 0.05  # the null accounts for them: no excess
    again = compare_networks([0, 1, 2, 3], networks, probe.states)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(again.null.correlations, result.null.correlations))


def test_repurposing_per_run_leaves_out_runs_without_an_interval(tmp_path):
    from dqnlab.analysis.runs import Run

    run_dirs = {("hand", seed): write_handset_run(tmp_path / f"hand-{seed}") for seed in (0, 1)}
    for seed, checkpoints in ((0, (1000, 2000)), (1, (1000,))):  # seed 1: one checkpoint, at the final sample count
        (run_dirs[("hand", seed)] / "checkpoints").mkdir()
        for samples in checkpoints:
            save_weights(handset_network().state_dict(), run_dirs[("hand", seed)] / "checkpoints" / f"samples-{samples:09d}.pt")
    runs = [Run("hand", 0, "complete", {"samples": 0}, {}, {}), Run("hand", 1, "complete", {"samples": 1000}, {}, {})]
    numbers = repurposing(tmp_path / "out", runs, run_dirs)
    assert list(numbers) == [("hand", 0)] and tuple(numbers[("hand", 0)]) == KEYS
    assert numbers[("hand", 0)] == {key: 0.0 for key in KEYS}  # two identical checkpoints: nothing moved, all four units live
    assert (tmp_path / "out" / "probe" / "probe_set.npz").is_file()


@pytest.fixture(scope="module")
def handset_report(tmp_path_factory):
    run = write_handset_run(tmp_path_factory.mktemp("runs") / "handset")
    (run / "checkpoints").mkdir()
    for samples in (1000, 2000):  # two identical checkpoints: one interval in which nothing moved
        save_weights(handset_network().state_dict(), run / "checkpoints" / f"samples-{samples:09d}.pt")
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
    assert report["stability"]["null_total_repurposed"] == 0 and report["stability"]["weight_change"] == [0.0]  # zero-norm null
    assert report["stability"]["live"] == [[4]] and report["stability"]["repurposed_share"] == 0.0
    assert "live units were repurposed 0 times in 4 live unit-intervals (share 0), against 0 in 4 (share 0)" in markdown


def test_the_hand_set_network_is_probed_as_any_other(handset_report):
    _, report = handset_report
    units = {u["key"]: u for u in report["layers"][0]["units"]}
    assert units["L0.0"]["effect"] == [0.0, 1.0] and "raises Q(right)" in units["L0.0"]["description"]
    assert units["L0.0"]["correlations"][3] > 0.5  # the "pole falling right" neuron follows theta_dot


def test_command_line_and_bad_input(handset_report, tmp_path):
    run, _ = handset_report
    result = CliRunner().invoke(cli, ["probe", str(run), "--out", str(tmp_path / "p"), "--probe-set", str(run / "probe" / "probe_set.npz")])
    assert result.exit_code == 0, result.output
    assert "layer 0: 4 units, 0 dead" in result.stdout and "0 repurposings of live units over 1 checkpoint interval (matched random-noise null: 0)" in result.stdout
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


def test_compare_gives_every_run_its_detector_measures_with_one_shared_probe_set(tmp_path):
    from dqnlab.analysis.report import build_report
    from dqnlab.api import compare
    from dqnlab.experiments.spec import build_experiment

    experiment = build_experiment("tutorial", 600, 2, None, {"network": {"hidden": [8]}, "run": {"checkpoint_every": 200}})
    summary = compare(experiment, tmp_path, workers=2, backend="population")
    for variant in ("naive", "replay"):
        for key in KEYS:  # every detector measure, for both seeds
            assert summary["variants"][variant]["measures"][key]["n"] == 2, key
    assert any(row["measure"] == "excess_repurposed_share" for row in summary["comparisons"])
    shared = tmp_path / "probe" / "probe_set.npz"
    before = shared.read_bytes()
    assert ProbeSet.load(shared).env_id == "CartPole-v1"
    assert build_report(tmp_path)["variants"] == summary["variants"] and shared.read_bytes() == before  # reused as it was
    assert "Detector stability" in (tmp_path / "summary.md").read_text()
