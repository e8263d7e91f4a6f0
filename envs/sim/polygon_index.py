"""Strip-bucketed edge index for exact strict-interior point-in-polygon tests over batches of scenes.

Replaces NAVSIM's per-polygon `shapely.vectorized.contains` (drivable-area and lane tests): a point on
an edge or a vertex is not contained. Letters: B scenes, N points, M polygon slots, S strips, R stored
(edge, strip) rows, E edges, W 64-bit words of a polygon bit set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from envs.sim.geometry import ray_crossing
from envs.sim.ragged import cat_padded

_CHUNK_PAIRS = {"cpu": 1 << 17, "cuda": 1 << 24}
"""Point-edge pairs evaluated at once: cache-sized on CPU, large on GPU to limit launches and syncs."""
_FALLBACK_PAIRS = 1 << 20
"""Point-edge pairs of the brute-force map-frame test evaluated at once."""
_ROUNDING_BOUND = 16.0
"""Tolerance of a rotated index in units of eps * (L1 radius of the scene + 1 m). Rotating one coordinate
pair costs at most ~1.5 eps * (|u| + |w|) per coordinate, so a point and an edge move by < 4.5 eps * radius
together; 16 leaves room for the float distance test that flags points this close to an edge."""


def _strip_of(y: Tensor, origin: Tensor, height: float) -> Tensor:
    """Strip coordinate floor((y - origin) / height). Build and query share it: IEEE subtraction and
    division are monotone, so an edge whose y-extent holds a point is always in that point's strip."""
    return torch.floor((y - origin) / height)


def _to_frame(x: Tensor, y: Tensor, center_x: Tensor, center_y: Tensor, cos: Tensor,
              sin: Tensor) -> tuple[Tensor, Tensor]:
    """Map coordinates -> index frame (rotated by -angle about the centre); (1, 0) and centre 0 is the identity."""
    u, w = x - center_x, y - center_y
    return cos * u + sin * w, cos * w - sin * u


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


def _slot_words(num_slots: int) -> int:
    """W, the 64-bit words of a bit set over num_slots polygon slots (at least 1)."""
    return max(1, math.ceil(num_slots / 64))


def pack_slots(flags: Tensor) -> Tensor:
    """Bit set of polygon slots: flags (..., M) bool -> (..., W) int64, W = ceil(M / 64) (at least 1).

    Layout shared by `PolygonIndex.contains_bits`: slot m is bit m // (8 W) of byte m % (8 W) of the row.
    """
    num_words = _slot_words(flags.shape[-1])
    padded = torch.zeros(*flags.shape[:-1], 64 * num_words, dtype=torch.uint8, device=flags.device)
    padded[..., : flags.shape[-1]] = flags
    return _pack_bytes(padded.view(-1, 64 * num_words)).view(*flags.shape[:-1], num_words)


def unpack_slots(bits: Tensor, num_slots: int) -> Tensor:
    """Inverse of `pack_slots`: (..., W) int64 -> (..., num_slots) bool."""
    octets = bits.contiguous().view(torch.uint8)                                    # (..., 8 W)
    planes = torch.stack([(octets >> k) & 1 for k in range(8)], dim=-2)            # (..., 8, 8 W)
    return planes.reshape(*bits.shape[:-1], -1)[..., :num_slots].bool()


def _pack_bytes(flags: Tensor) -> Tensor:
    """Flags (n, 64 W) uint8 in {0, 1} -> bit sets (n, W) int64 in the `pack_slots` layout."""
    num_words = flags.shape[1] // 64
    # 8 flags of one slot byte-group sit in one int64 lane each; shifting lane k by k stacks them into bytes
    words = flags.contiguous().view(-1, 8, 8 * num_words).view(torch.int64)       # (n, 8, W)
    packed = words[:, 0].clone()
    for k in range(1, 8):
        packed |= words[:, k] << k
    return packed


