"""Lane Keeping, LK in {0, 1} (NAVSIM v2 `_calculate_lane_keeping`, revised from Hydra-MDP++)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from envs.metrics.context import MapContext
from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult, binary_result
from envs.sim.geometry import polyline_distance

DEVIATION_LIMIT = 0.5
"""[m] lane_keeping_deviation_limit (NAVSIM v2 `PDMScorerConfig`)."""
CONSECUTIVE_STEPS = math.ceil(2.0 / 0.1)
"""ceil(lane_keeping_horizon_window 2.0 s / 0.1 s) = 20 consecutive deviating steps fail LK."""
_MARGIN = 1e-6
"""[m] slack on the segment prefilter, far above the rounding of the distances."""
_CELL = 1.0
"""[m] side of the grid cells that bucket centerline segments (a few 1 m segments reach each cell)."""


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
    beyond = _beyond_limit(center.reshape(num_scenes, -1, 2), map_ctx.centerline, map_ctx.centerline_valid)

    counted = ~areas.center_in_intersection
    exceeds = counted & beyond.reshape(num_scenes, num_proposals, num_steps)
    resets = counted & ~exceeds
    # The counter is the number of exceeding steps since the last reset: the running total of
    # exceeding steps minus its value at the last reset (the total never decreases, so cummax finds it).
    total = torch.cumsum(exceeds.to(torch.int64), dim=-1)
    at_last_reset = torch.cummax(torch.where(resets, total, 0), dim=-1).values
    consecutive = total - at_last_reset
    return binary_result(exceeds & (consecutive >= CONSECUTIVE_STEPS))


def _beyond_limit(points: Tensor, line: Tensor, valid: Tensor) -> Tensor:
    """Is the distance from points (B, N, 2) to the polyline (B, S, 2) + valid (B, S) above 0.5 m? -> (B, N).

    Same answer as `polyline_distance(...) > DEVIATION_LIMIT`, without its dense (B, N, S) segment
    arithmetic: a segment can only come within 0.5 m of a point inside its bounding box grown by 0.5 m,
    so segments are bucketed into the square cells of a grid that such boxes overlap, and a point only
    gets the exact (GEOS) distance to the few segments of its cell.
    """
    start, end = line[:, :-1], line[:, 1:]
    reach = DEVIATION_LIMIT + _MARGIN
    low = torch.minimum(start, end) - reach                        # (B, S-1, 2) grown boxes
    high = torch.maximum(start, end) + reach
    segment_valid = valid[:, 1:]
    origin = torch.where(segment_valid[..., None], low, math.inf).amin(dim=1, keepdim=True)   # (B, 1, 2)
    # cells are floor((xy - origin) / CELL) for boxes and points alike: monotone, so a point inside a box
    # lands in one of the box's cells
    cell_low = torch.floor((low - origin) / _CELL).long()
    cell_high = torch.floor((high - origin) / _CELL).long()
    span = torch.where(segment_valid[..., None], cell_high - cell_low + 1, 0)   # (B, S-1, 2)
    grid = int(cell_high[segment_valid].amax()) + 2 if bool(segment_valid.any()) else 1   # cells per axis

    # one (cell key, segment) row per cell a box overlaps, sorted by key
    per_segment = (span[..., 0] * span[..., 1]).reshape(-1)
    segment = torch.repeat_interleave(torch.arange(per_segment.shape[0], device=line.device), per_segment)
    k = torch.arange(segment.shape[0], device=line.device) - (torch.cumsum(per_segment, 0) - per_segment)[segment]
    flat_low, flat_span = cell_low.reshape(-1, 2)[segment], span.reshape(-1, 2)[segment]
    cell_x = flat_low[:, 0] + k % flat_span[:, 0]
    cell_y = flat_low[:, 1] + k // flat_span[:, 0]
    num_segments = start.shape[1]
    keys, order = (((segment // num_segments) * grid + cell_y) * grid + cell_x).sort()
    segment = segment[order]

    # each point against the segments listed under its cell
    num_scenes, num_points, _ = points.shape
    cell = torch.floor((points - origin) / _CELL)
    on_grid = ((cell >= 0) & (cell < grid)).all(dim=-1)
    cell = torch.where(on_grid[..., None], cell, 0).long()
    scene = torch.arange(num_scenes, device=line.device)[:, None]
    point_key = ((scene * grid + cell[..., 1]) * grid + cell[..., 0]).reshape(-1)
    first = torch.searchsorted(keys, point_key)
    count = torch.where(on_grid.reshape(-1), torch.searchsorted(keys, point_key, right=True) - first, 0)
    point = torch.repeat_interleave(torch.arange(point_key.shape[0], device=line.device), count)
    row = first[point] + torch.arange(point.shape[0], device=line.device) - (torch.cumsum(count, 0) - count)[point]
    candidate = segment[row]
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
