"""The TD update written out by hand: forward, TD head, backward, Adam.

It computes what autograd computes for `learner.reference_step` (the sum over
live members of each member's mean TD loss, `td_gradient` full or semi, MSE
or Huber, then Adam), but without autograd's bookkeeping, which at these
sizes costs as much as the arithmetic (benchmarks/RESULTS.md):

- every activation and gradient lives in a buffer allocated once and written
  with `out=`; ReLU is applied in place and its output doubles as its mask
  (comparison ops that build bool masks are slow on CPUs);
- Q(s) and Q(s') come from one forward over [obs; next_obs], so each weight
  gradient is one batched matmul over both halves ("full"); with "semi" the
  backward runs over the Q(s) rows only;
- the first layer's weight gradient is computed as x^T dh and copied
  transposed: MKL is several times slower on the other orientation when the
  observation is this narrow;
- gradients live in one flat buffer laid out like the network's flat
  parameters, so Adam is one fused kernel over one tensor, called directly
  (`FusedAdam`): `torch.optim.Adam`'s bookkeeping costs ~150 us a step and its
  first use imports torch._dynamo (~1 s). On the CPU, below 2^20 floats, it
  runs on one thread with subnormals flushed (`runtime.flushed_subnormals`:
  up to 10x faster once Adam's moments underflow, the same numbers).

The arithmetic is autograd's up to float summation order (one forward over
both halves instead of two), so results agree with the reference within
float rounding, not bit for bit: tests/test_learner.py states the tolerance.
"""

from __future__ import annotations

import contextlib

import torch

from dqnlab.config import LearnerConfig
from dqnlab.engine.network import StackedQNetwork
from dqnlab.engine.replay import Batch
from dqnlab.runtime import flushed_subnormals

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


class FusedAdam:
    """`torch.optim.Adam(fused=True)` with PyTorch's defaults, on one flat tensor, without the Optimizer class.

    The same kernel (`torch._fused_adam_`) on the same state, so the same
    numbers bit for bit (tests/test_kernel.py); Adam is elementwise, so on
    stacked parameters it is each member's own Adam.
    """

    BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as the tutorial uses
    # Below this many floats the pass runs on one thread with subnormals flushed: single
    # runs up to a million parameters (the tutorial network has 530,000) and populations
    # of small networks. Above it, the pass is memory-bound and wants all of torch's
    # threads, which cannot flush (benchmarks/RESULTS.md, "Subnormals in Adam").
    # Either way gives the same numbers.
    FLUSHED_BELOW = 1 << 20

    def __init__(self, params: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        self.params, self.grad, self.lr = params, grad, lr
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(params), torch.zeros_like(params)  # (P,) Adam's moments
        self.steps = torch.zeros((), dtype=torch.float32, device=params.device)  # as torch keeps it for fused Adam
        self.flushed = params.numel() < self.FLUSHED_BELOW

    @torch.no_grad()
    def step(self) -> None:
        self.steps.add_(1)
        with flushed_subnormals(self.params.device) if self.flushed else contextlib.nullcontext():
            torch._fused_adam_(
                [self.params], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps], amsgrad=False,
                lr=self.lr, beta1=self.BETAS[0], beta2=self.BETAS[1], weight_decay=0.0, eps=self.EPS, maximize=False,
            )  # fmt: skip


