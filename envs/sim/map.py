"""Road map of one scene: lanes, lane connectors, areas, and the lane/roadblock graph.

Mirrors the nuPlan map layers NAVSIM scores against (scene/1 `map` object). Geometry is numpy,
per scene; batched tensors for scoring are built from it in `envs.metrics.context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Lane:
    """A lane (nuPlan LANE) or lane connector (nuPlan LANE_CONNECTOR, `is_connector=True`)."""

    id: str
    roadblock_id: str
    """Roadblock (lanes) or roadblock connector (connectors) that contains this lane."""
    polygon: np.ndarray = field(metadata={"dims": "V 2"})
    """Outline ring [m], first vertex not repeated."""
    centerline: np.ndarray = field(metadata={"dims": "P 2"})
    """Baseline path [m], in driving direction."""
    speed_limit: float | None = None
    """[m/s]; None when unknown."""
    successors: tuple[str, ...] = ()
    predecessors: tuple[str, ...] = ()
    is_connector: bool = False


@dataclass(frozen=True)
class Area:
    """A polygonal map object without lane semantics (roadblock, intersection, crosswalk...)."""

    id: str
    polygon: np.ndarray = field(metadata={"dims": "V 2"})


@dataclass(frozen=True)
class RoadMap:
    """All map objects of one scene. Objects absent from a scene file are simply absent here."""

    lanes: tuple[Lane, ...] = ()
    lane_connectors: tuple[Lane, ...] = ()
    roadblocks: tuple[Area, ...] = ()
    """Lane groups: drivable for DAC."""
    roadblock_connectors: tuple[Area, ...] = ()
    """Lane-group connectors: NOT drivable for DAC (NAVSIM quirk, spec navsim.md §8)."""
    intersections: tuple[Area, ...] = ()
    carparks: tuple[Area, ...] = ()
    crosswalks: tuple[Area, ...] = ()
    stop_lines: tuple[Area, ...] = ()
    """Not part of scene/1; used by the closed-loop simulator (stop signs)."""

    @cached_property
    def lanes_by_id(self) -> dict[str, Lane]:
        """Lanes and lane connectors by id."""
        return {lane.id: lane for lane in (*self.lanes, *self.lane_connectors)}

    @cached_property
    def roadblock_lane_ids(self) -> dict[str, tuple[str, ...]]:
        """Roadblock or roadblock-connector id -> ids of its interior lanes/connectors, in file order."""
        groups: dict[str, list[str]] = {}
        for lane in (*self.lanes, *self.lane_connectors):
            groups.setdefault(lane.roadblock_id, []).append(lane.id)
        return {block: tuple(ids) for block, ids in groups.items()}

    @cached_property
    def roadblock_ids(self) -> tuple[str, ...]:
        """Every roadblock and roadblock-connector id (declared areas and lane groups)."""
        ids = [a.id for a in (*self.roadblocks, *self.roadblock_connectors)]
        ids += [b for b in self.roadblock_lane_ids if b not in set(ids)]
        return tuple(dict.fromkeys(ids))

    @cached_property
    def roadblock_successors(self) -> dict[str, tuple[str, ...]]:
        """Roadblock graph: a block's successors are the blocks of its lanes' successor lanes."""
        succ: dict[str, dict[str, None]] = {block: {} for block in self.roadblock_ids}
        for lane in self.lanes_by_id.values():
            for nxt in lane.successors:
                if nxt in self.lanes_by_id:
                    succ.setdefault(lane.roadblock_id, {})[self.lanes_by_id[nxt].roadblock_id] = None
        return {block: tuple(s) for block, s in succ.items()}

    @cached_property
    def roadblock_predecessors(self) -> dict[str, tuple[str, ...]]:
        pred: dict[str, dict[str, None]] = {block: {} for block in self.roadblock_ids}
        for block, succs in self.roadblock_successors.items():
            for nxt in succs:
                pred.setdefault(nxt, {})[block] = None
        return {block: tuple(p) for block, p in pred.items()}

    @cached_property
    def connector_ids(self) -> frozenset[str]:
        """Ids of roadblock connectors (declared, or owning lane connectors)."""
        ids = {a.id for a in self.roadblock_connectors}
        ids |= {lane.roadblock_id for lane in self.lane_connectors}
        return frozenset(ids)

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) over every polygon [m]; zeros for an empty map."""
        rings = [o.polygon for o in self.all_polygon_objects()]
        if not rings:
            return (0.0, 0.0, 0.0, 0.0)
        pts = np.concatenate(rings, axis=0)
        return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))

    def all_polygon_objects(self) -> tuple[Lane | Area, ...]:
        return (
            *self.lanes, *self.lane_connectors, *self.roadblocks, *self.roadblock_connectors,
            *self.intersections, *self.carparks, *self.crosswalks, *self.stop_lines,
        )
