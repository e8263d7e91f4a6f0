"""Static tables of the Bench2Drive criteria for a batch of routes: the dense route with its window tables,
lanes (`criteria_lanes`), lights' stop lines, stop-sign trigger boxes; built once per route and cached.

Letters: B routes, N dense-route points, L lights, S stop signs. `envs.bench2drive.criteria` re-exports
`CriteriaContext` and `criteria_context`.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.bench2drive.criteria_lanes import LaneTable, cell_index, lane_segments, lane_table, nearest_lane
from envs.bench2drive.criteria_rules import as_complex, route_step_table
from envs.bench2drive.route_scenario import LightSpec, RouteScenario

MAX_TICKS = 4000
"""Bench2Drive ScenarioManager: the route stops with `Failed - TickRuntime` once the tick count exceeds it."""
STOP_BOX_SCALE = 1.2               # RunningStopTest.point_inside_boundingbox multiplier
ROUTE_TIMEOUT_SPEED = 0.1          # RouteTimeoutBehavior: a metre buys 1 / (0.1 x speed limit) seconds


@dataclass(frozen=True)
class CriteriaContext:
    """Static per-batch tables of B routes (padded), float64 unless noted; built by `criteria_context`."""

    route_xy: Tensor = field(metadata={"dims": "B N 2"})
    """[m] dense route points; padding repeats the last point (as for every N axis)."""
    route_forward: Tensor = field(metadata={"dims": "B N 2"})
    """Unit forward vector of each route point (its heading)."""
    route_arc: Tensor = field(metadata={"dims": "B N"})
    """[m] accumulated length up to each point."""
    route_steps: Tensor = field(metadata={"dims": "B N 8"})
    """[m] OutsideRouteLanesTest advance from each point per 3-bit mask of passed next points."""
    route_last: Tensor = field(metadata={"dims": "B"})
    """Index of the last route point (int64)."""
    route_length: Tensor = field(metadata={"dims": "B"})
    route_end: Tensor = field(metadata={"dims": "B 2"})
    timeout_rate: Tensor = field(metadata={"dims": "B"})
    """[s/m] route-timeout seconds per metre advanced: 1 / (0.1 speed limit)."""
    lanes: LaneTable
    start_lane: Tensor = field(metadata={"dims": "B 3"})
    """Lane under route point 0 (OutsideRouteLanesTest's first waypoint): lane index, junction (0/1), heading."""
    light_origin: Tensor = field(metadata={"dims": "B L 2"})
    """Start point of each light's stop line [m]."""
    light_frame: Tensor = field(metadata={"dims": "B L 2"})
    """Unit vector along the stop line, conjugated (x, -y): multiplying a complex offset by it gives line
    coordinates (along, across)."""
    light_length: Tensor = field(metadata={"dims": "B L"})
    light_center: Tensor = field(metadata={"dims": "B L 2"})
    """Stop-line midpoint: stands for the light's trigger-volume location (15 m rule, message location)."""
    light_forward: Tensor = field(metadata={"dims": "B L 2"})
    light_valid: Tensor = field(metadata={"dims": "B L"})
    stop_center: Tensor = field(metadata={"dims": "B S 2"})
    stop_frame: Tensor = field(metadata={"dims": "B S 2"})
    """Unit forward vector of the trigger box, conjugated (x, -y) (see light_frame)."""
    stop_half: Tensor = field(metadata={"dims": "B S 2"})
    """Half length and half width of the trigger box, already times STOP_BOX_SCALE."""
    stop_valid: Tensor = field(metadata={"dims": "B S"})
    wrong_direction_check: Tensor = field(metadata={"dims": "B"})
    """bool: False switches the wrong-lane check off while the scenario runs (TwoWays scenarios)."""
    emergency_actor: Tensor = field(metadata={"dims": "B"})
    """Actor slot of the emergency vehicle, -1 for none (int64)."""
    has_carparks: bool
    has_lights: bool
    has_stops: bool
    has_emergency: bool
    """Whether any route of the batch has car parks, lights, stop signs, an emergency vehicle (else skipped)."""
    max_ticks: int = MAX_TICKS
    # derived once per context (complex views of the point tables above, the device name of the step's constants)
    device_name: str = field(init=False)
    route_xy_c: Tensor = field(init=False, metadata={"dims": "B N"})
    route_forward_c: Tensor = field(init=False, metadata={"dims": "B N"})
    route_end_c: Tensor = field(init=False, metadata={"dims": "B"})
    light_origin_c: Tensor = field(init=False, metadata={"dims": "B L"})
    light_frame_c: Tensor = field(init=False, metadata={"dims": "B L"})
    light_center_c: Tensor = field(init=False, metadata={"dims": "B L"})
    light_forward_c: Tensor = field(init=False, metadata={"dims": "B L"})
    stop_center_c: Tensor = field(init=False, metadata={"dims": "B S"})
    stop_frame_c: Tensor = field(init=False, metadata={"dims": "B S"})

    def __post_init__(self):
        object.__setattr__(self, "device_name", str(self.route_xy.device))
        for name in ("route_xy", "route_forward", "route_end", "light_origin", "light_frame", "light_center",
                     "light_forward", "stop_center", "stop_frame"):
            object.__setattr__(self, f"{name}_c", as_complex(getattr(self, name)))


_ROUTE_CACHE: dict[int, tuple[object, tuple]] = {}
"""id(RouteScenario) -> (weak reference, per-route numpy tables): autoresets rebuild contexts cheaply."""
_ROUTE_CACHE_SIZE = 1024


def _route_tables(scenario: RouteScenario) -> tuple:
    """(route points (N, 5), step table (N, 8), lane segments, cell index) of one route, cached per object."""
    key = id(scenario)
    cached = _ROUTE_CACHE.get(key)
    if cached is not None and cached[0]() is scenario:
        return cached[1]
    route = scenario.route
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(route[:, :2], axis=0), axis=1))])
    points = np.column_stack([route[:, :2], np.cos(route[:, 2]), np.sin(route[:, 2]), arc])
    segments = lane_segments(scenario.road_map)
    tables = (points, route_step_table(route[:, :2], len(route) - 1), segments, cell_index(segments, route[:, :2]))
    if len(_ROUTE_CACHE) >= _ROUTE_CACHE_SIZE:
        _ROUTE_CACHE.clear()
    _ROUTE_CACHE[key] = (weakref.ref(scenario), tables)
    return tables


