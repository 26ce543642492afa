"""The hand-written TD update against the autograd reference, and what one member's update may depend on."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dqnlab.config import LearnerConfig
from dqnlab.engine.kernel import CenteredRMSProp, FusedAdam, LearnStep
from dqnlab.engine.learner import Learner, make_optimizer, reference_step
from dqnlab.engine.network import StackedQNetwork, build_network
from dqnlab.engine.replay import Batch
from dqnlab.engine.target import TargetNetwork

# The kernel's forward over [obs; next_obs] sums in another order than autograd's two
# forwards, so after 300 updates the parameters agree to compounded float rounding.
KERNEL_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def networks(n, hidden=(16, 8), seed=100):
    return [build_network(4, 2, hidden, torch.Generator().manual_seed(seed + k)) for k in range(n)]


def random_batch(rng, shape, obs_dim=4, n_actions=2):
    """A Batch of random transitions with leading dimensions `shape`, e.g. (N, B)."""
    return Batch(
        torch.as_tensor(rng.normal(size=(*shape, obs_dim)), dtype=torch.float32),
        torch.as_tensor(rng.integers(n_actions, size=shape)),
        torch.as_tensor(rng.normal(size=shape), dtype=torch.float32),
        torch.as_tensor(rng.normal(size=(*shape, obs_dim)), dtype=torch.float32),
        torch.as_tensor(rng.random(size=shape) < 0.2),
        torch.zeros(shape, dtype=torch.bool),
    )  # fmt: skip


def member_batch(batch, k):
    return Batch(*(None if field is None else field[k : k + 1] for field in batch))


@pytest.mark.parametrize("td_gradient", ["full", "semi"])
@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("n, batch_size", [(1, 1), (1, 64), (3, 1), (3, 64)])
def test_the_kernel_makes_the_reference_update(td_gradient, loss, n, batch_size):
    """300 updates of LearnStep == 300 of autograd's td_loss + Adam, on the same weights and batches."""
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient=td_gradient, loss=loss)
    fast, slow = StackedQNetwork(networks(n)), StackedQNetwork(networks(n))
    kernel, optimizer = LearnStep(fast, config, batch_size), make_optimizer([slow.params], config.lr)
    rng, alive = np.random.default_rng(1), torch.ones(n, dtype=torch.bool)
    for _ in range(300):
        batch = random_batch(rng, (n, batch_size))
        torch.testing.assert_close(kernel(batch, alive), reference_step(slow, optimizer, batch, alive, config), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.params.detach(), slow.params.detach(), **KERNEL_TOLERANCE)
    assert not torch.equal(fast.params.detach(), StackedQNetwork(networks(n)).params.detach())  # it did learn


def test_fused_adam_is_torchs_adam_bit_for_bit_subnormal_moments_included():
    """Ours flushes subnormals (one thread); torch's does not: the parameters still agree bit for bit,
    with gradients small enough (1e-20, 1e-19 for some elements throughout) that Adam's second moment is subnormal."""
    rng = np.random.default_rng(0)
    size = 4000
    ours, theirs = (torch.nn.Parameter(torch.as_tensor(rng.normal(size=size), dtype=torch.float32)) for _ in range(2))
    theirs.data.copy_(ours.data)
    grad = torch.zeros(size)
    adam, reference = FusedAdam(ours.detach(), grad, 1e-3), torch.optim.Adam([theirs], lr=1e-3, fused=True)
    scale = torch.as_tensor(rng.choice([1e-30, 1e-20, 1e-19, 1e-3, 1, 1e3], size=size), dtype=torch.float32)  # per element
    for _ in range(60):
        g = torch.as_tensor(rng.normal(size=size), dtype=torch.float32) * scale
        grad.copy_(g)
        theirs.grad = g.clone()
        adam.step()
        reference.step()
        assert torch.equal(ours, theirs)
    state = reference.state[theirs]["exp_avg_sq"]
    assert ((state > 0) & (state < torch.finfo(torch.float32).tiny)).any()  # torch's moments did go subnormal
    assert not ((adam.exp_avg_sq > 0) & (adam.exp_avg_sq < torch.finfo(torch.float32).tiny)).any()  # ours flushed them


def test_flushed_subnormals_is_scoped_to_one_thread_and_restored():
    from dqnlab import runtime

    threads = torch.get_num_threads()
    subnormal = torch.tensor([1e-39])
    with runtime.flushed_subnormals(torch.device("cpu")):
        assert torch.get_num_threads() == 1 and (subnormal * 1.0).item() == 0.0
    assert torch.get_num_threads() == threads and (subnormal * 1.0).item() != 0.0


