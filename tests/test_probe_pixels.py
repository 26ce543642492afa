"""`dqnlab probe` on image observations (MinAtar): channels as units, frames drawn as MinAtar draws them, the report.

MinAtar comes with the `test` extra (`pip install -e '.[test]'`), as with `dqnlab[minatar]`.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dqnlab.cli import cli
from dqnlab.engine.network import QNetwork
from dqnlab.probe.frames import channel_counts, frame_image, palette, receptive_field, screen_of
from dqnlab.probe.probeset import channel_units, responses
from dqnlab.probe.units import describe, unit_stats

BREAKOUT = "MinAtar/Breakout-v0"
FRAME = (10, 10, 4)  # Breakout: paddle, ball, trail, brick
BALL = 1


def frames_with_ball_at(*cells: tuple[int, int]) -> np.ndarray:
    """One flattened Breakout frame (H * W * C,) per cell, nothing lit but the ball there: (S, 400)."""
    states = np.zeros((len(cells), *FRAME), dtype=np.float32)
    for i, (row, column) in enumerate(cells):
        states[i, row, column, BALL] = 1.0
    return states.reshape(len(cells), -1)


def ball_detector() -> QNetwork:
    """Channel 0 fires 1 where the ball is at its window's centre; channel 1 never fires (bias -1);
    fully connected unit 0 copies channel 0's output summed over positions; Q(a) = unit 0 for a = 1, else 0."""
    network = QNetwork(400, 6, (2,), conv=(2,), frame=FRAME)
    conv, dense, output = network.layers
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
        conv.weight[0, BALL, 1, 1] = 1.0  # (out, C, 3, 3): the centre cell of the ball channel
        conv.bias[1] = -1.0
        dense.weight[0, 0::2] = 1.0  # inputs flattened position by position, channels last: channel 0 at even indices
        output.weight[1, 0] = 1.0
    return network


def test_a_channel_unit_is_its_largest_output_and_where_it_was_first_in_row_major_order():
    conv = np.zeros((2, 2, 3, 2))  # (S, H', W', C)
    conv[0, 1, 2, 0], conv[0, 0, 1, 0] = 5.0, 2.0  # state 0, channel 0: largest at (1, 2)
    conv[1, 0, 2, 0] = conv[1, 1, 0, 0] = 3.0  # state 1, channel 0: a tie, the first row-major one is (0, 2)
    values, where = channel_units(conv)  # channel 1 is silent everywhere: 0 at (0, 0)
    assert values.tolist() == [[5.0, 0.0], [3.0, 0.0]]
    assert where.tolist() == [[[1, 2], [0, 0]], [[0, 2], [0, 0]]]


def test_a_hand_built_channel_fires_where_the_ball_is_and_the_probe_reads_it_so():
    states = frames_with_ball_at((4, 7), (1, 1), (0, 0))  # the last: a corner no window has at its centre
    result = responses(ball_detector(), states)
    assert result.hidden[0].tolist() == [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]  # (S, channels)
    assert result.positions[0][:2, 0].tolist() == [[3, 6], [0, 0]]  # the window whose centre is the ball: (row - 1, column - 1)
    assert result.positions[1] is None and result.hidden[1][:, 0].tolist() == [1.0, 1.0, 0.0]
    assert result.q[:, 1].tolist() == [1.0, 1.0, 0.0] and not result.q[:, [0, 2, 3, 4, 5]].any()
    stats = unit_stats(ball_detector(), result.hidden, channel_counts(states, FRAME), result.q, result.positions)
    channel, silent = stats[0]
    assert channel.effect is None and channel.top[:2] == (0, 1) and channel.positions[:2] == ((3, 6), (0, 0))
    assert silent.dead and silent.positions is None
    assert stats[1][0].effect == (0.0, 1.0, 0.0, 0.0, 0.0, 0.0)  # the last hidden layer votes; the channels do not


