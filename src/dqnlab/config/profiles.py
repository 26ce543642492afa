"""What success means on each environment: the profile that the measures and the report's words follow.

On CartPole a termination is a failure (the pole fell or the cart left the
track) and every step pays +1, so a run is measured by how often it fails
(failures per 1,000 samples), and "reached 200" reads the running episode's
score. Elsewhere that reading is backwards: on Acrobot and MountainCar a
termination is the goal reached and every step costs -1; on MinAtar a
termination ends the game and the score is what counts. Those environments
are measured by their returns (an episode's summed reward).

A profile says, for one environment:

- `measured_by`: "failures" (terminations are failures: failure rates over
  samples) or "returns" (episode returns: final return, area under the return
  curve, drawdowns of the running return);
- `termination`: what the environment's termination means, "failure",
  "success" or "end of game" (neither: the return says how well it went),
  and `ends_when`, the same in words;
- `targets`: target returns whose first reaching every run reports, with
  `targets_from`, where they come from (published thresholds where they
  exist; none otherwise, and `env.targets` sets one);
- `reach`: how a target counts as reached: "running" (the running episode's
  score first got there, recorded by the training loop: CartPole, whose
  scores only grow) or "episodes" (the mean return of the last
  `REACH_EPISODES` finished episodes first got there, read from episodes.csv:
  returns of -1 a step only fall as an episode runs);
- `collapse_at`: for a failures profile, the score at or below which an
  episode after first reaching `targets[0]` is a collapse (CartPole: 12; 9
  is the floor).

`profile(env_id)` finds it; an environment dqnlab has no profile for is
measured by returns, with no target unless `env.targets` gives one.
Nothing here imports Gymnasium or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

MEASURED_BY = ("failures", "returns")
TERMINATIONS = ("failure", "success", "end of game")
REACHES = ("running", "episodes")
REACH_EPISODES = 10  # a "episodes" target is reached when the mean return of this many finished episodes gets there
GYMNASIUM = "Gymnasium's registered reward threshold"


@dataclass(frozen=True)
class Profile:
    name: str  # e.g. "CartPole", "Acrobot", "MinAtar Breakout"
    measured_by: str  # one of MEASURED_BY
    termination: str  # one of TERMINATIONS
    ends_when: str  # what a termination is, in words: "the pole fell or the cart left the track"
    targets: tuple[float, ...] = ()  # target returns, lowest first
    targets_from: str = ""  # where the targets come from; "" without targets
    reach: str = "episodes"  # one of REACHES
    collapse_at: float | None = None  # failures profiles: an episode scoring <= this after reaching targets[0] collapsed

    def __post_init__(self) -> None:
        if self.measured_by not in MEASURED_BY or self.termination not in TERMINATIONS or self.reach not in REACHES:
            raise ValueError(f"profile {self.name}: measured_by, termination or reach outside {MEASURED_BY}, {TERMINATIONS}, {REACHES}")
        if self.measured_by == "failures" and (self.termination != "failure" or self.collapse_at is None or not self.targets):
            raise ValueError(f"profile {self.name}: a failures profile needs terminations that are failures, targets and collapse_at")


CARTPOLE = Profile(
    "CartPole", "failures", "failure", "the pole fell or the cart left the track", targets=(200.0, 500.0),
    # 200: "in cartpole 200 is actually passable" (the tutorial); 500: CartPole-v1's time limit, its best score
    targets_from="the tutorial's passable score and CartPole-v1's time limit", reach="running", collapse_at=12.0,
)  # fmt: skip
CLASSIC = {
    "Acrobot-v1": Profile("Acrobot", "returns", "success", "the free end swung above the bar (the goal)",
                          targets=(-100.0,), targets_from=GYMNASIUM),
    "MountainCar-v0": Profile("MountainCar", "returns", "success", "the car reached the flag (the goal)",
                              targets=(-110.0,), targets_from=GYMNASIUM),
    "LunarLander-v3": Profile("LunarLander", "returns", "end of game", "the lander crashed, flew off the screen or came to rest",
                              targets=(200.0,), targets_from=GYMNASIUM),
}  # fmt: skip
CLASSIC["LunarLander-v2"] = CLASSIC["LunarLander-v3"]
MINATAR_ENDS = {  # what ends each MinAtar game (Young & Tian 2019; MinAtar's README)
    "Asterix": "the player touched an enemy",
    "Breakout": "the ball reached the bottom of the screen",
    "Freeway": "2,500 frames passed (the game's own clock)",
    "Seaquest": "the submarine was hit, ran out of oxygen or surfaced without a diver",
    "SpaceInvaders": "an alien or an alien's bullet reached the cannon",
}


def profile(env_id: str) -> Profile:
    """The profile of a Gymnasium id: CartPole, the classic-control and Box2D tasks, MinAtar, or a generic one."""
    if env_id in ("CartPole-v0", "CartPole-v1"):
        return CARTPOLE
    if env_id in CLASSIC:
        return CLASSIC[env_id]
    game = minatar_game(env_id)
    if game is not None:
        return Profile(f"MinAtar {game}", "returns", "end of game", f"the game ended: {MINATAR_ENDS[game]}")
    return Profile(env_id, "returns", "end of game", "the environment ended the episode")


def minatar_game(env_id: str) -> str | None:
    """'MinAtar/Breakout-v1' -> 'Breakout'; None for any other id."""
    namespace, _, rest = env_id.partition("/")
    game = rest.rpartition("-v")[0]
    return game if namespace == "MinAtar" and game in MINATAR_ENDS else None


def targets(env_id: str, configured: tuple[float, ...] | None) -> tuple[float, ...]:
    """The target returns a run is measured against: `env.targets` when set, else the profile's."""
    return tuple(sorted(configured)) if configured is not None else profile(env_id).targets


def running_targets(env_id: str, configured: tuple[float, ...] | None) -> tuple[float, ...]:
    """The scores whose first reaching by the running episode the training loop records: the targets where the
    profile reads them from the running episode (CartPole), none where it reads them from finished episodes."""
    return targets(env_id, configured) if profile(env_id).reach == "running" else ()
