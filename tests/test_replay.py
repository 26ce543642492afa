from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab.errors import DqnlabError
from dqnlab.replay import ReplayBuffer


def filled(capacity: int, count: int, obs_dim: int = 2) -> ReplayBuffer:
    """A buffer that received transitions 0..count-1; transition t has obs [t, t], action t % 2."""
    buffer = ReplayBuffer(capacity, obs_dim)
    for t in range(count):
        buffer.add([t] * obs_dim, t % 2, float(t), [t + 1] * obs_dim, t % 5 == 4, t % 7 == 6)
    return buffer


def test_ring_wraps_around_and_overwrites_the_oldest():
    buffer = filled(capacity=4, count=6)
    assert len(buffer) == 4 and buffer.added == 6 and buffer.cursor == 2
    assert buffer.obs[:, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buffer.next_obs[:, 0].tolist() == [5.0, 6.0, 3.0, 4.0]
    assert buffer.reward.tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buffer.action.tolist() == [0, 1, 0, 1]
    assert buffer.terminated.tolist() == [True, False, False, False]
    assert buffer.truncated.tolist() == [False, False, False, False]


def test_storage_is_preallocated_and_never_reallocated():
    buffer = ReplayBuffer(8, 4)
    arrays = [buffer.obs, buffer.action, buffer.reward, buffer.next_obs, buffer.terminated]
    for t in range(50):
        buffer.add(np.full(4, t), 1, 1.0, np.full(4, t + 1), False, False)
    assert all(a is b for a, b in zip(arrays, [buffer.obs, buffer.action, buffer.reward, buffer.next_obs, buffer.terminated]))


def test_terminated_and_truncated_are_stored_apart():
    buffer = ReplayBuffer(3, 1)
    buffer.add([0], 0, 1.0, [1], terminated=True, truncated=False)
    buffer.add([1], 0, 1.0, [2], terminated=False, truncated=True)
    batch = buffer.gather(np.array([0, 1]))
    assert batch.terminated.tolist() == [True, False]
    assert batch.truncated.tolist() == [False, True]


def test_gather_gives_the_learners_dtypes_and_shapes():
    buffer = filled(capacity=10, count=10, obs_dim=3)
    batch = buffer.gather(np.array([9, 0, 9]))
    assert batch.obs.shape == (3, 3) and batch.obs.dtype == torch.float32
    assert batch.next_obs.shape == (3, 3) and batch.next_obs.dtype == torch.float32
    assert batch.action.dtype == torch.int64  # indexes Q-values: must be long
    assert batch.reward.dtype == torch.float32 and batch.terminated.dtype == torch.bool
    assert batch.obs[:, 0].tolist() == [9.0, 0.0, 9.0]
    assert batch.action.tolist() == [1, 0, 1]


def test_sampling_with_replacement_is_uniform_over_stored_transitions():
    buffer = filled(capacity=16, count=10)
    rng = np.random.default_rng(0)
    indices = np.concatenate([buffer.sample_indices(64, rng) for _ in range(500)])  # 32,000 draws
    counts = np.bincount(indices, minlength=16)
    assert counts[10:].sum() == 0  # empty slots are never drawn
    # chi-square goodness of fit against uniform over 10 slots; 27.88 is the 0.999 quantile for 9 dof
    expected = len(indices) / 10
    assert ((counts[:10] - expected) ** 2 / expected).sum() < 27.88


def test_sampling_with_replacement_can_repeat_and_without_cannot():
    buffer = filled(capacity=64, count=64)
    rng = np.random.default_rng(1)
    with_repeats = [len(set(buffer.sample_indices(64, rng, replace=True))) < 64 for _ in range(20)]
    assert all(with_repeats)  # 64 draws from 64 repeat with probability 1 - 64!/64**64
    for _ in range(20):
        assert sorted(buffer.sample_indices(64, rng, replace=False).tolist()) == list(range(64))


def test_sampling_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(DqnlabError, match="empty"):
        ReplayBuffer(4, 1).sample_indices(1, rng)
    with pytest.raises(DqnlabError, match="cannot draw 5 distinct transitions from 3"):
        filled(4, 3).sample_indices(5, rng, replace=False)
    with pytest.raises(DqnlabError, match="capacity >= 1"):
        ReplayBuffer(0, 4)


def test_same_seed_same_batches():
    buffer = filled(capacity=32, count=40)
    a = buffer.sample(16, np.random.default_rng(7))
    b = buffer.sample(16, np.random.default_rng(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_memory_per_transition():
    # CartPole: 2 x 4 float32 states (32) + int64 action (8) + float32 reward (4) + 2 bools
    assert ReplayBuffer(10, 4).bytes_per_transition == 46
    assert ReplayBuffer(10, 4).nbytes == 460


@pytest.mark.parametrize("count", [3, 4, 9])  # partly full, exactly full, wrapped
def test_save_load_round_trip(tmp_path, count):
    buffer = filled(capacity=4, count=count)
    buffer.save(tmp_path / "replay.npz")
    loaded = ReplayBuffer.load(tmp_path / "replay.npz")
    assert (loaded.capacity, len(loaded), loaded.added) == (4, len(buffer), count)
    oldest_first = buffer._chronological()
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        assert np.array_equal(getattr(loaded, name)[: len(loaded)], getattr(buffer, name)[oldest_first])
    # the next add overwrites the oldest transition in the loaded buffer too
    loaded.add([99, 99], 0, 0.0, [0, 0], False, False)
    assert 99.0 in loaded.obs[:, 0] and (count < 4 or min(loaded.obs[:, 0]) == count - 3)


def test_load_refuses_pickles_and_foreign_files(tmp_path):
    pickled = tmp_path / "evil.npz"
    np.savez(pickled, meta=np.array([4, 2, 1]), obs=np.array([object()], dtype=object))
    with pytest.raises(DqnlabError, match="not a dqnlab replay file"):
        ReplayBuffer.load(pickled)
    foreign = tmp_path / "other.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(DqnlabError, match="not a dqnlab replay file"):
        ReplayBuffer.load(foreign)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(DqnlabError, match="not a dqnlab replay file"):
        ReplayBuffer.load(text)
