"""Path corridors and polygon/box distance queries used by the PDM-Closed planner (`envs.sim.pdm_closed`).

A corridor is a path substring buffered by a radius with square caps (NAVSIM `PDMPath.substring(...).buffer`);
queries follow shapely semantics (`intersects`, `distance`, `within`) on padded batched rings.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from envs.sim.geometry import (
    box_corners, orientation_sign, polygon_intersects_boxes, polyline_distance, polyline_interpolate, ray_crossing,
    segments_intersect,
)


def path_corridor(xy: np.ndarray, start: float, end: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Polyline and end caps of `PDMPath.substring(start, end).buffer(radius, cap_style=square)`.

    The substring keeps the path vertices whose arc length lies in [start, end] (clipped to the path);
    with fewer than 2 of them it is shapely's exact `substring`. The buffer is the set within `radius`
    of the polyline plus a square cap at each end; a polyline of one distinct point buffers to an
    axis-aligned square. Returns polyline (S, 2) and caps (2, 4, 2).
    """
    progress = np.concatenate([[0.0], np.cumsum(np.sqrt((np.diff(xy, axis=0) ** 2).sum(-1)))])
    start, end = np.clip(start, 0.0, progress[-1]), np.clip(end, 0.0, progress[-1])
    inside = (start <= progress) & (progress <= end)
    if inside.sum() > 1:
        line = xy[inside]
    elif start == end:
        line = _shapely_interpolate(xy, np.array([start]))
    else:
        between = xy[(progress > start) & (progress < end)]
        ends = _shapely_interpolate(xy, np.array([start, end]))
        line = np.concatenate([ends[:1], between, ends[1:]])
    moving = np.flatnonzero(np.any(np.diff(line, axis=0) != 0, axis=1))
    if len(moving) == 0:  # a point: GEOS buffers it to an axis-aligned square
        square = box_corners(torch.as_tensor(line[0]), torch.tensor(0.0), 2 * radius, 2 * radius).numpy()
        return np.stack([line[0], line[0]]), np.stack([square, square])
    caps = []
    for a, b, sign in ((line[moving[0]], line[moving[0] + 1], -1.0), (line[moving[-1] + 1], line[moving[-1]], -1.0)):
        direction = math.atan2(b[1] - a[1], b[0] - a[0])        # pointing into the line
        center = a + sign * 0.5 * radius * np.array([math.cos(direction), math.sin(direction)])
        caps.append(box_corners(torch.as_tensor(center), torch.tensor(direction), radius, 2 * radius).numpy())
    return line, np.stack(caps)


