"""The replay memory: N rings in one set of tensors, sampling from raw draws, one member's copy on disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab.engine.nstep import n_step_returns
from dqnlab.engine.replay import FIELDS, Replay, _distinct, bytes_per_transition
from dqnlab.errors import DqnlabError
from dqnlab.experiments.trainrun import save_ring
from dqnlab.rundir.replayfile import read_replay
from dqnlab.seeding import HIGH


def filled(capacity: int, count: int, obs_dim: int = 2, members: int = 1) -> Replay:
    """Transitions 0..count-1; member k's transition t has obs [t + 100k, ...], action t % 2, reward t."""
    replay = Replay(members, capacity, obs_dim, "cpu")
    offset = 100 * torch.arange(members).unsqueeze(1)  # (N, 1)
    for t in range(count):
        obs = (t + offset).expand(members, obs_dim).float()  # (N, obs_dim)
        replay.add(obs, torch.full((members,), t % 2), torch.full((members,), float(t)), obs + 1,
                   torch.full((members,), t % 5 == 4), torch.full((members,), t % 7 == 6))  # fmt: skip
    return replay


def raw_draws(shape, seed=0):
    return torch.randint(0, HIGH, shape, generator=torch.Generator().manual_seed(seed))


def test_ring_wraps_around_and_overwrites_the_oldest():
    replay = filled(capacity=4, count=6)
    assert len(replay) == 4 and replay.added == 6 and replay.cursor == 2
    fields = replay.fields()
    assert fields.obs[0, :, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert fields.next_obs[0, :, 0].tolist() == [5.0, 6.0, 3.0, 4.0]
    assert fields.reward[0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert fields.action[0].tolist() == [0, 1, 0, 1]
    assert fields.terminated[0].tolist() == [True, False, False, False]
    assert fields.truncated[0].tolist() == [False, False, False, False]


def test_storage_is_preallocated_and_never_reallocated():
    replay = filled(capacity=8, count=1, obs_dim=4)
    rows, pointer = replay.rows, replay.rows.data_ptr()
    for t in range(50):
        replay.add(torch.full((1, 4), t), torch.ones(1), torch.ones(1), torch.full((1, 4), t + 1), torch.zeros(1), torch.zeros(1))
    assert replay.rows is rows and rows.data_ptr() == pointer
    assert replay.fields().obs[0, :, 0].tolist() == [47.0, 48.0, 49.0, 42.0, 43.0, 44.0, 45.0, 46.0]


def test_each_member_gathers_from_its_own_ring_with_the_learners_dtypes():
    replay = filled(capacity=10, count=10, obs_dim=3, members=2)
    batch = replay.gather(torch.tensor([[9, 6, 9], [2, 2, 5]]))  # (N, B)
    assert batch.obs.shape == batch.next_obs.shape == (2, 3, 3) and batch.obs.dtype == torch.float32
    assert batch.action.dtype == torch.int64  # indexes Q-values: must be long
    assert batch.reward.dtype == torch.float32 and batch.terminated.dtype == batch.truncated.dtype == torch.bool
    assert batch.obs[:, :, 0].tolist() == [[9.0, 6.0, 9.0], [102.0, 102.0, 105.0]]
    assert batch.action.tolist() == [[1, 0, 1], [0, 0, 1]]
    assert batch.terminated.tolist() == [[True, False, True], [False, False, False]]
    assert batch.truncated.tolist() == [[False, True, False], [False, False, False]]


def test_sampling_with_replacement_is_uniform_over_stored_transitions():
    replay = filled(capacity=16, count=10)
    index = replay.indices(raw_draws((500, 64))).flatten()  # 32,000 draws (rows as if 500 members)
    counts = torch.bincount(index, minlength=16).numpy()
    assert counts[10:].sum() == 0  # empty slots are never drawn
    # chi-square goodness of fit against uniform over 10 slots; 27.88 is the 0.999 quantile for 9 dof
    expected = len(index) / 10
    assert ((counts[:10] - expected) ** 2 / expected).sum() < 27.88


def test_sampling_without_replacement_is_uniform_and_never_repeats():
    replay = filled(capacity=10, count=10)
    index = replay.indices(raw_draws((4000, 6)), replace=False)  # (4000, 6)
    assert all(len(set(row.tolist())) == 6 for row in index)
    counts = torch.bincount(index.flatten(), minlength=10).double()
    expected = index.numel() / 10
    assert ((counts - expected) ** 2 / expected).sum() < 27.88
    full = filled(capacity=64, count=64).indices(raw_draws((20, 64)), replace=False)
    assert all(sorted(row.tolist()) == list(range(64)) for row in full)
    repeats = filled(capacity=64, count=64).indices(raw_draws((20, 64)), replace=True)
    assert all(len(set(row.tolist())) < 64 for row in repeats)  # 64 draws from 64 repeat with probability 1 - 64!/64**64


def test_sampling_errors():
    with pytest.raises(DqnlabError, match="empty"):
        Replay(1, 4, 1, "cpu").indices(raw_draws((1, 1)))
    with pytest.raises(DqnlabError, match="cannot draw 5 distinct transitions from 3"):
        filled(4, 3).indices(raw_draws((1, 5)), replace=False)
    with pytest.raises(DqnlabError, match="capacity >= 1"):
        Replay(1, 0, 4, "cpu")


def test_memory_per_transition():
    # CartPole: one packed float32 row: 2 x 4 state floats, the action, the reward and 2 flags
    assert bytes_per_transition(4) == 48
    replay = Replay(3, 10, 4, "cpu")
    assert replay.rows.nbytes == 3 * 10 * 48


@pytest.mark.parametrize("count", [3, 4, 9])  # partly full, exactly full, wrapped
def test_a_members_ring_comes_out_oldest_first_and_round_trips(tmp_path, count):
    replay = filled(capacity=4, count=count, members=2)
    ring = replay.member(1)
    assert (ring.capacity, len(ring), ring.added) == (4, min(count, 4), count)
    first = max(0, count - 4)
    assert ring.obs[:, 0].tolist() == [100.0 + t for t in range(first, count)]
    assert ring.action.tolist() == [t % 2 for t in range(first, count)]
    save_ring(tmp_path / "replay.npz", ring)
    loaded = read_replay(tmp_path / "replay.npz")
    assert (loaded.capacity, loaded.added) == (4, count)
    assert all(np.array_equal(loaded.arrays[name], getattr(ring, name)) for name in FIELDS)
    assert all(loaded.arrays[name].dtype == getattr(ring, name).dtype for name in FIELDS)


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, meta=np.array([4, 2, 1]), obs=np.array([object()], dtype=object))
    foreign = tmp_path / "other.npz"
    np.savez(foreign, weights=np.zeros(3))
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    for path in (pickled, foreign, text):
        with pytest.raises(DqnlabError, match="not a dqnlab replay file"):
            read_replay(path)
    ragged = tmp_path / "ragged.npz"
    save_ring(ragged, filled(4, 3).member(0))
    data = dict(np.load(ragged))
    np.savez(ragged, **{**data, "reward": data["reward"][:2]})
    with pytest.raises(DqnlabError, match="inconsistent"):
        read_replay(ragged)


@pytest.mark.parametrize("count", [5, 9, 23])  # partly full, full, wrapped
@pytest.mark.parametrize("replace", [True, False])
def test_combined_replay_ends_every_batch_with_the_newest_transition(count, replace):
    replay = filled(capacity=9, count=count, members=2)
    newest = replay.newest()
    assert replay.fields().obs[0, newest, 0].item() == count - 1  # the newest transition's slot
    seen = torch.zeros(len(replay), dtype=torch.long)
    for seed in range(300):
        index = replay.indices(raw_draws((2, 4), seed), replace, combined=True)  # (N, B)
        assert (index[:, -1] == newest).all() and ((index >= 0) & (index < len(replay))).all()
        if not replace:  # the other B - 1 are distinct and never the newest
            assert (index[:, :-1] != newest).all()
            assert all(len(set(row.tolist())) == 4 for row in index)
        seen += torch.bincount(index[:, :-1].flatten(), minlength=len(replay))
    others = [slot for slot in range(len(replay)) if replace or slot != newest]
    assert (seen[others] > 0).all()  # every other stored slot is drawn


def test_combined_replay_keeps_the_draw_stream_in_step():
    """The combined batch's first B - 1 indices are the ones the uniform batch draws from the same raw numbers."""
    replay, raw = filled(capacity=9, count=23), raw_draws((1, 5), 3)
    assert torch.equal(replay.indices(raw, True, combined=True)[:, :-1], replay.indices(raw, True)[:, :-1])


def floyd(raw: torch.Tensor, size: int) -> torch.Tensor:
    """Floyd's algorithm step by step, as written: the plain loop `_distinct` must agree with."""
    chosen = []
    for row in raw.tolist():
        taken: list[int] = []
        for i, j in enumerate(range(size - len(row), size)):
            t = row[i] % (j + 1)
            taken.append(j if t in taken else t)
        chosen.append(taken)
    return torch.tensor(chosen)


@pytest.mark.parametrize("size, batch, members", [(5000, 32, 1), (5000, 32, 16), (40, 32, 3), (33, 32, 4), (32, 32, 2), (1, 1, 1), (9, 1, 3)])
def test_distinct_draws_are_floyds_algorithm_step_by_step(size, batch, members):
    """The shortcut (every t taken at once where no step can clash) gives the walk's slots, clashes or not."""
    for seed in range(40):
        raw = raw_draws((members, batch), seed)
        assert torch.equal(_distinct(raw, size), floyd(raw, size))


def binary_transitions(steps: int, members: int, obs_dim: int, seed: int = 0):
    """Random 0/1 observations with actions, rewards and both flags, as a MinAtar game gives them."""
    g = torch.Generator().manual_seed(seed)
    cells = (torch.rand(steps + 1, members, obs_dim, generator=g) < 0.3).float()  # (T + 1, N, D)
    return [(cells[t], torch.randint(0, 6, (members,), generator=g), torch.randn(members, generator=g), cells[t + 1],
             torch.rand(members, generator=g) < 0.2, torch.rand(members, generator=g) < 0.1) for t in range(steps)]  # fmt: skip


@pytest.mark.parametrize("obs_dim", [400, 13, 8])
def test_binary_frames_are_stored_as_bits_and_come_back_as_float_rows_give_them(obs_dim):
    """Bit rows hold an eighth of a byte a cell; every batch, n-step returns included, equals float rows' exactly."""
    floats, bits = Replay(3, 50, obs_dim, "cpu"), Replay(3, 50, obs_dim, "cpu", binary=True)
    for transition in binary_transitions(70, 3, obs_dim):
        floats.add(*transition)
        bits.add(*transition)
    assert bits.rows.dtype == torch.uint8 and bits.rows.shape == (50, 3, 2 * -(-obs_dim // 8) + 10)
    index = raw_draws((3, 32)) % 50  # (N, B)
    for a, b in zip(floats.gather(index)[:6], bits.gather(index)[:6]):  # the stored fields; discount and weight are None
        assert a.dtype == b.dtype and torch.equal(a, b)
    for a, b in zip(floats.fields()[:6], bits.fields()[:6]):
        assert torch.equal(a, b)
    (fb, fd), (bb, bd) = n_step_returns(floats, index, 3, 0.9), n_step_returns(bits, index, 3, 0.9)
    assert torch.equal(fd, bd) and all(torch.equal(a, b) for a, b in zip(fb, bb) if a is not None)
    ring_f, ring_b = floats.member(1), bits.member(1)
    assert all(np.array_equal(getattr(ring_f, name), getattr(ring_b, name)) for name in FIELDS)


def test_a_minatar_transition_takes_110_bytes():
    assert bytes_per_transition(400, binary=True) == 110  # two 10 x 10 x 4 frames of bits, 4 + 4 + 1 + 1 bytes
    assert bytes_per_transition(400) == 3216  # as float rows: 4 bytes a cell
    assert Replay(2, 100, 400, "cpu", binary=True).rows.nbytes == 2 * 100 * 110
