"""Random streams: one seed repeats, seeds and streams differ, and a member's draws are its own."""

from __future__ import annotations

import torch

from dqnlab import seeding


def test_one_seed_repeats_exactly():
    assert seeding.numpy_generator(3, "explore").random(5).tolist() == seeding.numpy_generator(3, "explore").random(5).tolist()
    a = torch.rand(5, generator=seeding.torch_generator(3, "network"))
    b = torch.rand(5, generator=seeding.torch_generator(3, "network"))
    assert torch.equal(a, b)


def test_seeds_and_streams_differ():
    draws = {
        (seed, stream): tuple(seeding.numpy_generator(seed, stream).random(3))
        for seed in (0, 1)
        for stream in seeding.STREAMS
    }
    assert len(set(draws.values())) == len(draws)
    nets = [torch.rand(3, generator=seeding.torch_generator(s, "network")) for s in (0, 1)]
    assert not torch.equal(*nets)


def test_reset_seeds_are_a_reproducible_sequence():
    first, second = seeding.ResetSeeds(5), seeding.ResetSeeds(5)
    a = [first.next() for _ in range(20)]
    assert a == [second.next() for _ in range(20)]
    assert len(set(a)) == 20
    assert a != [seeding.ResetSeeds(6).next() for _ in range(20)]
    assert a != [seeding.ResetSeeds(5, "evaluate").next() for _ in range(20)]


def test_a_members_draws_depend_on_its_seed_alone():
    def rows(seeds, k, count):
        draws = seeding.MemberDraws(seeds, "replay", 64)
        return torch.stack([draws.next()[k] for _ in range(count)])  # spans several refills of 64 rows

    alone = rows([7], 0, 200)
    assert alone.shape == (200, 64) and torch.equal(alone, rows([1, 2, 7], 2, 200))
    assert not torch.equal(alone, rows([1, 2, 7], 1, 200))
    assert not torch.equal(alone, torch.stack([seeding.MemberDraws([7], "explore", 64).next()[0] for _ in range(200)]))
    assert int(alone.min()) >= 0 and int(alone.max()) < seeding.HIGH
    # uniform over [0, 2**62): the top bit of a 62-bit draw is set about half the time
    assert abs(float((alone >= seeding.HIGH // 2).double().mean()) - 0.5) < 0.02