def _padded(rows: Sequence[np.ndarray], device, dtype=torch.float64, edge: bool = False) -> Tensor:
    """Stack (n_b, ...) arrays into (B, max n, ...): zero padding, or repeating the last row with `edge`."""
    width = max(1, max(len(r) for r in rows))
    out = np.zeros((len(rows), width, *rows[0].shape[1:]))
    for b, row in enumerate(rows):
        out[b, :len(row)] = row
        if edge and len(row):
            out[b, len(row):] = row[-1]
    return torch.as_tensor(out, dtype=dtype, device=device)


def _light_row(light: LightSpec) -> list[float]:
    """origin x, y; conj(unit along the stop line) x, y; length; centre x, y; unit forward x, y."""
    start, end = np.asarray(light.stop_line[0], dtype=np.float64), np.asarray(light.stop_line[1], dtype=np.float64)
    length = float(np.linalg.norm(end - start))
    along = (end - start) / max(length, 1e-12)
    return [*start, along[0], -along[1], length, *((start + end) / 2), math.cos(light.heading), math.sin(light.heading)]


def criteria_context(scenarios: Sequence[RouteScenario], device=None) -> CriteriaContext:
    """Static criteria tables of a batch of routes (per-route tables are cached on the RouteScenario object)."""
    if not scenarios:
        raise ValueError("scenarios=[]: need at least one route")
    tables = [_route_tables(s) for s in scenarios]
    lanes = lane_table([s.road_map for s in scenarios], [t[2] for t in tables], [t[3] for t in tables], device)
    points = _padded([t[0] for t in tables], device, edge=True)
    last = torch.as_tensor([len(s.route) - 1 for s in scenarios], dtype=torch.int64, device=device)
    start = nearest_lane(lanes, points[:, 0, :2].clone(), check_carparks=False)
    lights = _padded([np.array([_light_row(light) for light in s.lights]).reshape(-1, 9) for s in scenarios], device)
    stops = [np.array([[*p.center, math.cos(p.heading), -math.sin(p.heading), STOP_BOX_SCALE * p.length / 2,
                        STOP_BOX_SCALE * p.width / 2] for p in s.stop_signs]).reshape(-1, 6) for s in scenarios]
    stops = _padded(stops, device)
    as_bool = dict(dtype=torch.bool, device=device)
    end = points[torch.arange(len(scenarios), device=device), last]
    return CriteriaContext(
        route_xy=points[..., 0:2].clone(), route_forward=points[..., 2:4].clone(), route_arc=points[..., 4].clone(),
        route_steps=_padded([t[1] for t in tables], device, edge=True), route_last=last,
        route_length=end[:, 4].clone(), route_end=end[:, :2].clone(),
        timeout_rate=torch.as_tensor([1.0 / (ROUTE_TIMEOUT_SPEED * s.speed_limit) for s in scenarios],
                                     dtype=torch.float64, device=device),
        lanes=lanes, start_lane=torch.stack([start.lane.double(), start.junction.double(), start.heading], -1),
        light_origin=lights[..., 0:2].clone(), light_frame=lights[..., 2:4].clone(),
        light_length=lights[..., 4].clone(), light_center=lights[..., 5:7].clone(),
        light_forward=lights[..., 7:9].clone(),
        light_valid=_padded([np.ones(len(s.lights)) for s in scenarios], **as_bool),
        stop_center=stops[..., 0:2].clone(), stop_frame=stops[..., 2:4].clone(), stop_half=stops[..., 4:6].clone(),
        stop_valid=_padded([np.ones(len(s.stop_signs)) for s in scenarios], **as_bool),
        wrong_direction_check=torch.as_tensor([s.wrong_direction_check for s in scenarios], **as_bool),
        emergency_actor=torch.as_tensor([s.emergency_actor for s in scenarios], dtype=torch.int64, device=device),
        has_carparks=any(len(s.road_map.carparks) > 0 for s in scenarios),
        has_lights=any(len(s.lights) > 0 for s in scenarios), has_stops=any(len(s.stop_signs) > 0 for s in scenarios),
        has_emergency=any(s.emergency_actor >= 0 for s in scenarios),
    )
