"""The measures and the report follow the environment's profile: hand-made histories on CartPole, Acrobot and MinAtar.

Each experiment is two variants x 10 seeds, built by hand so that every
measure of a variant is the same on every seed (the seeds differ only by
noise that cancels inside each window the measures read). Every IQM and
interval is then a known number, every paired comparison a clean 10-0 or a
tie, and each verdict sentence can be written out in full: sign test
p = 2 / 2**10 for 10 wins of 10, Holm-adjusted by the number of measures.
"""

from __future__ import annotations

import io
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dqnlab.analysis import metrics
from dqnlab.analysis.measures import measures_for, measures_of, run_measures
from dqnlab.analysis.plots import write_plots
from dqnlab.analysis.render import render_html, render_markdown
from dqnlab.analysis.runs import Run
from dqnlab.analysis.summary import summarize
from dqnlab.config.profiles import CARTPOLE, profile
from dqnlab.experiments.spec import build_experiment

SEEDS = 10
BUDGET = 16_000  # 20 windows of 800 samples; the last 20%: samples (12,800, 16,000]
VARIANTS = {"naive": {"agent": "naive"}, "replay": {"agent": "replay"}}
ACROBOT = {"env": {"id": "Acrobot-v1", "max_episode_steps": 500}}
WIN, HOLM_6 = "0.00195", "0.0117"  # sign test of 10 wins of 10: 2 / 1024; times 6 measures (Holm's smallest)
PLOTS_COPY = Path("/tmp/profile_plots")  # a copy of the rendered figures, for a person to look at


def run_of(lengths, returns, terminated, variant, seed, seconds_per_sample, budget=BUDGET, env_id="Acrobot-v1") -> Run:
    """A finished run whose episodes have these lengths, returns and terminations, on its own clock."""
    lengths = np.asarray(lengths, dtype=np.float64)  # (E,)
    ends = np.cumsum(lengths)  # (E,)
    assert ends[-1] <= budget
    episodes = {"samples": ends, "score": np.asarray(returns, dtype=np.float64), "length": lengths,
                "terminated": np.asarray(terminated, dtype=np.float64), "wall_seconds": ends * seconds_per_sample,
                "learn_steps": ends.copy()}  # fmt: skip
    result = {"status": "complete", "samples": budget, "wall_seconds": budget * seconds_per_sample, "learn_steps": budget,
              "transitions_processed": budget * 32, "clock": "own", "population": 1, "first_reached": {}, "env_id": env_id}  # fmt: skip
    return Run(variant, seed, "complete", result, episodes, {})


def pairs(count: int, length: int, spread: int) -> list[int]:
    """`count` episode lengths alternating length - spread, length + spread: each pair sums to 2 x length."""
    return [length - spread if i % 2 == 0 else length + spread for i in range(count)]


# ---------------------------------------------------------------- Acrobot: a termination is the goal


def acrobot_naive(seed: int) -> Run:
    """16 episodes cut by the time limit at 500 (return -500, windows 0-9), then 40 goal episodes of 200 +- 5s
    samples (return -(length - 1), so -199 a pair's mean; 4 per window, windows 10-19). 1 ms a sample: 16 s."""
    late = pairs(40, 200, 5 * (seed % 3))
    return run_of([500] * 16 + late, [-500] * 16 + [-(n - 1) for n in late], [0] * 16 + [1] * 40, "naive", seed, 0.001)


def acrobot_replay(seed: int) -> Run:
    """8 time-limit episodes (windows 0-4), 50 goal episodes of 80 +- 5s samples (-79 a pair; windows 5-9), a
    dip: 4 goal episodes of 400 (-399; windows 10-11), then 80 of 80 +- 5s again (windows 12-19). 4 ms a sample."""
    good = pairs(50, 80, 5 * (seed % 3))
    again = pairs(80, 80, 5 * (seed % 3))
    lengths = [500] * 8 + good + [400] * 4 + again
    returns = [-500] * 8 + [-(n - 1) for n in good] + [-399] * 4 + [-(n - 1) for n in again]
    return run_of(lengths, returns, [0] * 8 + [1] * 134, "replay", seed, 0.004)


