"""The engine: one training path for N >= 1 members, each with its own seed.

A single run is a population of one; the local, population and Ray backends
all train through `training.train_population`. Each concept is written once:

    cartpole   CartPole-v1's physics on NumPy arrays (the CPU) or torch tensors (a GPU)
    envs       checking a Gymnasium id; one environment per member, stepped together
    network    QNetwork (one network) and StackedQNetwork (N, in one flat buffer)
    replay     N replay rings in one tensor of packed rows; Ring, one member's copy (no files: rundir writes them)
    priority   sum-trees over N rings: prioritized replay's draws, weights and priorities
    nstep      n-step returns read from the rings
    sampling   what a learn step reads: uniform, prioritized or combined draws, 1- or n-step returns, weights
    learner    epsilon-greedy acting and the TD update: the readable reference
    target     the target network: hard copies or Polyak averaging
    kernel     the same TD update written out by hand, the one training runs
    evaluation greedy episodes: training's evaluations and `dqnlab play`
    records    episodes, evaluations, divergence, TrainResult
    training   the loop: train (one seed) and train_population (N seeds)
"""
