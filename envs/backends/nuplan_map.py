"""nuPlan GeoPackage maps <-> `RoadMap`: the layers and columns that hold lanes, lane connectors,
baselines, roadblocks and areas (spec navsim.md §4.3), the lane graph, a per-map cache with a bbox grid
index for "objects near the ego" queries, and the writer used by `tools.export_openscene`.

Semantics follow nuplan-devkit `nuplan/common/maps/nuplan_map/{nuplan_map,lane,lane_connector,roadblock,
roadblock_connector}.py` (v1.2): object ids are `str(fid)`; a lane's outgoing edges are the lane
connectors whose `exit_lane_fid` is the lane (incoming: `entry_lane_fid`), in table order; a connector
has one incoming (`exit_lane_fid`) and one outgoing (`entry_lane_fid`) lane; a lane's roadblock is its
`lane_group_fid`, a connector's its `lane_group_connector_fid`; connector polygons come from
`gen_lane_connectors_scaled_width_polygons`; centerlines from `baseline_paths`.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from envs.backends.gpkg import (
    WGS84_EPSG,
    Features,
    add_attribute_table,
    add_feature_table,
    create_geopackage,
    lonlat_to_utm,
    open_geopackage,
    parse_epsg,
    read_attributes,
    read_features,
    srs_epsg,
    table_names,
    utm_zone,
)
from envs.sim.map import Area, Lane, RoadMap

LANES = "lanes_polygons"
CONNECTORS = "lane_connectors"
CONNECTOR_POLYGONS = "gen_lane_connectors_scaled_width_polygons"
BASELINES = "baseline_paths"
ROADBLOCKS = "lane_groups_polygons"
ROADBLOCK_CONNECTORS = "lane_group_connectors"
INTERSECTIONS = "intersections"
CARPARKS = "carpark_areas"
CROSSWALKS = "crosswalks"
STOP_POLYGONS = "stop_polygons"
META = "meta"
EDGES = "roadloop_lane_edges"
"""roadloop extension (absent from real nuPlan maps): the exact ordered successor / predecessor lists of
lanes and connectors, for graphs nuPlan's columns cannot express (direct lane -> lane links)."""

STOP_SIGN = 1
"""nuPlan StopLineType.STOP_SIGN: the only stop polygons that become `RoadMap.stop_lines`."""
FALLBACK_CONNECTOR_WIDTH_M = 5.0
"""Connector polygon = its baseline buffered to this width (flat caps) when the polygon layer lacks it
(nuplan-devkit before v1.2 did this for every connector)."""
SYNTHETIC_EPSG = 32611
"""CRS the exporter writes layers in (already projected, so nuplan-devkit's `to_crs` is the identity)."""
GRID_CELL_M = 200.0
"""Side of a cell of the per-layer bbox grid index [m]."""

_AREA_LAYERS = {"roadblocks": ROADBLOCKS, "roadblock_connectors": ROADBLOCK_CONNECTORS,
                "intersections": INTERSECTIONS, "carparks": CARPARKS, "crosswalks": CROSSWALKS,
                "stop_lines": STOP_POLYGONS}
"""RoadMap area field -> nuPlan layer."""
_OPTIONAL = {CONNECTOR_POLYGONS, CARPARKS, CROSSWALKS, STOP_POLYGONS, EDGES}
"""Layers a map may lack (read as empty)."""