# the return curves (20 windows of 800 samples): naive [-500] * 10 + [-199] * 10; replay [-500] * 5 + [-79] * 5 +
# [-399] * 2 + [-79] * 8. Per agent-second: the common 16 s are replay's first 4,000 samples, all -500.
ACROBOT_EXPECTED = {
    "naive": {"episode_score": (16 * -500 + 40 * -199) / 56, "final_return": -199.0, "return_auc": -349.5,
              "time_return_auc": -349.5, "return_drawdown": 0.0, "return_shortfall": 0.0, "goal_share": 1.0},
    "replay": {"episode_score": (8 * -500 + 48 * -79) / 56, "final_return": -79.0, "return_auc": -216.25,
               "time_return_auc": -500.0, "return_drawdown": 320.0, "return_shortfall": 32.0, "goal_share": 1.0},
}  # fmt: skip


def acrobot_summary() -> dict:
    experiment = build_experiment("quick", BUDGET, SEEDS, VARIANTS, ACROBOT)
    return summarize(experiment, acrobot_runs())


def acrobot_runs() -> list[Run]:
    return [acrobot_naive(seed) for seed in range(SEEDS)] + [acrobot_replay(seed) for seed in range(SEEDS)]


# ---------------------------------------------------------------- MinAtar Breakout: a termination ends the game


def breakout_run(windows: list[tuple[int, int]], variant: str, seed: int, seconds_per_sample: float) -> Run:
    """Games window by window: (return, length) per window of 800 samples; returns alternate +-1 on odd seeds."""
    lengths, returns = [], []
    for value, length in windows:
        count = 800 // length
        lengths += [length] * count
        returns += [value + (seed % 2) * (1 if i % 2 == 0 else -1) for i in range(count)]  # each pair averages `value`
    return run_of(lengths, returns, [1] * len(lengths), variant, seed, seconds_per_sample, env_id="MinAtar/Breakout-v0")


def breakout_naive(seed: int) -> Run:
    """Games of 100 samples: return 1 (windows 0-4), 5 (windows 5-11), a dip to 1 (window 12), 5 again. 1 ms a sample."""
    return breakout_run([(1, 100)] * 5 + [(5, 100)] * 7 + [(1, 100)] + [(5, 100)] * 7, "naive", seed, 0.001)


def breakout_replay(seed: int) -> Run:
    """Return 2 in games of 100 (windows 0-9), then 6 in games of 200, with a dip to 2 in windows 14-15. 2 ms a sample."""
    return breakout_run([(2, 100)] * 10 + [(6, 200)] * 4 + [(2, 200)] * 2 + [(6, 200)] * 4, "replay", seed, 0.002)


# curves: naive [1] * 5 + [5] * 7 + [1] + [5] * 7 (area 76 / 20); replay [2] * 10 + [6] * 4 + [2] * 2 + [6] * 4 (72 / 20).
# Per agent-second the common 16 s are replay's first 8,000 samples: return 2 throughout. The first 120 episodes
# (replay has 120 in all): naive's are 40 of 1, 56 of 5, 8 of 1 and 16 of 5.
BREAKOUT_EXPECTED = {
    "naive": {"episode_score": (40 + 280 + 8 + 80) / 120, "final_return": 5.0, "return_auc": 3.8, "time_return_auc": 3.8,
              "return_drawdown": 4.0, "return_shortfall": 0.2},
    "replay": {"episode_score": (160 + 96 + 16 + 96) / 120, "final_return": 6.0, "return_auc": 3.6, "time_return_auc": 2.0,
               "return_drawdown": 4.0, "return_shortfall": 0.4},
}  # fmt: skip


def breakout_runs() -> list[Run]:
    return [breakout_naive(seed) for seed in range(SEEDS)] + [breakout_replay(seed) for seed in range(SEEDS)]


