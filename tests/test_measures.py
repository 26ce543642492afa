"""Every measure in summary.json against a hand-made history whose right answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dqnlab.analysis import metrics
from dqnlab.analysis.clocks import Clock, Timing, own_clock
from dqnlab.analysis.comparisons import comparisons
from dqnlab.analysis.measures import common_limits, run_clock, run_measures
from dqnlab.analysis.runs import Run
from dqnlab.analysis.summary import summarize
from dqnlab.config.profiles import CARTPOLE
from dqnlab.engine.training import Ledger
from dqnlab.experiments.spec import build_experiment

BUDGET = 20_000


def history(lengths, budget=BUDGET, terminated=None, seconds_per_sample=0.001, variant="v", seed=0, clock="own",
            reached=None, status="complete", population=1):  # fmt: skip
    """A run whose episodes have these lengths (reward 1 per step, as CartPole) and whose last one runs to the budget."""
    lengths = np.asarray(lengths, dtype=np.float64)  # (E,)
    ends = np.cumsum(lengths)  # (E,)
    assert ends[-1] <= budget if len(ends) else True
    episodes = {
        "samples": ends, "score": lengths.copy(), "length": lengths.copy(),
        "terminated": np.ones_like(lengths) if terminated is None else np.asarray(terminated, dtype=np.float64),
        "wall_seconds": ends * seconds_per_sample, "learn_steps": ends.copy(),
    }  # fmt: skip
    result = {
        "status": status, "samples": budget, "wall_seconds": budget * seconds_per_sample, "learn_steps": budget,
        "transitions_processed": budget * 64, "clock": clock, "population": population,
        "first_reached": reached if reached is not None else _reached(lengths, budget),
    }  # fmt: skip
    return Run(variant, seed, status, result, episodes, {})


def _reached(lengths, budget):
    """Where a running episode of reward 1 per step first reached each score (the unfinished one included)."""
    out, start = {}, 0
    for length in [*lengths, budget - sum(lengths)]:
        for score in CARTPOLE.targets:
            if f"{score:g}" not in out and length >= score:
                out[f"{score:g}"] = {"samples": int(start + score), "wall_seconds": (start + score) * 0.001}
        start += length
    return out


def measures_of(run, common=None):
    clock = run_clock(run, {})
    common = common or common_limits([run], {(run.variant, run.seed): clock}, BUDGET)
    return run_measures(run, clock, BUDGET, common)


# ---------------------------------------------------------------- censoring


def test_one_failure_then_balancing_to_the_end_ranks_far_above_failing_every_20_steps():
    # fails once, 5 samples into the last 20%, then balances to the end of the budget (never finishing)
    balancer = history([16_005])
    steady = history([20] * 1000)  # fails every 20 steps
    a, b = measures_of(balancer), measures_of(steady)
    assert a["final_failure_rate"] == pytest.approx(1000 / 4000)  # one failure in the last 4,000 samples
    assert b["final_failure_rate"] == pytest.approx(50.0)  # 200 failures in 4,000 samples
    assert a["final_failure_rate"] * 100 < b["final_failure_rate"]
    assert a["failure_rate"] == pytest.approx(1000 / 20_000) and b["failure_rate"] == pytest.approx(50.0)


def test_a_run_that_never_fails_in_the_window_has_rate_zero_not_a_lower_bound_score():
    run = history([12, 10], budget=BUDGET)  # two short failures, then 19,978 samples of balance
    values = measures_of(run)
    assert values["final_failure_rate"] == 0.0
    assert values["failure_rate"] == pytest.approx(2 * 1000 / 20_000)


def test_a_time_limit_truncation_is_no_failure():
    run = history([500] * 40, terminated=[0] * 40)  # CartPole-v1 capped at 500: every episode truncated
    assert measures_of(run)["final_failure_rate"] == 0.0


def test_the_per_sample_curve_counts_an_unfinished_episode_as_it_runs():
    failures = np.array([100.0, 200.0])  # then one episode runs to the end
    grid = np.array([200.0, 1000.0, 10_000.0])
    rates = metrics.rate_curve(failures, grid, window=500)
    assert rates[0] == pytest.approx(2 * 1000 / 200)  # window (0, 200] near the start
    assert rates[1] == 0.0 and rates[2] == 0.0  # the long episode reads as no failures, not as nothing


def test_failure_rate_counts_a_half_open_stretch():
    failures = np.array([10.0, 20.0, 30.0])
    assert metrics.failure_rate(failures, 0, 30) == pytest.approx(100.0)
    assert metrics.failure_rate(failures, 10, 30) == pytest.approx(2 * 1000 / 20)  # (10, 30]: 20 and 30
    assert math.isnan(metrics.failure_rate(failures, 30, 30))


# ---------------------------------------------------------------- reaching a score


def test_time_to_reach_is_where_the_running_episode_reached_it_not_where_it_ended():
    run = history([20, 20, 900])  # the third episode starts at sample 40 and reaches 200 at sample 240
    values = measures_of(run)
    assert values["samples_to_200"] == 240 and values["samples_to_500"] == 540
    assert values["seconds_to_200"] == pytest.approx(0.24)


def test_the_ledger_records_the_sample_at_which_a_running_score_first_reached_200():
    ledger = Ledger(2, samples=1000, reach_scores=(200, 500))
    ones = np.ones(2)
    for sample in range(1, 451):
        ended = np.array([sample == 150, False])  # member 0 fails at 150, then runs on; member 1 never stops
        ledger.stepped(ones, ended, ended, sample, sample / 100, None)
    assert [(r.score, r.samples) for r in ledger.reached_by(0)] == [(200.0, 350)]  # 150 + 200
    assert [(r.score, r.samples) for r in ledger.reached_by(1)] == [(200.0, 200)]
    assert ledger.reached_by(1)[0].wall_seconds == pytest.approx(2.0)
    assert ledger.episodes[0][0].terminated == 1


def test_a_diverged_member_stops_its_books_and_reaches_nothing_more():
    """The ledger's short way (every member alive) and its long way (one stopped) book the same things."""
    ledger = Ledger(2, samples=1000, reach_scores=(200, 500))
    ones, never = np.ones(2), np.zeros(2, dtype=bool)
    for sample in range(1, 601):
        if sample >= 2:  # a learn step from sample 2 on; member 1's loss stops being finite at sample 100
            loss = np.array([0.5, np.nan if sample == 100 else 0.5])
            assert ledger.learned(loss, sample, sample / 100) == ([1] if sample == 100 else [])
        ledger.stepped(ones, never, never, sample, sample / 100, None)
    assert [(r.score, r.samples) for r in ledger.reached_by(0)] == [(200.0, 200), (500.0, 500)]
    assert ledger.reached_by(1) == () and ledger.score[1] == 99.0  # its account stays as it stopped
    assert ledger.learn_steps.tolist() == [599, 99] and ledger.divergences[1].sample == 100
    assert ledger.all_alive is False and ledger.stopped_at.tolist() == [1000, 100]


