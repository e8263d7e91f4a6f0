"""Lane Keeping, LK in {0, 1} (NAVSIM v2 `_calculate_lane_keeping`, revised from Hydra-MDP++)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.metrics.centerline_grid import CenterlineGrid, segment_boxes
from envs.metrics.context import MapContext
from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult, binary_result
from envs.sim.geometry import polyline_distance

DEVIATION_LIMIT = 0.5
"""[m] lane_keeping_deviation_limit (NAVSIM v2 `PDMScorerConfig`)."""
CONSECUTIVE_STEPS = math.ceil(2.0 / 0.1)
"""ceil(lane_keeping_horizon_window 2.0 s / 0.1 s) = 20 consecutive deviating steps fail LK."""


def lane_keeping(center: Tensor, areas: EgoAreas, map_ctx: MapContext) -> MetricResult:
    """LK (B, P) from the ego box centres (B, P, T, 2) [m].

    A step whose centre is farther than 0.5 m from the PDM centerline adds one to a counter, a closer
    step resets it, and a step with the centre in an intersection does neither. LK = 0 once the counter
    reaches 20. Note the centerline never changes lanes, so a route-following lane change can fail LK.
    """
    if center.ndim != 4 or center.shape[-1] != 2 or center.shape[:3] != areas.oncoming.shape:
        raise ValueError(
            f"center.shape={tuple(center.shape)}: expected (B, P, T, 2) matching areas {tuple(areas.oncoming.shape)}"
        )
    bad = ~torch.isfinite(center)
    if bool(bad.any()):
        raise ValueError(f"center={center[bad][0].item()!r} (one of {int(bad.sum())}): must be finite")
    vertices = map_ctx.centerline_valid.sum(dim=-1)
    if bool((vertices < 2).any()):
        raise ValueError(f"map_ctx.centerline_valid.sum(-1)={vertices.tolist()!r}: every centerline needs 2 vertices")
    num_scenes, num_proposals, num_steps, _ = center.shape
    beyond = _beyond_limit(center.reshape(num_scenes, -1, 2), map_ctx.centerline, map_ctx.centerline_valid,
                           map_ctx.centerline_grid)

    counted = ~areas.center_in_intersection
    exceeds = counted & beyond.reshape(num_scenes, num_proposals, num_steps)
    resets = counted & ~exceeds
    # The counter is the number of exceeding steps since the last reset: the running total of
    # exceeding steps minus its value at the last reset (the total never decreases, so cummax finds it).
    total = torch.cumsum(exceeds.to(torch.int64), dim=-1)
    at_last_reset = torch.cummax(torch.where(resets, total, 0), dim=-1).values
    consecutive = total - at_last_reset
    return binary_result(exceeds & (consecutive >= CONSECUTIVE_STEPS))


def _beyond_limit(points: Tensor, line: Tensor, valid: Tensor, grid: CenterlineGrid | None = None) -> Tensor:
    """Is the distance from points (B, N, 2) to the polyline (B, S, 2) + valid (B, S) above 0.5 m? -> (B, N).

    Same answer as `polyline_distance(...) > DEVIATION_LIMIT`, without its dense (B, N, S) segment
    arithmetic: a point only gets the exact (GEOS) distance to the few segments whose box grown by 0.5 m
    holds it, found through `grid` (the polyline's `CenterlineGrid`; made here if None).
    """
    grid = grid if grid is not None else CenterlineGrid.build(line, valid)
    start, end = line[:, :-1], line[:, 1:]
    low, high = segment_boxes(start, end)
    num_scenes, num_points, _ = points.shape
    point, scene, segment = grid.candidates(points)
    candidate = scene * start.shape[1] + segment
    px, py = (points[..., i].reshape(-1).index_select(0, point) for i in range(2))
    low_x, low_y, high_x, high_y = (bound[..., i].reshape(-1).index_select(0, candidate)
                                    for bound in (low, high) for i in range(2))
    inside = (low_x <= px) & (px <= high_x) & (low_y <= py) & (py <= high_y)
    point, candidate = point[inside], candidate[inside]
    xy = torch.stack([px[inside], py[inside]], dim=-1)
    segments = torch.stack([start.reshape(-1, 2).index_select(0, candidate),
                            end.reshape(-1, 2).index_select(0, candidate)], dim=1)  # (K, 2, 2)
    distance = polyline_distance(xy[:, None], segments, torch.ones_like(segments[..., 0], dtype=torch.bool))
    within = torch.zeros(num_scenes * num_points, dtype=torch.bool, device=points.device)
    within[point[distance[:, 0] <= DEVIATION_LIMIT]] = True
    return ~within.reshape(num_scenes, num_points)