def breakout_summary() -> dict:
    return summarize(build_experiment("minatar", BUDGET, SEEDS, VARIANTS, {}), breakout_runs())


# ---------------------------------------------------------------- CartPole: a termination is a failure


def cartpole_run(lengths, variant, seed, budget=20_000) -> Run:
    """Reward 1 a step, every episode terminated, the last one running to the budget; the running episode's reach."""
    run = run_of(lengths, lengths, [1] * len(lengths), variant, seed, 0.001, budget=budget, env_id="CartPole-v1")
    reached, start = {}, 0
    for length in [*lengths, budget - sum(lengths)]:
        for score in (200, 500):
            if str(score) not in reached and length >= score:
                reached[str(score)] = {"samples": start + score, "wall_seconds": (start + score) * 0.001}
        start += length
    return Run(run.variant, run.seed, run.status, {**run.result, "first_reached": reached}, run.episodes, {})


def cartpole_summary() -> dict:
    runs = [cartpole_run([20] * 1000, "naive", seed) for seed in range(SEEDS)]  # fails every 20 samples
    runs += [cartpole_run([100, 300, 15_000], "replay", seed) for seed in range(SEEDS)]  # then balances to the end
    return summarize(build_experiment("quick", 20_000, SEEDS, VARIANTS, {}), runs)


# ---------------------------------------------------------------- the return measures, one by one


def test_the_return_curve_averages_the_episodes_that_ended_in_each_window_of_samples():
    ends = np.array([100.0, 200.0, 250.0, 400.0])
    returns = np.array([-10.0, -20.0, -30.0, -40.0])
    # 4 windows of 100: (0, 100] holds the episode ending at 100, (100, 200] the one at 200 (the edge is its window's
    # last sample), (200, 300] the one at 250, (300, 400] the one at 400
    np.testing.assert_array_equal(metrics.return_curve(ends, returns, 400, windows=4), [-10.0, -20.0, -30.0, -40.0])
    # 2 windows of 200: (0, 200] averages -10 and -20; (200, 400] averages -30 and -40
    np.testing.assert_array_equal(metrics.return_curve(ends, returns, 400, windows=2), [-15.0, -35.0])


def test_the_return_curve_carries_forward_fills_back_and_leaves_out_later_episodes():
    ends = np.array([250.0, 260.0, 700.0, 900.0])
    returns = np.array([4.0, 6.0, 9.0, 100.0])
    # windows of 100 over (0, 800]: nothing ends before 250, so windows 0-1 take window 2's value (5, the mean of 4 and 6);
    # windows 3-5 carry 5 forward; window 6 (600, 700] is 9, and window 7 carries it; the episode at 900 is past the end
    expected = [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 9.0, 9.0]
    curve = metrics.return_curve(ends, returns, 800, windows=8)
    np.testing.assert_array_equal(curve, expected)
    assert metrics.curve_area(curve) == pytest.approx(48 / 8)
    assert np.isnan(metrics.return_curve(ends, returns, 200, windows=4)).all()  # no episode ended in (0, 200]
    assert math.isnan(metrics.curve_area(metrics.return_curve(ends, returns, 200, windows=4)))


def test_final_return_reads_the_episodes_that_ended_in_a_half_open_stretch():
    ends = np.array([100.0, 800.0, 900.0, 1000.0])
    returns = np.array([-500.0, -300.0, -100.0, -80.0])
    assert metrics.final_return(ends, returns, 800, 1000) == pytest.approx(-90.0)  # (800, 1000]: -100 and -80
    assert metrics.final_return(ends, returns, 799, 1000) == pytest.approx(-160.0)  # now 800 is inside
    assert math.isnan(metrics.final_return(ends, returns, 100, 700))  # nothing ended in (100, 700]


