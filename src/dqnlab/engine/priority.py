"""Proportional prioritized replay for N members at once, on sum-trees in one tensor.

Uniform replay draws every stored transition alike, however little there is
left to learn from it. Schaul et al. (2016), "Prioritized Experience Replay",
draw transition i with probability P(i) = p_i^alpha / sum_k p_k^alpha, where
p_i = |delta_i| + epsilon is its last TD error (the proportional variant,
section 3.3): surprising transitions come back more often, and epsilon keeps
a transition whose error reached zero drawable. Drawing that way biases the
update towards them, so each sample's loss is scaled by the importance-sampling
weight w_i = (size * P(i))^-beta, divided by the batch's largest weight so that
weights only ever scale updates down (their Algorithm 1, line 10).

Drawing in proportion needs prefix sums that change on every update: a
sum-tree gives both in O(log C). Here the N members' trees live in one
(N, 2P) float64 tensor, and every operation runs on all members and all batch
items at once; only the tree's levels are looped over in Python. Members are
rows that never mix, so a member draws the same slots alone or in any
population (the point of `seeding.MemberDraws`).

Invariants that the tests check:

- every internal node is exactly fl(left + right): a change recomputes its
  ancestors from their children, never by adding deltas, so no rounding drift
  builds up over millions of updates (the drift that makes add-the-delta
  trees report totals that no longer match their leaves);
- `find` never returns a slot of priority 0 (an empty slot, or padding beyond
  the capacity), even for masses that rounding pushed to the total.

The tree is float64 whatever the learner's dtype: a float32 total of 50,000
priorities carries a relative error of order 1e-6, far coarser than the 2**-53
grid the draws are made on, and would misplace the boundaries between slots.
"""

from __future__ import annotations

import torch

from dqnlab.errors import DqnlabError
from dqnlab.seeding import HIGH

MANTISSA = 53  # a float64 holds 53-bit integers exactly
SHIFT = HIGH.bit_length() - 1 - MANTISSA  # 9: keep the top 53 of a raw draw's 62 random bits


