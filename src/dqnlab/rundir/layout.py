"""Where everything lies on disk: the names in a run directory and in a results directory.

    RUN_DIR/
      .dqnlab            the marker that makes it dqnlab's to replace (ownership.py; written first)
      config.json        the resolved configuration
      episodes.csv       one row per finished episode (EPISODE_COLUMNS), replaced atomically as they come
      evaluations.csv    greedy evaluations every run.eval_every samples, if set (EVALUATION_COLUMNS)
      weights.pt         final Q-network state_dict (torch.load(..., weights_only=True))
      checkpoints/       samples-000010000.pt ... when run.checkpoint_every is set
      replay.npz         the replay memory, with --save-replay (no pickle)
      tensorboard/       event files, with --tensorboard
      result.json        totals and status ("complete" or "diverged"); written last, so a
                         run without it did not finish

    RESULTS/
      .dqnlab                  the marker
      experiment.json          the experiment (variants, seeds, preset, budget)
      runs/VARIANT/seed-007/   one run directory per (variant, seed)
      clock/VARIANT.json       one agent timed alone, when runs shared a clock
      report.html, summary.md, summary.json, plots/, probe/   written by `analysis`
"""

from __future__ import annotations

from pathlib import Path

CONFIG, EPISODES, WEIGHTS, RESULT, REPLAY = "config.json", "episodes.csv", "weights.pt", "result.json", "replay.npz"
EVALUATIONS = "evaluations.csv"
CHECKPOINTS, TENSORBOARD = "checkpoints", "tensorboard"
CHECKPOINT_FILE = "samples-{:09d}.pt"  # the samples trained when it was saved
# The fields of engine.records' EpisodeRecord and EvaluationRecord, in order (tests/test_layers.py checks them).
EPISODE_COLUMNS = ["episode", "samples", "score", "length", "terminated", "high_score", "learn_steps", "wall_seconds", "td_loss"]
REPLAY_FIELDS = ["obs", "action", "reward", "next_obs", "terminated", "truncated"]  # engine.replay's Ring, in order
EVALUATION_COLUMNS = ["samples", "learn_steps", "mean_score", "median_score", "min_score", "max_score", "capped", "episodes"]

EXPERIMENT = "experiment.json"
RUNS = "runs"
CLOCKS = "clock"  # OUT/clock/VARIANT.json: one agent's samples -> seconds (experiments/clock.py)


def run_dir_for(out: Path, variant: str, seed: int) -> Path:
    return Path(out) / RUNS / variant / f"seed-{seed:03d}"


def clock_file_for(out: Path, variant: str) -> Path:
    return Path(out) / CLOCKS / f"{variant}.json"
