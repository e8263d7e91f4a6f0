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
"""[m] slack on the segment prefilter, far above the rounding of the vertex distances."""


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
    arithmetic: a segment of length L can only come within 0.5 m of a point whose nearer endpoint is
    within 0.5 + L / 2, so only those pairs get the exact (GEOS) distance.
    """
    start, end = line[:, :-1], line[:, 1:]
    half = torch.sqrt(((end - start) ** 2).sum(dim=-1)) / 2  # (B, S-1)
    vertex_distance = torch.cdist(points, line, compute_mode="donot_use_mm_for_euclid_dist")  # (B, N, S)
    nearer_end = torch.minimum(vertex_distance[..., :-1], vertex_distance[..., 1:])
    reach = torch.where(valid[:, 1:], DEVIATION_LIMIT + half + _MARGIN, -math.inf)
    b, n, s = torch.nonzero(nearer_end <= reach[:, None, :]).unbind(dim=-1)
    segments = torch.stack([start[b, s], end[b, s]], dim=1)  # (K, 2, 2)
    distance = polyline_distance(points[b, n][:, None], segments, torch.ones_like(segments[..., 0], dtype=torch.bool))
    close = distance[:, 0] <= DEVIATION_LIMIT
    within = torch.zeros(points.shape[:2], dtype=torch.bool, device=points.device)
    within[b[close], n[close]] = True
    return ~within