class SumTree:
    """N members' sum-trees over `capacity` slots, in one (N, 2P) float64 tensor.

    P is the next power of two >= capacity; leaves sit at [P, 2P), node i's
    children at 2i and 2i + 1, the root at 1 (node 0 is unused). Leaves beyond
    the capacity stay 0.

    >>> tree = SumTree(members=1, capacity=3, device="cpu")
    >>> tree.set(torch.tensor([[0, 2]]), torch.tensor([[1.0, 3.0]], dtype=torch.float64))
    >>> tree.total().tolist(), tree.leaves().tolist()
    ([4.0], [[1.0, 0.0, 3.0]])
    >>> tree.find(torch.tensor([[0.5, 1.0, 3.9]], dtype=torch.float64)).tolist()  # slot 1 is empty
    [[0, 2, 2]]
    """

    def __init__(self, members: int, capacity: int, device: torch.device | str) -> None:
        if members < 1 or capacity < 1:
            raise DqnlabError(f"a sum-tree needs members >= 1 and capacity >= 1; got {members}, {capacity}")
        self.members, self.capacity = members, capacity
        self.leaf_count = 1 << (capacity - 1).bit_length()  # P: the next power of two >= capacity
        self.depth = self.leaf_count.bit_length() - 1  # levels between the root and the leaves
        self.tree = torch.zeros((members, 2 * self.leaf_count), dtype=torch.float64, device=device)  # (N, 2P)

    def set(self, index: torch.Tensor, value: torch.Tensor) -> None:
        """Set member k's leaves index[k] (N, B) to value[k] (N, B), then recompute their ancestors.

        Where a slot appears twice in one member's row, the largest value wins
        (scatter_reduce's amax, deterministic on every device). Each ancestor
        is recomputed from its two children, O(B log P), never the whole tree.
        """
        node = index + self.leaf_count  # (N, B) leaf node ids
        value = value.to(self.tree.dtype)  # (N, B)
        self.tree.scatter_reduce_(1, node, value, reduce="amax", include_self=False)  # (N, 2P)
        pairs = self.tree.view(self.members, self.leaf_count, 2)  # (N, P, 2): row j holds node j's children
        for _ in range(self.depth):
            node = node >> 1  # (N, B) parents (node // 2); duplicates recompute the same value
            left, right = pairs.gather(1, node.unsqueeze(2).expand(-1, -1, 2)).unbind(dim=2)  # (N, B) each
            self.tree.scatter_(1, node, left + right)  # (N, 2P)

    def set_slot(self, slot: int, value: torch.Tensor) -> None:
        """Set every member's leaf `slot` to value (N,), as `set` would, in a handful of operations.

        The slot's ancestors are the running sums of its new leaf and the
        siblings along its path, bottom up: fl(fl(leaf + s_0) + s_1) ..., which
        is what recomputing each ancestor from its children gives, since a
        sibling never lies on the path. On the CPU `cumsum` adds in exactly
        that order; a GPU's scan may not, so there the levels are walked.
        """
        if self.tree.device.type != "cpu":
            self.set(torch.full((self.members, 1), slot, dtype=torch.int64, device=self.tree.device), value.unsqueeze(1))
            return
        path, siblings = self._path(slot)  # (depth + 1,), (depth,) node ids, leaf first
        running = torch.cat((value.to(self.tree.dtype).unsqueeze(1), self.tree.index_select(1, siblings)), dim=1)  # (N, depth + 1)
        self.tree.index_copy_(1, path, running.cumsum_(dim=1))  # (N, 2P)

    def _path(self, slot: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Slot's leaf and its ancestors up to the root (depth + 1,), and the sibling at each level below the root (depth,)."""
        node = slot + self.leaf_count
        path = [node >> level for level in range(self.depth + 1)]  # leaf, parent, ..., root
        siblings = [n ^ 1 for n in path[:-1]]
        options = {"dtype": torch.int64, "device": self.tree.device}
        return torch.tensor(path, **options), torch.tensor(siblings, **options)

    def total(self) -> torch.Tensor:
        """Each member's sum of leaves, (N,) float64: the roots, copied."""
        return self.tree[:, 1].clone()  # (N,)

    def leaves(self) -> torch.Tensor:
        """Each member's leaf values, (N, capacity) float64, a view: do not write through it."""
        return self.tree[:, self.leaf_count : self.leaf_count + self.capacity]  # (N, C)

    def find(self, mass: torch.Tensor) -> torch.Tensor:
        """Slots (N, B) int64 whose prefix range [sum_{j<i} p_j, sum_{j<=i} p_j) holds mass (N, B) in [0, total).

        Descends from the root: go right only if the mass reaches past the left
        child AND the right child is positive. So every node entered is
        positive (given a positive root), the leaf reached is never a slot of
        value 0, and a mass that rounding left at or above the total still
        lands on the last positive slot. Padding is a suffix of the leaves, so
        the slot is always below the capacity, even for NaN or inf priorities.
        """
        node = torch.ones_like(mass, dtype=torch.int64)  # (N, B) the root
        pairs = self.tree.view(self.members, self.leaf_count, 2)  # (N, P, 2)
        for _ in range(self.depth):
            left, right = pairs.gather(1, node.unsqueeze(2).expand(-1, -1, 2)).unbind(dim=2)  # (N, B) each
            go_right = (mass >= left).logical_and_(right > 0)  # (N, B)
            mass = torch.where(go_right, mass - left, mass)  # (N, B)
            node = node.mul_(2).add_(go_right)  # (N, B) the chosen child, in place: node is ours
        return node - self.leaf_count  # (N, B)


class Priorities:
    """Proportional prioritization over N members' rings (Schaul et al. 2016, section 3.3).

    P(i) = p_i^alpha / sum_k p_k^alpha, with p_i = |delta_i| + epsilon. A new
    transition gets the largest p its member has seen so far (1 at first), so
    that it is likely drawn at least once before its error is known. The tree
    holds p^alpha; `max_priority` holds p before alpha.
    """

    def __init__(self, members: int, capacity: int, alpha: float, epsilon: float, device: torch.device | str) -> None:
        if alpha < 0 or not epsilon > 0:
            raise DqnlabError(f"prioritized replay needs alpha >= 0 and epsilon > 0; got {alpha}, {epsilon}")
        self.alpha, self.epsilon = alpha, epsilon
        self.tree = SumTree(members, capacity, device)
        self.max_priority = torch.ones(members, dtype=torch.float64, device=device)  # (N,) largest p seen, before alpha
        self.empty = True  # no slot holds a priority yet

    def added(self, slot: int) -> None:
        """Slot `slot` (shared: members step in lockstep) holds each member's newest transition: priority max_p^alpha."""
        self.tree.set_slot(slot, self.max_priority**self.alpha)  # (N,)
        self.empty = False

    def sample(self, raw: torch.Tensor) -> torch.Tensor:
        """Slots (N, B) drawn independently in proportion to p^alpha, from raw draws (N, B) uniform in [0, 2**62).

        u = (raw >> 9) * 2**-53 is exactly uniform on a grid of [0, 1), so
        mass = u * total never needs a second random number.
        """
        if self.empty:
            raise DqnlabError("cannot sample from an empty replay memory")
        uniform = (raw >> SHIFT).to(torch.float64) * 2.0**-MANTISSA  # (N, B) in [0, 1)
        mass = uniform * self.tree.total().unsqueeze(1)  # (N, B)
        return self.tree.find(mass)  # (N, B)

    def weights(self, index: torch.Tensor, size: int, beta: float) -> torch.Tensor:
        """Importance-sampling weights (N, B) float32 for slots index (N, B) of `size` stored transitions.

        w_i = (size * P(i))^-beta over the member's largest w in the batch, so
        weights only scale updates down (Algorithm 1, line 10). float64 until
        the final cast.
        """
        probability = self.tree.leaves().gather(1, index) / self.tree.total().unsqueeze(1)  # (N, B)
        weight = (size * probability) ** -beta  # (N, B)
        return (weight / weight.amax(dim=1, keepdim=True)).to(torch.float32)  # (N, B)

    def update(self, index: torch.Tensor, errors: torch.Tensor) -> None:
        """After learning on slots index (N, B) with TD errors (N, B): leaf = (|error| + epsilon)^alpha.

        A diverged member's NaN or inf errors go into its own row only; they
        raise nothing and never reach its companions.
        """
        priority = errors.to(torch.float64).abs() + self.epsilon  # (N, B)
        self.tree.set(index, priority**self.alpha)  # (N, B)
        self.max_priority = torch.maximum(self.max_priority, priority.amax(dim=1))  # (N,)
        self.empty = False
