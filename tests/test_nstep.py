"""n-step returns from the replay memory, against a plain Python walk over hand-made streams."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch

from dqnlab.engine.nstep import n_step_returns
from dqnlab.engine.replay import FIELDS, Replay
from dqnlab.errors import DqnlabError


class Step(NamedTuple):
    """One transition of a hand-made stream, as plain Python values."""

    obs: list[float]
    action: int
    reward: float
    next_obs: list[float]
    terminated: bool
    truncated: bool


def make_stream(ends: str, rewards: list[float] | None = None, member: int = 0) -> list[Step]:
    """One transition per character of `ends`: '.' goes on, 'T' terminates, 't' truncates, 'B' does both.

    Transition t has obs [t + 1000 member, -t] and next_obs [t + 0.5 + 1000 member, 1 + t], so every
    next_obs differs from every other; rewards default to seeded float32 values.
    """
    if rewards is None:
        rewards = np.random.default_rng(member).normal(size=len(ends)).astype(np.float32).tolist()
    return [
        Step(obs=[t + 1000.0 * member, -float(t)], action=(5 * t + member) % 7, reward=float(rewards[t]),
             next_obs=[t + 0.5 + 1000.0 * member, 1.0 + t], terminated=end in "TB", truncated=end in "tB")
        for t, end in enumerate(ends)
    ]  # fmt: skip


def fill(streams: list[list[Step]], capacity: int) -> Replay:
    """A replay memory with member k's stream added in time order, as the training loop adds them."""
    replay = Replay(len(streams), capacity, 2, "cpu")
    for steps in zip(*streams):
        replay.add(torch.tensor([step.obs for step in steps]), torch.tensor([step.action for step in steps]),
                   torch.tensor([step.reward for step in steps]), torch.tensor([step.next_obs for step in steps]),
                   torch.tensor([step.terminated for step in steps]), torch.tensor([step.truncated for step in steps]))  # fmt: skip
    return replay


def python_loop(stream: list[Step], t: int, n: int, gamma: float) -> tuple[float, float, Step]:
    """Walk forward from transition t: (return, bootstrap factor, the transition whose next_obs bootstraps)."""
    total = 0.0
    for j in range(n):
        step = stream[t + j]
        total += gamma**j * step.reward
        if step.terminated:
            return total, 0.0, step
        if step.truncated or j == n - 1 or t + j == len(stream) - 1:  # episode cut, n steps, or the newest
            return total, gamma ** (j + 1), step
    raise AssertionError("unreachable")


def assert_matches_python_loop(streams, capacity, index, n, gamma):
    """Every (member, slot) of `index` gives the Python loop's target over that member's stream."""
    batch, discount = n_step_returns(fill(streams, capacity), index, n, gamma)
    times = {t % capacity: t for t in range(len(streams[0]))}  # slot -> the newest transition written there
    expected = {name: [] for name in (*FIELDS, "discount")}
    for k, slots in enumerate(index.tolist()):
        walks = [(times[slot], python_loop(streams[k], times[slot], n, gamma)) for slot in slots]
        expected["obs"].append([streams[k][t].obs for t, _ in walks])
        expected["action"].append([streams[k][t].action for t, _ in walks])
        expected["reward"].append([total for _, (total, _, _) in walks])
        expected["discount"].append([factor for _, (_, factor, _) in walks])
        for name in ("next_obs", "terminated", "truncated"):
            expected[name].append([getattr(last, name) for _, (_, _, last) in walks])
    np.testing.assert_allclose(batch.reward.numpy(), np.array(expected["reward"], dtype=np.float32), rtol=1e-6)
    np.testing.assert_array_equal(discount.numpy(), np.array(expected["discount"], dtype=np.float32))
    for name in ("obs", "action", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(batch, name).numpy(), np.array(expected[name]), err_msg=name)


ENDS = {
    "mixed": "..T...t.B..t.T....",
    "back to back": "T.t.TTtt.BB.t..",
    "no episode ends": "..........",
    "one transition": "t",
}