def test_drawdown_is_the_largest_fall_below_the_running_best_and_shortfall_the_mean_fall():
    curve = np.array([-500.0, -100.0, -300.0, -80.0, -90.0])
    # running best: -500, -100, -100, -80, -80; falls: 0, 0, 200, 0, 10
    assert metrics.return_drawdown(curve) == 200.0
    assert metrics.return_shortfall(curve) == pytest.approx(210 / 5)
    assert metrics.return_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0 == metrics.return_shortfall(np.array([1.0, 2.0, 3.0]))
    assert math.isnan(metrics.return_drawdown(np.full(3, np.nan)))


def test_a_target_is_reached_at_the_end_of_the_tenth_episode_whose_mean_of_ten_gets_there():
    ends = np.arange(1, 14) * 100.0  # 13 episodes ending at 100, 200, ..., 1,300
    returns = np.array([-500.0] * 3 + [-60.0] * 10)
    # episodes 0-9 average (3 * -500 + 7 * -60) / 10 = -192; 1-10: -148; 2-11: -104; 3-12: -60
    assert metrics.episodes_reach(ends, returns, -104) == 1200.0  # episode 11 ends at 1,200
    assert metrics.episodes_reach(ends, returns, -100) == 1300.0
    assert metrics.episodes_reach(ends, returns, -50) == math.inf
    assert metrics.episodes_reach(ends[:9], np.zeros(9), -100) == math.inf  # fewer than 10 finished episodes
    assert metrics.episodes_reach(ends, np.zeros(13), 0) == 1000.0  # never before the tenth episode


def test_the_trailing_return_curve_averages_the_episodes_that_ended_in_the_window():
    ends = np.array([100.0, 300.0, 350.0])
    returns = np.array([1.0, 2.0, 4.0])
    grid = np.array([50.0, 100.0, 300.0, 400.0, 600.0])
    # windows of 200: (0, 50] none; (0, 100] 1; (100, 300] 2; (200, 400] 2 and 4; (400, 600] none
    np.testing.assert_array_equal(metrics.trailing_return(ends, returns, grid, 200.0), [np.nan, 1.0, 2.0, 3.0, np.nan])


def test_the_goal_share_counts_terminations_among_the_episodes_that_ended_in_the_stretch():
    ends = np.array([500.0, 1000.0, 1100.0, 1200.0, 1300.0])
    terminated = np.array([0.0, 0.0, 1.0, 0.0, 1.0])
    assert metrics.terminated_share(ends, terminated, 1000, 1300) == pytest.approx(2 / 3)  # 1,100, 1,200 and 1,300
    assert math.isnan(metrics.terminated_share(ends, terminated, 1300, 1400))


# ---------------------------------------------------------------- each profile's measures of one run


def test_a_returns_run_is_measured_by_its_returns_with_reach_read_from_its_episodes():
    measured = measures_for(profile("Acrobot-v1"))
    assert measured.headline == ("episode_score", "final_return", "return_auc", "time_return_auc")
    assert measured.forgetting == ("return_drawdown", "return_shortfall") and measured.rates == ()
    assert measured.targets == (-100.0,)
    run = acrobot_replay(seed=1)
    values = run_measures(run, None, BUDGET, {"episodes": 56, "seconds": 0.0, "budget": BUDGET}, measured)
    for key, value in ACROBOT_EXPECTED["replay"].items():
        if key != "time_return_auc":  # no clock: undefined
            assert values[key] == pytest.approx(value), key
    # episodes 8-17 are the first ten goal episodes; the tenth ends at 4,000 + 5 pairs of 160 samples
    assert values["samples_to_-100"] == 4800.0 and math.isnan(values["seconds_to_-100"])
    assert math.isnan(values["time_return_auc"]) and "final_failure_rate" not in values


def test_a_run_without_a_profile_argument_takes_its_environments_from_result_json():
    values = run_measures(breakout_replay(0), None, BUDGET, {"episodes": 120, "seconds": 0.0, "budget": BUDGET})
    assert values["final_return"] == 6.0 and not any(key.startswith("samples_to_") for key in values)  # MinAtar: no target
    assert "goal_share" not in values  # a MinAtar termination ends the game; it is no goal