class LearnStep:
    """One TD update of every member of a `StackedQNetwork` on batches of `batch_size`."""

    def __init__(self, network: StackedQNetwork, config: LearnerConfig, batch_size: int) -> None:
        self.full, self.loss, self.gamma, self.batch = config.td_gradient == "full", config.loss, config.gamma, batch_size
        params = network.params.detach()
        grad = torch.zeros_like(params)  # (P,) written in place by `backward`
        self.weights, self.biases = network.weights, network.biases  # (N, out, in), (N, 1, out) views of params
        self.grad_weights, self.grad_biases = network.views(grad)
        self.optimizer = FusedAdam(params, grad, config.lr)

        n, options = network.members, {"dtype": params.dtype, "device": params.device}
        widths = network.widths  # obs_dim, hidden..., n_actions
        both, rows = 2 * batch_size, (2 * batch_size if self.full else batch_size)  # forward rows, backward rows
        self.rows = rows
        self.x = torch.empty(n, both, widths[0], **options)  # (N, 2B, obs_dim): [obs; next_obs]
        self.h = [torch.empty(n, both, w, **options) for w in widths[1:]]  # post-ReLU activations; the last is Q
        self.dh = [torch.empty(n, rows, w, **options) for w in widths[1:]]  # gradients before each ReLU
        self.grad_first_t = torch.empty(n, widths[0], widths[1], **options)  # (N, obs_dim, width): W0's gradient, transposed
        self.scale = torch.tensor(2.0 / batch_size if self.loss == "mse" else 1.0 / batch_size, **options)  # d loss / d error
        self.zero = torch.zeros((), **options)

    @torch.no_grad()
    def __call__(self, batch: Batch, alive: torch.Tensor) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True; returns each member's loss (N,)."""
        q = self.forward(batch.obs, batch.next_obs)  # (N, 2B, A)
        losses = self.head(q, batch, alive)  # (N,)
        self.backward()
        self.optimizer.step()
        return losses

    def forward(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        b, x = self.batch, self.x
        x[:, :b].copy_(obs)  # (N, B, obs_dim)
        x[:, b:].copy_(next_obs)  # (N, B, obs_dim)
        last = len(self.weights) - 1
        for i, (weight, bias, out) in enumerate(zip(self.weights, self.biases, self.h)):
            torch.baddbmm(bias, x, weight.transpose(1, 2), out=out)  # (N, 2B, out)
            if i < last:
                out.clamp_min_(0)  # ReLU in place
            x = out
        return x  # (N, 2B, A)

    def head(self, q: torch.Tensor, batch: Batch, alive: torch.Tensor) -> torch.Tensor:
        """Each member's loss (N,), and d(sum of live losses)/dQ into the last gradient buffer."""
        b = self.batch
        action = batch.action.unsqueeze(2)  # (N, B, 1)
        q_taken = q[:, :b].gather(2, action).squeeze(2)  # (N, B)
        next_value, best = q[:, b:].max(dim=2)  # (N, B) each: max_a' Q(s', a') and its argmax
        bootstrap = self.gamma * (~batch.terminated)  # (N, B)
        error = q_taken - (batch.reward + bootstrap * next_value)  # (N, B): Q(s, a) - target
        weight = torch.where(alive, self.scale, self.zero).unsqueeze(1)  # (N, 1): dead members get no gradient
        if self.loss == "mse":
            losses = (error * error).mean(dim=1)  # (N,)
            grad = error.mul_(weight)  # (N, B): 2 (Q - target) / B
        else:  # Huber (smooth L1, beta 1)
            size = error.abs()  # (N, B)
            losses = torch.where(size < 1, 0.5 * error * error, size - 0.5).mean(dim=1)  # (N,)
            grad = error.clamp_(-1, 1).mul_(weight)  # (N, B)
        dq = self.dh[-1]  # (N, rows, A)
        dq.zero_()
        dq[:, :b].scatter_(2, action, grad.unsqueeze(2))  # into Q(s, a)
        if self.full:  # and, the tutorial's way, into max Q(s') with the opposite sign
            dq[:, b:].scatter_(2, best.unsqueeze(2), grad.mul_(bootstrap).neg_().unsqueeze(2))
        return losses

    def backward(self) -> None:
        rows = self.rows
        for i in range(len(self.weights) - 1, 0, -1):
            grad_out, below = self.dh[i], self.h[i - 1][:, :rows]  # (N, rows, out), (N, rows, in)
            torch.bmm(grad_out.transpose(1, 2), below, out=self.grad_weights[i])  # (N, out, in)
            torch.sum(grad_out, dim=1, keepdim=True, out=self.grad_biases[i])  # (N, 1, out)
            grad_in = self.dh[i - 1]  # (N, rows, in)
            torch.bmm(grad_out, self.weights[i], out=grad_in)
            _threshold_backward(grad_in, below, 0, grad_input=grad_in)  # through the ReLU, in place
        grad_first, x = self.dh[0], self.x[:, :rows]  # (N, rows, width), (N, rows, obs_dim)
        torch.bmm(x.transpose(1, 2), grad_first, out=self.grad_first_t)  # (N, obs_dim, width)
        self.grad_weights[0].copy_(self.grad_first_t.transpose(1, 2))  # (N, width, obs_dim)
        torch.sum(grad_first, dim=1, keepdim=True, out=self.grad_biases[0])  # (N, 1, width)
