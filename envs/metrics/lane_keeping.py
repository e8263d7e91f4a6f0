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
    num_scenes, num_proposals, num_steps, _ = center.shape
    deviation = polyline_distance(center.reshape(num_scenes, -1, 2), map_ctx.centerline, map_ctx.centerline_valid)
    deviation = deviation.reshape(num_scenes, num_proposals, num_steps)

    counted = ~areas.center_in_intersection
    exceeds = counted & (deviation > DEVIATION_LIMIT)
    resets = counted & ~exceeds
    # The counter is the number of exceeding steps since the last reset: the running total of
    # exceeding steps minus its value at the last reset (the total never decreases, so cummax finds it).
    total = torch.cumsum(exceeds.to(torch.int64), dim=-1)
    at_last_reset = torch.cummax(torch.where(resets, total, 0), dim=-1).values
    consecutive = total - at_last_reset
    return binary_result(exceeds & (consecutive >= CONSECUTIVE_STEPS))
