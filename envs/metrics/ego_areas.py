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
from envs.sim.polygon_index import pack_slots
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


def ego_areas(pose: Tensor, vehicle: VehicleParams, map_ctx: MapContext,
              footprint: tuple[Tensor, Tensor] | None = None) -> EgoAreas:
    """Map flags of every proposal step: pose (B, P, T, 3) rear axle [m, rad] -> EgoAreas of (B, P, T) bools.

    `footprint`: `ego_footprint(pose, vehicle)` where the caller has it already (made here if None).
    """
    if pose.ndim != 4 or pose.shape[-1] != 3:
        raise ValueError(f"pose.shape={tuple(pose.shape)}: expected (B, P, T, 3)")
    num_scenes, num_proposals, num_steps, _ = pose.shape
    if map_ctx.lane_on_route.shape[0] != num_scenes:
        raise ValueError(
            f"map_ctx.lane_on_route.shape={tuple(map_ctx.lane_on_route.shape)}: batch differs from pose ({num_scenes})"
        )
    corners, center = footprint if footprint is not None else ego_footprint(pose, vehicle)
    if corners.shape != (*pose.shape[:-1], 4, 2) or center.shape != (*pose.shape[:-1], 2):
        raise ValueError(f"footprint shapes {tuple(corners.shape)}, {tuple(center.shape)}: expected the corners "
                         f"(..., 4, 2) and centre (..., 2) of pose {tuple(pose.shape)}")
    steps_shape = (num_scenes, num_proposals, num_steps)

    # Polygon memberships come as bit sets over the polygon slots (`pack_slots` layout), so that the
    # set logic below costs a few word operations per step whatever the number of polygons.
    # Corners may sit in different drivable polygons; each only has to be in one of them.
    drivable = _any_bit(map_ctx.drivable.contains_bits(corners.reshape(num_scenes, -1, 2)))
    drivable = drivable.reshape(*steps_shape, 4)
    non_drivable = ~(drivable[..., 0] & drivable[..., 1] & drivable[..., 2] & drivable[..., 3])

    # lanes holding corner c (c < 4) or the centre (c = 4); padding slots never do
    box_points = torch.cat([corners, center[..., None, :]], dim=-2).reshape(num_scenes, -1, 2)
    in_lane = map_ctx.lanes.contains_bits(box_points).reshape(*steps_shape, 5, -1)
    touched = in_lane[..., 0, :] | in_lane[..., 1, :] | in_lane[..., 2, :] | in_lane[..., 3, :]
    holds_all = in_lane[..., 0, :] & in_lane[..., 1, :] & in_lane[..., 2, :] & in_lane[..., 3, :]
    multiple_lanes = _two_or_more_bits(touched) & ~_any_bit(holds_all)

    on_route = pack_slots(map_ctx.lane_on_route.to(in_lane.device))
    oncoming = ~_any_bit(in_lane[..., 4, :] & on_route[:, None, None, :])

    axle_and_center = torch.stack([pose[..., :2], center], dim=-2).reshape(num_scenes, -1, 2)
    in_intersection = _any_bit(map_ctx.intersections.contains_bits(axle_and_center)).reshape(*steps_shape, 2)
    return EgoAreas(
        non_drivable=non_drivable,
        multiple_lanes=multiple_lanes,
        oncoming=oncoming,
        center_in_intersection=in_intersection[..., 1],
        rear_axle_in_intersection=in_intersection[..., 0],
    )



def _any_bit(bits: Tensor) -> Tensor:
    """Is any bit set? (..., W) int64 -> (...) bool."""
    return bits[..., 0] != 0 if bits.shape[-1] == 1 else (bits != 0).any(-1)


def _two_or_more_bits(bits: Tensor) -> Tensor:
    """Are at least two bits set? (..., W) int64 -> (...) bool.

    Byte-wise, so that the unsigned x & (x - 1) (x without its lowest bit) never overflows: two bits are
    set when one byte holds two, or two bytes hold one each.
    """
    octets = bits.contiguous().view(torch.uint8)
    crowded = ((octets & (octets - 1)) != 0).any(-1)
    return crowded | ((octets != 0).sum(-1) >= 2)
