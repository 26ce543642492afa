"""dqnlab: deep Q-learning with experience replay, as a lab.

Every CLI verb is a Python function too:

>>> from dqnlab import config, training                     # doctest: +SKIP
>>> cfg = config.resolve("tutorial", agent="naive", overrides=["run.samples=2000"])
>>> result = training.train(cfg)
>>> [e.score for e in result.episodes][:3]
"""

__version__ = "0.1.0"