def test_an_experiment_with_configured_targets_reports_those():
    experiment = build_experiment("quick", BUDGET, SEEDS, VARIANTS, {"env": {**ACROBOT["env"], "targets": [-150, -90]}})
    summary = summarize(experiment, acrobot_runs())
    assert summary["profile"]["targets"] == [-150.0, -90.0] and summary["profile"]["targets_from"].startswith("env.targets")
    # replay: episodes 8-17 average -79 >= -90 at 4,800; -150 first: episodes 7-16 average (-500 + 9 goal returns) / 10
    reach = summary["variants"]["replay"]["reach"]
    assert reach["-90"]["median_samples"] == 4800.0 and reach["-90"]["reached"] == SEEDS
    assert reach["-90"]["median_seconds"] == pytest.approx(4800 * 0.004)
    assert summary["variants"]["naive"]["reach"]["-90"]["reached"] == 0


# ---------------------------------------------------------------- summaries and verdicts


@pytest.mark.parametrize("make, expected", [(acrobot_summary, ACROBOT_EXPECTED), (breakout_summary, BREAKOUT_EXPECTED)])
def test_every_return_measure_is_the_hand_computed_one(make, expected):
    summary = make()
    for name, values in expected.items():
        for key, value in values.items():
            block = summary["variants"][name]["measures"][key]
            assert (block["iqm"], block["iqm_low"], block["iqm_high"]) == pytest.approx((value, value, value)), (name, key)


def test_acrobots_summary_names_its_profile_and_reaches_by_the_mean_of_ten_episodes():
    summary = acrobot_summary()
    assert summary["profile"] == {
        "env_id": "Acrobot-v1", "name": "Acrobot", "measured_by": "returns", "termination": "success",
        "ends_when": "the free end swung above the bar (the goal)", "targets": [-100.0],
        "targets_from": "Gymnasium's registered reward threshold", "reach": "episodes", "reach_episodes": 10,
    }  # fmt: skip
    assert summary["limits"]["episodes"] == 56 and summary["limits"]["seconds"] == pytest.approx(16.0)
    assert summary["variants"]["replay"]["reach"]["-100"] == {"reached": SEEDS, "n": SEEDS, "median_samples": 4800.0,
                                                               "median_seconds": pytest.approx(4800 * 0.004)}  # fmt: skip
    assert summary["variants"]["naive"]["reach"]["-100"]["median_samples"] is None  # never: infinitely late
    assert [row["measure"] for row in summary["comparisons"]] == list(measures_of(summary).headline + measures_of(summary).forgetting)


