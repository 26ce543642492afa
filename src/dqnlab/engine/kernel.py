"""The TD update written out by hand: forward, TD head, backward, Adam.

It computes what autograd computes for `learner.reference_step` (the sum over
live members of each member's mean TD loss, `td_gradient` full or semi, MSE
or Huber, with the replay lab's options: a target network, double DQN, n-step
discounts and importance weights; then Adam), but without autograd's
bookkeeping, which at these sizes costs as much as the arithmetic
(benchmarks/RESULTS.md):

- every activation and gradient lives in a buffer allocated once and written
  with `out=`; ReLU is applied in place and its output doubles as its mask
  (comparison ops that build bool masks are slow on CPUs);
- Q(s) and Q(s') come from one forward over [obs; next_obs], so each weight
  gradient is one batched matmul over both halves ("full"); with "semi" the
  backward runs over the Q(s) rows only; with a target network (and no double
  DQN) the online forward runs over obs alone, and the target's over next_obs;
- the first layer's weight gradient is computed as x^T dh and copied
  transposed: MKL is several times slower on the other orientation when the
  observation is this narrow;
- gradients live in one flat buffer laid out like the network's flat
  parameters, so Adam is one fused kernel over one tensor, called directly
  (`FusedAdam`): `torch.optim.Adam`'s bookkeeping costs ~150 us a step and its
  first use imports torch._dynamo (~1 s). On the CPU, below 2^20 floats, it
  runs on one thread with subnormals flushed (`runtime.flushed_subnormals`:
  up to 10x faster once Adam's moments underflow, the same numbers).
  `learner.optimizer = "rmsprop"` runs centered RMSProp (`CenteredRMSProp`)
  the same way, as torch.optim.RMSprop's own sequence of operations;
- a convolution (`network.conv`) is a batched matmul over each member's 3x3
  patches (`network.windows`, copied into a buffer made once), so its
  forward is one `baddbmm` like a fully connected layer's; its weight
  gradient is patches^T dh, and behind a second convolution the gradient
  is folded back onto the frame it came from (`_fold`).

The arithmetic is autograd's up to float summation order (one forward over
both halves instead of two), so results agree with the reference within
float rounding, not bit for bit: tests/test_learner.py states the tolerance.
"""

from __future__ import annotations

import numpy as np
import torch

from dqnlab.config import LearnerConfig
from dqnlab.engine.network import KERNEL, StackedQNetwork, windows
from dqnlab.engine.replay import Batch
from dqnlab.engine.target import TargetNetwork
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
        self.lists = ([params], [grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps])  # the kernel's arguments, made once

    def step(self) -> None:
        """One Adam step (it runs in about 8 us on a small network, so its wrapping is kept to plain calls)."""
        self.steps.add_(1)
        if self.flushed:
            with flushed_subnormals(self.params.device):
                self._kernel()
        else:
            self._kernel()

    def _kernel(self) -> None:
        torch._fused_adam_(
            *self.lists, amsgrad=False, lr=self.lr, beta1=self.BETAS[0], beta2=self.BETAS[1], weight_decay=0.0,
            eps=self.EPS, maximize=False,
        )  # fmt: skip