@dataclass(frozen=True)
class PolygonIndex:
    """Polygon edges of every scene, bucketed into horizontal strips of height `strip_height`.

    Each scene may be indexed in its own rotated frame (`build(align=...)`); strips are horizontal in
    that frame. An edge is stored once per strip its closed y-extent overlaps (rows sorted by strip; a
    scene's rows and its edges are contiguous). A point only needs the rows of its own strip: the
    half-open crossing rule and the on-edge test involve only edges whose y-extent contains the point's
    y. A strip of c rows owns the next power of two of places; the spare places (and the last one) are
    sentinels with +inf bounds that never match. Rows and edges may hold other scenes' too (an index
    taken from an `IndexStore`): only the per-scene fields say which are whose.
    """

    row_bounds: Tensor = field(metadata={"dims": "R 4"})       # [m] y_min, y_max, x_min, x_max (index frame)
    row_edge: Tensor = field(metadata={"dims": "R"})           # long edge of each row; E for sentinels
    row_polygon: Tensor = field(metadata={"dims": "R"})        # long slot of each row; 64 W for sentinels
    edges: Tensor = field(metadata={"dims": "E+1 4"})          # [m] x_start, y_start, x_end, y_end (index frame)
    map_edges: Tensor = field(metadata={"dims": "E+1 4"})      # [m] the same edges in map coordinates
    edge_polygon: Tensor = field(metadata={"dims": "E+1"})     # long slot of each edge
    edge_first: Tensor = field(metadata={"dims": "B"})         # long: first edge of scene b
    edge_count: Tensor = field(metadata={"dims": "B"})         # long: its edges (contiguous)
    strip_first: Tensor = field(metadata={"dims": "B S"})      # long: first row of strip s
    strip_count: Tensor = field(metadata={"dims": "B S"})      # long: its rows (its places are the next power of 2)
    strip_origin: Tensor = field(metadata={"dims": "B"})       # [m] index-frame y of the bottom of strip 0
    num_strips: Tensor = field(metadata={"dims": "B"})         # long: strips holding edges
    frame: Tensor = field(metadata={"dims": "B 4"})            # centre x [m], centre y [m], cos, sin of the rotation
    tolerance: Tensor = field(metadata={"dims": "B"})          # [m] rounding margin of the frame; 0 unrotated
    polygon_valid: Tensor = field(metadata={"dims": "B M"})    # bool; padding slots are False
    strip_height: float = 0.25                                 # [m]
    store: IndexStore | None = field(default=None, compare=False, repr=False)
    """The store whose rows and edges this index reads (`IndexStore.add`); None: it owns them."""

    @classmethod
    def build(cls, polygons: Sequence[Sequence], device: torch.device | str | None = None,
              dtype: torch.dtype = torch.float64, strip_height: float = 0.25,
              align: Sequence[float] | Tensor | None = None) -> PolygonIndex:
        """Index `polygons[b][m]`, the m-th polygon of scene b (a scene may have none).

        A polygon is a ring ndarray (V, 2) [m], without or with the closing vertex, or a sequence
        [shell, *holes] of rings (holes count by parity, as in shapely). Coordinates are rounded to
        `dtype` before bucketing, and queries are cast to it, so the bucketing is exact.
        `strip_height` [m] trades memory (more strips) against edges tested per point.
        `align` (B,) [rad]: scene b is indexed in a frame rotated by align[b] about its centre, so that map
        direction align[b] becomes +x. Strips are cheapest across long straight edges: pass the main road
        heading minus pi/2. 0 (the default) indexes in map coordinates. Answers never depend on it: a
        point within rounding distance of an edge in the rotated frame is re-tested in map coordinates.
        """
        if not (isinstance(strip_height, (int, float)) and math.isfinite(strip_height) and strip_height > 0):
            raise ValueError(f"strip_height={strip_height!r}: must be a positive finite number")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype!r}: must be torch.float32 or torch.float64")
        num_scenes = len(polygons)
        angles = [0.0] * num_scenes if align is None else [float(a) for a in torch.as_tensor(align).reshape(-1)]
        if len(angles) != num_scenes or not all(math.isfinite(a) for a in angles):
            raise ValueError(f"align={angles!r}: expected {num_scenes} finite angles")
        num_slots = max((len(scene) for scene in polygons), default=0)
        sentinel_slot = 64 * _slot_words(num_slots)
        eps = torch.finfo(dtype).eps
        frame = torch.zeros(num_scenes, 4, dtype=dtype)
        frame[:, 2] = 1.0
        tolerance = torch.zeros(num_scenes, dtype=dtype)
        scenes = []   # per scene: map edges (E, 4), index-frame edges, slot (E,), edge of row, strip of row
        strip_origin = torch.zeros(num_scenes, dtype=dtype)
        num_strips = torch.zeros(num_scenes, dtype=torch.long)
        for b, scene in enumerate(polygons):
            edges, slots = [], []
            for m, polygon in enumerate(scene):
                for ring in _rings(polygon, f"polygons[{b}][{m}]"):
                    edges.append(np.concatenate([ring, np.roll(ring, -1, axis=0)], axis=1))
                    slots.append(np.full(len(ring), m))
            if not edges:
                scenes.append(None)
                continue
            map_edges = torch.as_tensor(np.concatenate(edges), dtype=dtype)
            frame_edges = map_edges
            if angles[b] != 0.0:
                xy = map_edges.reshape(-1, 2)
                center = (xy.amin(0) + xy.amax(0)) / 2
                frame[b] = torch.tensor([center[0], center[1], math.cos(angles[b]), math.sin(angles[b])], dtype=dtype)
                radius = float((xy - center).abs().sum(-1).amax())
                tolerance[b] = _ROUNDING_BOUND * eps * (radius + 1.0)
                x, y = _to_frame(xy[:, 0], xy[:, 1], *frame[b])
                frame_edges = torch.stack([x, y], -1).reshape(-1, 4)
            y = frame_edges[:, [1, 3]]
            # an edge also goes to the strips within `tolerance` of it, where points may be flagged as near it
            low_y, high_y = y.amin(-1) - tolerance[b], y.amax(-1) + tolerance[b]
            origin = low_y.min()
            low = _strip_of(low_y, origin, strip_height).long().numpy()
            high = _strip_of(high_y, origin, strip_height).long().numpy()
            span = high - low + 1                                  # one row per (edge, strip it overlaps)
            edge_of_row = np.repeat(np.arange(len(span)), span)
            strip_of_row = low[edge_of_row] + np.arange(span.sum()) - (np.cumsum(span) - span)[edge_of_row]
            order = np.argsort(strip_of_row, kind="stable")
            scenes.append((map_edges, frame_edges, np.concatenate(slots), edge_of_row[order], strip_of_row[order]))
            strip_origin[b], num_strips[b] = origin, int(strip_of_row.max()) + 1
        max_strips = max(1, int(num_strips.max()) if num_scenes else 0)   # >= 1: off-index points read strip 0
        strip_first = torch.zeros(num_scenes, max_strips, dtype=torch.long)
        strip_count = torch.zeros(num_scenes, max_strips, dtype=torch.long)
        polygon_valid = torch.zeros(num_scenes, num_slots, dtype=torch.bool)
        all_map, all_frame, all_slots, all_row_edge, all_position, scene_edges = [], [], [], [], [], [0]
        rows_so_far = 0
        for b, entry in enumerate(scenes):
            polygon_valid[b, :len(polygons[b])] = True
            if entry is None:
                scene_edges.append(scene_edges[-1])
                continue
            map_edges, frame_edges, slots, edge_of_row, strip_of_row = entry
            # a strip of c rows gets 2^ceil(log2 c) places, the rest sentinels: a query reads as many places
            # as the largest count of its chunk, whose counts never straddle a power of two
            per_strip = np.bincount(strip_of_row, minlength=max_strips)
            capacity = np.where(per_strip > 0, 2 ** np.ceil(np.log2(np.maximum(per_strip, 1))).astype(np.int64), 0)
            first = rows_so_far + np.cumsum(capacity) - capacity
            rank = np.arange(len(strip_of_row)) - (np.cumsum(per_strip) - per_strip)[strip_of_row]
            strip_first[b], strip_count[b] = torch.as_tensor(first), torch.as_tensor(per_strip)
            all_map.append(map_edges)
            all_frame.append(frame_edges)
            all_slots.append(torch.as_tensor(slots))
            all_row_edge.append(torch.as_tensor(edge_of_row) + scene_edges[-1])
            all_position.append(torch.as_tensor(first[strip_of_row] + rank))
            scene_edges.append(scene_edges[-1] + len(slots))
            rows_so_far += int(capacity.sum())
        num_edges = scene_edges[-1]
        pad = torch.zeros(1, 4, dtype=dtype)
        map_edges = torch.cat(all_map + [pad])
        frame_edges = torch.cat(all_frame + [pad])
        edge_polygon = torch.cat(all_slots + [torch.tensor([sentinel_slot])])
        row_edge = torch.full((rows_so_far + 1,), num_edges, dtype=torch.long)   # last place: a spare sentinel
        if all_position:
            row_edge[torch.cat(all_position)] = torch.cat(all_row_edge)
        rows = frame_edges[row_edge]
        # one row's four bounds side by side: a query gathers them with one memory access
        row_bounds = torch.stack([rows[:, [1, 3]].amin(-1), rows[:, [1, 3]].amax(-1),
                                  rows[:, [0, 2]].amin(-1), rows[:, [0, 2]].amax(-1)], dim=-1)
        row_bounds[row_edge == num_edges] = math.inf
        row_polygon = edge_polygon[row_edge]
        scene_edges = torch.tensor(scene_edges)
        return cls(row_bounds, row_edge, row_polygon, frame_edges, map_edges, edge_polygon,
                   scene_edges[:-1], scene_edges.diff(), strip_first, strip_count, strip_origin, num_strips, frame,
                   tolerance, polygon_valid, float(strip_height)).to(device)

    @classmethod
    def cat(cls, indexes: Sequence[PolygonIndex]) -> PolygonIndex:
        """The index of the scenes of every index in turn (same answers as one `build` over all their
        polygons). Indexes taken from one `IndexStore` share its rows: only per-scene fields are copied;
        others are first copied into a new store of their own. All must share `strip_height`, dtype and device."""
        indexes = list(indexes)
        if not indexes:
            raise ValueError("indexes=[]: nothing to concatenate")
        for name, values in (("strip_height", {i.strip_height for i in indexes}),
                             ("dtype", {i.row_bounds.dtype for i in indexes}),
                             ("device", {i.row_bounds.device for i in indexes})):
            if len(values) > 1:
                raise ValueError(f"{name}={sorted(map(str, values))!r}: indexes to concatenate must share it")
        if len(indexes) == 1:
            return indexes[0]
        store = indexes[0].store
        if store is None or any(i.store is not store for i in indexes):
            first = indexes[0]
            store = IndexStore(first.row_bounds.dtype, first.row_bounds.device, first.strip_height)
            indexes = [store.add(i) for i in indexes]
        # every index of a store reads a prefix of the store's arrays at some time: the longest holds all rows
        rows = max(indexes, key=lambda i: i.row_edge.shape[0])
        edges = max(indexes, key=lambda i: i.edges.shape[0])
        return cls(rows.row_bounds, rows.row_edge, rows.row_polygon, edges.edges, edges.map_edges, edges.edge_polygon,
                   torch.cat([i.edge_first for i in indexes]), torch.cat([i.edge_count for i in indexes]),
                   cat_padded([i.strip_first for i in indexes]),
                   cat_padded([i.strip_count for i in indexes]),
                   torch.cat([i.strip_origin for i in indexes]), torch.cat([i.num_strips for i in indexes]),
                   torch.cat([i.frame for i in indexes]), torch.cat([i.tolerance for i in indexes]),
                   cat_padded([i.polygon_valid for i in indexes]),
                   indexes[0].strip_height, store)

    def split(self) -> list[PolygonIndex]:
        """One index per scene, each as `build` would make it for that scene alone (strips and slots trimmed
        to its own), sharing this index's rows and edges (and store): only per-scene fields are copied."""
        num_polygons, num_strips = self.polygon_valid.sum(1).tolist(), self.num_strips.tolist()
        parts = []
        for b in range(len(num_polygons)):
            one, strips = slice(b, b + 1), slice(0, max(1, num_strips[b]))
            parts.append(replace(self, **{name: value.contiguous() for name, value in (
                ("edge_first", self.edge_first[one]), ("edge_count", self.edge_count[one]),
                ("strip_first", self.strip_first[one, strips]), ("strip_count", self.strip_count[one, strips]),
                ("strip_origin", self.strip_origin[one]), ("num_strips", self.num_strips[one]),
                ("frame", self.frame[one]), ("tolerance", self.tolerance[one]),
                ("polygon_valid", self.polygon_valid[one, : num_polygons[b]]))}))
        return parts

    def row_ranges(self) -> tuple[Tensor, Tensor]:
        """First row place and number of places (sentinels included) of every scene, (B,) long each."""
        count = self.strip_count
        capacity = torch.where(count > 0, 2 ** torch.ceil(torch.log2(count.clamp(min=1).double())).long(), 0)
        holds = count > 0
        first = torch.where(holds, self.strip_first, torch.iinfo(torch.long).max).amin(1)
        end = torch.where(holds, self.strip_first + capacity, 0).amax(1)
        has_rows = holds.any(1)
        return torch.where(has_rows, first, 0), torch.where(has_rows, end - first, 0)

    @property
    def num_polygons(self) -> Tensor:
        """Polygons per scene (B,) long."""
        return self.polygon_valid.sum(-1)

    @property
    def num_words(self) -> int:
        """W, the int64 words of a bit set over the polygon slots."""
        return _slot_words(self.polygon_valid.shape[1])

    def to(self, device: torch.device | str | None) -> PolygonIndex:
        """The same index with every tensor on `device` (None keeps the current one)."""
        if device is None or torch.device(device) == self.row_bounds.device:
            return self
        return replace(self, store=None, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                            if isinstance(getattr(self, f.name), Tensor)})

    def contains(self, points: Tensor) -> Tensor:
        """Strict-interior test of points (B, N, 2) [m] against every polygon slot -> bool (B, N, M).

        Same answer as shapely `contains_xy` / `shapely.vectorized.contains` on each polygon: crossing-number
        parity with the GEOS half-open rule, and a point on any edge or vertex of a polygon is outside it.
        Orientation tests are exact, so there is no tolerance (in a rotated frame, points within rounding
        distance of an edge are decided in map coordinates). Padding slots are False. Points are cast to
        the index dtype.
        """
        return unpack_slots(self.contains_bits(points), self.polygon_valid.shape[1])

    def contains_any(self, points: Tensor, mask: Tensor) -> Tensor:
        """Is each point (B, N, 2) strictly inside at least one polygon selected by mask (B, M)? -> (B, N)."""
        if tuple(mask.shape) != tuple(self.polygon_valid.shape) or mask.dtype != torch.bool:
            raise ValueError(f"mask.shape={tuple(mask.shape)!r}, dtype={mask.dtype}: expected bool "
                             f"{tuple(self.polygon_valid.shape)}")
        selected = pack_slots(mask.to(self.polygon_valid.device))
        return ((self.contains_bits(points) & selected[:, None, :]) != 0).any(-1)

    def contains_bits(self, points: Tensor) -> Tensor:
        """`contains` as bit sets: points (B, N, 2) [m] -> (B, N, W) int64 in the `pack_slots` layout.

        Cost: one cheap bounds comparison per point and edge row of its strip, plus exact orientation
        tests for the few edges whose bounding box holds the point.
        """
        batch, num_slots = self.polygon_valid.shape
        if points.dim() != 3 or points.shape[-1] != 2 or points.shape[0] != batch:
            raise ValueError(f"points.shape={tuple(points.shape)!r}: expected (B, N, 2) with B={batch}")
        bad = ~torch.isfinite(points)
        if bool(bad.any()):
            raise ValueError(f"points={points[bad][0].item()!r} (one of {int(bad.sum())}): must be finite")
        device, dtype, num_points = self.row_bounds.device, self.row_bounds.dtype, points.shape[1]
        num_words = self.num_words
        if num_slots == 0:                          # no scene has a polygon (e.g. no intersection nearby)
            return torch.zeros(batch, num_points, num_words, dtype=torch.int64, device=device)
        points = points.to(device=device, dtype=dtype)
        rotated = bool((self.tolerance > 0).any())
        if rotated:
            frame = self.frame[:, None, :]
            x, y = _to_frame(points[..., 0], points[..., 1], *frame.unbind(-1))
            local = torch.stack([x, y], -1)
        else:
            local = points
        strip = _strip_of(local[..., 1], self.strip_origin[:, None], self.strip_height)
        on_index = (strip >= 0) & (strip < self.num_strips[:, None])
        strip = torch.where(on_index, strip, 0).long()
        first = self.strip_first.gather(1, strip).reshape(-1)
        count = torch.where(on_index, self.strip_count.gather(1, strip), 0).reshape(-1)
        # visiting points by row count pads each chunk little; the stable sort keeps neighbours together
        small = torch.int16 if count.numel() == 0 or int(count.max()) < 2 ** 15 else torch.int32
        count, order = count.to(small).sort(stable=True)
        count, first = count.long(), first[order].to(torch.int32 if self.row_bounds.shape[0] < 2 ** 31 else torch.int64)
        local = local.reshape(-1, 2)[order]
        tolerance = self.tolerance[:, None].expand(batch, num_points).reshape(-1)[order] if rotated else None
        bits = torch.zeros(batch * num_points, num_words, dtype=torch.int64, device=device)
        ends = torch.cumsum(count, 0)
        start = int((count == 0).sum())                       # points off the index come first
        total = int(ends[-1]) if ends.numel() else 0
        step = _CHUNK_PAIRS.get(device.type, 1 << 16)
        stops = torch.searchsorted(ends, torch.arange(step, max(total, step), step, device=device), right=True)
        # ... and where the row count passes a power of two, so that a chunk never reads past a strip's places
        powers = 2 ** torch.arange(int(count[-1]).bit_length() if total else 0, device=device)
        doubling = torch.searchsorted(count, powers, right=True)
        stops = sorted(set(stops.tolist()) | set(doubling.tolist()) | {batch * num_points}) if total else []
        widths = count[torch.tensor(stops, dtype=torch.long, device=device) - 1].tolist() if stops else []
        near = []
        for start, stop, width, merged in _merge_chunks(start, stops, widths, step):
            chunk = slice(start, stop)
            bits[chunk], flagged = self._chunk_bits(local[chunk], first[chunk], width,
                                                    None if tolerance is None else tolerance[chunk],
                                                    count[chunk] if merged else None)
            if flagged is not None:
                near.append(flagged + start)
        if near:
            flagged = torch.cat(near)
            if flagged.numel():                     # points a rotation could have moved across an edge
                original = order[flagged]
                bits[flagged] = self._map_frame_bits(points.reshape(-1, 2)[original], original // num_points)
        return torch.empty_like(bits).index_copy_(0, order, bits).reshape(batch, num_points, num_words)

    def _chunk_bits(self, points: Tensor, first: Tensor, width: int, tolerance: Tensor | None,
                    count: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Bit sets of n index-frame points (n, 2) whose strips hold their rows (at most `width`, the rest
        sentinels) from `first` (n,); with a rotated index also the positions of points within
        `tolerance` (n,) of an edge. With `count` (n,), a point's strip may hold fewer than `width` places:
        only its first count rows are read (places past them may be another strip's)."""
        device, num = points.device, points.shape[0]
        rows = first[:, None] + torch.arange(width, device=device, dtype=first.dtype)                   # (n, K)
        if count is not None:
            own = rows < (first + count)[:, None]
            rows = torch.where(own, rows, first[:, None])
        rows = rows.view(-1)
        y_min, y_max, x_min, x_max = self.row_bounds.index_select(0, rows).view(num, width, 4).unbind(-1)
        px, py = points[:, :1], points[:, 1:]
        reaches_up = y_min <= py
        right = px < x_min
        # half-open rule: an edge straddles the point's y iff y_min <= y < y_max. Straddling edges wholly
        # right of the point cross its ray; edges wholly left never matter; the few whose closed bounding
        # box holds the point get the exact GEOS rule below
        fast = reaches_up & (py < y_max) & right
        if count is not None:      # places past a point's own rows may be another strip's: they match nothing
            fast &= own
        # x-ranges holding the point (grown by the tolerance, to find the points near an edge); their
        # y-ranges are checked on these few pairs only
        if tolerance is None:
            maybe = ~right & (px <= x_max)
        else:
            t = tolerance[:, None]
            maybe = (x_min <= px + t) & (px - t <= x_max)
        if count is not None:
            maybe &= own
        # sentinel rows name a slot past every polygon (in a store, past the largest scene's): the spare column
        slots = self.row_polygon.index_select(0, rows).view(num, width).clamp_(max=64 * self.num_words)
        parity = torch.zeros(num, 64 * self.num_words + 1, dtype=torch.uint8, device=device)
        parity.scatter_add_(1, slots, fast.view(torch.uint8))          # uint8 wraps, parity survives
        flagged = None
        pair = maybe.view(-1).nonzero()[:, 0]
        point_of = pair // width
        low, high, level = y_min.view(-1)[pair], y_max.view(-1)[pair], py.view(-1)[point_of]
        if tolerance is None:      # the closed bounding box holds the point: the exact GEOS rule decides
            box = (low <= level) & (level <= high)
        else:                      # `fast` pairs among these only matter for the near test below
            margin = tolerance[point_of]
            box = (low <= level + margin) & (level - margin <= high)
        pair, point_of = pair[box], point_of[box]
        if pair.numel():
            row, slot = rows[pair], slots.view(-1)[pair]
            edge = self.edges.index_select(0, self.row_edge.index_select(0, row))
            chunk_point = points.index_select(0, point_of)
            crosses, on_edge = ray_crossing(chunk_point, edge[:, :2], edge[:, 2:])
            if tolerance is not None:
                crosses &= ~fast.view(-1)[pair]
                dx, dy = edge[:, 2] - edge[:, 0], edge[:, 3] - edge[:, 1]
                cross = dx * (chunk_point[:, 1] - edge[:, 1]) - dy * (chunk_point[:, 0] - edge[:, 0])
                close = cross.abs() <= 2 * tolerance[point_of] * (dx.abs() + dy.abs())
                flagged = point_of[close].unique()
            parity.index_put_((point_of, slot), crosses.view(torch.uint8), accumulate=True)
            parity[point_of[on_edge], slot[on_edge]] = 0
        return _pack_bytes(parity[:, :-1] & 1), flagged

    def _map_frame_bits(self, points: Tensor, scene: Tensor) -> Tensor:
        """Exact bit sets of points (F, 2) [m] in map coordinates against every edge of their scenes (F,)."""
        first = self.edge_first[scene]
        count = self.edge_count[scene]
        result = torch.zeros(points.shape[0], self.num_words, dtype=torch.int64, device=points.device)
        group = max(1, _FALLBACK_PAIRS // max(1, int(count.max())))
        for lo in range(0, points.shape[0], group):
            part = slice(lo, lo + group)
            point_of = torch.repeat_interleave(torch.arange(count[part].shape[0], device=points.device), count[part])
            offset = torch.cumsum(count[part], 0) - count[part]
            edge_of = first[part][point_of] + torch.arange(point_of.shape[0], device=points.device) - offset[point_of]
            edge = self.map_edges[edge_of]
            crosses, on_edge = ray_crossing(points[part][point_of], edge[:, :2], edge[:, 2:])
            slot = self.edge_polygon[edge_of]
            parity = torch.zeros(count[part].shape[0], 64 * self.num_words + 1, dtype=torch.uint8, device=points.device)
            parity.index_put_((point_of, slot), crosses.view(torch.uint8), accumulate=True)
            parity[point_of[on_edge], slot[on_edge]] = 0
            result[part] = _pack_bytes(parity[:, :-1] & 1)
        return result


def _merge_chunks(start: int, stops: list[int], widths: list[int],
                  max_pairs: int) -> list[tuple[int, int, int, bool]]:
    """Chunks (start, stop, width, merged) of the points start.. (sorted by row count) from the split `stops`
    and their last points' counts `widths`: neighbours are joined while padding the narrower to the wider
    adds at most `_MERGE_PAIRS` point-row pairs and the chunk stays within `max_pairs`. A merged chunk holds
    points whose strips have fewer places than its width."""
    chunks = []
    for stop, width in zip(stops, widths):
        if stop <= start:
            continue
        if chunks:
            first, last_stop, last_width, _ = chunks[-1]
            extra = (last_stop - first) * (width - last_width)
            if extra <= _MERGE_PAIRS and (stop - first) * width <= max_pairs:
                chunks[-1] = (first, stop, width, True)
                start = stop
                continue
        chunks.append((start, stop, width, False))
        start = stop
    return chunks


_MERGE_PAIRS = 1 << 15
"""Padding (point-row pairs) cheaper than one more chunk's few dozen small tensor ops (on navmini, 1 CPU thread,
B = 32..128 steps ran fastest near this value)."""

_SENTINEL_SLOT = 1 << 40
"""`row_polygon` of a store's sentinel rows: past any slot, clamped to the spare column when queried."""


class IndexStore:
    """Growing row and edge arrays that indexes are copied into once (`add`), so that indexes of any scenes
    of one store batch by `PolygonIndex.cat` without copying rows (the bulk of an index).

    Arrays grow by doubling. An index taken from the store reads a prefix of its arrays as they were then;
    later scenes only append, so the longest prefix among a batch's indexes holds every row they need.
    """

    def __init__(self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                 strip_height: float = 0.25):
        self.dtype, self.device, self.strip_height = dtype, torch.device(device or "cpu"), float(strip_height)
        self.num_rows = 0
        """Row places in use; place num_rows is a spare sentinel."""
        self.num_edges = 1
        """Edges in use; edge 0 is the zero pad edge that sentinel rows name."""
        self.num_scenes = 0
        """Scenes added so far."""
        self._row_bounds = torch.empty(0, 4, dtype=dtype, device=self.device)
        self._allocate(1 << 12, 1 << 10)

    def _allocate(self, num_rows: int, num_edges: int) -> None:
        """(Re)allocate arrays for at least this many rows and edges, keeping what is in use."""
        device = self.device
        row_bounds = torch.full((num_rows, 4), math.inf, dtype=self.dtype, device=device)
        row_edge = torch.zeros(num_rows, dtype=torch.long, device=device)
        row_polygon = torch.full((num_rows,), _SENTINEL_SLOT, dtype=torch.long, device=device)
        edges = torch.zeros(num_edges, 4, dtype=self.dtype, device=device)
        map_edges = torch.zeros(num_edges, 4, dtype=self.dtype, device=device)
        edge_polygon = torch.full((num_edges,), _SENTINEL_SLOT, dtype=torch.long, device=device)
        if self._row_bounds.shape[0]:
            used, used_edges = slice(0, self.num_rows), slice(0, self.num_edges)
            row_bounds[used] = self._row_bounds[used]
            row_edge[used], row_polygon[used] = self._row_edge[used], self._row_polygon[used]
            edges[used_edges], map_edges[used_edges] = self._edges[used_edges], self._map_edges[used_edges]
            edge_polygon[used_edges] = self._edge_polygon[used_edges]
        self._row_bounds, self._row_edge, self._row_polygon = row_bounds, row_edge, row_polygon
        self._edges, self._map_edges, self._edge_polygon = edges, map_edges, edge_polygon

    def add(self, index: PolygonIndex) -> PolygonIndex:
        """Copy the rows and edges of every scene of `index` into the store -> the same index reading them here."""
        if (index.row_bounds.dtype, index.row_bounds.device, index.strip_height) != (self.dtype, self.device,
                                                                                     self.strip_height):
            raise ValueError(f"index: dtype {index.row_bounds.dtype}, device {index.row_bounds.device}, strip_height "
                             f"{index.strip_height} differ from the store's "
                             f"{self.dtype}, {self.device}, {self.strip_height}")
        row_first, row_count = index.row_ranges()
        rows, scene_of_row = _ranges(row_first, row_count)
        edges, scene_of_edge = _ranges(index.edge_first, index.edge_count)
        new_row_first = self.num_rows + torch.cumsum(row_count, 0) - row_count
        new_edge_first = self.num_edges + torch.cumsum(index.edge_count, 0) - index.edge_count
        needed_rows, needed_edges = self.num_rows + rows.numel() + 1, self.num_edges + edges.numel()
        if needed_rows > self._row_bounds.shape[0] or needed_edges > self._edges.shape[0]:
            grow = lambda have, need: have if need <= have else max(need, 2 * have)
            self._allocate(grow(self._row_bounds.shape[0], needed_rows), grow(self._edges.shape[0], needed_edges))
        bounds = index.row_bounds[rows]
        is_sentinel = torch.isinf(bounds[:, 0])
        row_edge = index.row_edge[rows] + (new_edge_first - index.edge_first)[scene_of_row]
        place = slice(self.num_rows, self.num_rows + rows.numel())
        self._row_bounds[place] = bounds
        self._row_edge[place] = torch.where(is_sentinel, 0, row_edge)
        self._row_polygon[place] = torch.where(is_sentinel, _SENTINEL_SLOT, index.row_polygon[rows])
        place = slice(self.num_edges, self.num_edges + edges.numel())
        self._edges[place], self._map_edges[place] = index.edges[edges], index.map_edges[edges]
        self._edge_polygon[place] = index.edge_polygon[edges]
        self.num_rows, self.num_edges = self.num_rows + rows.numel(), self.num_edges + edges.numel()
        self.num_scenes += index.polygon_valid.shape[0]
        has_rows = (row_count > 0)[:, None]
        strip_first = torch.where(has_rows, index.strip_first + (new_row_first - row_first)[:, None], 0)
        spare = self.num_rows + 1
        return replace(index, row_bounds=self._row_bounds[:spare], row_edge=self._row_edge[:spare],
                       row_polygon=self._row_polygon[:spare], edges=self._edges[:self.num_edges],
                       map_edges=self._map_edges[:self.num_edges], edge_polygon=self._edge_polygon[:self.num_edges],
                       edge_first=new_edge_first, strip_first=strip_first, store=self)


def _ranges(first: Tensor, count: Tensor) -> tuple[Tensor, Tensor]:
    """All positions of the ranges [first[b], first[b] + count[b]) in turn, and the range of each, (sum count,)."""
    total = int(count.sum())
    owner = torch.repeat_interleave(torch.arange(count.shape[0], device=count.device), count, output_size=total)
    start = torch.cumsum(count, 0) - count
    return first[owner] + torch.arange(total, device=count.device) - start[owner], owner
