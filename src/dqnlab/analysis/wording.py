"""The report's fixed prose for each profile: what a termination means, how the measures read, the captions.

On CartPole (a failures profile) a termination is a failure and the report
speaks of failures per 1,000 samples; these are its words since before
profiles, unchanged. Everywhere else (returns profiles) a termination is the
goal reached (Acrobot, MountainCar) or the end of the game (MinAtar,
LunarLander), never a failure, and the report speaks of returns: every
sentence here for a returns profile is free of the word. `render` places
these words; the numbers stay summary.json's.
"""

from __future__ import annotations

from typing import Any

from dqnlab.analysis.measures import MeasureSet
from dqnlab.analysis.metrics import RATE_WINDOWS
from dqnlab.config.profiles import REACH_EPISODES
from dqnlab.reporting.formatting import fmt

MEASURES_CAPTION = ("Headline measures (and greedy-evaluation measures, where runs were evaluated): IQM (dot, thick bar) "
                    "and mean (diamond, thin bar) with 95% CIs.")  # fmt: skip
FAILURE_CAPTIONS = {  # file in plots/ -> caption
    "curves.png": "Training per episode (score), per environment sample and per agent-second (failures per 1,000 "
    "samples over a trailing window; lower is better): IQM over seeds with its 95% CI (band) and the mean (dashed); "
    "diamonds: greedy evaluations.",
    "measures.png": MEASURES_CAPTION,
    "strips.png": "Every training episode of every seed, coloured by its score (red: 12 or less).",
}
RETURN_CAPTIONS = {
    "curves.png": "Training per episode (return), per environment sample and per agent-second (mean return of the "
    "episodes that ended in a trailing window; higher is better): IQM over seeds with its 95% CI (band) and the mean "
    "(dashed); diamonds: greedy evaluations.",
    "measures.png": MEASURES_CAPTION,
    "strips.png": "Every training episode of every seed, coloured by its return (linear scale; each column shows the "
    "lowest return among the episodes it covers).",
}
TERMINATION_CLAUSE = {  # what a termination is, beside `ends_when`
    "failure": "That is a failure.",
    "success": "That is a success; an episode that the time limit cut short did not reach the goal.",
    "end of game": "That is neither good nor bad in itself: the episode's return says how well it went.",
}
RETURN_CURVE = (f"The return curve cuts the samples into {RATE_WINDOWS} equal windows: a window's value is the mean return "
                "of the episodes that ended in it; a window in which no episode ended carries the last known value "
                "forward, and the windows before the first one in which an episode ended take that first window's value.")  # fmt: skip


def is_failures(measured: MeasureSet) -> bool:
    return measured.profile.measured_by == "failures"


def captions(measured: MeasureSet) -> dict[str, str]:
    return FAILURE_CAPTIONS if is_failures(measured) else RETURN_CAPTIONS


def termination(summary: dict[str, Any], measured: MeasureSet) -> str:
    """'On Acrobot-v1 a termination means the free end swung above the bar (the goal). That is a success; ...'."""
    env_id = summary.get("profile", {}).get("env_id", measured.profile.name)
    return f"On {env_id} a termination means {measured.profile.ends_when}. {TERMINATION_CLAUSE[measured.profile.termination]}"


def targets_sentence(measured: MeasureSet) -> str:
    """The targets, how reaching one is read, and where they come from."""
    if not measured.targets:
        return ("No target return: the profile has none (none is published for this environment); set env.targets "
                "to report the time to reach one.")  # fmt: skip
    shown = ", ".join(fmt(target) for target in measured.targets)
    how = (f"the mean return of the last {REACH_EPISODES} finished episodes" if measured.profile.reach == "episodes"
           else "the running episode's score")  # fmt: skip
    return f"Target returns: {shown} ({measured.targets_from}), reached when {how} first gets there."


def environment(summary: dict[str, Any], measured: MeasureSet) -> list[str]:
    """The Experiment section's words on the environment (a returns profile's; CartPole's report never had them)."""
    if is_failures(measured):
        return []
    env_id = summary.get("profile", {}).get("env_id", measured.profile.name)
    return [f"Environment: {env_id} (profile {measured.profile.name}), measured by its returns (an episode's summed "
            f"reward; higher is better). {termination(summary, measured)} {targets_sentence(measured)}"]  # fmt: skip


def measures_note(measured: MeasureSet) -> str:
    """The paragraph under "Measures per variant"."""
    if is_failures(measured):
        first = fmt(measured.targets[0]) if measured.targets else "a target"
        return ("Over the runs that finished their budget: IQM and mean, each with its 95% bootstrap CI; n runs "
                f"where the measure is defined (collapses are undefined for a run that never reached {first}). A failure "
                "is an episode the environment terminated; failures per 1,000 samples count every sample, those of "
                "an episode still running at the end included, and 1,000 / rate is the mean samples per failure.")  # fmt: skip
    return ("Over the runs that finished their budget: IQM and mean, each with its 95% bootstrap CI; n runs where the "
            "measure is defined. A return is an episode's summed reward, counted at the sample where the episode "
            f"ended. {RETURN_CURVE} The area per sample is the mean of the window values; a fall is how far a window "
            "lies below the best window up to it, in return units.")  # fmt: skip


def reach_words(measured: MeasureSet) -> tuple[str, str, str]:
    """The reach section's (heading, paragraph, column header for the target)."""
    if measured.profile.reach == "running":
        return ("Time to reach a score",
                "The sample at which a run's running episode first reached this score (not the end of that "
                "episode), and one agent's seconds to that sample. A run that never did counts as infinitely late, "
                "so the median is honest and is missing when most runs never got there.", "score at least")  # fmt: skip
    return ("Time to reach a target return",
            f"The sample at which the mean return of a run's last {REACH_EPISODES} finished episodes first reached "
            "the target (the end of the last of those episodes), and one agent's seconds to that sample. A run that "
            "never did counts as infinitely late, so the median is honest and is missing when most runs never got "
            "there.", f"mean return of the last {REACH_EPISODES} finished episodes at least")  # fmt: skip


def reading_notes(summary: dict[str, Any], measured: MeasureSet) -> tuple[str, ...]:
    """The "How to read this" bullets on what is measured (the statistics' bullets are every profile's)."""
    if is_failures(measured):
        return ("A failure is an episode the environment terminated (on CartPole: the pole fell or the cart left the "
                "track), never a time limit. Failure rates count every sample, so an episode still running when the "
                "budget ends counts fully instead of being left out or counted by its score so far.",)  # fmt: skip
    return (
        f"{termination(summary, measured)} Runs are measured by their returns: a return counts when its episode "
        "ends, so an episode still running when the budget ends is not counted.",
        f"{RETURN_CURVE} Per sample it spans the budget; per agent-second, the samples each agent took in the "
        "common agent-seconds. The largest fall (drawdown) and the mean fall (shortfall) measure forgetting: how far "
        "the curve drops below its best so far.",
        targets_sentence(measured),
    )
