"""Regenerate the pictures of the documentation from dqnlab's own commands.

    python docs/make_pictures.py

Runs the small-budget commands in COMMANDS, in that order, in a temporary
directory (so their relative paths, `results/...` and `runs/...`, land
there), then copies the files named in PICTURES into docs/assets/. Each page
that shows a picture names the command here that made it. The runs are
seeded, so the pictures repeat, except for what reads a clock: the
per-second axis of the comparison's curves.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"

COMMANDS = [
    "dqnlab compare --preset quick --seeds 8 --backend population --out results/quick-8",
    "dqnlab train --preset quick --checkpoint-every 2000 --threads 1 --quiet --out runs/quick-replay",
    "dqnlab probe runs/quick-replay",
    "dqnlab train --preset quick --agent naive --checkpoint-every 2000 --threads 1 --quiet --out runs/quick-naive",
    "dqnlab probe runs/quick-naive --probe-set runs/quick-replay/probe/probe_set.npz",
    "dqnlab play runs/quick-replay --episodes 1 --max-steps 250 --gif quick-replay.gif",
    "dqnlab handset --out runs/handset",
    "dqnlab probe runs/handset",
    "dqnlab play runs/handset --episodes 1 --max-steps 250 --gif handset.gif",
]

PICTURES = {  # made in the temporary directory -> docs/assets/NAME
    "results/quick-8/plots/curves.png": "compare-curves.png",
    "results/quick-8/plots/strips.png": "compare-strips.png",
    "results/quick-8/plots/measures.png": "compare-measures.png",
    "runs/quick-replay/probe/frames.png": "probe-replay-frames.png",
    "runs/quick-replay/probe/heatmaps.png": "probe-replay-heatmaps.png",
    "runs/quick-replay/probe/stability.png": "probe-replay-stability.png",
    "runs/quick-naive/probe/stability.png": "probe-naive-stability.png",
    "quick-replay.gif": "play-quick-replay.gif",
    "runs/handset/probe/frames.png": "handset-frames.png",
    "runs/handset/probe/heatmaps.png": "handset-heatmaps.png",
    "handset.gif": "play-handset.gif",
}


def dqnlab() -> list[str]:
    """The `dqnlab` command of this Python: its script beside the interpreter, or `python -m dqnlab`."""
    script = Path(sys.executable).with_name("dqnlab")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "dqnlab"]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="dqnlab-pictures-") as tmp:
        for command in COMMANDS:
            print(f"$ {command}", flush=True)
            start = time.perf_counter()
            words = command.split()
            subprocess.run(dqnlab() + words[1:], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
        ASSETS.mkdir(exist_ok=True)
        for made, name in PICTURES.items():
            shutil.copyfile(Path(tmp) / made, ASSETS / name)
            print(f"docs/assets/{name}: {(ASSETS / name).stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
