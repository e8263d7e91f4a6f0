"""Strip-bucketed edge index for exact strict-interior point-in-polygon tests over batches of scenes.

Replaces NAVSIM's per-polygon `shapely.vectorized.contains` (drivable-area and lane tests): a point on
an edge or a vertex is not contained. Letters: B scenes, N points, M polygon slots, S strips, K edges
per strip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.sim.geometry import ray_crossing

_CHUNK_PAIRS = {"cpu": 1 << 18, "cuda": 1 << 24}
"""Point-edge pairs evaluated at once: cache-sized on CPU, large on GPU to limit launches and syncs."""


def _strip_of(y: Tensor, origin: Tensor, height: float) -> Tensor:
    """Strip coordinate floor((y - origin) / height). Build and query share it: IEEE subtraction and
    division are monotone, so an edge whose y-extent holds a point is always in that point's strip."""
    return torch.floor((y - origin) / height)


def _rings(polygon, name: str) -> list[np.ndarray]:
    """A polygon is a ring (V, 2) or a sequence [shell, *holes] of rings; returns cleaned rings."""
    if isinstance(polygon, np.ndarray) or (len(polygon) and np.ndim(polygon[0]) == 1):
        rings = [polygon]
    else:
        rings = list(polygon)
    if not rings:
        raise ValueError(f"{name}=[]: a polygon needs at least one ring")
    cleaned = []
    for k, ring in enumerate(rings):
        ring = np.asarray(ring, dtype=np.float64)
        label = name if len(rings) == 1 else f"{name}[{k}]"
        if ring.ndim != 2 or ring.shape[1] != 2:
            raise ValueError(f"{label}.shape={ring.shape!r}: expected (V, 2)")
        if not np.isfinite(ring).all():
            raise ValueError(f"{label}={ring.tolist()!r}: must be finite")
        ring = ring[np.any(ring != np.roll(ring, 1, axis=0), axis=1)]   # repeats and closing vertex
        if len(ring) < 3:
            raise ValueError(f"{label}: needs at least 3 distinct vertices, got {len(ring)}")
        cleaned.append(ring)
    return cleaned


