"""Hard-braking lead: the vehicle ahead in the ego lane brakes hard (4-8 m/s^2) at a random time.

Agent 1 is the lead (scripted speed). The human is IDM with a per-scene emergency braking limit, so
short headways and late, hard stops sometimes beat it (the alert retry gives it 8 m/s^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from envs.sim.scene import Scene
from envs.sim.vehicle import PACIFICA
from scenarios import register
from scenarios.drive import Drive, LightCycle, Timeline, human_idm, path_plan, pose_on
from scenarios.family import (
    RangedParams, add_traffic, drive_planner, ego_plan, path_ahead, planned_scene, road_config, road_drive_start,
    scripted_start, vehicle_size,
)

ALERT_DECEL = 8.0
"""[m/s^2] braking of the alert human (near the tyre limit)."""


@dataclass(frozen=True)
class HardBrakeParams(RangedParams):
    """Knobs of one hard-braking-lead scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    ego_speed: float = 12.0
    """[m/s] ego (and lead) speed before the lead brakes."""
    headway: float = 1.2
    """[s] bumper-to-bumper time gap to the lead at t0 (at ego_speed)."""
    lead_speed_ratio: float = 1.0
    """Lead speed before braking, as a fraction of ego_speed."""
    brake_time: float = 1.0
    """[s] when the lead starts braking (t0 = 0)."""
    lead_decel: float = 6.0
    """[m/s^2] lead braking."""
    final_fraction: float = 0.0
    """Lead speed after braking, as a fraction of its speed before."""
    human_brake: float = 5.0
    """[m/s^2] the human's braking limit (IDM decel_max)."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"road": ("straight", "curved")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (6.0, 15.0), "headway": (0.5, 1.6), "lead_speed_ratio": (0.8, 1.1), "brake_time": (-0.5, 1.5),
        "lead_decel": (4.0, 8.0), "final_fraction": (0.0, 0.3), "human_brake": (3.5, 7.0),
        "human_style": (0.0, 1.0), "num_vehicles": (0, 6),
    }

    def lead_speed_at(self, t: np.ndarray) -> np.ndarray:
        """Lead speed [m/s] at times t [s]."""
        v0 = self.lead_speed_ratio * self.ego_speed
        braked = v0 - self.lead_decel * np.clip(np.asarray(t) - self.brake_time, 0.0, None)
        return np.maximum(braked, self.final_fraction * v0)


@drive_planner("hard_brake")
def plan(params: HardBrakeParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on a road lane, the scripted lead `headway` ahead in its lane, background traffic elsewhere."""
    gap = max(4.0, params.headway * params.ego_speed)
    reach = params.ego_speed * (timeline.end_s + 1.0) + gap + 40.0
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline),
                                          params.ego_speed * -timeline.start_s + 10.0, reach)
    lead_size = vehicle_size(rng, van=0.2)
    ego = ego_plan(gen, lanes, rear_s, params.ego_speed, params.ego_speed, timeline)
    lead_t0 = rear_s + PACIFICA.front_length + gap + lead_size[0] / 2
    times = timeline.step_times()
    script = params.lead_speed_at(times)
    v_start = float(params.lead_speed_at(np.array([timeline.start_s]))[0])
    lead = path_plan(gen, lanes, scripted_start(lead_t0, v_start, script, timeline), v_start, lead_size, 1.0,
                     ahead=path_ahead(timeline), is_reactive=False, speed_script=tuple(script.tolist()))
    plans = [ego, lead]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (pose_on(lead.path, lead.s)[:2], lead_size[0] / 2 + 1.0)]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes=set(lanes))
    idm = human_idm(params.human_style)
    idm = replace(idm, decel_max=ALERT_DECEL if alert else max(params.human_brake, idm.decel_max))
    wander = (float(rng.uniform(0.0, 0.2)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=idm, lights=LightCycle((), (), 0.0),
                 wander=wander, timeline=timeline, key_agents=(1,))


@register("hard_brake")
def build(params: HardBrakeParams, rng: np.random.Generator) -> Scene:
    """A hard-braking lead ahead of the IDM human."""
    return planned_scene(plan, params, rng, "hard_brake")