@pytest.mark.parametrize("ends", ENDS.values(), ids=ENDS.keys())
@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_every_slot_matches_the_python_loop(ends, gamma, n):
    capacity = 30  # room to spare: slots past the newest are empty
    index = torch.arange(len(ends)).flip(0).unsqueeze(0)  # (1, B) every stored slot
    assert_matches_python_loop([make_stream(ends)], capacity, index, n, gamma)


def test_a_three_step_return_by_hand():
    replay = fill([make_stream("....", rewards=[1, 2, 4, 8])], capacity=10)
    batch, discount = n_step_returns(replay, torch.tensor([[0, 1, 2, 3]]), n=3, gamma=0.5)
    assert batch.reward.tolist() == [[1 + 1 + 1, 2 + 2 + 2, 4 + 4, 8]]  # the last two reach the newest transition
    assert discount.tolist() == [[0.125, 0.125, 0.25, 0.5]]
    assert batch.next_obs[..., 0].tolist() == [[2.5, 3.5, 3.5, 3.5]]
    assert batch.obs[..., 0].tolist() == [[0.0, 1.0, 2.0, 3.0]] and batch.action.tolist() == [[0, 5, 3, 1]]


@pytest.mark.parametrize("gamma", [1.0, 0.9])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_returns_cross_the_end_of_a_wrapped_ring_and_stop_at_the_newest(n, gamma):
    stream = make_stream(".........T.......t..", rewards=list(range(20)))  # 20 transitions into 7 slots
    assert_matches_python_loop([stream], 7, torch.tensor([[6, 0, 1, 2, 3, 4, 5, 5, 6]]), n, gamma)
    replay = fill([stream], capacity=7)  # slots 0..6 hold transitions 14..19, 13; cursor 6
    assert replay.cursor == 6
    batch, discount = n_step_returns(replay, torch.arange(7).unsqueeze(0), n=3, gamma=0.5)
    assert batch.reward.tolist() == [[
        14 + 0.5 * 15 + 0.25 * 16,  # slots 0, 1, 2
        15 + 0.5 * 16 + 0.25 * 17,  # truncated at 17, the third step anyway
        16 + 0.5 * 17,  # truncated at 17
        17,
        18 + 0.5 * 19,  # 19 is the newest
        19,  # the newest: slot 6 holds 13, older, not its successor
        13 + 0.5 * 14 + 0.25 * 15,  # slot 6, then slots 0 and 1 across the physical end
    ]]  # fmt: skip
    assert discount.tolist() == [[0.125, 0.125, 0.25, 0.5, 0.25, 0.5, 0.125]]
    assert batch.next_obs[..., 0].tolist() == [[16.5, 17.5, 17.5, 17.5, 19.5, 19.5, 15.5]]
    assert batch.truncated.tolist() == [[False, True, True, True, False, False, False]]
    assert not batch.terminated.any()


def test_the_newest_transitions_bootstrap_after_fewer_steps():
    replay = fill([make_stream("......", rewards=[1, 1, 1, 1, 1, 1])], capacity=10)  # slots 6..9 empty
    batch, discount = n_step_returns(replay, torch.tensor([[0, 3, 4, 5]]), n=3, gamma=0.5)
    assert batch.reward.tolist() == [[1.75, 1.75, 1.5, 1.0]]
    assert discount.tolist() == [[0.125, 0.125, 0.25, 0.5]]
    assert batch.next_obs[..., 0].tolist() == [[2.5, 5.5, 5.5, 5.5]]
    replay.add(*(torch.tensor([value]) for value in ([6.0, -6.0], 0, 1.0, [6.5, 7.0], False, False)))
    batch, discount = n_step_returns(replay, torch.tensor([[4, 5]]), n=3, gamma=0.5)  # a newer transition arrived
    assert batch.reward.tolist() == [[1.75, 1.5]] and discount.tolist() == [[0.125, 0.25]]
    assert batch.next_obs[..., 0].tolist() == [[6.5, 6.5]]