def test_a_members_update_does_not_depend_on_its_companions():
    """Member k of a population of 3 makes exactly, bit for bit, the updates it makes alone."""
    config = LearnerConfig(lr=1e-3)
    together = Learner(StackedQNetwork(networks(3)), config, 8)
    alone = [Learner(StackedQNetwork([net]), config, 8) for net in networks(3)]
    rng = np.random.default_rng(2)
    for _ in range(50):
        batch = random_batch(rng, (3, 8))
        losses = together.learn(batch, torch.ones(3, dtype=torch.bool))
        for k, single in enumerate(alone):
            assert torch.equal(losses[k : k + 1], single.learn(member_batch(batch, k), torch.ones(1, dtype=torch.bool)))
    for k, single in enumerate(alone):
        for a, b in zip(together.network.member(k).parameters(), single.network.member(0).parameters()):
            assert torch.equal(a, b)


def test_a_diverged_member_cannot_touch_the_others():
    config = LearnerConfig(lr=1e-3)
    clean, poisoned = (Learner(StackedQNetwork(networks(3)), config, 8) for _ in range(2))
    with torch.no_grad():
        poisoned.network.weights[1][1].fill_(float("nan"))  # member 1's second layer
    rng = np.random.default_rng(2)
    for step in range(5):
        batch = random_batch(rng, (3, 8))
        clean.learn(batch, torch.ones(3, dtype=torch.bool))
        losses = poisoned.learn(batch, torch.tensor([True, step > 0, True]))  # masked out, then not
        assert math.isnan(losses[1])
    for k in (0, 2):
        for a, b in zip(poisoned.network.member(k).parameters(), clean.network.member(k).parameters()):
            assert torch.equal(a, b)


# Each replay-lab option changes the TD head only; the kernel must still make autograd's update.
OPTIONS = {
    "plain": {},
    "hard target": {"target_update": "hard", "target_every": 7},
    "polyak target": {"target_update": "polyak", "target_tau": 0.1},
    "double with target": {"target_update": "hard", "target_every": 7, "double": True},
    "double alone": {"double": True},
}


def with_extras(batch, rng, extras):
    """`batch` with n-step discounts (gamma^m, 0 at termination) and/or importance weights in (0, 1]."""
    shape = batch.reward.shape
    if extras in ("discount", "both"):
        steps = torch.as_tensor(rng.integers(1, 4, size=shape))  # (N, B): m in 1..3
        batch = batch._replace(discount=torch.where(batch.terminated, 0.0, 0.9**steps).float())
    if extras in ("weight", "both"):
        batch = batch._replace(weight=torch.as_tensor(rng.uniform(0.05, 1.0, size=shape), dtype=torch.float32))
    return batch


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("loss", ["mse", "huber"])
@pytest.mark.parametrize("extras", ["none", "discount", "weight", "both"])
def test_the_kernel_makes_the_reference_update_with_each_option(option, loss, extras):
    """100 updates of 3 members, semi-gradient, with a target network, double DQN, n-step discounts, importance weights."""
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient="semi", loss=loss, **OPTIONS[option])
    fast, slow = StackedQNetwork(networks(3)), StackedQNetwork(networks(3))
    kernel, optimizer = LearnStep(fast, config, 16, keep_errors=True), make_optimizer([slow.params], config.lr)
    target = None if config.target_update == "none" else TargetNetwork(slow, config)
    rng, alive = np.random.default_rng(3), torch.ones(3, dtype=torch.bool)
    for _ in range(100):
        batch = with_extras(random_batch(rng, (3, 16)), rng, extras)
        expected = reference_step(slow, optimizer, batch, alive, config, target)
        torch.testing.assert_close(kernel(batch, alive), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.params.detach(), slow.params.detach(), **KERNEL_TOLERANCE)
    if target is not None:
        torch.testing.assert_close(kernel.target.params, target.params, **KERNEL_TOLERANCE)


@pytest.mark.parametrize("extras", ["discount", "weight", "both"])
def test_the_full_gradient_kernel_takes_n_step_discounts_and_weights(extras):
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient="full")
    fast, slow = StackedQNetwork(networks(3)), StackedQNetwork(networks(3))
    kernel, optimizer = LearnStep(fast, config, 16), make_optimizer([slow.params], config.lr)
    rng, alive = np.random.default_rng(4), torch.ones(3, dtype=torch.bool)
    for _ in range(100):
        batch = with_extras(random_batch(rng, (3, 16)), rng, extras)
        torch.testing.assert_close(kernel(batch, alive), reference_step(slow, optimizer, batch, alive, config), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.params.detach(), slow.params.detach(), **KERNEL_TOLERANCE)