def test_a_run_that_never_reaches_200_is_infinitely_late():
    values = measures_of(history([20] * 1000))
    assert values["samples_to_200"] == math.inf and math.isnan(values["collapse_rate"])


# ---------------------------------------------------------------- forgetting


def test_collapses_per_1000_samples_after_first_reaching_200():
    ends = np.array([500.0, 1000.0, 1009.0, 1300.0, 1310.0, 1321.0, 3000.0])
    scores = np.array([500.0, 500.0, 9.0, 291.0, 10.0, 11.0, 1679.0])
    # reached 200 at sample 200; after it, 3 collapses (<= 12) in 2,800 samples
    assert metrics.collapse_rate(ends, scores, 200.0, 3000, low=12) == pytest.approx(3 * 1000 / 2800)
    assert metrics.collapse_rate(ends, scores, 200.0, 3000, low=9) == pytest.approx(1 * 1000 / 2800)  # only the 9
    assert math.isnan(metrics.collapse_rate(ends, scores, math.inf, 3000, low=12))
    assert math.isnan(metrics.collapse_rate(ends, scores, 3000.0, 3000, low=12))


def test_relative_drawdown_over_windows_of_equal_samples():
    # 4 windows of 100 samples with 10, 1, 0 and 10 failures
    failures = np.concatenate([np.arange(1, 11) * 10.0, [150.0], [], 300 + np.arange(1, 11) * 10.0])
    # samples per failure (in windows): 0.1, 1, 1 (no failure counts as one), 0.1; the peak is 1, so 1 - 0.1
    assert metrics.relative_drawdown(failures, 400, windows=4) == pytest.approx(0.9)
    assert metrics.relative_drawdown(np.array([50.0, 150.0, 250.0, 350.0]), 400, windows=4) == 0.0


