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
sum-tree gives both in O(log C). Here each member's tree is 16-ary (a node
sums 16 children), so 50,000 slots take 4 levels instead of a binary tree's
16. For one member a level costs per torch call, not per float, so drawing
and updating take half a binary tree's time; for 32 members the floats
dominate and the two are about even (benchmarks/RESULTS.md, "The replay
lab's costs"). The N members' trees live in one (N, size) float64
tensor per level, and every operation runs on all members and all
batch items at once; only the levels are looped over in Python. Members are
rows that never mix, so a member draws the same slots alone or in any
population (the point of `seeding.MemberDraws`).

Invariants that the tests check:

- every internal node is exactly the running sum of its 16 children, added
  left to right (`cumsum`'s last element; on a GPU its scan may add in
  another order): a change recomputes its ancestors from their children,
  never by adding deltas, so no rounding drift builds up over millions of
  updates (the drift that makes add-the-delta trees report totals that no
  longer match their leaves);
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
    """N members' 16-ary sum-trees over `capacity` slots: `levels[l]` (N, size of level l) float64, the root first.

    Node j of level l sums nodes 16j .. 16j + 15 of level l + 1. A level
    holds 16 children for each node of the level above, so the leaves,
    `levels[-1]`, are the capacity rounded up to a multiple of 16, and the
    tree has about 16/15 nodes per slot (a full 16^L-leaf tree could hold
    up to 16 times the capacity). Nodes beyond the capacity stay 0; they add
    exact zeros to their parents' sums.

    >>> tree = SumTree(members=1, capacity=3, device="cpu")
    >>> tree.set(torch.tensor([[0, 2]]), torch.tensor([[1.0, 3.0]], dtype=torch.float64))
    >>> tree.total().tolist(), tree.leaves().tolist()
    ([4.0], [[1.0, 0.0, 3.0]])
    >>> tree.find(torch.tensor([[0.5, 1.0, 3.9]], dtype=torch.float64)).tolist()  # slot 1 is empty
    [[0, 2, 2]]
    """

    ARITY = 16

    def __init__(self, members: int, capacity: int, device: torch.device | str) -> None:
        if members < 1 or capacity < 1:
            raise DqnlabError(f"a sum-tree needs members >= 1 and capacity >= 1; got {members}, {capacity}")
        self.members, self.capacity = members, capacity
        sizes = self.level_sizes(capacity)
        self.depth = len(sizes) - 1  # levels below the root
        options = {"dtype": torch.float64, "device": device}
        self.levels = [torch.zeros((members, size), **options) for size in sizes]  # (N, size of level l)
        self.groups = [level.view(members, -1, self.ARITY) for level in self.levels[1:]]  # (N, parents, K): children by parent

    @classmethod
    def level_sizes(cls, capacity: int) -> list[int]:
        """Nodes per level, the root first: 1, then 16 for each node of the level above, down to the leaves."""
        parents = [capacity]  # nodes in use per level, the leaves first
        while parents[-1] > 1 or len(parents) == 1:
            parents.append(-(-parents[-1] // cls.ARITY))
        return [1] + [cls.ARITY * count for count in reversed(parents[1:])]

    def set(self, index: torch.Tensor, value: torch.Tensor) -> None:
        """Set member k's leaves index[k] (N, B) to value[k] (N, B), then recompute their ancestors.

        Where a slot appears twice in one member's row, the largest value wins
        (scatter_reduce's amax, deterministic on every device). Each ancestor
        is recomputed from its children, O(B K log_K C), never the whole tree.
        """
        self.levels[-1].scatter_reduce_(1, index, value.to(torch.float64), reduce="amax", include_self=False)  # (N, P)
        node = index  # (N, B)
        for level in range(self.depth, 0, -1):
            node = torch.div(node, self.ARITY, rounding_mode="floor")  # (N, B) parents; duplicates recompute the same value
            children = self.groups[level - 1].gather(1, node.unsqueeze(2).expand(-1, -1, self.ARITY))  # (N, B, K)
            self.levels[level - 1].scatter_(1, node, children.cumsum(dim=2)[:, :, -1])  # (N, K^(l-1)): left-to-right sums

    def set_slot(self, slot: int, value: torch.Tensor) -> None:
        """Set every member's leaf `slot` to value (N,), as `set` would, with the path's node ids as Python ints."""
        node = slot
        self.levels[-1][:, node].copy_(value)  # (N,)
        for level in range(self.depth, 0, -1):
            node //= self.ARITY  # the parent
            self.levels[level - 1][:, node].copy_(self.groups[level - 1][:, node].cumsum(dim=1)[:, -1])  # (N,)

    def total(self) -> torch.Tensor:
        """Each member's sum of leaves, (N,) float64: the roots, copied."""
        return self.levels[0][:, 0].clone()  # (N,)

    def leaves(self) -> torch.Tensor:
        """Each member's leaf values, (N, capacity) float64, a view: do not write through it."""
        return self.levels[-1][:, : self.capacity]  # (N, C)

    def nodes(self) -> torch.Tensor:
        """Every node, root first, level by level: (N, 1 + K + ... + K^L), a copy."""
        return torch.cat(self.levels, dim=1)

    def find(self, mass: torch.Tensor) -> torch.Tensor:
        """Slots (N, B) int64 whose prefix range [sum_{j<i} p_j, sum_{j<=i} p_j) holds mass (N, B) in [0, total).

        Descends from the root. At each node the mass is first held below the
        running sum of its children (a mass that rounding left at or above it
        goes to the last positive child); the child taken is then the first
        whose running sum exceeds the mass, which is never a child of value 0
        (its running sum would equal the one before). So every node entered is
        positive (given a positive root) and the slot reached is a stored one.
        """
        node = torch.zeros_like(mass, dtype=torch.int64)  # (N, B) the root
        zero = mass.new_zeros(())
        for group in self.groups:
            children = group.gather(1, node.unsqueeze(2).expand(-1, -1, self.ARITY))  # (N, B, K)
            running = children.cumsum_(dim=2)  # (N, B, K): left-to-right sums, as the node holds
            mass = torch.minimum(mass, torch.nextafter(running[:, :, -1], zero))  # (N, B): below the node's sum
            passed = running <= mass.unsqueeze(2)  # (N, B, K): children wholly left of the mass
            mass = mass - (running * passed).amax(dim=2)  # (N, B): the mass left inside the child taken
            node = node.mul_(self.ARITY).add_(passed.sum(dim=2))  # (N, B) the child taken, in place: node is ours
        return node  # (N, B)


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