def q_values(stack, k, obs):
    """Member k's Q-values (B, A) for obs (B, obs_dim), through an ordinary QNetwork, in float64."""
    return stack.member(k).double()(obs.double()).detach().numpy()


@pytest.mark.parametrize("double", [False, True])
def test_the_kernels_td_errors_are_the_formula(double):
    """Q(s, a) - (r + gamma (1 - terminated) Q_target(s', a')), a' = argmax Q_target(s') or, double DQN,
    argmax Q_online(s'): from the members' own networks in float64, not the kernel's buffers."""
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient="semi", target_update="hard", target_every=1000, double=double)
    online = StackedQNetwork(networks(2))
    kernel = LearnStep(online, config, 32, keep_errors=True)
    with torch.no_grad():  # a target apart from the online network, so that the two rules differ
        kernel.target.params.copy_(StackedQNetwork(networks(2, seed=500)).params)
    before = [online.member(k) for k in range(2)]
    batch = random_batch(np.random.default_rng(5), (2, 32))
    kernel(batch)
    for k in range(2):
        q_obs = before[k].double()(batch.obs[k].double()).detach().numpy()  # (B, A)
        q_online_next = before[k].double()(batch.next_obs[k].double()).detach().numpy()  # (B, A)
        q_target_next = q_values(kernel.target.network, k, batch.next_obs[k])  # (B, A): not refreshed yet (every 1000)
        picked = (q_online_next if double else q_target_next).argmax(axis=1)  # (B,)
        value = q_target_next[np.arange(32), picked]  # (B,)
        target = batch.reward[k].numpy() + 0.9 * (~batch.terminated[k].numpy()) * value  # (B,)
        expected = q_obs[np.arange(32), batch.action[k].numpy()] - target  # (B,)
        np.testing.assert_allclose(kernel.errors[k].numpy(), expected, rtol=1e-5, atol=1e-5)
        assert (q_online_next.argmax(axis=1) != q_target_next.argmax(axis=1)).any()  # the two rules pick differently here


def test_double_dqn_without_a_target_network_is_the_plain_semi_gradient_update():
    """The online network picks a' and, with no target network, evaluates it too: max Q(s'), bit for bit."""
    plain, double = (LearnStep(StackedQNetwork(networks(3)), LearnerConfig(lr=1e-3, gamma=0.9, td_gradient="semi", double=d), 16)
                     for d in (False, True))  # fmt: skip
    rng = np.random.default_rng(6)
    for _ in range(30):
        batch = random_batch(rng, (3, 16))
        assert torch.equal(plain(batch), double(batch))
    assert torch.equal(plain.optimizer.params, double.optimizer.params)


@pytest.mark.parametrize("option", [name for name in OPTIONS if name != "plain"])
def test_a_members_update_with_each_option_does_not_depend_on_its_companions(option):
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient="semi", **OPTIONS[option])
    together = LearnStep(StackedQNetwork(networks(3)), config, 8, keep_errors=True)
    alone = [LearnStep(StackedQNetwork([net]), config, 8, keep_errors=True) for net in networks(3)]
    rng = np.random.default_rng(7)
    for _ in range(40):
        batch = with_extras(random_batch(rng, (3, 8)), rng, "both")
        losses = together(batch)
        for k, single in enumerate(alone):
            assert torch.equal(losses[k : k + 1], single(member_batch(batch, k)))
            assert torch.equal(together.errors[k : k + 1], single.errors)
    for k, single in enumerate(alone):
        stacks = [(together, k), (single, 0)]
        for layer in range(2):
            (a, i), (b, j) = stacks
            assert torch.equal(a.weights[layer][i], b.weights[layer][j]) and torch.equal(a.biases[layer][i], b.biases[layer][j])
            if a.target is not None:
                assert torch.equal(a.target.network.weights[layer][i], b.target.network.weights[layer][j])


FRAME = (6, 5, 3)  # H, W, C
FRAME_CELLS = FRAME[0] * FRAME[1] * FRAME[2]


def conv_networks(n, conv, seed=300):
    return [build_network(FRAME_CELLS, 3, (8,), torch.Generator().manual_seed(seed + k), conv, FRAME) for k in range(n)]


