"""Centerline segments bucketed into square cells, per scene: which segments can come within a distance of
a point (lane keeping's 0.5 m test). Made once per scene with the map context and batched by `cat`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor


REACH = 0.5 + 1e-6
"""[m] how far a segment's cells reach around it: lane keeping's deviation limit (0.5 m) plus a slack far
above the rounding of the distances."""
CELL = 1.0
"""[m] side of a cell (a few 1 m centerline segments reach each cell)."""


@dataclass(frozen=True)
class CenterlineGrid:
    """Per scene, the (cell, segment) rows of every cell that a segment's bounding box grown by `REACH`
    overlaps, sorted by cell. A point only needs the segments listed under its own cell: any segment within
    `REACH` of it has the point inside its grown box, hence in one of the box's cells.

    Cell of a point p of scene b: floor((p - origin[b]) / CELL), key cy * size[b] + cx, on the grid when
    both coordinates are in [0, size[b]).
    """

    origin: Tensor = field(metadata={"dims": "B 2"})    # [m] low corner of the scene's grown boxes
    size: Tensor = field(metadata={"dims": "B"})        # long: cells per axis
    count: Tensor = field(metadata={"dims": "B"})       # long: rows of the scene (its rows follow the previous')
    key: Tensor = field(metadata={"dims": "R"})         # long: cell key of each row, ascending within a scene
    segment: Tensor = field(metadata={"dims": "R"})     # long: segment (start vertex) of each row in its scene

    @classmethod
    def build(cls, line: Tensor, valid: Tensor) -> CenterlineGrid:
        """Grids of polylines (B, P, 2) [m] with valid vertices (B, P) bool, a prefix; a scene with fewer than
        2 valid vertices gets an empty grid."""
        start, end = line[:, :-1], line[:, 1:]
        low, high = segment_boxes(start, end)
        segment_valid = valid[:, 1:]
        num_scenes, num_segments = segment_valid.shape
        has_segments = segment_valid.any(-1)
        origin = torch.where(segment_valid[..., None], low, math.inf).amin(dim=1)              # (B, 2)
        origin = torch.where(has_segments[:, None], origin, 0.0)
        # cells are floor((xy - origin) / CELL) for boxes and points alike: monotone, so a point inside a box
        # lands in one of the box's cells
        cell_low = torch.floor((low - origin[:, None]) / CELL).long()
        cell_high = torch.floor((high - origin[:, None]) / CELL).long()
        span = torch.where(segment_valid[..., None], cell_high - cell_low + 1, 0)               # (B, S, 2)
        size = torch.where(segment_valid, cell_high.amax(-1), -1).amax(-1) + 2                  # (B,)

        # one (cell key, segment) row per cell a box overlaps, sorted by scene then key
        per_segment = (span[..., 0] * span[..., 1]).reshape(-1)
        flat_segment = torch.repeat_interleave(torch.arange(per_segment.shape[0], device=line.device), per_segment)
        k = torch.arange(flat_segment.shape[0], device=line.device) - (torch.cumsum(per_segment, 0) - per_segment)[flat_segment]
        flat_low, flat_span = cell_low.reshape(-1, 2)[flat_segment], span.reshape(-1, 2)[flat_segment]
        scene = flat_segment // num_segments
        key = (flat_low[:, 1] + k // flat_span[:, 0]) * size[scene] + flat_low[:, 0] + k % flat_span[:, 0]
        order = (scene * int(size.amax().square()) + key).sort().indices if key.numel() else key
        scene, key, flat_segment = scene[order], key[order], flat_segment[order]
        count = torch.bincount(scene, minlength=num_scenes)
        return cls(origin, size, count, key, flat_segment - scene * num_segments)

    @classmethod
    def cat(cls, parts: list[CenterlineGrid]) -> CenterlineGrid:
        """The grids of every part's scenes in turn."""
        if len(parts) == 1:
            return parts[0]
        return cls(*(torch.cat([getattr(p, name) for p in parts]) for name in ("origin", "size", "count", "key", "segment")))

    def split(self) -> list[CenterlineGrid]:
        """One grid per scene (contiguous copies)."""
        counts = self.count.tolist()
        keys, segments = self.key.split(counts), self.segment.split(counts)
        return [CenterlineGrid(self.origin[b : b + 1].clone(), self.size[b : b + 1].clone(),
                               self.count[b : b + 1].clone(), keys[b].clone(), segments[b].clone())
                for b in range(len(counts))]

    def candidates(self, points: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every (point, segment) pair whose row lists the point's cell: points (B, N, 2) [m] -> the point's
        flat index into B N, its scene and the segment (start vertex) in that scene, (K,) long each."""
        device = points.device
        cells = self.size * self.size
        offset = torch.cumsum(cells, 0) - cells   # scene b's keys go to [offset, offset + cells): all ascending
        scene_of_row = torch.repeat_interleave(torch.arange(self.count.shape[0], device=device), self.count,
                                               output_size=self.key.shape[0])
        keys = self.key + offset[scene_of_row]
        cell = torch.floor((points - self.origin[:, None]) / CELL)
        on_grid = ((cell >= 0) & (cell < self.size[:, None, None])).all(dim=-1)
        cell = torch.where(on_grid[..., None], cell, 0).long()
        point_key = (offset[:, None] + cell[..., 1] * self.size[:, None] + cell[..., 0]).reshape(-1)
        first = torch.searchsorted(keys, point_key)
        count = torch.where(on_grid.reshape(-1), torch.searchsorted(keys, point_key, right=True) - first, 0)
        point = torch.repeat_interleave(torch.arange(point_key.shape[0], device=device), count)
        row = first[point] + torch.arange(point.shape[0], device=device) - (torch.cumsum(count, 0) - count)[point]
        return point, scene_of_row[row], self.segment[row]


def segment_boxes(start: Tensor, end: Tensor) -> tuple[Tensor, Tensor]:
    """Bounding boxes of segments (..., 2) -> (..., 2) low and high corners, grown by `REACH`."""
    return torch.minimum(start, end) - REACH, torch.maximum(start, end) + REACH
