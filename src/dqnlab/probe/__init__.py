"""Looking inside the network: what its hidden units detect, and how stable they stay.

    probeset   a fixed, saved set of states to show the network
    units      per-unit statistics and plain-words descriptions (a convolution's units: its channels)
    frames     image observations (MinAtar): channel counts as state variables, frames drawn in MinAtar's colours
    stability  unit-by-unit correlation between checkpoints: repurposed detectors
    pictures   frames of top-activating states, heatmaps, repurposing over training
    report     probe.json, probe.md, probe.html and the PNGs
"""

# A unit whose activation pattern correlates below this with the previous checkpoint's is repurposed
# (stability.py); here, free of torch, so that `dqnlab probe --help` can show it.
THRESHOLD = 0.5