def frame_batch(rng, shape):
    """Random binary frames, as MinAtar's: (N, B, H * W * C) of 0/1 cells."""
    batch = random_batch(rng, shape, obs_dim=FRAME_CELLS, n_actions=3)
    return batch._replace(obs=(batch.obs > 0.5).float(), next_obs=(batch.next_obs > 0.5).float())


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
@pytest.mark.parametrize("td_gradient", ["full", "semi"])
@pytest.mark.parametrize("conv, n, batch_size", [((4,), 1, 1), ((4,), 3, 7), ((4, 3), 2, 5)])
def test_the_kernel_makes_the_reference_update_on_conv_networks(optimizer, td_gradient, conv, n, batch_size):
    """100 updates of LearnStep's patches-and-matmuls == 100 of autograd's td_loss through the stack, then
    torch's Adam or centered RMSprop; two convolutions exercise the gradient folded back onto a frame."""
    config = LearnerConfig(lr=1e-3, gamma=0.9, td_gradient=td_gradient, optimizer=optimizer)
    fast, slow = StackedQNetwork(conv_networks(n, conv)), StackedQNetwork(conv_networks(n, conv))
    kernel, reference = LearnStep(fast, config, batch_size), make_optimizer([slow.params], config.lr, config)
    rng, alive = np.random.default_rng(2), torch.ones(n, dtype=torch.bool)
    for _ in range(100):
        batch = frame_batch(rng, (n, batch_size))
        torch.testing.assert_close(kernel(batch, alive), reference_step(slow, reference, batch, alive, config), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.params.detach(), slow.params.detach(), **KERNEL_TOLERANCE)
    assert not torch.equal(fast.params.detach(), StackedQNetwork(conv_networks(n, conv)).params.detach())


@pytest.fixture
def one_thread():
    """Every backend trains each run or population on one torch thread. On two, MKL's batched products of a
    conv network's strided views were seen to round member 0 apart in a population of 3 and alone."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_a_conv_members_update_with_a_target_network_does_not_depend_on_its_companions(one_thread):
    config = LearnerConfig(lr=1e-3, gamma=0.99, td_gradient="semi", loss="huber", target_update="hard", target_every=3,
                           optimizer="rmsprop")  # fmt: skip
    nets = conv_networks(3, (4,))
    together = StackedQNetwork(nets)
    alone = [StackedQNetwork([net]) for net in conv_networks(3, (4,))]
    steps = [LearnStep(together, config, 6)] + [LearnStep(stack, config, 6) for stack in alone]
    rng = np.random.default_rng(3)
    for _ in range(20):
        batch = frame_batch(rng, (3, 6))
        steps[0](batch)
        for k in range(3):
            steps[k + 1](member_batch(batch, k))
    for k in range(3):
        assert all(torch.equal(a, b) for a, b in zip(together.member(k).state_dict().values(), alone[k].member(0).state_dict().values()))


def test_centered_rmsprop_is_torchs_within_its_square_roots_rounding_subnormal_moments_included():
    """Ours takes NumPy's exactly rounded square root and flushes subnormals (one thread); torch's CPU sqrt
    rounds some results a unit apart, so the parameters agree to float rounding, not bit for bit."""
    rng = np.random.default_rng(0)
    size = 4000
    ours, theirs = (torch.nn.Parameter(torch.as_tensor(rng.normal(size=size), dtype=torch.float32)) for _ in range(2))
    theirs.data.copy_(ours.data)
    grad = torch.zeros(size)
    rmsprop = CenteredRMSProp(ours.detach(), grad, 1e-3, 0.95, 0.01)
    reference = torch.optim.RMSprop([theirs], lr=1e-3, alpha=0.95, eps=0.01, centered=True, foreach=False)
    scale = torch.as_tensor(rng.choice([1e-30, 1e-20, 1e-19, 1e-3, 1, 1e3], size=size), dtype=torch.float32)
    for step in range(200):
        g = torch.as_tensor(rng.normal(size=size), dtype=torch.float32) * scale * (step < 100)  # then no gradient
        grad.copy_(g)
        theirs.grad = g.clone()
        rmsprop.step()
        reference.step()
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-8)
    assert not torch.equal(ours.detach(), torch.as_tensor(rng.normal(size=size), dtype=torch.float32))
    state = reference.state[theirs]["square_avg"]
    tiny = torch.finfo(torch.float32).tiny
    assert ((state > 0) & (state < tiny)).any()  # torch's moments did go subnormal
    assert not ((rmsprop.square_avg > 0) & (rmsprop.square_avg < tiny)).any()  # ours flushed them