# ---------------------------------------------------------------- one agent's clock


def test_a_shared_clock_is_replaced_by_the_variant_timing_run():
    # population members stamped with the batch's clock: 100 s for 20,000 samples
    member = history([20] * 1000, seconds_per_sample=0.005, clock="shared", population=100)
    timing = Timing(0, Clock(np.array([0.0, 10_000.0, 20_000.0]), np.array([0.0, 4.0, 8.0])), {})
    clock = run_clock(member, {"v": timing})
    values = run_measures(member, clock, BUDGET, {"episodes": 10, "seconds": 8.0, "budget": BUDGET})
    assert values["agent_seconds"] == pytest.approx(8.0)  # one agent alone, not the batch's 100 s
    assert run_clock(member, {}) is None  # without a timing run there is no agent clock


def test_the_per_second_window_is_the_last_20_percent_of_the_common_agent_seconds():
    slow = history([16_005], seconds_per_sample=0.002)  # 40 s for the budget
    fast = history([20] * 1000, seconds_per_sample=0.001, seed=1)  # 20 s
    clocks = {("v", 0): run_clock(slow, {}), ("v", 1): run_clock(fast, {})}
    common = common_limits([slow, fast], clocks, BUDGET)
    assert common["seconds"] == pytest.approx(20.0)
    # in 20 s the slow agent took 10,000 samples: its window is samples (8,000, 10,000], without a failure
    assert run_measures(slow, clocks[("v", 0)], BUDGET, common)["time_failure_rate"] == 0.0
    assert run_measures(fast, clocks[("v", 1)], BUDGET, common)["time_failure_rate"] == pytest.approx(50.0)


def test_own_clock_interpolates_between_episode_ends_and_inverts():
    clock = own_clock({"samples": np.array([100.0, 300.0]), "wall_seconds": np.array([1.0, 2.0])}, 400, 4.0)
    assert clock.at([50, 200, 400]).tolist() == pytest.approx([0.5, 1.5, 4.0])
    assert clock.samples_at([1.5, 3.0]).tolist() == pytest.approx([200.0, 350.0])


def _experiment(variants=("naive", "replay"), seeds=4):
    tables = {name: {"agent": "naive" if name == "naive" else "replay"} for name in variants}
    return build_experiment(preset_name="quick", samples=BUDGET, seeds=seeds, variant_tables=tables, common={})


