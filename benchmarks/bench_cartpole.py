"""CartPole's physics on the CPU, four ways, for N carts: where `cartpole.SCALAR_BELOW` comes from.

One Euler step of N carts (float64 states, random actions), timed alone
with `timeit` (best of --repeats, microseconds a step), on one thread:

- engine: `cartpole.step` as the engine calls it (Python floats one cart at
  a time below SCALAR_BELOW carts, NumPy arrays with `math`'s sin and cos
  from there);
- floats: every cart one at a time in Python floats with `math`;
- arrays + math: NumPy arrays, `math`'s sin and cos mapped over the angles;
- arrays + NumPy sin/cos: NumPy arrays with NumPy's own sin and cos (the
  engine's way before 2026-12-07, bit for bit Gymnasium's only where
  NumPy's sin and cos round as `math`'s).

The last column says whether the four gave the same states, bit for bit.

    python benchmarks/bench_cartpole.py [--sizes 1,8,16,24,32,128,512]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from dqnlab.engine import cartpole

WAYS = {"engine": cartpole.step, "floats": cartpole.step_floats, "arrays + math": cartpole.step_arrays,
        "arrays + NumPy sin/cos": lambda state, action: cartpole.step_arrays(state, action, np.cos, np.sin)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,16,24,32,128,512", help="carts N, comma-separated")
    parser.add_argument("--number", type=int, default=2000, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"SCALAR_BELOW = {cartpole.SCALAR_BELOW}; us a step, best of {args.repeats} timings of {args.number} steps\n")
    print("| N | " + " | ".join(WAYS) + " | same states |\n|--:|" + "--:|" * len(WAYS) + "---|")
    for n in (int(size) for size in args.sizes.split(",")):
        state = rng.uniform(-0.2, 0.2, size=(n, 4))  # (N, 4)
        action = rng.integers(2, size=n)  # (N,)
        times = [min(timeit.repeat(lambda: way(state, action), number=args.number, repeat=args.repeats)) / args.number
                 for way in WAYS.values()]  # fmt: skip
        results = [way(state, action) for way in WAYS.values()]
        same = all(np.array_equal(r[0], results[0][0]) and np.array_equal(r[1], results[0][1]) for r in results)
        print(f"| {n} | " + " | ".join(f"{t * 1e6:.1f}" for t in times) + f" | {'yes' if same else 'no'} |")


if __name__ == "__main__":
    main()
