"""Run and results directories on disk: their layout, safe writing, ownership, locking and checked reading.

This layer sits below the runner and above config: it never imports the engine.
"""
