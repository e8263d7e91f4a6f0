"""Rewards of `roadloop/Bench2Drive-v0` as named terms, from the criteria's running route completion and
penalty: 'ds' (Driving Score increments), 'carl' (CaRL-style progress with multiplicative penalties) and
'sparse' (the route's DS at the end). Pure batched functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import torch
from torch import Tensor


class RewardMode(str, Enum):
    """Which reward the env returns (`Bench2DriveConfig.reward`)."""

    DS = "ds"
    """r_t = DS_t - DS_{t-1} (DS as a fraction): terms `progress` = (RC_t - RC_{t-1})/100 * P_t and
    `penalty` = RC_{t-1}/100 * (P_t - P_{t-1}). The sum over an episode telescopes to the route's final
    DS / 100 exactly (running P includes the outside-lanes factor so far)."""
    CARL = "carl"
    """CaRL (Jaeger et al. 2025, spec simulators.md §8): route progress (RC_t - RC_{t-1})/100 times the running
    infraction penalty P_t, times soft per-tick factors (0 while outside the route lanes, a speeding factor);
    `terminal` = -CARL_TERMINAL_PENALTY on a tick with a collision, red light or stop-sign infraction (CaRL
    ends the episode there; set `terminate_on_collision` for that)."""
    SPARSE = "sparse"
    """DS / 100 on the tick the episode ends (terminated or truncated), 0 otherwise."""


CARL_TERMINAL_PENALTY = 1.0
"""Subtracted on a hard infraction in 'carl' mode (one full route's worth of progress: CaRL's terminal
penalty makes any infraction worse than stopping)."""


@dataclass(frozen=True)
class RewardInputs:
    """Per-tick quantities the rewards read, all (B,), taken from the criteria after the tick."""

    route_completion: Tensor = field(metadata={"dims": "B"})
    """RC_t [%] (0-100), monotone."""
    previous_completion: Tensor = field(metadata={"dims": "B"})
    """RC_{t-1} [%]."""
    penalty: Tensor = field(metadata={"dims": "B"})
    """P_t: product of the infraction coefficients so far and the outside-lanes factor (0-1)."""
    previous_penalty: Tensor = field(metadata={"dims": "B"})
    speed: Tensor = field(metadata={"dims": "B"})
    """[m/s] ego speed."""
    speed_limit: Tensor = field(metadata={"dims": "B"})
    """[m/s]"""
    outside_lanes: Tensor = field(metadata={"dims": "B"})
    """bool: route-progress metres were counted outside the route lanes (or in a wrong-direction lane) this tick."""
    hard_infraction: Tensor | None = field(default=None, metadata={"dims": "B"})
    """bool: a collision, red-light or stop-sign infraction was counted this tick (read by 'carl' only: may be None
    for the other modes)."""
    episode_end: Tensor | None = field(default=None, metadata={"dims": "B"})
    """bool: terminated or truncated on this tick (read by 'sparse' only: may be None for the other modes)."""


def speeding_factor(speed: Tensor, speed_limit: Tensor) -> Tensor:
    """CaRL-style soft speeding penalty (B,): 1 up to the limit, falling linearly to 0 at twice the limit."""
    return (1.0 - (speed - speed_limit).clamp(min=0.0) / speed_limit.clamp(min=1e-6)).clamp(0.0, 1.0)


def reward_terms(mode: RewardMode | str, inputs: RewardInputs) -> dict[str, Tensor]:
    """Named reward terms (each (B,)) of one tick; the reward is their sum (`total_reward`)."""
    valid = ", ".join(m.value for m in RewardMode)
    try:
        mode = RewardMode(mode)
    except ValueError:
        raise ValueError(f"reward={mode!r}: expected one of {valid}") from None
    progress = (inputs.route_completion - inputs.previous_completion) / 100.0
    if mode is RewardMode.DS:
        return {"progress": progress * inputs.penalty,
                "penalty": inputs.previous_completion / 100.0 * (inputs.penalty - inputs.previous_penalty)}
    if mode is RewardMode.CARL:
        if inputs.hard_infraction is None:
            raise ValueError("inputs.hard_infraction=None: reward='carl' needs it")
        soft = torch.where(inputs.outside_lanes, 0.0, 1.0) * speeding_factor(inputs.speed, inputs.speed_limit)
        return {"progress": progress * inputs.penalty * soft,
                "terminal": torch.where(inputs.hard_infraction, -CARL_TERMINAL_PENALTY, 0.0).to(progress.dtype)}
    if mode is RewardMode.SPARSE:
        if inputs.episode_end is None:
            raise ValueError("inputs.episode_end=None: reward='sparse' needs it")
        final = inputs.route_completion / 100.0 * inputs.penalty
        return {"driving_score": torch.where(inputs.episode_end, final, torch.zeros_like(final))}
    raise ValueError(f"reward={mode!r}: expected one of {valid}")


def total_reward(terms: dict[str, Tensor]) -> Tensor:
    """Sum of the named terms -> (B,)."""
    values = list(terms.values())
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total
