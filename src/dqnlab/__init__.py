"""dqnlab: deep Q-learning with experience replay, as a lab.

Every CLI verb is a function in `dqnlab.api` too; the engine underneath trains one run or a population:

>>> from dqnlab.config import resolve
>>> from dqnlab.engine.training import train
>>> config = resolve("tutorial", agent="naive", overrides=["run.samples=300"])
>>> result = train(config)  # a population of one, nothing written
>>> result.samples
300

Importing `dqnlab` itself loads nothing heavy: torch, matplotlib and Gymnasium load with the modules that use them.
"""

__version__ = "0.1.0"
