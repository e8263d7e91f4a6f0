"""Lane look-up for the Bench2Drive lane criteria: the nearest lane centre to the ego, as CARLA's
`map.get_waypoint(location, lane_type=Driving)` answers it, over a per-route cell index built once.

Per route (numpy): lane centrelines simplified into segments with their lane's half width and junction
flag, and a grid of 2 m cells around the route whose candidate list provably holds the nearest segment
of every point in the cell. Per tick (torch, batched): one cell look-up and a nearest-segment search over
that cell's few candidates. Letters: B routes, M segments, C cells, Q stored candidates, K window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.bench2drive.criteria_rules import arange_constant, as_complex
from envs.sim.geometry import ray_crossing
from envs.sim.map import RoadMap

SIMPLIFY_TOLERANCE = 0.05
"""[m] a centreline vertex is dropped when it lies this close to the chord that replaces it."""
DEFAULT_HALF_WIDTH = 1.75
"""[m] half of CARLA's usual 3.5 m lane, for a lane whose polygon gives no width."""
CELL_SIZE = 2.0
"""[m] side of a look-up cell."""
ROUTE_MARGIN = 35.0
"""[m] cells farther than this from every dense-route point stay empty: InRouteTest ends a route once the
ego is 30 m from the route, so the ego never queries them while the route runs."""
MAX_CANDIDATES = 96
"""Candidates kept per cell (the nearest to the cell centre); real maps stay far below it."""
FAR_LANE, FAR_CANDIDATES = 8.0, 4
"""[m], count: a cell whose centre is farther than FAR_LANE from every lane centre keeps only its FAR_CANDIDATES
nearest segments: all its points are > 6.5 m from every centreline, outside any lane narrower than 12 m."""


@dataclass(frozen=True)
class LaneSegments:
    """Simplified lane centrelines of one map (numpy): lanes and lane connectors (junction) alike."""

    start: np.ndarray = field(metadata={"dims": "M 2"})
    direction: np.ndarray = field(metadata={"dims": "M 2"})
    """Unit vectors in driving direction."""
    length: np.ndarray = field(metadata={"dims": "M"})
    half_width: np.ndarray = field(metadata={"dims": "M"})
    """[m] half of the lane's mean width (polygon area / centreline length)."""
    lane: np.ndarray = field(metadata={"dims": "M"})
    """Index of the lane in `lane_ids` (int64)."""
    junction: np.ndarray = field(metadata={"dims": "M"})
    """bool: the segment belongs to a lane connector (CARLA `is_junction`)."""
    lane_ids: tuple[str, ...]


@dataclass(frozen=True)
class CellIndex:
    """Candidate segments per cell of one route's grid (numpy, CSR layout)."""

    origin: np.ndarray = field(metadata={"dims": "2"})
    """[m] lower-left corner of cell (0, 0)."""
    shape: tuple[int, int]
    """(nx, ny) cells; cell (i, j) has linear id i * ny + j."""
    offset: np.ndarray = field(metadata={"dims": "C"})
    count: np.ndarray = field(metadata={"dims": "C"})
    candidates: np.ndarray = field(metadata={"dims": "Q"})
    """Segment indices, cell after cell."""