def test_acrobots_conclusion_in_words():
    assert acrobot_summary()["conclusion"] == [
        "Over 10 paired seeds of 16,000 samples each (verdicts: sign tests, Holm-adjusted across the pair's 6 measures): "
        "replay beats naive per episode and per sample; naive beats replay per agent-second and in forgetting.",
        f"Per episode: replay beats naive (mean return of the first 56 episodes: IQM -139 [-139, -139] for replay vs "
        f"-285 [-285, -285] for naive; replay better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], "
        f"P(replay > naive) across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Per sample (final return): replay beats naive (mean return of the episodes that ended in the last 20% of the "
        f"budget: IQM -79 [-79, -79] for replay vs -199 [-199, -199] for naive; replay better on 10 of 10 paired seeds "
        f"(0 ties), paired win rate 1 [1, 1], P(replay > naive) across seeds = 1 [1, 1]; sign test p = {WIN}, "
        f"Holm-adjusted {HOLM_6}).",
        f"Per sample (area under the return curve): replay beats naive (area under the return curve per sample (mean "
        f"over 20 equal windows of the budget): IQM -216 [-216, -216] for replay vs -350 [-350, -350] for naive; replay "
        f"better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], P(replay > naive) across seeds = 1 [1, 1]; "
        f"sign test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Per agent-second: naive beats replay (area under the return curve over the first 16 agent-seconds (mean over "
        f"20 equal windows of their samples): IQM -500 [-500, -500] for replay vs -350 [-350, -350] for naive; replay "
        f"better on 0 of 10 paired seeds (0 ties), paired win rate 0 [0, 0], P(replay > naive) across seeds = 0 [0, 0]; "
        f"sign test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Forgetting (largest fall): naive beats replay (largest fall of the return curve below its running best (20 "
        f"equal windows of the budget): IQM 320 [320, 320] for replay vs 0 [0, 0] for naive; replay better on 0 of 10 "
        f"paired seeds (0 ties), paired win rate 0 [0, 0], P(replay < naive) across seeds = 0 [0, 0]; sign test "
        f"p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Forgetting (mean fall): naive beats replay (mean fall of the return curve below its running best (20 equal "
        f"windows of the budget): IQM 32 [32, 32] for replay vs 0 [0, 0] for naive; replay better on 0 of 10 paired "
        f"seeds (0 ties), paired win rate 0 [0, 0], P(replay < naive) across seeds = 0 [0, 0]; sign test p = {WIN}, "
        f"Holm-adjusted {HOLM_6}).",
        "Clock of naive: own clock: each run timed itself, alone on one core.",
        "Clock of replay: own clock: each run timed itself, alone on one core.",
        "Cost: replay processed 1x the transitions of naive (512,000 vs 512,000 per run).",
    ]


def test_breakouts_conclusion_in_words():
    assert breakout_summary()["conclusion"][:7] == [
        "Over 10 paired seeds of 16,000 samples each (verdicts: sign tests, Holm-adjusted across the pair's 6 measures): "
        "naive beats replay per episode and per agent-second; naive beats replay on part of the measures in "
        "forgetting; the measures disagree per sample.",
        f"Per episode: naive beats replay (mean return of the first 120 episodes: IQM 3.07 [3.07, 3.07] for replay vs "
        f"3.4 [3.4, 3.4] for naive; replay better on 0 of 10 paired seeds (0 ties), paired win rate 0 [0, 0], "
        f"P(replay > naive) across seeds = 0 [0, 0]; sign test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Per sample (final return): replay beats naive (mean return of the episodes that ended in the last 20% of the "
        f"budget: IQM 6 [6, 6] for replay vs 5 [5, 5] for naive; replay better on 10 of 10 paired seeds (0 ties), paired "
        f"win rate 1 [1, 1], P(replay > naive) across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Per sample (area under the return curve): naive beats replay (area under the return curve per sample (mean "
        f"over 20 equal windows of the budget): IQM 3.6 [3.6, 3.6] for replay vs 3.8 [3.8, 3.8] for naive; replay better "
        f"on 0 of 10 paired seeds (0 ties), paired win rate 0 [0, 0], P(replay > naive) across seeds = 0 [0, 0]; sign "
        f"test p = {WIN}, Holm-adjusted {HOLM_6}).",
        f"Per agent-second: naive beats replay (area under the return curve over the first 16 agent-seconds (mean over "
        f"20 equal windows of their samples): IQM 2 [2, 2] for replay vs 3.8 [3.8, 3.8] for naive; replay better on 0 "
        f"of 10 paired seeds (0 ties), paired win rate 0 [0, 0], P(replay > naive) across seeds = 0 [0, 0]; sign test "
        f"p = {WIN}, Holm-adjusted {HOLM_6}).",
        "Forgetting (largest fall): inconclusive: neither naive nor replay is reliably better (largest fall of the "
        "return curve below its running best (20 equal windows of the budget): IQM 4 [4, 4] for replay vs 4 [4, 4] for "
        "naive; replay better on 0 of 10 paired seeds (10 ties), paired win rate 0.5 [0.5, 0.5], P(replay < naive) "
        "across seeds = 0.5 [0.5, 0.5]; sign test p = 1, Holm-adjusted 1).",
        f"Forgetting (mean fall): naive beats replay (mean fall of the return curve below its running best (20 equal "
        f"windows of the budget): IQM 0.4 [0.4, 0.4] for replay vs 0.2 [0.2, 0.2] for naive; replay better on 0 of 10 "
        f"paired seeds (0 ties), paired win rate 0 [0, 0], P(replay < naive) across seeds = 0 [0, 0]; sign test "
        f"p = {WIN}, Holm-adjusted {HOLM_6}).",
    ]


