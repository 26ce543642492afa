"""The population backend: N seeds of one configuration trained as one batched computation.

Every member is an ordinary run of its own seed: the same initial weights as
the single-run learner gives that seed, the same episode starts, and its own
exploration and replay draws (from the seed's own streams, so a member's
randomness does not depend on who else is in the population). What is shared
is the arithmetic: one stacked network, one optimizer over stacked
parameters, one replay tensor, one vectorized environment step.

    cartpole   CartPole-v1's physics on tensors, for N members at once
    envs       member environments: the tensor CartPole, or Gymnasium's vector env
    network    stacked Q-networks: (N, B, obs_dim) -> (N, B, n_actions)
    replay     per-member ring buffers in one tensor
    learner    batched epsilon-greedy acting and TD updates (per-member Adam)
    training   the population's training loop; one TrainResult per member
"""