class CenteredRMSProp:
    """`torch.optim.RMSprop(centered=True)`, without momentum or weight decay, on one flat tensor.

    The operations of torch's single-tensor RMSprop in its order:

        square_avg = alpha square_avg + (1 - alpha) g^2
        grad_avg   = grad_avg + (1 - alpha) (g - grad_avg)
        params    -= lr g / (sqrt(square_avg - grad_avg^2) + eps)

    but on the CPU the square root is NumPy's, which is exactly rounded and
    took 57 us on 132,576 floats here, where torch's took 144 us on random
    values and 450-550 us where many are zero (the padding, and units that
    never get a gradient), and rounds some results one unit in the last place
    apart. tests/test_kernel.py checks it against
    `torch.optim.RMSprop(..., centered=True, foreach=False)` within that
    rounding, and bit for bit with a subnormal moment flushed.

    Elementwise, so on stacked parameters it is each member's own RMSProp.
    As Adam's, its passes below `FusedAdam.FLUSHED_BELOW` floats run on one
    thread with subnormals flushed: the moments of units that stop getting
    gradient decay into subnormals, whose square root took 2.6 ms on 133,000
    floats here against 90 us on normal ones; against `eps` (0.01 in MinAtar)
    a subnormal moment adds nothing to the denominator.
    """

    def __init__(self, params: torch.Tensor, grad: torch.Tensor, lr: float, alpha: float, eps: float) -> None:
        self.params, self.grad, self.lr, self.alpha, self.eps = params, grad, lr, alpha, eps
        self.square_avg, self.grad_avg = torch.zeros_like(params), torch.zeros_like(params)  # (P,) each
        self.avg = torch.empty_like(params)  # (P,) the denominator, written in place
        self.avg_array = self.avg.numpy() if params.device.type == "cpu" else None  # the same memory, for NumPy's sqrt
        self.flushed = params.numel() < FusedAdam.FLUSHED_BELOW

    def step(self) -> None:
        if self.flushed:
            with flushed_subnormals(self.params.device):
                self._passes()
        else:
            self._passes()

    def _passes(self) -> None:
        grad = self.grad
        self.square_avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)  # (P,)
        self.grad_avg.lerp_(grad, 1 - self.alpha)  # (P,)
        torch.addcmul(self.square_avg, self.grad_avg, self.grad_avg, value=-1, out=self.avg)  # (P,)
        if self.avg_array is not None:
            np.sqrt(self.avg_array, out=self.avg_array)  # (P,) in place, exactly rounded
        else:
            self.avg.sqrt_()
        self.avg.add_(self.eps)  # (P,)
        self.params.addcdiv_(grad, self.avg, value=-self.lr)  # (P,)


def make_step_optimizer(params: torch.Tensor, grad: torch.Tensor, config: LearnerConfig) -> FusedAdam | CenteredRMSProp:
    """The optimizer `learner.optimizer` names, stepping `params` (P,) by `grad` (P,)."""
    if config.optimizer == "rmsprop":
        return CenteredRMSProp(params, grad, config.lr, config.rmsprop_alpha, config.rmsprop_eps)
    return FusedAdam(params, grad, config.lr)