def test_termination_ends_the_return_and_truncation_still_bootstraps():
    replay = fill([make_stream(".T.t.B.", rewards=[1, 2, 4, 8, 16, 32, 64])], capacity=10)
    batch, discount = n_step_returns(replay, torch.arange(6).unsqueeze(0), n=5, gamma=0.5)
    assert batch.reward.tolist() == [[1 + 1, 2, 4 + 4, 8, 16 + 16, 32]]  # never past an episode's end
    assert discount.tolist() == [[0.0, 0.0, 0.25, 0.5, 0.0, 0.0]]  # 'B' terminated as well as truncated: 0
    assert batch.next_obs[..., 0].tolist() == [[1.5, 1.5, 3.5, 3.5, 5.5, 5.5]]  # the episode's last next_obs
    assert batch.terminated.tolist() == [[True, True, False, False, True, True]]
    assert batch.truncated.tolist() == [[False, False, True, True, True, True]]


def test_one_step_is_the_plain_gather():
    replay = fill([make_stream(".T..t...B.T..t.t.T.t.", member=k) for k in range(2)], capacity=9)
    index = torch.randint(0, 9, (2, 40), generator=torch.Generator().manual_seed(0))  # (N, B)
    batch, discount = n_step_returns(replay, index, n=1, gamma=0.9)
    plain = replay.gather(index)
    for name in FIELDS:
        assert getattr(batch, name).dtype == getattr(plain, name).dtype, name
        assert torch.equal(getattr(batch, name), getattr(plain, name)), name
    assert discount.dtype == torch.float32 and discount.shape == (2, 40)
    assert torch.equal(discount, torch.where(plain.terminated, 0.0, torch.tensor(0.9, dtype=torch.float32)))
    assert plain.terminated.any() and plain.truncated.any()


@pytest.mark.parametrize("capacity", [9, 30])  # wrapped, not full
@pytest.mark.parametrize("n", [3, 5])
def test_each_member_equals_its_own_single_member_replay(capacity, n):
    streams = [make_stream(ends, member=k) for k, ends in enumerate(
        ["..T...t.B..t.T......", "T.t.TTtt.BB.t.......", "...................."])]  # fmt: skip
    together = fill(streams, capacity)
    index = torch.randint(0, min(capacity, 20), (3, 16), generator=torch.Generator().manual_seed(1))  # (N, B)
    batch, discount = n_step_returns(together, index, n, gamma=0.9)
    for k, stream in enumerate(streams):
        alone, alone_discount = n_step_returns(fill([stream], capacity), index[k : k + 1], n, gamma=0.9)
        for name in FIELDS:
            assert torch.equal(getattr(batch, name)[k : k + 1], getattr(alone, name)), (k, name)
        assert torch.equal(discount[k : k + 1], alone_discount), k
    assert_matches_python_loop(streams, capacity, index, n, 0.9)


def test_a_one_slot_ring_gives_one_step_returns():
    stream = make_stream(".t.T.", rewards=[1, 2, 3, 4, 5])
    replay = Replay(1, 1, 2, "cpu")
    for step in stream:  # the naive agent: learn from each transition as it arrives
        replay.add(*(torch.tensor([value]) for value in step))
        batch, discount = n_step_returns(replay, torch.zeros((1, 1), dtype=torch.int64), n=3, gamma=0.5)
        assert batch.reward.tolist() == [[step.reward]] and batch.next_obs.tolist() == [[step.next_obs]]
        assert discount.tolist() == [[0.0 if step.terminated else 0.5]]
        assert batch.truncated.tolist() == [[step.truncated]]


def test_n_must_be_positive():
    with pytest.raises(DqnlabError, match="n >= 1; got n = 0"):
        n_step_returns(fill([make_stream("..")], 4), torch.zeros((1, 1), dtype=torch.int64), n=0, gamma=0.9)