def test_summary_per_second_figures_do_not_depend_on_the_backend_clock():
    """The same histories stamped with their own clock or with a population's agree once mapped."""
    naive = [history([20] * 1000, variant="naive", seed=s, seconds_per_sample=0.001) for s in range(4)]
    replay = [history([16_005], variant="replay", seed=s, seconds_per_sample=0.003) for s in range(4)]
    own = summarize(_experiment(), naive + replay)
    timings = {"naive": Timing(0, own_clock(naive[0].episodes, BUDGET, 20.0), {}),
               "replay": Timing(0, own_clock(replay[0].episodes, BUDGET, 60.0), {})}  # fmt: skip
    shared = [Run(r.variant, r.seed, r.status, {**r.result, "clock": "shared", "wall_seconds": 999.0, "population": 4},
                  r.episodes, {}) for r in naive + replay]  # fmt: skip
    mapped = summarize(_experiment(), shared, timings=timings)
    for name in ("naive", "replay"):
        for key in ("agent_seconds", "time_failure_rate"):
            assert mapped["variants"][name]["measures"][key]["iqm"] == pytest.approx(own["variants"][name]["measures"][key]["iqm"])
    assert mapped["limits"]["seconds"] == pytest.approx(20.0)
    assert mapped["clocks"]["replay"]["how"].startswith("one agent timed alone")
    assert mapped["clocks"]["replay"]["population_member_samples_per_second"] == pytest.approx(4 * BUDGET / 999.0)
    assert own["clocks"]["replay"]["population_member_samples_per_second"] is None


# ---------------------------------------------------------------- comparisons


def test_a_diverged_run_counts_as_the_worst_outcome_in_the_paired_comparison():
    per_run = {("a", s): {"final_failure_rate": 10.0 + s} for s in range(8)}
    per_run.update({("b", s): {"final_failure_rate": 1.0 + s} for s in range(7)})  # b better on seeds 0-6
    rows = comparisons(["a", "b"], per_run, diverged={("b", 7)})
    row = next(r for r in rows if r["measure"] == "final_failure_rate")
    assert (row["n_pairs"], row["b_wins"], row["a_wins"], row["diverged_pairs"]) == (8, 7, 1, 1)
    assert row["win_rate"] == pytest.approx(7 / 8)


def test_undefined_pairs_are_left_out_and_counted():
    per_run = {("a", s): {"collapse_rate": 5.0} for s in range(6)}
    per_run.update({("b", s): {"collapse_rate": 1.0 if s < 4 else math.nan} for s in range(6)})
    row = comparisons(["a", "b"], per_run, diverged=set())[0]
    assert (row["measure"], row["n_pairs"], row["undefined_pairs"], row["b_wins"]) == ("collapse_rate", 4, 2, 4)


def test_verdicts_use_holm_adjusted_p_across_the_pair_measures():
    seeds = range(8)
    # b wins all 8 seeds on the final failure rate (p = 0.0078) and 7 of 8 on the whole budget (p = 0.070)
    per_run = {("a", s): {"final_failure_rate": 10.0, "failure_rate": 10.0 if s else 0.0} for s in seeds}
    per_run.update({("b", s): {"final_failure_rate": 1.0, "failure_rate": 1.0} for s in seeds})
    rows = {r["measure"]: r for r in comparisons(["a", "b"], per_run, diverged=set())}
    assert rows["final_failure_rate"]["sign_test_p"] == pytest.approx(2 / 256)
    assert rows["final_failure_rate"]["holm_p"] == pytest.approx(2 * 2 / 256)  # smallest of 2, times 2
    assert rows["final_failure_rate"]["verdict"] == "b"
    assert rows["failure_rate"]["holm_p"] == pytest.approx(18 / 256)  # the larger p, times 1
    assert rows["failure_rate"]["verdict"] == "inconclusive"


def test_every_summary_measure_is_finite_on_a_hand_made_experiment():
    runs = [history([20] * 1000, variant="naive", seed=s) for s in range(4)]
    runs += [history([100, 300, 15_000], variant="replay", seed=s) for s in range(4)]
    summary = summarize(_experiment(), runs)
    replay = summary["variants"]["replay"]["measures"]
    assert summary["limits"]["episodes"] == 3  # the fewest episodes any run finished
    assert replay["episode_score"]["iqm"] == pytest.approx((100 + 300 + 15_000) / 3)
    assert summary["variants"]["naive"]["measures"]["episode_score"]["iqm"] == pytest.approx(20.0)
    assert replay["final_failure_rate"]["iqm"] == 0.0
    assert replay["failure_rate"]["iqm"] == pytest.approx(3 * 1000 / BUDGET)
    assert replay["collapse_rate"]["iqm"] == 0.0  # reached 200 at sample 300 and never collapsed
    assert replay["learn_steps"]["iqm"] == BUDGET and replay["transitions_processed"]["iqm"] == BUDGET * 64
    assert summary["variants"]["naive"]["measures"]["collapse_rate"]["undefined"] == 4
    assert summary["variants"]["replay"]["reach"]["200"]["median_samples"] == 300