class LearnStep:
    """One TD update of every member of a `StackedQNetwork` on batches of `batch_size`.

    Every buffer, and every view of one that a step uses (halves, transposes),
    is made once here: at these sizes making a view costs about as much as a
    small kernel.
    """

    def __init__(self, network: StackedQNetwork, config: LearnerConfig, batch_size: int, keep_errors: bool = False) -> None:
        self.full, self.loss, self.gamma, self.batch = config.td_gradient == "full", config.loss, config.gamma, batch_size
        self.double = config.double
        self.target = None if config.target_update == "none" else TargetNetwork(network, config)
        params = network.params.detach()
        grad = torch.zeros_like(params)  # (P,) written in place by `backward`
        self.weights, self.biases = network.weights, network.biases  # (N, out, in), (N, 1, out) views of params
        self.weights_t = network.weights_t  # (N, in, out)
        self.grad_weights, self.grad_biases = network.views(grad)
        self.optimizer = make_step_optimizer(params, grad, config)

        n, options, b = network.members, {"dtype": params.dtype, "device": params.device}, batch_size
        widths = network.widths  # per row: obs_dim, then each layer's outputs (a convolution's H' * W' * channels)
        self.sizes, convs = network.conv_sizes, len(network.conv)  # (H, W, C) into each convolution
        # The online network reads Q(s'), unless a target network alone does (no double DQN).
        online_next = self.target is None or self.double
        both = 2 * b if online_next else b  # forward rows
        rows = 2 * b if self.full else b  # backward rows ("full" has no target network: config.validate)
        self.x = torch.empty(n, 2 * b, widths[0], **options)  # (N, 2B, obs_dim): [obs; next_obs]
        self.x_obs, self.x_next = self.x[:, :b], self.x[:, b:]  # (N, B, obs_dim) each
        self.x_forward = self.x[:, :both]  # (N, both, obs_dim): the online forward's input
        self.x_t = self.x[:, :rows].transpose(1, 2)  # (N, obs_dim, rows)
        self.h = [torch.empty(n, both, w, **options) for w in widths[1:]]  # post-ReLU activations; the last is Q
        self.below = [h[:, :rows] for h in self.h[:-1]]  # (N, rows, width): each hidden layer's backward rows
        self.q_obs, self.q_next = self.h[-1][:, :b], self.h[-1][:, b:]  # (N, B, A) each; Q(s') empty without online_next
        self.target_h = [torch.empty(n, b, w, **options) for w in widths[1:]] if self.target else []  # the target's forward
        self.dh = [torch.empty(n, rows, w, **options) for w in widths[1:]]  # gradients before each ReLU
        self.dh_t = [dh.transpose(1, 2) for dh in self.dh]  # (N, width, rows)
        self.dq_obs, self.dq_next = self.dh[-1][:, :b], self.dh[-1][:, b:]  # (N, B, A); the second is empty with "semi"
        # Convolutions: each one's patches (N, R * H' * W', 9 C) of the online and the target forward, and the
        # rows of its output and gradient as (N, R * H' * W', channels); the backward reads the first rows*H'*W' rows.
        geometry = [(fan_in, fan_out, positions) for fan_in, fan_out, positions in network.layers[:convs]]
        self.patches = [torch.empty(n, both * p, fan_in, **options) for fan_in, _, p in geometry]
        self.target_patches = [torch.empty(n, b * p, fan_in, **options) for fan_in, _, p in geometry] if self.target else []
        self.patch_rows = [patch[:, : rows * p] for patch, (_, _, p) in zip(self.patches, geometry)]  # (N, rows*P, 9C)
        self.patch_rows_t = [patch.transpose(1, 2) for patch in self.patch_rows]  # (N, 9C, rows*P)
        self.dh_conv = [dh.view(n, -1, fan_out) for dh, (_, fan_out, _) in zip(self.dh, geometry)]  # (N, rows*P, channels)
        self.dh_conv_t = [dh.transpose(1, 2) for dh in self.dh_conv]  # (N, channels, rows*P)
        self.grad_patches = [None, *(torch.empty(n, rows * p, fan_in, **options) for fan_in, _, p in geometry[1:])]
        first_in = geometry[0][0] if convs else widths[0]  # 9 C for a convolution, obs_dim otherwise
        first_out = geometry[0][1] if convs else widths[1]
        self.grad_first_t = torch.empty(n, first_in, first_out, **options)  # (N, in, out): W0's gradient, transposed
        self.grad_first = self.grad_first_t.transpose(1, 2)  # (N, out, in)
        self.scale = torch.tensor(2.0 / b if self.loss == "mse" else 1.0 / b, **options)  # d loss / d error
        self.zero = torch.zeros((), **options)
        self.gamma_t = torch.tensor(self.gamma, **options)
        self.errors = torch.empty(n, b, **options) if keep_errors else None  # (N, B): the last step's TD errors

    @torch.no_grad()
    def __call__(self, batch: Batch, alive: torch.Tensor | None = None) -> torch.Tensor:
        """One gradient step for every member where `alive` (N,) is True (None: all); returns each member's loss (N,)."""
        self.forward(batch.obs, batch.next_obs)  # Q-values (N, 2B, A) into h[-1] (N, B, A without online Q(s'))
        if self.target is not None:
            _forward(self.x_next, self.target.weights_t, self.target.biases, self.target_h,
                     self.target_patches, self.sizes)  # fmt: skip  Q_target(s') (N, B, A)
        losses = self.head(batch, alive)  # (N,)
        self.backward()
        self.optimizer.step()
        if self.target is not None:
            self.target.learned()
        return losses

    def forward(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        self.x_obs.copy_(obs)  # (N, B, obs_dim)
        self.x_next.copy_(next_obs)  # (N, B, obs_dim)
        return _forward(self.x_forward, self.weights_t, self.biases, self.h, self.patches, self.sizes)  # (N, 2B, A), or (N, B, A) when only Q(s) is read

    def next_value(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The bootstrap's value (N, B) of each next state, and the online argmax (N, B) when the gradient needs it."""
        if self.target is None:  # double DQN without a target network evaluates a' = argmax with the same network: the max
            return self.q_next.max(dim=2)  # (N, B) each: max_a' Q(s', a') and its argmax
        q_target = self.target_h[-1]  # (N, B, A)
        if self.double:  # the online network picks a', the target evaluates it
            best = self.q_next.argmax(dim=2, keepdim=True)  # (N, B, 1)
            return q_target.gather(2, best).squeeze(2), None  # (N, B)
        return q_target.amax(dim=2), None  # (N, B)

    def head(self, batch: Batch, alive: torch.Tensor | None) -> torch.Tensor:
        """Each member's loss (N,), and d(sum of live losses)/dQ into the last gradient buffer."""
        action = batch.action.unsqueeze(2)  # (N, B, 1)
        q_taken = self.q_obs.gather(2, action).squeeze(2)  # (N, B)
        next_value, best = self.next_value()  # (N, B) each
        if batch.discount is None:
            bootstrap = torch.where(batch.terminated, self.zero, self.gamma_t)  # (N, B): gamma, 0 at termination
        else:
            bootstrap = batch.discount  # (N, B): n-step returns' gamma^m, 0 at termination
        error = q_taken - (batch.reward + bootstrap * next_value)  # (N, B): Q(s, a) - target
        if self.errors is not None:
            self.errors.copy_(error)  # (N, B): for prioritized replay's priorities
        weight = self.scale if alive is None else torch.where(alive, self.scale, self.zero).unsqueeze(1)  # (N, 1) or ()
        if batch.weight is not None:
            weight = batch.weight * weight  # (N, B): importance weights
        if self.loss == "mse":
            elementwise = error * error  # (N, B)
            grad = error  # (N, B): becomes 2 w (Q - target) / B below
        else:  # Huber (smooth L1, beta 1)
            size = error.abs()  # (N, B)
            elementwise = torch.where(size < 1, 0.5 * error * error, size - 0.5)  # (N, B)
            grad = error.clamp_(-1, 1)  # (N, B)
        if batch.weight is not None:
            elementwise.mul_(batch.weight)  # (N, B)
        losses = elementwise.sum(dim=1).div_(self.batch)  # (N,): the (weighted) mean, in two cheap kernels
        grad.mul_(weight)  # (N, B): dead members get no gradient
        self.dh[-1].zero_()  # (N, rows, A)
        self.dq_obs.scatter_(2, action, grad.unsqueeze(2))  # into Q(s, a)
        if self.full:  # and, the tutorial's way, into max Q(s') with the opposite sign
            self.dq_next.scatter_(2, best.unsqueeze(2), grad.mul_(bootstrap).neg_().unsqueeze(2))
        return losses

    def backward(self) -> None:
        convs = len(self.patches)
        for i in range(len(self.weights) - 1, 0, -1):
            below = self.below[i - 1]  # (N, rows, in): the layer's input, post-ReLU
            grad_in = self.dh[i - 1]  # (N, rows, in)
            if i >= convs:  # fully connected
                torch.bmm(self.dh_t[i], below, out=self.grad_weights[i])  # (N, out, in)
                torch.sum(self.dh[i], dim=1, keepdim=True, out=self.grad_biases[i])  # (N, 1, out)
                torch.bmm(self.dh[i], self.weights[i], out=grad_in)
            else:  # a convolution behind another: through its patches, folded back onto the frame
                torch.bmm(self.dh_conv_t[i], self.patch_rows[i], out=self.grad_weights[i])  # (N, channels, 9C)
                torch.sum(self.dh_conv[i], dim=1, keepdim=True, out=self.grad_biases[i])  # (N, 1, channels)
                torch.bmm(self.dh_conv[i], self.weights[i], out=self.grad_patches[i])  # (N, rows*P, 9C)
                _fold(self.grad_patches[i], grad_in, self.sizes[i])
            _threshold_backward(grad_in, below, 0, grad_input=grad_in)  # through the ReLU, in place
        if convs:  # the first convolution's kernel gradient, patches^T dh, transposed as below
            torch.bmm(self.patch_rows_t[0], self.dh_conv[0], out=self.grad_first_t)  # (N, 9C, channels)
            self.grad_weights[0].copy_(self.grad_first)  # (N, channels, 9C)
            torch.sum(self.dh_conv[0], dim=1, keepdim=True, out=self.grad_biases[0])  # (N, 1, channels)
            return
        torch.bmm(self.x_t, self.dh[0], out=self.grad_first_t)  # (N, obs_dim, width)
        self.grad_weights[0].copy_(self.grad_first)  # (N, width, obs_dim)
        torch.sum(self.dh[0], dim=1, keepdim=True, out=self.grad_biases[0])  # (N, 1, width)


def _forward(x: torch.Tensor, weights_t: list[torch.Tensor], biases: list[torch.Tensor], outputs: list[torch.Tensor],
             patches: list[torch.Tensor] = (), sizes: list[tuple[int, int, int]] = ()) -> torch.Tensor:  # fmt: skip
    """A stack's forward pass from x (N, R, obs_dim) into the preallocated `outputs` [(N, R, width), ...]: ReLU, then Q.

    The first len(patches) layers are convolutions: frame `sizes[i]` (H, W, C) in, its 3x3 patches copied
    into `patches[i]` (N, R * H' * W', 9 C), and the output (N, R, H' * W' * channels) written as
    (N, R * H' * W', channels)."""
    last = len(weights_t) - 1
    for i, (weight_t, bias, out) in enumerate(zip(weights_t, biases, outputs)):
        if i < len(patches):
            n, rows = x.shape[0], x.shape[1]
            height, width, channels = sizes[i]
            patches[i].view(n, rows, height - KERNEL + 1, width - KERNEL + 1, KERNEL, KERNEL, channels).copy_(
                windows(x, height, width, channels))  # fmt: skip  (N, R, H', W', 3, 3, C)
            torch.baddbmm(bias, patches[i], weight_t, out=out.view(n, -1, weight_t.shape[2]))  # (N, R*H'*W', channels)
        else:
            torch.baddbmm(bias, x, weight_t, out=out)  # (N, R, out)
        if i < last:
            out.clamp_min_(0)  # ReLU in place
        x = out
    return x  # (N, R, A)


def _fold(grad_patches: torch.Tensor, grad_frame: torch.Tensor, size: tuple[int, int, int]) -> None:
    """col2im: each patch's gradient (N, R * H' * W', 9 C) summed back onto its frame cells, into
    `grad_frame` (N, R, H * W * C), frames row by row with channels last."""
    height, width, channels = size
    n, rows = grad_frame.shape[0], grad_frame.shape[1]
    inner = (height - KERNEL + 1, width - KERNEL + 1)
    per_cell = grad_patches.view(n, rows, *inner, KERNEL, KERNEL, channels)  # (N, R, H', W', 3, 3, C)
    frame = grad_frame.view(n, rows, height, width, channels)  # (N, R, H, W, C)
    frame.zero_()
    for di in range(KERNEL):
        for dj in range(KERNEL):
            frame[:, :, di : di + inner[0], dj : dj + inner[1]] += per_cell[:, :, :, :, di, dj]  # (N, R, H', W', C)
