"""Intelligent Driver Model: the longitudinal law of reactive traffic and of PDM-Closed proposals."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class IDMParams:
    """IDM constants. Defaults are NAVSIM's reactive traffic (`navsim_IDM_traffic_agents.yaml`)."""

    target_speed: float = 10.0
    """Desired speed v0 [m/s]."""
    min_gap: float = 1.0
    """Jam distance s0 [m]."""
    headway: float = 1.5
    """Desired time headway T [s]."""
    accel_max: float = 1.0
    """Maximum acceleration a [m/s^2]."""
    decel_max: float = 2.0
    """Comfortable deceleration b [m/s^2]."""
    exponent: float = 4.0
    """Free-road exponent delta, a whole number (nuPlan IDMPolicy: 4; NAVSIM BatchIDMPolicy: 10)."""

    def __post_init__(self):
        for name in ("target_speed", "headway", "accel_max", "decel_max", "exponent"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"idm.{name}={value!r}: must be a positive finite number")
        if self.exponent != int(self.exponent):
            # a fractional power of a negative speed ratio would be NaN
            raise ValueError(f"idm.exponent={self.exponent!r}: must be a whole number (nuPlan 4, PDM-Closed 10)")
        if not (math.isfinite(self.min_gap) and self.min_gap >= 0):
            raise ValueError(f"idm.min_gap={self.min_gap!r}: must be finite and >= 0")


PDM_CLOSED_IDM = IDMParams(target_speed=15.0, min_gap=1.0, headway=1.5, accel_max=1.5, decel_max=3.0, exponent=10.0)
"""PDM-Closed proposal IDM (spec navsim.md §1.11); its target speed is set per proposal."""


def idm_accel(
    speed: Tensor, target_speed: Tensor | float, gap: Tensor, lead_speed: Tensor, p: IDMParams
) -> Tensor:
    """IDM acceleration [m/s^2], all inputs broadcast (any shape).

    `gap` is bumper-to-bumper distance to the leader [m] (use +inf with no leader); it is floored at
    `min_gap` so the interaction term stays finite, as nuPlan's IDMPolicy does.
    """
    target = torch.as_tensor(target_speed, dtype=speed.dtype, device=speed.device).clamp(min=1e-6)
    # No clamp at 0: nuPlan's IDMPolicy and NAVSIM's BatchIDMPolicy raise the signed ratio to the
    # (integer) exponent, and Euler steps can leave a slightly negative speed behind a stop.
    free_road = (speed / target) ** p.exponent
    desired_gap = (
        p.min_gap + speed * p.headway + speed * (speed - lead_speed) / (2.0 * math.sqrt(p.accel_max * p.decel_max))
    )
    interaction = (desired_gap / gap.clamp(min=max(p.min_gap, 1e-6))) ** 2
    interaction = torch.where(torch.isinf(gap), torch.zeros_like(interaction), interaction)
    return p.accel_max * (1.0 - free_road - interaction)