@dataclass(frozen=True)
class PolygonIndex:
    """Polygon edges of every scene, bucketed into horizontal strips of height `strip_height`.

    An edge is stored in every strip its closed y-extent overlaps. A point only needs the edges of its
    own strip: the half-open crossing rule and the on-edge test both involve only edges whose y-extent
    contains the point's y. Strip S-1 of every scene is empty and receives points off the index.
    `strip_bounds` feeds the cheap dense pass, `strip_edges` the exact test of the few edges whose
    bounding box holds the point. Padding entries have y bounds +inf, so they never match.
    """

    strip_bounds: Tensor = field(metadata={"dims": "B S 4 K"})  # [m] y_min, y_max, x_min, x_max
    strip_edges: Tensor = field(metadata={"dims": "B S K 4"})   # [m] x_start, y_start, x_end, y_end
    strip_polygon: Tensor = field(metadata={"dims": "B S K"})   # long polygon slot of each edge; M = padding
    strip_origin: Tensor = field(metadata={"dims": "B"})        # [m] y of the bottom of strip 0
    num_strips: Tensor = field(metadata={"dims": "B"})          # long: strips holding edges (< S)
    polygon_valid: Tensor = field(metadata={"dims": "B M"})     # bool; padding slots are False
    strip_height: float = 2.0                                   # [m]

    @classmethod
    def build(cls, polygons: Sequence[Sequence], device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float64, strip_height: float = 2.0) -> PolygonIndex:
        """Index `polygons[b][m]`, the m-th polygon of scene b (a scene may have none).

        A polygon is a ring ndarray (V, 2) [m], without or with the closing vertex, or a sequence
        [shell, *holes] of rings (holes count by parity, as in shapely). Coordinates are rounded to
        `dtype` before bucketing, and queries are cast to it, so the bucketing is exact.
        `strip_height` [m] trades memory (more strips) against K, the edges tested per point.
        """
        if not (isinstance(strip_height, (int, float)) and math.isfinite(strip_height) and strip_height > 0):
            raise ValueError(f"strip_height={strip_height!r}: must be a positive finite number")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
        num_scenes = len(polygons)
        num_slots = max((len(scene) for scene in polygons), default=0)
        scenes = []               # per scene: None or (edges (E, 4), slot (E,), edge of row, strip of row, origin)
        for b, scene in enumerate(polygons):
            edges, slots = [], []
            for m, polygon in enumerate(scene):
                for ring in _rings(polygon, f"polygons[{b}][{m}]"):
                    edges.append(np.concatenate([ring, np.roll(ring, -1, axis=0)], axis=1))
                    slots.append(np.full(len(ring), m))
            if not edges:
                scenes.append(None)
                continue
            edge_t = torch.as_tensor(np.concatenate(edges), dtype=dtype)
            y = edge_t[:, [1, 3]]
            origin = y.min()
            low = _strip_of(y.amin(-1), origin, strip_height).long().numpy()
            high = _strip_of(y.amax(-1), origin, strip_height).long().numpy()
            span = high - low + 1                                  # one row per (edge, strip it overlaps)
            edge_of_row = np.repeat(np.arange(len(span)), span)
            strip_of_row = low[edge_of_row] + np.arange(span.sum()) - (np.cumsum(span) - span)[edge_of_row]
            scenes.append((edge_t, np.concatenate(slots), edge_of_row, strip_of_row, origin))
        filled = [entry for entry in scenes if entry is not None]
        max_strips = max((int(entry[3].max()) + 1 for entry in filled), default=0) + 1
        max_edges = max([1] + [int(np.bincount(entry[3]).max()) for entry in filled])
        strip_bounds = torch.full((num_scenes, max_strips, 4, max_edges), math.inf, dtype=dtype)
        strip_edges = torch.zeros(num_scenes, max_strips, max_edges, 4, dtype=dtype)
        strip_polygon = torch.full((num_scenes, max_strips, max_edges), num_slots, dtype=torch.long)
        strip_origin = torch.zeros(num_scenes, dtype=dtype)
        num_strips = torch.zeros(num_scenes, dtype=torch.long)
        polygon_valid = torch.zeros(num_scenes, num_slots, dtype=torch.bool)
        for b, entry in enumerate(scenes):
            polygon_valid[b, :len(polygons[b])] = True
            if entry is None:
                continue
            edge_t, slots, edge_of_row, strip_of_row, origin = entry
            order = np.argsort(strip_of_row, kind="stable")
            strip_sorted = torch.as_tensor(strip_of_row[order])
            column = torch.arange(len(order)) - torch.searchsorted(strip_sorted, strip_sorted)
            rows = torch.as_tensor(edge_of_row[order])
            edge_rows = edge_t[rows]
            strip_edges[b, strip_sorted, column] = edge_rows
            bounds = torch.stack([edge_rows[:, [1, 3]].amin(-1), edge_rows[:, [1, 3]].amax(-1),
                                  edge_rows[:, [0, 2]].amin(-1), edge_rows[:, [0, 2]].amax(-1)], -1)
            strip_bounds[b, strip_sorted, :, column] = bounds
            strip_polygon[b, strip_sorted, column] = torch.as_tensor(slots)[rows]
            strip_origin[b], num_strips[b] = origin, int(strip_of_row.max()) + 1
        return cls(strip_bounds, strip_edges, strip_polygon, strip_origin, num_strips, polygon_valid,
                   float(strip_height)).to(device)

    @property
    def num_polygons(self) -> Tensor:
        """Polygons per scene (B,) long."""
        return self.polygon_valid.sum(-1)

    def to(self, device: torch.device | str | None) -> PolygonIndex:
        """The same index with every tensor on `device` (None keeps the current one)."""
        if device is None:
            return self
        names = ("strip_bounds", "strip_edges", "strip_polygon", "strip_origin", "num_strips", "polygon_valid")
        return replace(self, **{name: getattr(self, name).to(device) for name in names})

    def contains(self, points: Tensor) -> Tensor:
        """Strict-interior test of points (B, N, 2) [m] against every polygon slot -> bool (B, N, M).

        Same answer as shapely `contains_xy` / `shapely.vectorized.contains` on each polygon: crossing-number
        parity with the GEOS half-open rule, and a point on any edge or vertex of a polygon is outside it.
        Orientation tests are exact, so there is no tolerance. Padding slots are False. Points are cast to
        the index dtype. Cost O(B N K) cheap comparisons plus exact tests for the few edges whose bounding
        box holds a point.
        """
        batch, num_slots = self.polygon_valid.shape
        if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != batch:
            raise ValueError(f"points.shape={tuple(points.shape)!r}: expected (B, N, 2) with B={batch}")
        bad = ~torch.isfinite(points)
        if bool(bad.any()):
            raise ValueError(f"points={points[bad][0].item()!r} (one of {int(bad.sum())}): must be finite")
        _, max_strips, max_edges, _ = self.strip_edges.shape
        device, num_points = self.strip_edges.device, points.shape[1]
        points = points.to(device=device, dtype=self.strip_edges.dtype)
        strip = _strip_of(points[..., 1], self.strip_origin[:, None], self.strip_height)
        on_index = (strip >= 0) & (strip < self.num_strips[:, None])
        strip = torch.where(on_index, strip, max_strips - 1).long()      # off the index -> the empty strip
        flat_rows = (torch.arange(batch, device=device)[:, None] * max_strips + strip).reshape(-1)
        # visiting points strip by strip keeps the gathered strip rows hot in cache
        flat_rows, order = flat_rows.sort()
        flat_points = points.reshape(-1, 2)[order]
        bounds = self.strip_bounds.reshape(batch * max_strips, 4, max_edges)
        edges = self.strip_edges.reshape(batch * max_strips * max_edges, 4)
        slots = self.strip_polygon.reshape(batch * max_strips, max_edges)
        result = torch.empty(batch * num_points, num_slots, dtype=torch.bool, device=device)
        step = max(1, _CHUNK_PAIRS.get(device.type, 1 << 18) // max_edges)
        for first in range(0, flat_points.shape[0], step):
            rows, chunk = flat_rows[first:first + step], flat_points[first:first + step]
            px, py = chunk[:, :1], chunk[:, 1:]
            y_min, y_max, x_min, x_max = bounds.index_select(0, rows).unbind(1)              # (n, K) each
            reaches_up = y_min <= py
            not_right = x_min <= px
            # half-open rule: an edge straddles the point's y iff y_min <= y < y_max. Straddling edges wholly
            # right of the point cross its ray; edges wholly left never matter; the few whose closed bounding
            # box holds the point get the exact GEOS rule below
            fast = reaches_up & (y_max > py) & ~not_right
            maybe = reaches_up & (y_max >= py) & not_right & (px <= x_max)
            chunk_slots = slots.index_select(0, rows)
            parity = torch.zeros(rows.shape[0], num_slots + 1, dtype=torch.uint8, device=device)
            parity.scatter_add_(1, chunk_slots, fast.view(torch.uint8))          # uint8 wraps, parity survives
            on_boundary = torch.zeros(rows.shape[0], num_slots + 1, dtype=torch.bool, device=device)
            point_of, column = maybe.nonzero(as_tuple=True)
            if point_of.numel():
                edge = edges.index_select(0, rows[point_of] * max_edges + column)
                crosses, on_edge = ray_crossing(chunk[point_of], edge[:, :2], edge[:, 2:])
                slot = chunk_slots[point_of, column]
                parity.index_put_((point_of, slot), crosses.view(torch.uint8), accumulate=True)
                on_boundary[point_of[on_edge], slot[on_edge]] = True
            result[first:first + step] = ((parity[:, :num_slots] & 1) == 1) & ~on_boundary[:, :num_slots]
        return torch.empty_like(result).index_copy_(0, order, result).reshape(batch, num_points, num_slots)

    def contains_any(self, points: Tensor, mask: Tensor) -> Tensor:
        """Is each point (B, N, 2) strictly inside at least one polygon selected by mask (B, M)? -> (B, N)."""
        if tuple(mask.shape) != tuple(self.polygon_valid.shape) or mask.dtype != torch.bool:
            raise ValueError(f"mask.shape={tuple(mask.shape)!r}, dtype={mask.dtype}: expected bool "
                             f"{tuple(self.polygon_valid.shape)}")
        return (self.contains(points) & mask.to(self.polygon_valid.device)[:, None, :]).any(-1)
