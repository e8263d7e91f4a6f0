"""Car following: a scripted lead vehicle cruises or brakes ahead of an IDM human on an open road.

A hand-checkable family: one lead, no lights, no other traffic; the lead's speed is
v0 until `brake_time`, then falls at `lead_decel` to `final_fraction * v0`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from envs.sim.mapgen import generate_map
from envs.sim.scene import STEP_S, Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import (
    NOW, TOTAL_STEPS, Drive, LightCycle, drive_scene, human_idm, map_is_valid, path_plan, simulate_drive, spawn_ego,
)

LEAD_SIZE = (4.6, 1.9)
"""Lead vehicle length, width [m] (a mid-size car)."""


@dataclass(frozen=True)
class FollowingParams:
    """Knobs of one car-following scene; `RANGES` bounds what `sample` draws and what is accepted."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    ego_speed: float = 10.0
    """[m/s] ego speed at t = -1.6 s."""
    gap: float = 25.0
    """[m] bumper-to-bumper gap to the lead at t = -1.6 s."""
    lead_speed: float = 10.0
    """[m/s] lead speed v0 before it brakes."""
    brake_time: float = 1.0
    """[s] when the lead starts braking (t = 0 is the scene's current frame)."""
    lead_decel: float = 0.0
    """[m/s^2] lead braking; 0 = it cruises."""
    final_fraction: float = 0.0
    """Lead speed after braking, as a fraction of v0."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (0.0, 14.0), "gap": (8.0, 60.0), "lead_speed": (0.0, 14.0), "brake_time": (-1.5, 4.0),
        "lead_decel": (0.0, 5.0), "final_fraction": (0.0, 1.0), "human_style": (0.0, 1.0),
    }

    def __post_init__(self):
        if self.road not in ("straight", "curved"):
            raise ValueError(f"road={self.road!r}: must be 'straight' or 'curved'")
        for name, (low, high) in self.RANGES.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise ValueError(f"{name}={value!r}: must lie in [{low}, {high}]")

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "FollowingParams":
        draw = {name: float(rng.uniform(low, high)) for name, (low, high) in cls.RANGES.items()}
        if rng.random() < 0.4:
            draw["lead_decel"] = 0.0
        return cls(road="straight" if rng.random() < 0.5 else "curved", **draw)

    def lead_speed_at(self, t: np.ndarray) -> np.ndarray:
        """Lead speed [m/s] at times t [s]."""
        braked = self.lead_speed - self.lead_decel * np.clip(np.asarray(t) - self.brake_time, 0.0, None)
        return np.maximum(braked, self.final_fraction * self.lead_speed)


@register("following")
def build(params: FollowingParams, rng: np.random.Generator) -> Scene:
    """Ego (IDM human) on a spawn lane of a straight or curved road, the scripted lead ahead in its lane."""
    for _ in range(20):
        gen = generate_map(params.road, rng)
        ego = spawn_ego(gen, rng, params.human_style) if map_is_valid(gen.map) else None
        if ego is not None:
            break
    else:
        raise ValueError(f"road={params.road!r}: no spawn lane with a 3-roadblock route in 20 maps")
    route, ego_plan = ego
    ego_plan = replace(ego_plan, speed=params.ego_speed)
    lead_s = ego_plan.path_offset + ego_plan.s + (PACIFICA.length + LEAD_SIZE[0]) / 2 + params.gap
    times = (np.arange(1, TOTAL_STEPS + 1) - NOW) * STEP_S
    lead = path_plan(gen, route, lead_s, params.lead_speed_at(np.array([-NOW * STEP_S]))[0], LEAD_SIZE, 1.0,
                     is_reactive=False, speed_script=tuple(params.lead_speed_at(times).tolist()))
    drive = Drive(gen=gen, route_lane_ids=route, agents=(ego_plan, lead), ego_params=human_idm(params.human_style),
                  lights=LightCycle((), (), 0.0), wander=(0.0, 50.0, 0.0))
    return drive_scene(drive, simulate_drive(drive), rng.bytes(8).hex(), "following")