@dataclass(frozen=True)
class LaneTable:
    """Batched lane segments and cell indices of B routes (padded), ready for `nearest_lane`."""

    seg_start: Tensor = field(metadata={"dims": "B M 2"})
    """[m] start point of each segment."""
    seg_direction: Tensor = field(metadata={"dims": "B M 2"})
    """Unit vector in driving direction."""
    seg_length: Tensor = field(metadata={"dims": "B M"})
    seg_info: Tensor = field(metadata={"dims": "B M 4"})
    """Heading [rad], half width [m], lane index, junction (0/1) of each segment."""
    origin: Tensor = field(metadata={"dims": "B 2"})
    grid: Tensor = field(metadata={"dims": "B 2"})
    """(nx, ny) cells, int64."""
    offset: Tensor = field(metadata={"dims": "B C"})
    count: Tensor = field(metadata={"dims": "B C"})
    candidates: Tensor = field(metadata={"dims": "B Q"})
    window: int
    """K: the largest candidate count of any cell in the batch."""
    carpark_start: Tensor = field(metadata={"dims": "B R E 2"})
    """Car-park outline edges (parking areas count as lanes): start and end points, `carpark_edge` valid."""
    carpark_end: Tensor = field(metadata={"dims": "B R E 2"})
    carpark_edge: Tensor = field(metadata={"dims": "B R E"})
    lane_ids: tuple[tuple[str, ...], ...]
    """Per route, the lane id of each lane index."""
    seg_start_c: Tensor = field(init=False, metadata={"dims": "B M"})
    """seg_start as complex numbers (derived)."""
    seg_direction_c: Tensor = field(init=False, metadata={"dims": "B M"})
    seg_row: Tensor = field(init=False, metadata={"dims": "B"})
    """b * M: the first row of route b in seg_info flattened to (B * M, 4) (derived)."""
    grid_last: Tensor = field(init=False, metadata={"dims": "B 2"})
    """grid - 1: the last cell on each axis (derived)."""
    cell_stride: Tensor = field(init=False, metadata={"dims": "B 2"})
    """(ny, 1): cell (i, j) -> linear id i * ny + j (derived)."""

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("seg_start_c", as_complex(self.seg_start))
        set_("seg_direction_c", as_complex(self.seg_direction))
        set_("seg_row", torch.arange(len(self.seg_info), device=self.seg_info.device) * self.seg_info.shape[1])
        set_("grid_last", self.grid - 1)
        set_("cell_stride", torch.stack([self.grid[:, 1], torch.ones_like(self.grid[:, 1])], -1))


@dataclass(frozen=True)
class LaneHit:
    """The nearest lane-centre point of each query point (CARLA's projected waypoint)."""

    distance: Tensor = field(metadata={"dims": "B"})
    """[m] to the nearest centreline; inf where the point is outside every cell with candidates."""
    point: Tensor | None = field(metadata={"dims": "B 2"})
    """[m] None when not asked for (`nearest_lane(..., with_point=False)`)."""
    heading: Tensor = field(metadata={"dims": "B"})
    """[rad] driving direction of the lane there."""
    half_width: Tensor = field(metadata={"dims": "B"})
    lane: Tensor = field(metadata={"dims": "B"})
    """Lane index (int64), -1 for none."""
    junction: Tensor = field(metadata={"dims": "B"})
    """bool"""
    in_carpark: Tensor = field(metadata={"dims": "B"})
    """bool: the point lies in a car-park area (a parking lane in CARLA terms)."""


def _simplify(points: np.ndarray, tol: float) -> np.ndarray:
    """Greedy chord simplification: keep a vertex only where a longer chord would pass > tol from a skipped one."""
    keep = [0]
    anchor = 0
    for end in range(2, len(points)):
        chord = points[end] - points[anchor]
        norm = math.hypot(chord[0], chord[1])
        inner = points[anchor + 1:end] - points[anchor]
        off = np.abs(chord[0] * inner[:, 1] - chord[1] * inner[:, 0]) / max(norm, 1e-12)
        if norm == 0.0 or off.max() > tol:
            keep.append(end - 1)
            anchor = end - 1
    keep.append(len(points) - 1)
    return points[keep]


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def lane_segments(road_map: RoadMap, tol: float = SIMPLIFY_TOLERANCE) -> LaneSegments:
    """Every lane and lane connector of a map as simplified centreline segments (connectors = junction)."""
    rows: list[np.ndarray] = []
    lane_ids: list[str] = []
    for lane in (*road_map.lanes, *road_map.lane_connectors):
        points = np.asarray(lane.centerline, dtype=np.float64)
        if len(points) >= 2:
            points = points[np.r_[True, np.any(np.diff(points, axis=0) != 0.0, axis=1)]]
        if len(points) < 2:
            continue
        length = float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())
        area = _ring_area(np.asarray(lane.polygon, dtype=np.float64)) if len(lane.polygon) >= 3 else 0.0
        half = 0.5 * area / length if area > 0.0 else DEFAULT_HALF_WIDTH
        points = _simplify(points, tol)
        delta = np.diff(points, axis=0)
        seg_len = np.linalg.norm(delta, axis=1)
        index = len(lane_ids)
        lane_ids.append(lane.id)
        rows.append(np.column_stack([
            points[:-1], delta / seg_len[:, None], seg_len, np.full(len(seg_len), half),
            np.full(len(seg_len), index), np.full(len(seg_len), float(lane.is_connector))]))
    table = np.concatenate(rows) if rows else np.zeros((0, 7))
    return LaneSegments(start=table[:, :2], direction=table[:, 2:4], length=table[:, 4], half_width=table[:, 5],
                        lane=table[:, 6].astype(np.int64), junction=table[:, 7] > 0.5, lane_ids=tuple(lane_ids))


