"""Cut-in: a vehicle from the adjacent lane swerves into the ego lane close ahead, sometimes braking after.

Agent 1 is the cutter (scripted speed on a lane-change path). The human only reacts once the cutter
overlaps its lane (IDM), so short gaps and braking cutters are genuinely hard.
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
    RangedParams, add_traffic, drive_planner, ego_plan, lane_change_path, matching_arc, path_ahead, planned_scene,
    road_config, road_drive_start, scripted_start, vehicle_size,
)
from scenarios.lane_change import SIDES
from scenarios.lanes import parallel_lanes

ALERT_DECEL = 7.0
"""[m/s^2] braking limit of the alert human."""


@dataclass(frozen=True)
class CutInParams(RangedParams):
    """Knobs of one cut-in scene."""

    road: str = "straight"
    """Map kind: "straight" or "curved"."""
    side: str = "left"
    """Side the cutter comes from (the other one when there is no lane there)."""
    ego_speed: float = 12.0
    """[m/s] ego speed at t0."""
    cutter_speed_ratio: float = 1.1
    """Cutter speed while it cuts in, as a fraction of ego_speed."""
    cut_time: float = 1.5
    """[s] when the cutter's centre is half-way between the lanes (t0 = 0)."""
    cut_gap: float = 5.0
    """[m] from the ego's front bumper to the cutter's rear at cut_time (ego at constant speed)."""
    change_duration: float = 2.0
    """[s] duration of the cutter's lateral move."""
    brake_after: float = 0.0
    """[m/s^2] the cutter's braking once in the lane (0: none, drawn 30% of the time)."""
    final_ratio: float = 0.7
    """Cutter speed after braking, as a fraction of its cut-in speed."""
    human_style: float = 0.5
    """Ego driver: 0 cautious .. 1 aggressive."""
    num_vehicles: int = 3
    """Background vehicles on other lanes."""

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"road": ("straight", "curved"), "side": ("left", "right")}
    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "ego_speed": (6.0, 15.0), "cutter_speed_ratio": (0.7, 1.15), "cut_time": (0.3, 2.5), "cut_gap": (1.0, 10.0),
        "change_duration": (1.5, 3.0), "brake_after": (0.0, 5.0), "final_ratio": (0.3, 0.9),
        "human_style": (0.0, 1.0), "num_vehicles": (0, 5),
    }

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "CutInParams":
        """Uniform draws; 30% of cutters do not brake after cutting in."""
        params = super().sample(rng)
        return replace(params, brake_after=0.0) if rng.random() < 0.3 else params

    def cutter_speed_at(self, t: np.ndarray) -> np.ndarray:
        """Cutter speed [m/s] at times t [s]: constant until its lateral move ends, then braking."""
        v = self.cutter_speed_ratio * self.ego_speed
        end = self.cut_time + self.change_duration / 2
        return np.maximum(v - self.brake_after * np.clip(np.asarray(t) - end, 0.0, None), self.final_ratio * v)


@drive_planner("cut_in")
def plan(params: CutInParams, rng: np.random.Generator, timeline: Timeline, alert: bool) -> Drive:
    """Ego on a multi-lane road; the scripted cutter changes from the neighbour lane into the ego's."""
    v = params.ego_speed
    v_cut = params.cutter_speed_ratio * v

    def fits(gen, lanes):
        return parallel_lanes(gen.map, lanes, SIDES[params.side]) is not None or \
            parallel_lanes(gen.map, lanes, -SIDES[params.side]) is not None

    fastest = max(v, v_cut)
    gen, lanes, rear_s = road_drive_start(params.road, rng, road_config(timeline, lanes=(2, 4)),
                                          fastest * -timeline.start_s + 20.0, fastest * (timeline.end_s + 1.0) + 60.0,
                                          accept=fits)
    side = SIDES[params.side] if parallel_lanes(gen.map, lanes, SIDES[params.side]) else -SIDES[params.side]
    source = parallel_lanes(gen.map, lanes, side)
    size = vehicle_size(rng, van=0.15)
    ego = ego_plan(gen, lanes, rear_s, v, v, timeline)

    # where the cutter's centre is at cut_time, on the ego lanes, then on its own lanes
    centre_cut = rear_s + PACIFICA.rear_axle_to_center + v * params.cut_time
    cutter_cut = matching_arc(gen, lanes, centre_cut + PACIFICA.length / 2 + params.cut_gap + size[0] / 2, source)
    length = v_cut * params.change_duration
    path, _, _ = lane_change_path(gen, source, -side, cutter_cut - length / 2, length)
    script = params.cutter_speed_at(timeline.step_times())
    v_start = float(params.cutter_speed_at(np.array([timeline.start_s]))[0])
    cutter_t0 = cutter_cut - v_cut * params.cut_time
    cutter = path_plan(gen, source, scripted_start(cutter_t0, v_start, script, timeline), v_start, size, 1.0,
                       path=path, ahead=path_ahead(timeline), is_reactive=False, speed_script=tuple(script.tolist()))
    plans = [ego, cutter]
    ego_xy = pose_on(ego.path, ego.s)[:2]
    placed = [(ego_xy, 4.0), (pose_on(cutter.path, cutter.s)[:2], size[0] / 2 + 1.0)]
    add_traffic(gen, plans, placed, rng, params.num_vehicles, ego_xy, timeline, avoid_lanes={*lanes, *source})
    idm = human_idm(params.human_style)
    if alert:
        idm = replace(idm, decel_max=ALERT_DECEL, headway=idm.headway + 0.5)
    wander = (float(rng.uniform(0.0, 0.15)), float(rng.uniform(30.0, 80.0)), float(rng.uniform(0.0, 2 * math.pi)))
    return Drive(gen=gen, route_lane_ids=lanes, agents=tuple(plans), ego_params=idm, lights=LightCycle((), (), 0.0),
                 wander=wander, timeline=timeline, key_agents=(1,))


@register("cut_in")
def build(params: CutInParams, rng: np.random.Generator) -> Scene:
    """A vehicle cutting in close ahead of the IDM human."""
    return planned_scene(plan, params, rng, "cut_in")