def test_cartpoles_conclusion_speaks_of_failures_as_it_always_has():
    """Ten paired seeds: naive fails every 20 samples; replay fails at 100 and 400 and once more at 15,400."""
    summary = cartpole_summary()
    assert measures_of(summary).profile == CARTPOLE
    holm = "0.00977"  # 2 / 1024 times 5 measures (collapses are undefined for naive, which never reached 200: no row)
    assert summary["conclusion"] == [
        "Over 10 paired seeds of 20,000 samples each (verdicts: sign tests, Holm-adjusted across the pair's 5 measures): "
        "replay beats naive per episode, per sample and per agent-second; the evidence is inconclusive in forgetting.",
        f"Per episode: replay beats naive (mean score of the first 3 episodes: IQM 5,133 [5,133, 5,133] for replay vs "
        f"20 [20, 20] for naive; replay better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], "
        f"P(replay > naive) across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {holm}).",
        f"Per sample (final failure rate): replay beats naive (failures per 1,000 samples in the last 20% of the "
        f"budget: IQM 0 [0, 0] (one failure every — samples) for replay vs 50 [50, 50] (one failure every 20 samples) "
        f"for naive; replay better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], P(replay < naive) "
        f"across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {holm}).",
        f"Per sample (sample efficiency): replay beats naive (sample efficiency: failures per 1,000 samples over the "
        f"whole budget: IQM 0.15 [0.15, 0.15] (one failure every 6,667 samples) for replay vs 50 [50, 50] (one failure "
        f"every 20 samples) for naive; replay better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], "
        f"P(replay < naive) across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {holm}).",
        f"Per agent-second: replay beats naive (failures per 1,000 samples in the last 20% of the first 20 "
        f"agent-seconds: IQM 0 [0, 0] (one failure every — samples) for replay vs 50 [50, 50] (one failure every 20 "
        f"samples) for naive; replay better on 10 of 10 paired seeds (0 ties), paired win rate 1 [1, 1], "
        f"P(replay < naive) across seeds = 1 [1, 1]; sign test p = {WIN}, Holm-adjusted {holm}).",
        "Forgetting (drawdown): inconclusive: neither naive nor replay is reliably better (largest relative fall of "
        "samples per failure below its running peak (20 equal windows): IQM 0 [0, 0] for replay vs 0 [0, 0] for naive; "
        "replay better on 0 of 10 paired seeds (10 ties), paired win rate 0.5 [0.5, 0.5], P(replay < naive) across "
        "seeds = 0.5 [0.5, 0.5]; sign test p = 1, Holm-adjusted 1).",
        "Clock of naive: own clock: each run timed itself, alone on one core.",
        "Clock of replay: own clock: each run timed itself, alone on one core.",
        "Cost: replay processed 1x the transitions of naive (640,000 vs 640,000 per run).",
    ]


# ---------------------------------------------------------------- the report's words and figures


def assert_valid_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and min(image.size) > 100


def report_files(summary: dict, runs: list[Run], out: Path) -> tuple[str, str]:
    """summary.md and report.html, with the three plots, as `analysis.report.build_report` writes them."""
    plots = write_plots(out, summary, runs)
    assert sorted(path.name for path in plots) == ["curves.png", "measures.png", "strips.png"]
    for path in plots:
        assert_valid_png(path)
    if PLOTS_COPY.parent.is_dir():  # a copy to look at: /tmp/profile_plots/<environment>/
        copy = PLOTS_COPY / out.name
        copy.mkdir(parents=True, exist_ok=True)
        for path in plots:
            shutil.copyfile(path, copy / path.name)
    markdown = render_markdown(summary, plots=[path.name for path in plots])
    page = render_html(summary, {path.name: path.read_bytes() for path in plots})
    if PLOTS_COPY.parent.is_dir():
        (PLOTS_COPY / out.name / "summary.md").write_text(markdown, encoding="utf-8")
    return markdown, page


