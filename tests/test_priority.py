"""Prioritized replay: sum-trees against NumPy brute force, sampling frequencies, exact weights, member isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqnlab.engine.priority import Priorities, SumTree
from dqnlab.errors import DqnlabError
from dqnlab.seeding import HIGH

# The chi-square distribution's 0.999 quantile for 9 degrees of freedom
# (NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.4,
# "Critical values of the chi-square distribution"; scipy.stats.chi2.ppf(0.999, 9)).
CHI_SQUARE_999_9 = 27.877


def grouped_root(leaves: np.ndarray, arity: int, depth: int) -> np.ndarray:
    """Each row's leaves, padded with zeros to arity**depth, summed in groups of `arity` left to right
    (a plain Python loop of additions), level by level: the exact root."""
    level = np.zeros((leaves.shape[0], arity**depth))
    level[:, : leaves.shape[1]] = leaves
    while level.shape[1] > 1:
        groups = level.reshape(level.shape[0], -1, arity)
        level = np.zeros(groups.shape[:2])
        for child in range(arity):
            level += groups[:, :, child]
    return level[:, 0]


def set_reference(leaves: np.ndarray, index: np.ndarray, value: np.ndarray) -> None:
    """NumPy's `SumTree.set` on the leaves: per member, the largest of a slot's duplicates replaces it."""
    newest = np.full(leaves.shape, -np.inf)
    rows = np.broadcast_to(np.arange(leaves.shape[0])[:, None], index.shape)
    np.maximum.at(newest, (rows, index), value)
    written = newest > -np.inf
    leaves[written] = newest[written]


def raw_draws(shape, seed=0) -> torch.Tensor:
    return torch.as_tensor(np.random.default_rng(seed).integers(0, HIGH, size=shape))


def chi_square(counts: np.ndarray, probability: np.ndarray) -> float:
    expected = counts.sum() * probability
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("capacity", [1, 5, 1000, 50_000])
def test_totals_after_many_sets_equal_the_grouped_brute_force_bit_for_bit(capacity):
    rng = np.random.default_rng(capacity)
    members = 3
    tree = SumTree(members, capacity, "cpu")
    leaves = np.zeros((members, capacity))
    for call in range(2000):
        batch = int(rng.integers(1, 65))
        pool = capacity if call % 2 else min(capacity, 8)  # every other call, duplicates for sure
        index = rng.integers(0, pool, size=(members, batch))
        value = rng.exponential(size=(members, batch)) * 10.0 ** rng.integers(-8, 9, size=(members, batch))
        value[rng.random((members, batch)) < 0.1] = 0.0
        tree.set(torch.as_tensor(index), torch.as_tensor(value))
        set_reference(leaves, index, value)
    assert np.array_equal(tree.leaves().numpy(), leaves)
    assert np.array_equal(tree.total().numpy(), grouped_root(leaves, SumTree.ARITY, tree.depth))
    np.testing.assert_allclose(tree.total().numpy(), leaves.sum(axis=1), rtol=1e-12)
    for parent, children in zip(tree.levels[:-1], tree.levels[1:]):  # every internal node: its children's left-to-right sum
        groups = children.numpy().reshape(members, -1, SumTree.ARITY)  # (N, parents with children, K)
        sums = np.zeros(groups.shape[:2])
        for child in range(SumTree.ARITY):
            sums += groups[:, :, child]
        assert np.array_equal(parent.numpy()[:, : sums.shape[1]], sums)
        assert not parent.numpy()[:, sums.shape[1] :].any()  # a padding node has no children and stays 0
    assert not tree.levels[-1][:, capacity:].any()  # padding stays 0


@pytest.mark.parametrize("capacity, sizes", [(1, [1, 16]), (17, [1, 16, 32]), (50_000, [1, 16, 208, 3136, 50_000])])
def test_each_level_holds_sixteen_children_per_node_above_not_a_full_tree(capacity, sizes):
    """50,000 slots take 53,361 nodes, where a full 16^4-leaf tree would take 69,905."""
    assert SumTree.level_sizes(capacity) == sizes
    assert [level.shape[1] for level in SumTree(2, capacity, "cpu").levels] == sizes


def test_duplicates_in_one_set_the_largest_value_wins_and_replaces_the_old_one():
    tree = SumTree(2, 5, "cpu")
    tree.set(torch.tensor([[3], [3]]), torch.tensor([[100.0], [100.0]], dtype=torch.float64))
    index = torch.tensor([[3, 1, 3, 3], [0, 0, 4, 0]])
    tree.set(index, torch.tensor([[2.0, 5.0, 7.0, 1.0], [1.0, 9.0, 2.0, 3.0]], dtype=torch.float64))
    assert tree.leaves().tolist() == [[0.0, 5.0, 0.0, 7.0, 0.0], [9.0, 0.0, 0.0, 100.0, 2.0]]
    assert tree.total().tolist() == [12.0, 111.0]


@pytest.mark.parametrize("capacity", [1, 5, 1000, 50_000])
def test_find_matches_searchsorted_and_never_returns_an_empty_slot(capacity):
    rng = np.random.default_rng(7 + capacity)
    members = 2
    leaves = rng.integers(0, 4, size=(members, capacity)).astype(np.float64)  # integers: every sum is exact
    leaves[1, (capacity + 1) // 2 :] = 0.0  # member 1: a run of empty slots before the padding
    leaves[:, rng.integers(0, (capacity + 1) // 2)] = 1.0  # at least one positive slot per member
    tree = SumTree(members, capacity, "cpu")
    tree.set(torch.arange(capacity).expand(members, -1), torch.as_tensor(leaves))
    cumulative = np.cumsum(leaves, axis=1)  # exact
    total = cumulative[:, -1]
    below = np.stack([
        np.concatenate([rng.random(3000) * t, rng.integers(0, int(t), 500), rng.choice(np.append(c[c < t], 0.0), 500),
                        [0.0, np.nextafter(t, 0), t - 0.5]])
        for t, c in zip(total, cumulative)
    ])  # fmt: skip
    slots = tree.find(torch.as_tensor(below)).numpy()
    expected = np.stack([np.searchsorted(c, m, side="right") for c, m in zip(cumulative, below)])
    assert np.array_equal(slots, expected)
    at_total = tree.find(torch.as_tensor(total[:, None])).numpy()[:, 0]  # rounding may leave a mass there
    assert at_total.tolist() == [int(np.flatnonzero(row)[-1]) for row in leaves]
    assert (np.take_along_axis(leaves, slots, axis=1) > 0).all()


def test_find_lands_on_a_positive_slot_for_masses_rounded_up_to_the_total():
    rng = np.random.default_rng(3)
    leaves = rng.exponential(size=(4, 1000)) * (rng.random((4, 1000)) < 0.3)
    leaves[:, -200:] = 0.0  # the last slots empty, then 24 of padding
    tree = SumTree(4, 1000, "cpu")
    tree.set(torch.arange(1000).expand(4, -1), torch.as_tensor(leaves))
    total = tree.total()
    largest_draw = (1 - 2.0**-53) * total  # (N,) u's largest value, times the total
    masses = torch.stack([total, torch.nextafter(total, torch.zeros(4)), largest_draw, total * 0.999999], dim=1)  # (N, 4)
    slots = tree.find(masses).numpy()
    assert (slots < 1000).all() and (np.take_along_axis(leaves, slots, axis=1) > 0).all()


def test_sampling_frequencies_match_p_to_the_alpha_by_chi_square():
    alpha, epsilon, draws = 0.6, 0.01, 200_000
    errors = np.array([[0.1, 0.5, 1.0, 2.0, 3.0, 0.0, 4.0, 0.2, 1.5, 2.5], [5.0, 0.0, 0.3, 0.3, 1.0, 8.0, 0.05, 2.0, 0.7, 0.1]])
    priorities = Priorities(2, 10, alpha, epsilon, "cpu")
    priorities.update(torch.arange(10).expand(2, -1), torch.as_tensor(errors, dtype=torch.float32))
    slots = priorities.sample(raw_draws((2, draws))).numpy()
    counts = np.stack([np.bincount(row, minlength=10) for row in slots])
    scaled = (np.abs(errors.astype(np.float32).astype(np.float64)) + epsilon) ** alpha
    probability = scaled / scaled.sum(axis=1, keepdims=True)
    for k in range(2):
        assert chi_square(counts[k], probability[k]) < CHI_SQUARE_999_9
        assert chi_square(counts[k], np.full(10, 0.1)) > CHI_SQUARE_999_9  # the test can tell a wrong distribution
        assert chi_square(counts[k], probability[1 - k]) > CHI_SQUARE_999_9  # and the other member's


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_weights_equal_the_papers_formula(beta):
    rng = np.random.default_rng(11)
    alpha, epsilon, size = 0.7, 1e-3, 6
    errors = rng.normal(size=(2, size)).astype(np.float32)  # negative errors too
    priorities = Priorities(2, 8, alpha, epsilon, "cpu")
    priorities.update(torch.arange(size).expand(2, -1), torch.as_tensor(errors))
    index = np.array([[0, 5, 5, 2, 3], [1, 1, 4, 0, 2]])
    weights = priorities.weights(torch.as_tensor(index), size, beta)
    assert weights.dtype == torch.float32 and weights.shape == (2, 5)
    scaled = (np.abs(errors.astype(np.float64)) + epsilon) ** alpha  # (N, size)
    probability = np.take_along_axis(scaled, index, axis=1) / scaled.sum(axis=1, keepdims=True)
    reference = (size * probability) ** -beta
    reference /= reference.max(axis=1, keepdims=True)
    np.testing.assert_allclose(weights.numpy(), reference, rtol=1e-7, atol=0)
    assert (weights.amax(dim=1) == 1.0).all()


def test_new_transitions_get_their_members_largest_priority():
    alpha = 0.5
    priorities = Priorities(2, 4, alpha, 0.25, "cpu")
    priorities.added(0)
    assert priorities.tree.leaves()[:, 0].tolist() == [1.0, 1.0]  # nothing seen yet: p = 1
    priorities.update(torch.tensor([[0], [0]]), torch.tensor([[-3.75], [0.25]]))
    assert priorities.max_priority.tolist() == [4.0, 1.0]  # |error| + epsilon, never below the start
    priorities.update(torch.tensor([[0, 0], [0, 0]]), torch.tensor([[0.75, 0.0], [1.75, -0.75]]))
    assert priorities.max_priority.tolist() == [4.0, 2.0]  # member 0's max does not drop
    priorities.added(1)
    np.testing.assert_allclose(priorities.tree.leaves()[:, 1], [4.0**alpha, 2.0**alpha], rtol=1e-15)
    np.testing.assert_allclose(priorities.tree.leaves()[:, 0], [1.0**alpha, 2.0**alpha], rtol=1e-15)  # largest duplicate won


def test_one_members_updates_never_touch_anothers_tree():
    first, second = Priorities(2, 50, 0.6, 0.01, "cpu"), Priorities(2, 50, 0.6, 0.01, "cpu")
    rng = np.random.default_rng(5)
    for slot in range(50):
        first.added(slot)
        second.added(slot)
        index = torch.as_tensor(rng.integers(0, slot + 1, size=(2, 8)))
        errors = torch.as_tensor(rng.normal(size=(2, 8)), dtype=torch.float32)
        first.update(index, errors)
        second.update(torch.stack([index[0], index[1].flip(0)]), torch.stack([errors[0], errors[1] * 100]))
    assert torch.equal(first.tree.nodes()[0], second.tree.nodes()[0]) and first.max_priority[0] == second.max_priority[0]
    assert not torch.equal(first.tree.nodes()[1], second.tree.nodes()[1])


def test_a_member_samples_the_same_slots_alone_or_in_a_population():
    rng = np.random.default_rng(9)
    index = torch.as_tensor(rng.integers(0, 1000, size=(3, 4000)))
    errors = torch.as_tensor(rng.standard_cauchy(size=(3, 4000)), dtype=torch.float32)
    raw = raw_draws((3, 64), seed=1)
    population = Priorities(3, 1000, 0.6, 1e-6, "cpu")
    for slot in range(1, 1000, 3):  # some slots never added: empty until an update writes them
        population.added(slot)
    population.update(index, errors)
    slots = population.sample(raw)
    weights = population.weights(slots, 1000, 0.4)
    for k in range(3):
        alone = Priorities(1, 1000, 0.6, 1e-6, "cpu")
        for slot in range(1, 1000, 3):
            alone.added(slot)
        alone.update(index[k : k + 1], errors[k : k + 1])
        assert torch.equal(alone.tree.nodes()[0], population.tree.nodes()[k])
        assert torch.equal(alone.sample(raw[k : k + 1])[0], slots[k])
        assert torch.equal(alone.weights(slots[k : k + 1], 1000, 0.4)[0], weights[k])


def test_non_finite_errors_stay_in_their_members_row_and_raise_nothing():
    priorities = Priorities(3, 20, 0.6, 0.01, "cpu")
    for slot in range(20):
        priorities.added(slot)
    errors = torch.tensor([[0.5, 1.0], [float("nan"), 1.0], [float("inf"), -float("inf")]])
    priorities.update(torch.tensor([[0, 1], [0, 1], [0, 1]]), errors)
    slots = priorities.sample(raw_draws((3, 256)))
    weights = priorities.weights(slots, 20, 0.4)
    assert ((slots >= 0) & (slots < 20)).all()
    assert torch.isfinite(weights[0]).all() and torch.isfinite(priorities.tree.nodes()[0]).all()


def test_sampling_an_empty_memory_and_bad_settings_raise_a_user_error():
    with pytest.raises(DqnlabError, match="empty"):
        Priorities(1, 4, 0.6, 0.01, "cpu").sample(raw_draws((1, 2)))
    with pytest.raises(DqnlabError, match="epsilon > 0"):
        Priorities(1, 4, 0.6, 0.0, "cpu")
    with pytest.raises(DqnlabError, match="capacity >= 1"):
        SumTree(1, 0, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpus_trees_slots_and_weights_bit_for_bit():
    rng = np.random.default_rng(13)
    index = torch.as_tensor(rng.integers(0, 5000, size=(4, 20_000)))
    errors = torch.as_tensor(rng.normal(size=(4, 20_000)), dtype=torch.float32)
    raw = raw_draws((4, 256), seed=2)
    results = []
    for device in ("cpu", "cuda"):
        priorities = Priorities(4, 5000, 0.6, 1e-3, device)
        for slot in range(0, 5000, 7):
            priorities.added(slot)
        priorities.update(index.to(device), errors.to(device))
        slots = priorities.sample(raw.to(device))
        results.append([priorities.tree.nodes().cpu(), slots.cpu(), priorities.weights(slots, 5000, 0.4).cpu()])
    for cpu, cuda in zip(*results):
        assert torch.equal(cpu, cuda)


@pytest.mark.parametrize("capacity", [1, 5, 1000, 5000])
def test_setting_one_slot_for_every_member_builds_the_tree_set_builds(capacity):
    """`set_slot` (the path's node ids as Python ints) leaves every node exactly as `set` (tensor ids) does."""
    rng = np.random.default_rng(11)
    by_slot, by_set = SumTree(3, capacity, "cpu"), SumTree(3, capacity, "cpu")
    for _ in range(500):
        slot = int(rng.integers(capacity))
        value = torch.as_tensor(rng.uniform(0, 1e3, size=3) * (rng.random(3) < 0.9))  # (N,) float64, some zeros
        by_slot.set_slot(slot, value)
        by_set.set(torch.full((3, 1), slot), value.unsqueeze(1))
        assert torch.equal(by_slot.nodes(), by_set.nodes())