def test_curves_count_failures_per_sample_and_map_seconds_through_one_agent_clock():
    runs = [history([20] * 1000, variant="naive", seed=s) for s in range(2)]  # 1 ms per sample: 20 s
    runs += [history([100, 300, 15_000], variant="replay", seed=s, seconds_per_sample=0.004) for s in range(2)]  # 80 s
    summary = summarize(_experiment(seeds=2), runs)
    window = summary["limits"]["rate_window"]
    assert window == BUDGET / 20
    samples = summary["curves"]["samples"]["replay"]
    assert samples["iqm"][-1] == 0.0  # the last 1,000 samples lie inside the long last episode: no failure
    assert samples["iqm"][0] == pytest.approx(1000 / 200)  # (0, 200]: the failure at 100 (the next is at 400)
    naive = summary["curves"]["seconds"]["naive"]
    assert naive["x"][-1] == pytest.approx(80.0)  # the grid runs to the slowest agent's end
    assert naive["iqm"][-1] == pytest.approx(50.0)  # naive finished at 20 s and holds its last value
    replay = summary["curves"]["seconds"]["replay"]
    # at 40 agent-seconds the replay agent had taken 10,000 samples: its trailing window (9,000, 10,000] has no failure
    index = int(np.argmin(np.abs(np.asarray(replay["x"]) - 40.0)))
    assert replay["x"][index] == pytest.approx(40.0) and replay["iqm"][index] == 0.0
    assert summary["curves"]["episode"]["naive"]["iqm"][0] == pytest.approx(20.0)


def test_the_headline_says_when_an_axis_is_won_on_part_of_its_measures():
    from dqnlab.analysis.conclusion import _headline

    def row(measure, verdict):
        return {"a": "naive", "b": "replay", "measure": measure, "verdict": verdict, "n_pairs": 8}

    summary = {"experiment": {"samples": 20_000}, "comparisons": [
        row("episode_score", "replay"), row("final_failure_rate", "replay"), row("failure_rate", "inconclusive"),
        row("time_failure_rate", "naive"), row("collapse_rate", "replay"), row("relative_drawdown", "naive")]}  # fmt: skip
    assert _headline(summary, "naive", "replay") == (
        "Over 8 paired seeds of 20,000 samples each (verdicts: sign tests, Holm-adjusted across the pair's 6 measures): "
        "replay beats naive per episode; naive beats replay per agent-second; replay beats naive on part of the "
        "measures per sample; the measures disagree in forgetting."
    )


def test_greedy_evaluations_are_aggregated_at_the_checkpoints_every_run_shares():
    runs = []
    for seed, greedy in enumerate(([10.0, 200.0], [30.0, 400.0], [20.0, 300.0])):
        run = history([20] * 1000, variant="replay", seed=seed)
        evaluations = {"samples": np.array([5_000.0, 10_000.0]), "mean_score": np.array(greedy)}
        runs.append(Run(run.variant, run.seed, run.status, run.result, run.episodes, evaluations))
    runs += [history([20] * 1000, variant="naive", seed=s) for s in range(3)]  # no evaluations: no block
    summary = summarize(_experiment(seeds=3), runs)
    block = summary["evaluation"]["replay"]
    assert block["samples"] == [5_000.0, 10_000.0] and "naive" not in summary["evaluation"]
    assert block["greedy"]["mean"] == pytest.approx([20.0, 300.0]) and block["greedy"]["iqm"] == pytest.approx([20.0, 300.0])
    assert block["training"]["mean"] == pytest.approx([20.0, 20.0])  # the last 10 finished episodes scored 20 each
