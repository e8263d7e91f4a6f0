"""Ego footprint and the map areas it occupies per step (NAVSIM `PDMScorer._calculate_ego_area`).

Several metrics read these flags: NC and TTC (multiple lanes / off-road), DAC, DDC, TTC and LK
(intersections). Point-in-polygon is the strict interior, as `shapely.vectorized.contains`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from envs.metrics.context import MapContext
from envs.sim.geometry import box_corners
from envs.sim.vehicle import VehicleParams


@dataclass(frozen=True)
class EgoAreas:
    """Per-step map flags of every proposal (all bool)."""

    non_drivable: Tensor = field(metadata={"dims": "B P T"})
    """At least one corner lies in no roadblock / intersection / car-park polygon."""
    multiple_lanes: Tensor = field(metadata={"dims": "B P T"})
    """More than one lane polygon holds a corner, and no single lane polygon holds all four."""
    oncoming: Tensor = field(metadata={"dims": "B P T"})
    """The box centre lies in no on-route lane or lane connector (any off-route lane, not only opposing)."""
    center_in_intersection: Tensor = field(metadata={"dims": "B P T"})
    """The box centre lies inside an intersection polygon (DDC v2, LK)."""
    rear_axle_in_intersection: Tensor = field(metadata={"dims": "B P T"})
    """The rear axle lies inside an intersection polygon (TTC)."""


def ego_footprint(pose: Tensor, vehicle: VehicleParams) -> tuple[Tensor, Tensor]:
    """Ego box from rear-axle poses: pose (..., 3) -> corners (..., 4, 2) FL, RL, RR, FR and centre (..., 2) [m].

    The box is centred `rear_axle_to_center` ahead of the rear axle (nuPlan `CarFootprint`).
    """
    if pose.shape[-1] != 3:
        raise ValueError(f"pose.shape={tuple(pose.shape)}: last dim must be (x, y, heading)")
    heading = pose[..., 2]
    offset = vehicle.rear_axle_to_center
    center = pose[..., :2] + torch.stack([offset * torch.cos(heading), offset * torch.sin(heading)], dim=-1)
    corners = box_corners(center, heading, vehicle.length, vehicle.width)
    return corners, center


def ego_areas(pose: Tensor, vehicle: VehicleParams, map_ctx: MapContext) -> EgoAreas:
    """Map flags of every proposal step: pose (B, P, T, 3) rear axle [m, rad] -> EgoAreas of (B, P, T) bools."""
    if pose.ndim != 4 or pose.shape[-1] != 3:
        raise ValueError(f"pose.shape={tuple(pose.shape)}: expected (B, P, T, 3)")
    num_scenes, num_proposals, num_steps, _ = pose.shape
    if map_ctx.lane_on_route.shape[0] != num_scenes:
        raise ValueError(
            f"map_ctx.lane_on_route.shape={tuple(map_ctx.lane_on_route.shape)}: batch differs from pose ({num_scenes})"
        )
    corners, center = ego_footprint(pose, vehicle)
    steps_shape = (num_scenes, num_proposals, num_steps)

    # Corners may sit in different drivable polygons; each only has to be in one of them.
    corner_drivable = map_ctx.drivable.contains(corners.reshape(num_scenes, -1, 2)).any(dim=-1)
    non_drivable = ~corner_drivable.reshape(*steps_shape, 4).all(dim=-1)

    # (B, P, T, 5, M): lane m holds corner c (c < 4) or the centre (c = 4); padding slots never do.
    box_points = torch.cat([corners, center[..., None, :]], dim=-2).reshape(num_scenes, -1, 2)
    in_lane = map_ctx.lanes.contains(box_points).reshape(*steps_shape, 5, map_ctx.lane_on_route.shape[1])
    corner_in_lane = in_lane[..., :4, :]
    lanes_touched = corner_in_lane.any(dim=-2).sum(dim=-1)
    one_lane_holds_all = corner_in_lane.all(dim=-2).any(dim=-1)
    multiple_lanes = (lanes_touched > 1) & ~one_lane_holds_all

    center_on_route = in_lane[..., 4, :] & map_ctx.lane_on_route[:, None, None, :]
    oncoming = ~center_on_route.any(dim=-1)

    axle_and_center = torch.stack([pose[..., :2], center], dim=-2).reshape(num_scenes, -1, 2)
    in_intersection = map_ctx.intersections.contains(axle_and_center).any(dim=-1).reshape(*steps_shape, 2)
    return EgoAreas(
        non_drivable=non_drivable,
        multiple_lanes=multiple_lanes,
        oncoming=oncoming,
        center_in_intersection=in_intersection[..., 1],
        rear_axle_in_intersection=in_intersection[..., 0],
    )