def _shapely_interpolate(xy: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Points (N, 2) at arc lengths s (N,) on a polyline (shapely `interpolate`)."""
    line = torch.as_tensor(xy)[None]
    return polyline_interpolate(line, torch.ones(line.shape[:2], dtype=torch.bool), torch.as_tensor(s)[None])[0].numpy()


def close_rings(ring: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Padded rings (..., V, 2) + prefix mask (..., V) -> closed polylines (..., V+1, 2) and their mask.

    The first vertex is repeated right after the last valid one; the mask covers it too.
    """
    count = valid.sum(-1, keepdim=True)
    closed = torch.cat([ring, ring[..., :1, :]], dim=-2)
    position = torch.arange(closed.shape[-2], device=ring.device)
    closed = torch.where((position == count)[..., None], ring[..., :1, :], closed)
    return closed, position <= count


def box_ring_distance(box: Tensor, ring: Tensor, valid: Tensor) -> Tensor:
    """shapely `distance` between boxes (K, 4, 2) and polygons (K, V, 2) + vertex mask (K, V) -> (K,) [m]."""
    if box.shape[0] == 0:
        return box.new_zeros(0)
    touching = polygon_intersects_boxes(box[:, None], ring[:, None], valid[:, None])[:, 0, 0]
    ring_line, ring_line_valid = close_rings(ring, valid)
    box_line, box_line_valid = close_rings(box, torch.ones(box.shape[:2], dtype=torch.bool, device=box.device))
    corner_to_ring = polyline_distance(box, ring_line, ring_line_valid).amin(-1)
    vertex_to_box = polyline_distance(ring, box_line, box_line_valid).masked_fill(~valid, math.inf).amin(-1)
    return torch.where(touching, 0.0, torch.minimum(corner_to_ring, vertex_to_box))


def polygons_near_corridor(poly: Tensor, poly_valid: Tensor, line: Tensor, line_valid: Tensor, caps: Tensor,
                           radius: float) -> Tensor:
    """Do polygons (B, K, V, 2) + vertex mask (B, K, V) touch the corridors -> (B, L, K) bool.

    A corridor is shapely's `buffer(radius, cap_style=square)` of a line (B, L, S, 2) + mask (B, L, S):
    the points within `radius` of the line plus its end-cap squares `caps` (B, L, 2, 4, 2). Exact per
    (polygon, segment) pair whose bounding boxes come within `radius`: the segment crosses the polygon
    or starts inside it, or a vertex of one lies within `radius` of the other.
    """
    B, L = line.shape[:2]
    num_poly = poly.shape[1]
    mask = poly_valid[..., None]
    lo = torch.where(mask, poly, math.inf).amin(-2)                                      # (B, K, 2)
    hi = torch.where(mask, poly, -math.inf).amax(-2)
    seg_lo = torch.minimum(line[:, :, :-1], line[:, :, 1:]) - radius                      # (B, L, S-1, 2)
    seg_hi = torch.maximum(line[:, :, :-1], line[:, :, 1:]) + radius
    pair = ((lo[:, None, :, None] <= seg_hi[:, :, None]) & (seg_lo[:, :, None] <= hi[:, None, :, None])).all(-1)
    pair &= poly_valid.any(-1)[:, None, :, None] & line_valid[:, :, None, 1:]              # (B, L, K, S-1)
    near = torch.zeros(B * L * num_poly, dtype=torch.bool, device=line.device)
    b, l, k, s = pair.nonzero(as_tuple=True)
    if b.numel():
        p0, p1 = line[b, l, s], line[b, l, s + 1]                                          # (M, 2)
        ring, ring_valid = poly[b, k], poly_valid[b, k]                                    # (M, V, 2), (M, V)
        edges, edges_valid = close_rings(ring, ring_valid)
        start, end, edge_valid = edges[:, :-1], edges[:, 1:], edges_valid[:, 1:]
        crossing = (segments_intersect(p0[:, None], p1[:, None], start, end) & edge_valid).any(-1)
        crosses, on_edge = ray_crossing(p0[:, None], start, end)
        inside = ((crosses & edge_valid).sum(-1) % 2 == 1) | (on_edge & edge_valid).any(-1)
        segment = torch.stack([p0, p1], dim=1)
        both = torch.ones(segment.shape[:2], dtype=torch.bool, device=line.device)
        gap = torch.minimum(polyline_distance(ring, segment, both).masked_fill(~ring_valid, math.inf).amin(-1),
                            polyline_distance(segment, edges, edges_valid).amin(-1))
        near.index_put_(((b * L + l) * num_poly + k,), crossing | inside | (gap <= radius), accumulate=True)
    in_caps = polygon_intersects_boxes(caps.reshape(B, L * 2, 4, 2), poly, poly_valid).reshape(B, L, 2, -1).any(2)
    return near.reshape(B, L, num_poly) | in_caps


def box_within_rings(box: Tensor, ring: Tensor, valid: Tensor) -> Tensor:
    """shapely `within` of boxes (B, 4, 2) in polygons (B, R, V, 2) + vertex mask (B, R, V) -> (B, R) bool.

    Every corner in the closed polygon, no polygon vertex strictly inside the box and no proper edge
    crossing. Box corners must run counter-clockwise (`box_corners` order FL, RL, RR, FR).
    """
    edges, edges_valid = close_rings(ring, valid)
    start, end, edge_valid = edges[:, :, :-1], edges[:, :, 1:], edges_valid[:, :, 1:]
    crosses, on_edge = ray_crossing(box[:, None, :, None], start[:, :, None], end[:, :, None])   # (B, R, 4, V)
    edge_valid = edge_valid[:, :, None]
    corner_in = (((crosses & edge_valid).sum(-1) % 2 == 1) | (on_edge & edge_valid).any(-1)).all(-1)
    box_start, box_end = box, box.roll(-1, dims=-2)
    inside_box = torch.stack([orientation_sign(box_start[:, None, i, None], box_end[:, None, i, None], ring) > 0
                              for i in range(4)], 0).all(0) & valid                     # box corners are CCW
    o1 = orientation_sign(box_start[:, None, :, None], box_end[:, None, :, None], start[:, :, None])
    o2 = orientation_sign(box_start[:, None, :, None], box_end[:, None, :, None], end[:, :, None])
    o3 = orientation_sign(start[:, :, None], end[:, :, None], box_start[:, None, :, None])
    o4 = orientation_sign(start[:, :, None], end[:, :, None], box_end[:, None, :, None])
    proper = ((o1 * o2 < 0) & (o3 * o4 < 0) & edge_valid).flatten(2).any(-1)
    return corner_in & ~inside_box.any(-1) & ~proper & valid.any(-1)