# --------------------------------------------------------------------------------------------
# Parsed layers and their grid index
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Grid:
    """Uniform grid over object bounding boxes: cell key -> indices of the objects touching the cell."""

    keys: np.ndarray = field(metadata={"dims": "K"})
    starts: np.ndarray = field(metadata={"dims": "K+1"})
    members: np.ndarray = field(metadata={"dims": "M"})

    @staticmethod
    def _cells(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.floor(lo / GRID_CELL_M).astype(np.int64), np.floor(hi / GRID_CELL_M).astype(np.int64)

    @staticmethod
    def _key(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
        return (cx + 2**31) * 2**32 + (cy + 2**31)

    @classmethod
    def build(cls, bounds: np.ndarray) -> "_Grid":
        """bounds (N, 4) min_x, min_y, max_x, max_y [m]."""
        lo, hi = cls._cells(bounds[:, :2], bounds[:, 2:])
        span = hi - lo + 1                                     # (N, 2) cells per axis
        count = span[:, 0] * span[:, 1]
        obj = np.repeat(np.arange(len(bounds)), count)
        offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        cx = np.repeat(lo[:, 0], count) + offset % np.repeat(span[:, 0], count)
        cy = np.repeat(lo[:, 1], count) + offset // np.repeat(span[:, 0], count)
        key = cls._key(cx, cy)
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        return cls(keys=keys, starts=np.append(starts, len(key)), members=obj[order])

    def candidates(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sorted indices of objects sharing a cell with the box lo..hi (2,) [m]."""
        (x0, y0), (x1, y1) = self._cells(lo, hi)
        cx, cy = np.meshgrid(np.arange(x0, x1 + 1), np.arange(y0, y1 + 1), indexing="ij")
        wanted = self._key(cx.ravel(), cy.ravel())
        pos = np.searchsorted(self.keys, wanted)
        found = pos < len(self.keys)
        found[found] = self.keys[pos[found]] == wanted[found]
        pos = pos[found]
        if not len(pos):
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate([self.members[self.starts[p]:self.starts[p + 1]] for p in pos]))


@dataclass(frozen=True)
class _Layer:
    """One parsed layer: projected geometries, their bounds and grid, and the columns we use."""

    fids: np.ndarray = field(metadata={"dims": "N"})
    geometry: np.ndarray = field(metadata={"dims": "N"})
    bounds: np.ndarray = field(metadata={"dims": "N 4"})
    grid: _Grid
    columns: dict[str, np.ndarray]
    """int64 columns (NULL -> -1) or float64 (NULL -> NaN), per name."""

    @classmethod
    def build(cls, fids: np.ndarray, geometry: np.ndarray, columns: dict[str, np.ndarray]) -> "_Layer":
        bounds = shapely.bounds(geometry).reshape(-1, 4) if len(geometry) else np.zeros((0, 4))
        return cls(fids=fids, geometry=geometry, bounds=bounds, grid=_Grid.build(bounds), columns=columns)

    def near(self, box) -> np.ndarray:
        """Sorted row indices whose geometry intersects the shapely polygon `box` (nuPlan proximal query)."""
        if not len(self.fids):
            return np.zeros(0, np.int64)
        x0, y0, x1, y1 = shapely.bounds(box)
        lo = np.maximum([x0, y0], self.bounds[:, :2].min(axis=0))  # never walk cells beyond the layer
        hi = np.minimum([x1, y1], self.bounds[:, 2:].max(axis=0))
        if np.any(lo > hi):
            return np.zeros(0, np.int64)
        rows = self.grid.candidates(lo, hi)
        b = self.bounds[rows]
        rows = rows[(b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0)]
        return rows[shapely.intersects(self.geometry[rows], box)]


@dataclass(frozen=True)
class NuplanMap:
    """Every layer of one map file roadloop uses, parsed once (projected to the map's UTM frame)."""

    path: Path
    lanes: _Layer
    """lanes_polygons; columns lane_group_fid, speed_limit_mps."""
    connectors: _Layer
    """lane_connectors rows with their polygons; columns exit/entry_lane_fid, lane_group_connector_fid, speed."""
    areas: dict[str, _Layer]
    """RoadMap area field -> layer (stop_lines holds only STOP_SIGN polygons)."""
    centerlines: dict[int, np.ndarray]
    """Lane or connector fid -> baseline (P, 2) [m]."""
    successors: dict[int, tuple[int, ...]]
    predecessors: dict[int, tuple[int, ...]]
    interior: dict[int, tuple[tuple[str, int], ...]]
    """Roadblock / roadblock-connector fid -> ('lanes' | 'connectors', row) of its interior edges."""


_CACHE: dict[tuple[str, int, int], NuplanMap] = {}


def clear_map_cache() -> None:
    """Forget every parsed map (the cache is keyed by resolved path, size and mtime)."""
    _CACHE.clear()


def load_nuplan_map(path: str | os.PathLike) -> NuplanMap:
    """Parse a nuPlan `map.gpkg` (cached per file in memory); errors name the file."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ValueError(f"{path}: no such map file") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        conn = open_geopackage(path)
        try:
            _CACHE[key] = _parse(conn, path)
        except sqlite3.DatabaseError as err:
            raise ValueError(f"{path}: cannot read the GeoPackage: {err}") from None
        finally:
            conn.close()
    return _CACHE[key]


def _parse(conn: sqlite3.Connection, path: Path) -> NuplanMap:
    present = table_names(conn)
    for table in (LANES, CONNECTORS, BASELINES, ROADBLOCKS, ROADBLOCK_CONNECTORS, INTERSECTIONS, META):
        if table not in present:
            raise ValueError(f"{path}: missing layer {table!r} (not a nuPlan map?)")
    meta = read_attributes(conn, META, ("key", "value"), str(path))
    projected = dict(zip(meta["key"], meta["value"])).get("projectedCoordSystem")
    if projected is None:
        raise ValueError(f"{path}: layer 'meta' has no 'projectedCoordSystem' row")
    epsg = parse_epsg(projected, f"{path}: meta.projectedCoordSystem")

    def read(table: str, columns: tuple[str, ...]) -> Features | None:
        if table not in present:
            return None
        features = read_features(conn, table, columns, str(path))
        return _project(conn, features, epsg, f"{path}: layer {table!r}")

    lanes = read(LANES, ("lane_group_fid", "speed_limit_mps"))
    conns = read(CONNECTORS, ("exit_lane_fid", "entry_lane_fid", "lane_group_connector_fid", "speed_limit_mps"))
    polys = read(CONNECTOR_POLYGONS, ("lane_connector_fid",))
    baselines = read(BASELINES, ("lane_fid", "lane_connector_fid"))
    stops = read(STOP_POLYGONS, ("stop_polygon_type_fid",))
    areas = {name: read(table, ()) for name, table in _AREA_LAYERS.items() if table != STOP_POLYGONS}
    if stops is not None:
        keep = _ints(stops.columns["stop_polygon_type_fid"]) == STOP_SIGN
        areas["stop_lines"] = Features(stops.fids[keep], stops.geometry[keep], stops.srs_id, {})
    for name, features in [(LANES, lanes), (ROADBLOCKS, areas["roadblocks"])]:
        _require_geometry(features, f"{path}: layer {name!r}")

    centerlines: dict[int, np.ndarray] = {}
    for column in ("lane_fid", "lane_connector_fid"):
        owner = _ints(baselines.columns[column])
        for fid, line in zip(owner[owner >= 0], baselines.geometry[owner >= 0]):
            centerlines.setdefault(int(fid), shapely.get_coordinates(line))
    for fid in (*lanes.fids.tolist(), *conns.fids.tolist()):
        if fid not in centerlines:
            raise ValueError(f"{path}: lane or lane connector fid {fid} has no row in layer {BASELINES!r}")

    conn_poly = np.empty(len(conns), dtype=object)
    if polys is not None:
        by_conn = dict(zip(_ints(polys.columns["lane_connector_fid"]).tolist(), polys.geometry))
        conn_poly[:] = [by_conn.get(int(fid)) for fid in conns.fids]
    for i in np.flatnonzero(shapely.is_missing(conn_poly)):
        line = shapely.linestrings(centerlines[int(conns.fids[i])])
        # quad_segs=16: the default of shapely's `.buffer` method, which nuplan-devkit calls
        conn_poly[i] = shapely.buffer(line, FALLBACK_CONNECTOR_WIDTH_M / 2, quad_segs=16, cap_style="flat")

    lane_layer = _Layer.build(lanes.fids, lanes.geometry, {
        "roadblock": _ints(lanes.columns["lane_group_fid"]), "speed": _floats(lanes.columns["speed_limit_mps"])})
    conn_layer = _Layer.build(conns.fids, conn_poly, {
        "exit": _ints(conns.columns["exit_lane_fid"]), "entry": _ints(conns.columns["entry_lane_fid"]),
        "roadblock": _ints(conns.columns["lane_group_connector_fid"]),
        "speed": _floats(conns.columns["speed_limit_mps"])})
    area_layers = {name: _Layer.build(f.fids, f.geometry, {}) if f is not None else _Layer.build(
        np.zeros(0, np.int64), np.zeros(0, dtype=object), {}) for name, f in areas.items()}
    successors, predecessors = _lane_graph(conn_layer, conn, present, path)
    interior: dict[int, list[tuple[str, int]]] = {}
    for kind, layer in (("lanes", lane_layer), ("connectors", conn_layer)):
        for row, block in enumerate(layer.columns["roadblock"].tolist()):
            interior.setdefault(block, []).append((kind, row))
    return NuplanMap(path=path, lanes=lane_layer, connectors=conn_layer, areas=area_layers, centerlines=centerlines,
                     successors=successors, predecessors=predecessors,
                     interior={k: tuple(v) for k, v in interior.items()})


def _ints(values: list) -> np.ndarray:
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _require_geometry(features: Features, where: str) -> None:
    missing = np.flatnonzero(shapely.is_missing(features.geometry))
    if len(missing):
        raise ValueError(f"{where}: fid {int(features.fids[missing[0]])} has no geometry")


def _project(conn: sqlite3.Connection, features: Features, epsg: int, where: str) -> Features:
    """Geometries in the map's projected (UTM) frame, as nuplan-devkit's `to_crs(projectedCoordSystem)`:
    real nuPlan layers are stored as EPSG:4326 longitude/latitude; layers already in `epsg` pass as is."""
    layer_epsg = srs_epsg(conn, features.srs_id)
    if layer_epsg == epsg:
        return features
    zone = utm_zone(epsg)
    if layer_epsg != WGS84_EPSG or zone is None:
        raise ValueError(f"{where}: cannot project srs_id {features.srs_id} (EPSG {layer_epsg}) to EPSG:{epsg}; "
                         f"supported: EPSG:4326 -> WGS 84 / UTM, or layers already in EPSG:{epsg}")

    def to_utm(lonlat: np.ndarray) -> np.ndarray:
        return np.stack(lonlat_to_utm(lonlat[:, 0], lonlat[:, 1], *zone), axis=-1)

    return Features(features.fids, shapely.transform(features.geometry, to_utm), epsg, features.columns)


def _lane_graph(conns: _Layer, conn: sqlite3.Connection, present: set[str], path: Path):
    """Ordered successor / predecessor fids of every lane and connector (nuPlan columns, then the
    roadloop extension table, which replaces the lists of the fids it names)."""
    succ: dict[int, list[int]] = {}
    pred: dict[int, list[int]] = {}
    for fid, exit_lane, entry_lane in zip(conns.fids.tolist(), conns.columns["exit"].tolist(),
                                          conns.columns["entry"].tolist()):
        succ[fid] = [entry_lane] if entry_lane >= 0 else []
        pred[fid] = [exit_lane] if exit_lane >= 0 else []
        if exit_lane >= 0:
            succ.setdefault(exit_lane, []).append(fid)
        if entry_lane >= 0:
            pred.setdefault(entry_lane, []).append(fid)
    if EDGES in present:
        table = read_attributes(conn, EDGES, ("fid", "successor_fids", "predecessor_fids"), str(path))
        for fid, s, p in zip(table["fid"], table["successor_fids"], table["predecessor_fids"]):
            succ[int(fid)] = [int(x) for x in (s or "").split(",") if x.strip()]
            pred[int(fid)] = [int(x) for x in (p or "").split(",") if x.strip()]
    return ({k: tuple(v) for k, v in succ.items()}, {k: tuple(v) for k, v in pred.items()})


# --------------------------------------------------------------------------------------------
# Map objects near a pose -> RoadMap
# --------------------------------------------------------------------------------------------

def road_map_near(nmap: NuplanMap, center_xy: np.ndarray, radius: float,
                  route_roadblock_ids: tuple[str, ...] = ()) -> RoadMap:
    """RoadMap of the objects whose geometry intersects the square center ± radius [m], plus every route
    roadblock / roadblock connector and their interior lanes (NAVSIM loads those by id, at any distance).

    Successor / predecessor edges to lanes that are not loaded are dropped. Polygons keep their exterior
    ring only (holes dropped); a multi-polygon lane keeps its largest part, a multi-polygon area becomes
    one `Area` per part with the same id.
    """
    cx, cy = float(center_xy[0]), float(center_xy[1])
    box = shapely.box(cx - radius, cy - radius, cx + radius, cy + radius)
    route = {int(r) for r in route_roadblock_ids if str(r).lstrip("-").isdigit()}
    rows = {"lanes": set(nmap.lanes.near(box).tolist()), "connectors": set(nmap.connectors.near(box).tolist())}
    for block in route:
        for kind, row in nmap.interior.get(block, ()):
            rows[kind].add(row)
    loaded = {int(nmap.lanes.fids[r]) for r in rows["lanes"]} | {int(nmap.connectors.fids[r]) for r in rows["connectors"]}

    def lanes_of(kind: str) -> tuple[Lane, ...]:
        layer = getattr(nmap, kind)
        out = []
        for row in sorted(rows[kind]):
            fid = int(layer.fids[row])
            speed = float(layer.columns["speed"][row])
            out.append(Lane(
                id=str(fid), roadblock_id=str(int(layer.columns["roadblock"][row])),
                polygon=_rings(layer.geometry[row], largest_only=True)[0],
                centerline=np.asarray(nmap.centerlines[fid], np.float64),
                speed_limit=speed if np.isfinite(speed) else None,
                successors=tuple(str(s) for s in nmap.successors.get(fid, ()) if s in loaded),
                predecessors=tuple(str(p) for p in nmap.predecessors.get(fid, ()) if p in loaded),
                is_connector=kind == "connectors",
            ))
        return tuple(out)

    areas = {}
    for name, layer in nmap.areas.items():
        picked = set(layer.near(box).tolist())
        if name in ("roadblocks", "roadblock_connectors"):
            picked |= set(np.flatnonzero(np.isin(layer.fids, list(route))).tolist())
        areas[name] = tuple(Area(str(int(layer.fids[row])), ring)
                            for row in sorted(picked) for ring in _rings(layer.geometry[row]))
    return RoadMap(lanes=lanes_of("lanes"), lane_connectors=lanes_of("connectors"), **areas)


def _rings(geometry, largest_only: bool = False) -> list[np.ndarray]:
    """Exterior rings (V, 2) without the closing vertex, one per polygon part."""
    parts = list(shapely.get_parts(geometry)) if shapely.get_type_id(geometry) in (6, 7) else [geometry]
    parts = [p for p in parts if shapely.get_type_id(p) == 3 and not shapely.is_empty(p)]
    if not parts:
        raise ValueError(f"geometry {shapely.to_wkt(geometry)[:60]!r}: expected a polygon")
    if largest_only:
        parts = [max(parts, key=shapely.area)]
    return [shapely.get_coordinates(shapely.get_exterior_ring(p))[:-1] for p in parts]


# --------------------------------------------------------------------------------------------
# Writing a RoadMap as a nuPlan map (tools.export_openscene)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapFids:
    """roadloop id -> nuPlan fid of every object of one exported map.

    fids are assigned 1, 2, ... in this order: lanes then lane connectors (RoadMap order), then
    `RoadMap.roadblock_ids` (roadblocks, roadblock connectors, lane-only roadblock ids), then
    intersections, car parks, crosswalks and stop lines (first occurrence of each id). Reading the map
    back gives ids `str(fid)`.
    """

    lanes: dict[str, int]
    """Lanes and lane connectors (one id space, as in RoadMap)."""
    roadblocks: dict[str, int]
    intersections: dict[str, int]
    carparks: dict[str, int]
    crosswalks: dict[str, int]
    stop_lines: dict[str, int]

    def area_ids(self, name: str) -> dict[str, int]:
        """The id map of a RoadMap area field (roadblock connectors share `roadblocks`)."""
        return self.roadblocks if name in ("roadblocks", "roadblock_connectors") else getattr(self, name)


def assign_fids(road_map: RoadMap) -> MapFids:
    """Deterministic fids of every object of a RoadMap (see MapFids)."""
    counter = iter(range(1, 1 << 62))

    def number(ids) -> dict[str, int]:
        return {i: next(counter) for i in dict.fromkeys(ids)}

    return MapFids(
        lanes=number(lane.id for lane in (*road_map.lanes, *road_map.lane_connectors)),
        roadblocks=number(road_map.roadblock_ids),
        intersections=number(a.id for a in road_map.intersections),
        carparks=number(a.id for a in road_map.carparks),
        crosswalks=number(a.id for a in road_map.crosswalks),
        stop_lines=number(a.id for a in road_map.stop_lines),
    )


def write_nuplan_map(road_map: RoadMap, path: str | os.PathLike, epsg: int = SYNTHETIC_EPSG) -> MapFids:
    """Write `road_map` as a nuPlan-schema GeoPackage (layers stored already projected in `epsg`, `meta`
    naming it), plus the `roadloop_lane_edges` table; returns the id -> fid map."""
    fids = assign_fids(road_map)
    lane_fid, block_fid = fids.lanes, fids.roadblocks
    by_id = road_map.lanes_by_id
    conn = create_geopackage(path, epsg)
    try:
        add_attribute_table(conn, META, [("key", "TEXT"), ("value", "TEXT")], [
            ("projectedCoordSystem", f"epsg:{epsg}"), ("geographicCoordSystem", f"epsg:{WGS84_EPSG}")])
        index_in_block: dict[str, int] = {}
        lane_rows = []
        for lane in road_map.lanes:
            index = index_in_block.get(lane.roadblock_id, 0)
            index_in_block[lane.roadblock_id] = index + 1
            fid = lane_fid[lane.id]
            lane_rows.append((fid, block_fid[lane.roadblock_id], fid, index, lane.speed_limit))
        add_feature_table(conn, LANES, "POLYGON", epsg, [
            ("lane_group_fid", "INTEGER"), ("lane_fid", "INTEGER"), ("lane_index", "MEDIUMINT"),
            ("speed_limit_mps", "REAL")], lane_rows, [shapely.Polygon(lane.polygon) for lane in road_map.lanes])

        def first(ids: tuple[str, ...]) -> str | None:
            return ids[0] if ids else None

        conn_rows = []
        for c in road_map.lane_connectors:
            exit_lane, entry_lane = first(c.predecessors), first(c.successors)
            conn_rows.append((
                lane_fid[c.id],
                None if exit_lane is None else block_fid[by_id[exit_lane].roadblock_id],
                None if exit_lane is None else lane_fid[exit_lane],
                None if entry_lane is None else block_fid[by_id[entry_lane].roadblock_id],
                None if entry_lane is None else lane_fid[entry_lane],
                block_fid[c.roadblock_id], c.speed_limit, "",
            ))
        add_feature_table(conn, CONNECTORS, "LINESTRING", epsg, [
            ("exit_lane_group_fid", "INTEGER"), ("exit_lane_fid", "INTEGER"), ("entry_lane_group_fid", "INTEGER"),
            ("entry_lane_fid", "INTEGER"), ("lane_group_connector_fid", "INTEGER"), ("speed_limit_mps", "REAL"),
            ("traffic_light_stop_line_fids", "TEXT")],
            conn_rows, [shapely.LineString(c.centerline) for c in road_map.lane_connectors])
        add_feature_table(conn, CONNECTOR_POLYGONS, "POLYGON", epsg, [("lane_connector_fid", "INTEGER")],
                          [(i + 1, lane_fid[c.id]) for i, c in enumerate(road_map.lane_connectors)],
                          [shapely.Polygon(c.polygon) for c in road_map.lane_connectors])
        all_lanes = (*road_map.lanes, *road_map.lane_connectors)
        baseline_rows = [(i + 1, None if lane.is_connector else lane_fid[lane.id],
                          lane_fid[lane.id] if lane.is_connector else None) for i, lane in enumerate(all_lanes)]
        add_feature_table(conn, BASELINES, "LINESTRING", epsg,
                          [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")], baseline_rows,
                          [shapely.LineString(lane.centerline) for lane in all_lanes])
        _write_areas(conn, road_map, fids, epsg)

        def fid_list(ids: tuple[str, ...]) -> str:
            return ",".join(str(lane_fid[i]) for i in ids if i in lane_fid)

        add_attribute_table(conn, EDGES, [("fid", "INTEGER"), ("successor_fids", "TEXT"), ("predecessor_fids", "TEXT")],
                            [(lane_fid[lane.id], fid_list(lane.successors), fid_list(lane.predecessors))
                             for lane in all_lanes])
        conn.commit()
    finally:
        conn.close()
    return fids


def _write_areas(conn: sqlite3.Connection, road_map: RoadMap, fids: MapFids, epsg: int) -> None:
    """Area layers; parts sharing an id are written as one multi-polygon row."""
    by_id = road_map.lanes_by_id
    block_lanes = road_map.roadblock_lane_ids
    for name, table in _AREA_LAYERS.items():
        groups: dict[str, list[np.ndarray]] = {}
        for area in getattr(road_map, name):
            groups.setdefault(area.id, []).append(area.polygon)
        ids = fids.area_ids(name)
        geometries = [shapely.Polygon(rings[0]) if len(rings) == 1
                      else shapely.MultiPolygon([shapely.Polygon(r) for r in rings]) for rings in groups.values()]
        columns: list[tuple[str, str]] = []
        rows = [(ids[i],) for i in groups]
        if name == "roadblock_connectors":
            columns = [("intersection_fid", "INTEGER"), ("from_lane_group_fid", "INTEGER"),
                       ("to_lane_group_fid", "INTEGER")]
            rows = []
            for block in groups:
                inner = [by_id[c] for c in block_lanes.get(block, ())]
                before = [by_id[p].roadblock_id for c in inner for p in c.predecessors if p in by_id]
                after = [by_id[s].roadblock_id for c in inner for s in c.successors if s in by_id]
                rows.append((ids[block], None, fids.roadblocks[before[0]] if before else None,
                             fids.roadblocks[after[0]] if after else None))
        elif name == "stop_lines":
            columns = [("stop_polygon_type_fid", "INTEGER")]
            rows = [(ids[i], STOP_SIGN) for i in groups]
        kinds = {shapely.get_type_id(g) for g in geometries}
        geometry_type = "POLYGON" if kinds <= {3} else "MULTIPOLYGON" if kinds == {6} else "GEOMETRY"
        add_feature_table(conn, table, geometry_type, epsg, columns, rows, geometries)