def visible_text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>|src=\"[^\"]*\"", " ", page, flags=re.S))


@pytest.mark.parametrize("name, make, runs", [("acrobot", acrobot_summary, acrobot_runs), ("breakout", breakout_summary, breakout_runs)])
def test_a_returns_report_never_speaks_of_failures(tmp_path, name, make, runs):
    summary = make()
    markdown, page = report_files(summary, runs(), tmp_path / name)
    for text in (markdown, visible_text(page), " ".join(summary["conclusion"]), " ".join(m["label"] for m in summary["measures"].values())):
        assert "failure" not in text.lower() and "collapse" not in text.lower()
    assert "mean return over" not in markdown or "higher is better" in markdown


def test_acrobots_report_says_what_a_termination_is_and_where_its_target_comes_from(tmp_path):
    markdown, page = report_files(acrobot_summary(), acrobot_runs(), tmp_path / "acrobot")
    assert ("Environment: Acrobot-v1 (profile Acrobot), measured by its returns (an episode's summed reward; higher is "
            "better). On Acrobot-v1 a termination means the free end swung above the bar (the goal). That is a "
            "success; an episode that the time limit cut short did not reach the goal. Target returns: -100 (Gymnasium's "
            "registered reward threshold), reached when the mean return of the last 10 finished episodes first gets "
            "there.") in markdown  # fmt: skip
    assert "## Time to reach a target return" in markdown
    assert ("| variant | mean return of the last 10 finished episodes at least | runs that reached it | median samples | "
            "median agent-seconds |") in markdown  # fmt: skip
    assert "| replay | -100 | 10 of 10 | 4,800 | 19.2 |" in markdown
    assert "| naive | -100 | 0 of 10 | not reached by the median run | not reached by the median run |" in markdown
    assert "### Episodes that reached the goal" in markdown
    assert ("| share of the episodes that ended in the last 20% of the budget that reached the goal | replay | 1 [1, 1] "
            "| 1 [1, 1] | 10 | higher |") in markdown  # fmt: skip
    assert "windows before the first one in which an episode ended take that first window's value" in markdown
    assert "Environment: Acrobot-v1 (profile Acrobot)" in visible_text(page)  # the page renders the same document


def test_breakouts_report_says_a_termination_ends_the_game_and_that_it_has_no_target(tmp_path):
    markdown, _ = report_files(breakout_summary(), breakout_runs(), tmp_path / "breakout")
    assert ("On MinAtar/Breakout-v0 a termination means the game ended: the ball reached the bottom of the screen. "
            "That is neither good nor bad in itself: the episode's return says how well it went.") in markdown
    assert ("No target return: the profile has none (none is published for this environment); set env.targets to "
            "report the time to reach one.") in markdown
    assert "Episodes that reached the goal" not in markdown  # a game's end is no goal


def test_cartpoles_report_keeps_its_words(tmp_path):
    summary = cartpole_summary()
    runs = [cartpole_run([20] * 1000, "naive", seed) for seed in range(SEEDS)]
    runs += [cartpole_run([100, 300, 15_000], "replay", seed) for seed in range(SEEDS)]
    markdown, _ = report_files(summary, runs, tmp_path / "cartpole")
    assert "Environment:" not in markdown and "## Time to reach a score" in markdown
    assert "| replay | 200 | 10 of 10 | 300 | 0.3 |" in markdown
    assert "A failure is an episode the environment terminated (on CartPole: the pole fell or the cart left the track)" in markdown
