"""Traffic Light Compliance, TLC in {0, 1} (NAVSIM v2 `_calculate_traffic_light_compliance`)."""

from __future__ import annotations

import torch
from torch import Tensor

from envs.metrics.context import Observation
from envs.metrics.result import MetricResult, binary_result, first_step
from envs.sim.geometry import polygon_intersects_boxes


def traffic_light_compliance(corners: Tensor, obs: Observation) -> MetricResult:
    """TLC (B, P) from the ego boxes (B, P, T, 4, 2) [m]: 0 if the box touches a red-light polygon
    (an on-route lane connector whose light is red at that step) at any step t = 0..T-1.

    There is no exemption for a box already inside the connector at t = 0 (spec navsim.md §8).
    `agent` is the index of the first red light entered.
    """
    if corners.ndim != 5 or corners.shape[-2:] != (4, 2):
        raise ValueError(f"corners.shape={tuple(corners.shape)}: expected (B, P, T, 4, 2)")
    num_scenes, num_proposals, num_steps = corners.shape[:3]
    if obs.red_light_active.shape[0] != num_scenes or obs.red_light_active.shape[1] < num_steps:
        raise ValueError(
            f"obs.red_light_active.shape={tuple(obs.red_light_active.shape)}: needs batch {num_scenes} "
            f"and at least {num_steps} steps"
        )
    num_lights = obs.red_light_polygons.shape[1]
    if num_lights == 0:
        return binary_result(torch.zeros(num_scenes, num_proposals, num_steps, dtype=torch.bool, device=corners.device))
    red = obs.red_light_active[:, None, :num_steps, :]  # (B, 1, T, R)
    # only scenes with a red light can fail (few do): the others skip the geometry
    scenes = red.flatten(1).any(-1).nonzero()[:, 0]
    touches = torch.zeros(num_scenes, num_proposals * num_steps, num_lights, dtype=torch.bool, device=corners.device)
    if scenes.numel():
        touches[scenes] = polygon_intersects_boxes(
            corners.reshape(num_scenes, -1, 4, 2)[scenes], obs.red_light_polygons[scenes],
            obs.red_light_vertex_valid[scenes],
        )
    violation = touches.reshape(num_scenes, num_proposals, num_steps, num_lights) & red
    step = first_step(violation.any(dim=-1))
    at_step = violation.gather(2, step.clamp(min=0)[..., None, None].expand(-1, -1, 1, num_lights)).squeeze(2)
    light = torch.where(step >= 0, first_step(at_step), -1)
    return MetricResult(value=(step < 0).to(torch.float64), step=step, agent=light)