def _segment_distances(points: np.ndarray, seg: LaneSegments) -> np.ndarray:
    """(P, M) distances from points to segments."""
    rel = points[:, None, :] - seg.start[None]
    along = np.clip((rel * seg.direction[None]).sum(-1), 0.0, seg.length[None])
    return np.linalg.norm(rel - along[..., None] * seg.direction[None], axis=-1)


def cell_index(seg: LaneSegments, route_xy: np.ndarray, cell: float = CELL_SIZE, margin: float = ROUTE_MARGIN,
               cap: int = MAX_CANDIDATES) -> CellIndex:
    """Candidate lists (nearest first) for the cells within `margin` of the route.

    Exact by the triangle inequality: with D the distance from a cell centre c to its nearest segment and
    h the cell half diagonal, the nearest segment of any point p of the cell is within D + 2h of c. Cells
    farther than FAR_LANE from every lane keep only their FAR_CANDIDATES nearest segments: any point there
    is outside the lanes whatever the pick, only the reported lane may differ from CARLA's.
    """
    low = route_xy.min(0) - margin
    nx, ny = (np.ceil((route_xy.max(0) + margin - low) / cell).astype(int) + 1).tolist()
    grid = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    centres = low + cell * (grid + 0.5)
    near_route = np.zeros(len(centres), dtype=bool)
    for first in range(0, len(route_xy), 256):
        gap = np.linalg.norm(centres[:, None] - route_xy[None, first:first + 256], axis=-1).min(1)
        near_route |= gap <= margin + cell
    used = np.flatnonzero(near_route) if len(seg.length) else np.zeros(0, dtype=np.int64)
    count = np.zeros(len(centres), dtype=np.int64)
    chunks = []
    for first in range(0, len(used), 512):
        ids = used[first:first + 512]
        dist = _segment_distances(centres[ids], seg)
        order = np.argsort(dist, axis=1, kind="stable")
        ranked = np.take_along_axis(dist, order, 1)
        nearest = ranked[:, :1]
        limit = np.where(nearest > FAR_LANE, FAR_CANDIDATES, cap)
        keep = (ranked <= nearest + 2.0 * cell * math.sqrt(0.5) + 1e-9) & (np.arange(dist.shape[1]) < limit)
        count[ids] = keep.sum(1)
        chunks.append(order[keep])          # row-major: each cell's candidates together, nearest first
    candidates = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    offset = np.zeros(len(centres), dtype=np.int64)
    offset[used] = np.cumsum(count[used]) - count[used]
    return CellIndex(origin=low, shape=(nx, ny), offset=offset, count=count, candidates=candidates)


def _pad(arrays: Sequence[np.ndarray], fill: float, dtype: torch.dtype, device) -> Tensor:
    width = max(1, max(len(a) for a in arrays))
    out = np.full((len(arrays), width, *arrays[0].shape[1:]), fill, dtype=np.float64)
    for row, a in enumerate(arrays):
        out[row, :len(a)] = a
    return torch.as_tensor(out, dtype=dtype, device=device)


def _carpark_edges(road_map: RoadMap) -> list[np.ndarray]:
    return [np.asarray(area.polygon, dtype=np.float64) for area in road_map.carparks if len(area.polygon) >= 3]


