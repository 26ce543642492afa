"""Analysis: measures, statistics, figures and the comparison report, from run directories alone (never the training loop)."""