def test_frames_are_drawn_in_minatars_colours_with_the_highest_channel_on_top():
    colours = palette(4)  # (C + 1, 3)
    assert colours[0].tolist() == [0.0, 0.0, 0.0] and len({tuple(c) for c in colours}) == 5
    seaborn = pytest.importorskip("seaborn")
    assert np.allclose(colours[1:], np.array(seaborn.color_palette("cubehelix", 4)))  # MinAtar's display_state
    state = np.zeros(FRAME, dtype=np.float32)
    state[0, 0, 0] = 1.0  # paddle alone
    state[2, 3, 1] = state[2, 3, 3] = 1.0  # ball and brick in one cell: the brick (channel 3) shows
    image = frame_image(state.reshape(-1), FRAME, colours)  # (H, W, 3)
    assert image.shape == (10, 10, 3)
    assert image[0, 0].tolist() == colours[1].tolist() and image[2, 3].tolist() == colours[4].tolist()
    assert image[5, 5].tolist() == [0.0, 0.0, 0.0]


def test_the_state_variables_of_a_frame_are_its_lit_cells_per_channel():
    states = frames_with_ball_at((4, 7), (1, 1)).reshape(2, *FRAME)
    states[1, 9, :, 0] = 1.0  # a paddle row of 10 cells
    assert channel_counts(states.reshape(2, -1), FRAME).tolist() == [[0, 1, 0, 0], [10, 1, 0, 0]]
    assert [receptive_field(layer) for layer in range(3)] == [3, 5, 7]


def test_breakouts_screen_names_its_channels_and_its_six_actions():
    screen = screen_of(BREAKOUT)
    assert screen.frame == FRAME and screen.channels == ("paddle", "ball", "trail", "brick")
    assert screen.actions == ("no-op", "left", "up", "right", "down", "fire")
    assert screen.variables == ("paddle cells", "ball cells", "trail cells", "brick cells")
    assert screen_of("CartPole-v1") is None


def test_a_unit_on_frames_is_described_by_channel_counts_and_named_actions():
    states = frames_with_ball_at((4, 7), (1, 1), (0, 0))
    result = responses(ball_detector(), states)
    unit = unit_stats(ball_detector(), result.hidden, channel_counts(states, FRAME), result.q, result.positions)[1][0]
    words = describe(unit, BREAKOUT, 6, screen_of(BREAKOUT))
    assert words.startswith("fires on a mix of states (no channel's count of lit cells has |r| >= 0.3)")
    assert "left" in words and "observation[" not in words and "pole" not in words


@pytest.fixture(scope="module")
def breakout_probe(tmp_path_factory):
    """A short Breakout run with checkpoints, probed from the command line."""
    run = tmp_path_factory.mktemp("breakout") / "run"
    trained = CliRunner().invoke(cli, ["train", "--preset", "minatar", "--samples", "400", "--checkpoint-every", "200",
                                       "--set", "replay.warmup=100", "--set", "replay.capacity=400", "--quiet",
                                       "--out", str(run)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    probed = CliRunner().invoke(cli, ["probe", str(run)])
    assert probed.exit_code == 0, probed.output
    return run, probed.stdout


def test_the_probe_of_a_minatar_run_draws_its_units_top_states_as_frames(breakout_probe):
    run, stdout = breakout_probe
    assert "layer 0: 16 units" in stdout and "layer 1: 128 units" in stdout
    report = json.loads((run / "probe" / "probe.json").read_text())
    assert [layer["width"] for layer in report["layers"]] == [16, 128]
    markdown = (run / "probe" / "probe.md").read_text()
    assert "A convolution's units are its channels" in markdown and "r(ball cells)" in markdown
    assert "pole" not in markdown
    html = (run / "probe" / "probe.html").read_text()
    images = re.findall(r'src="\./([^"]+\.png)"', markdown) + re.findall(r'src="data:image/png', html)
    assert "frames.png" in markdown and images
    assert (run / "probe" / "frames.png").stat().st_size > 10_000


def test_the_checkpoints_of_a_conv_network_are_compared_channel_by_channel(breakout_probe):
    run, _ = breakout_probe
    stability = json.loads((run / "probe" / "probe.json").read_text())["stability"]
    assert stability is not None and stability["samples"] == [200, 400]
    assert [len(layer[0]) for layer in stability["correlations"]] == [16, 128]  # one interval: the convolution's channels, then the units
    assert len(stability["layer_weight_change"][0]) == 3  # the convolution, the hidden layer, the output layer