def lane_table(maps: Sequence[RoadMap], segments: Sequence[LaneSegments], indices: Sequence[CellIndex],
               device=None) -> LaneTable:
    """Pad per-route segments and cell indices into one batch (float64 / int64 tensors on `device`)."""
    info = [np.column_stack([np.arctan2(s.direction[:, 1], s.direction[:, 0]), s.half_width, s.lane, s.junction])
            .reshape(-1, 4) for s in segments]
    rings = [_carpark_edges(m) for m in maps]
    max_rings = max(1, max(len(r) for r in rings))
    max_edges = max([1] + [len(ring) for per_map in rings for ring in per_map])
    starts = np.zeros((len(maps), max_rings, max_edges, 2))
    ends = np.zeros_like(starts)
    edge_valid = np.zeros((len(maps), max_rings, max_edges), dtype=bool)
    for b, per_map in enumerate(rings):
        for r, ring in enumerate(per_map):
            starts[b, r, :len(ring)], ends[b, r, :len(ring)] = ring, np.roll(ring, -1, axis=0)
            edge_valid[b, r, :len(ring)] = True
    as_float, as_long = dict(dtype=torch.float64, device=device), dict(dtype=torch.int64, device=device)
    return LaneTable(
        seg_start=_pad([s.start for s in segments], 0.0, **as_float),
        seg_direction=_pad([s.direction for s in segments], 0.0, **as_float),
        seg_length=_pad([s.length for s in segments], 0.0, **as_float), seg_info=_pad(info, 0.0, **as_float),
        origin=torch.as_tensor(np.stack([i.origin for i in indices]), **as_float),
        grid=torch.as_tensor([i.shape for i in indices], **as_long),
        offset=_pad([i.offset for i in indices], 0, **as_long),
        count=_pad([i.count for i in indices], 0, **as_long),
        candidates=_pad([i.candidates for i in indices], 0, **as_long),
        window=max(1, max(int(i.count.max(initial=0)) for i in indices)),
        carpark_start=torch.as_tensor(starts, **as_float), carpark_end=torch.as_tensor(ends, **as_float),
        carpark_edge=torch.as_tensor(edge_valid, device=device), lane_ids=tuple(s.lane_ids for s in segments),
    )


def nearest_lane(table: LaneTable, xy: Tensor, check_carparks: bool = True, with_point: bool = True) -> LaneHit:
    """Nearest lane-centre point to each route's query point xy (B, 2) [m]; ties go to the first candidate.

    A point outside the grid uses the nearest border cell (such a point is > ROUTE_MARGIN from the route,
    where InRouteTest has already ended the route). `check_carparks` False skips the car-park test (in_carpark
    all False), `with_point` False the lane point (point None). Offsets are taken into each candidate's frame
    with complex products (along = real, across = imag).
    """
    cell = torch.minimum(torch.floor((xy - table.origin) / CELL_SIZE).long().clamp(min=0), table.grid_last)
    cell_id = (cell * table.cell_stride).sum(-1, keepdim=True)                                     # (B, 1)
    slot = arange_constant(table.window, str(xy.device))
    seg_id = table.candidates.gather(1, (table.offset.gather(1, cell_id) + slot).clamp(
        max=table.candidates.shape[1] - 1))                                                       # (B, K)
    start = table.seg_start_c.gather(1, seg_id)
    direction = table.seg_direction_c.gather(1, seg_id)
    local = (as_complex(xy)[:, None] - start) * direction.conj()
    along = local.real
    clamped = torch.minimum(along.clamp(min=0.0), table.seg_length.gather(1, seg_id))
    dist2 = ((along - clamped).square() + local.imag.square()).masked_fill(slot >= table.count.gather(1, cell_id),
                                                                           math.inf)
    best_d2, best = dist2.min(-1, keepdim=True)
    info = table.seg_info.flatten(0, 1).index_select(0, seg_id.gather(1, best).squeeze(1) + table.seg_row)  # (B, 4)
    point = None
    if with_point:
        point = torch.view_as_real((start.gather(1, best) + clamped.gather(1, best) * direction.gather(1, best))
                                   .squeeze(1))
    found = best_d2.squeeze(1) < math.inf
    if check_carparks:
        crosses, on_edge = ray_crossing(xy[:, None, None, :], table.carpark_start, table.carpark_end)
        crosses, on_edge = crosses & table.carpark_edge, on_edge & table.carpark_edge
        in_carpark = ((crosses.sum(-1) % 2 == 1) | on_edge.any(-1)).any(-1)
    else:
        in_carpark = torch.zeros_like(found)
    return LaneHit(distance=best_d2.squeeze(1).sqrt(), point=point, heading=info[:, 0],
                   half_width=info[:, 1], lane=info[:, 2].long().masked_fill(~found, -1),
                   junction=found & (info[:, 3] > 0.5), in_carpark=in_carpark)
