"""envs.backends.nuplan_map: nuPlan layers -> RoadMap (graph, CRS, patch + route selection) and the writer."""

import sqlite3

import numpy as np
import pytest
import shapely
import shapely.wkb

from envs.backends.gpkg import add_attribute_table, add_feature_table, create_geopackage, lonlat_to_utm
from envs.backends.nuplan_map import (
    EDGES, assign_fids, clear_map_cache, load_nuplan_map, road_map_near, write_nuplan_map,
)
from envs.scene_file import scene_from_dict
from tests.scene_builders import straight_road_dict

EPSG = 32611


def rect(x0, x1, y0, y1):
    return shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def write_map(path, layers: dict, epsg: int = EPSG, layer_srs: int | None = None, meta=(("projectedCoordSystem", "epsg:32611"),)):
    """A nuPlan-schema file from {layer: (geometry_type, [(name, sql type)], [row tuples], [geometries])};
    the required layers missing from `layers` are written empty."""
    empty = {
        "lanes_polygons": ("POLYGON", [("lane_group_fid", "INTEGER"), ("lane_fid", "INTEGER"), ("speed_limit_mps", "REAL")]),
        "lane_connectors": ("LINESTRING", [("exit_lane_fid", "INTEGER"), ("entry_lane_fid", "INTEGER"),
                                           ("lane_group_connector_fid", "INTEGER"), ("speed_limit_mps", "REAL")]),
        "baseline_paths": ("LINESTRING", [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")]),
        "lane_groups_polygons": ("POLYGON", []), "lane_group_connectors": ("POLYGON", []),
        "intersections": ("POLYGON", []),
    }
    conn = create_geopackage(path, epsg)
    if meta is not None:
        add_attribute_table(conn, "meta", [("key", "TEXT"), ("value", "TEXT")], list(meta))
    for name, (kind, columns) in empty.items():
        if name not in layers:
            add_feature_table(conn, name, kind, layer_srs or epsg, columns, [], [])
    for name, (kind, columns, rows, geometries) in layers.items():
        add_feature_table(conn, name, kind, layer_srs or epsg, columns, rows, geometries)
    conn.commit()
    conn.close()
    clear_map_cache()
    return path


LANE_COLS = [("lane_group_fid", "INTEGER"), ("lane_fid", "INTEGER"), ("speed_limit_mps", "REAL")]
CONN_COLS = [("exit_lane_fid", "INTEGER"), ("entry_lane_fid", "INTEGER"), ("lane_group_connector_fid", "INTEGER"),
             ("speed_limit_mps", "REAL")]


@pytest.fixture
def small_map(tmp_path):
    """Lane 1 (group 10, x 0..50) -> connectors 3 and 4 (group connector 30) -> lane 2 (group 20, x 70..120);
    lane 7 (group 10, y 1.75..5.25) -> connector 8 -> lane 6 (group 50, 1 km away); lane 5 (group 40, 1 km
    away, on the route)."""
    layers = {
        "lanes_polygons": ("POLYGON", LANE_COLS,
                           [(1, 10, 1, 15.0), (2, 20, 2, None), (5, 40, 5, 10.0), (6, 50, 6, 10.0), (7, 10, 7, 12.0)],
                           [rect(0, 50, -1.75, 1.75), rect(70, 120, -1.75, 1.75), rect(1000, 1050, -1.75, 1.75),
                            rect(1000, 1050, 10, 13.5), rect(0, 50, 1.75, 5.25)]),
        "lane_connectors": ("LINESTRING", CONN_COLS, [(3, 1, 2, 30, 13.0), (4, 1, 2, 30, None), (8, 7, 6, 30, 9.0)],
                            [shapely.LineString([(50, 0), (70, 0)])] * 2 + [shapely.LineString([(50, 3.5), (55, 3.5)])]),
        "gen_lane_connectors_scaled_width_polygons": ("POLYGON", [("lane_connector_fid", "INTEGER")],
                                                      [(1, 3), (2, 8)], [rect(50, 70, -1.75, 1.75), rect(50, 55, 1.75, 5.25)]),
        "baseline_paths": ("LINESTRING", [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")],
                           [(11, 1, None), (12, 2, None), (13, None, 3), (14, None, 4), (15, 5, None), (16, 6, None),
                            (17, None, 8), (18, 7, None)],
                           [shapely.LineString(c) for c in ([(0, 0), (50, 0)], [(70, 0), (120, 0)], [(50, 0), (70, 0)],
                                                            [(50, 0), (60, 5), (70, 0)], [(1000, 0), (1050, 0)],
                                                            [(1000, 12), (1050, 12)], [(50, 3.5), (55, 3.5)],
                                                            [(0, 3.5), (50, 3.5)])]),
        "lane_groups_polygons": ("POLYGON", [], [(10,), (20,), (40,), (50,)],
                                 [rect(0, 50, -1.75, 5.25), rect(70, 120, -1.75, 1.75), rect(1000, 1050, -1.75, 1.75),
                                  rect(1000, 1050, 10, 13.5)]),
        "lane_group_connectors": ("POLYGON", [("from_lane_group_fid", "INTEGER"), ("to_lane_group_fid", "INTEGER")],
                                  [(30, 10, 20)], [rect(50, 70, -1.75, 5.25)]),
        "intersections": ("POLYGON", [], [(60,)], [rect(48, 72, -4, 6)]),
        "carpark_areas": ("MULTIPOLYGON", [], [(70,)], [shapely.MultiPolygon([rect(0, 10, 20, 30), rect(20, 30, 20, 30)])]),
        "crosswalks": ("POLYGON", [], [(80,)], [rect(66, 69, -2, 2)]),
        "stop_polygons": ("POLYGON", [("stop_polygon_type_fid", "INTEGER")], [(90, 1), (91, 2)],
                          [rect(45, 47, -1.75, 1.75), rect(45, 47, 1.75, 5.25)]),
    }
    return write_map(tmp_path / "map.gpkg", layers)


def test_lane_graph_ids_polygons_and_speeds_follow_nuplan_semantics(small_map):
    m = road_map_near(load_nuplan_map(small_map), np.array([25.0, 0.0]), 100.0, ("10", "30", "20", "40"))
    lanes = {lane.id: lane for lane in m.lanes}
    assert [lane.id for lane in m.lanes] == ["1", "2", "5", "7"]           # 6 is 1 km away and off-route
    assert [c.id for c in m.lane_connectors] == ["3", "4", "8"]
    assert lanes["1"].successors == ("3", "4") and lanes["1"].predecessors == ()   # exit_lane_fid, table order
    assert lanes["2"].predecessors == ("3", "4") and lanes["2"].roadblock_id == "20"
    conns = {c.id: c for c in m.lane_connectors}
    assert conns["3"].successors == ("2",) and conns["3"].predecessors == ("1",) and conns["3"].roadblock_id == "30"
    assert conns["8"].successors == () and conns["8"].predecessors == ("7",)     # lane 6 is not loaded
    assert lanes["1"].speed_limit == 15.0 and lanes["2"].speed_limit is None and conns["4"].speed_limit is None
    assert np.array_equal(lanes["1"].polygon, [[0, -1.75], [50, -1.75], [50, 1.75], [0, 1.75]])  # no closing vertex
    assert np.array_equal(conns["3"].polygon, [[50, -1.75], [70, -1.75], [70, 1.75], [50, 1.75]])
    assert np.array_equal(conns["4"].centerline, [[50, 0], [60, 5], [70, 0]])
    # Connector 4 has no row in the polygon layer: its baseline buffered 2.5 m each side, flat caps.
    assert shapely.Polygon(conns["4"].polygon).area == pytest.approx(
        shapely.LineString([(50, 0), (60, 5), (70, 0)]).buffer(2.5, cap_style="flat").area)
    assert lanes["5"].polygon[:, 0].min() == 1000.0                        # route roadblock 40, any distance
    assert [a.id for a in m.roadblocks] == ["10", "20", "40"] and [a.id for a in m.roadblock_connectors] == ["30"]
    assert [a.id for a in m.carparks] == ["70", "70"]                      # one Area per multipolygon part
    assert [a.id for a in m.stop_lines] == ["90"]                          # STOP_SIGN polygons only
    assert [a.id for a in m.intersections] == ["60"] and [a.id for a in m.crosswalks] == ["80"]
    assert m.roadblock_successors["10"] == ("30",) and m.roadblock_successors["30"] == ("20",)


def test_patch_selects_by_exact_intersection_not_distance(small_map):
    nmap = load_nuplan_map(small_map)
    near_far_lane = road_map_near(nmap, np.array([1025.0, 30.0]), 16.0)  # lane 6 spans y 10..13.5
    assert [lane.id for lane in near_far_lane.lanes] == []
    assert [lane.id for lane in road_map_near(nmap, np.array([1025.0, 30.0]), 16.5).lanes] == ["6"]
    nothing = road_map_near(nmap, np.array([500.0, 500.0]), 10.0)
    assert nothing.lanes == () and nothing.roadblocks == () and nothing.carparks == ()


def test_grid_index_finds_the_same_objects_as_brute_force(tmp_path):
    rng = np.random.default_rng(3)
    centers = rng.uniform(-1500, 1500, size=(300, 2))
    sizes = rng.uniform(1, 400, size=(300, 2))            # some span several 200 m grid cells
    polygons = [rect(cx, cx + sx, cy, cy + sy) for (cx, cy), (sx, sy) in zip(centers, sizes)]
    layers = {
        "lanes_polygons": ("POLYGON", LANE_COLS, [(i + 1, 1, i + 1, None) for i in range(300)], polygons),
        "baseline_paths": ("LINESTRING", [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")],
                           [(i + 1, i + 1, None) for i in range(300)],
                           [shapely.LineString(list(p.exterior.coords)[:2]) for p in polygons]),
    }
    nmap = load_nuplan_map(write_map(tmp_path / "grid.gpkg", layers))
    for center, radius in zip(rng.uniform(-1600, 1600, size=(25, 2)), rng.uniform(5, 300, size=25)):
        box = shapely.box(*(center - radius), *(center + radius))
        expected = [str(i + 1) for i, p in enumerate(polygons) if p.intersects(box)]
        assert [lane.id for lane in road_map_near(nmap, center, radius).lanes] == expected


def test_wgs84_layers_are_projected_to_the_meta_utm_zone(tmp_path):
    lonlat = [(-115.17, 36.12), (-115.169, 36.12), (-115.169, 36.1201), (-115.17, 36.1201)]
    layers = {
        "lanes_polygons": ("POLYGON", LANE_COLS, [(1, 10, 1, None)], [shapely.Polygon(lonlat)]),
        "baseline_paths": ("LINESTRING", [("lane_fid", "INTEGER"), ("lane_connector_fid", "INTEGER")],
                           [(1, 1, None)], [shapely.LineString(lonlat[:2])]),
    }
    path = write_map(tmp_path / "wgs84.gpkg", layers, layer_srs=4326)
    easting, northing = lonlat_to_utm(np.array([p[0] for p in lonlat]), np.array([p[1] for p in lonlat]), 11, True)
    (lane,) = road_map_near(load_nuplan_map(path), np.array([easting[0], northing[0]]), 50.0).lanes
    assert np.allclose(lane.polygon, np.stack([easting, northing], axis=1), atol=1e-9, rtol=0)
    assert lane.centerline[0, 0] == pytest.approx(664691.9331399775, abs=1e-6)   # PROJ's value for that vertex
    assert lane.centerline[1, 0] - lane.centerline[0, 0] == pytest.approx(90.1, abs=0.1)  # 0.001 deg of longitude


def test_map_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.gpkg: no such map file"):
        load_nuplan_map(tmp_path / "missing.gpkg")
    conn = create_geopackage(tmp_path / "partial.gpkg", EPSG)
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match=r"partial\.gpkg: missing layer 'lanes_polygons'"):
        load_nuplan_map(tmp_path / "partial.gpkg")
    with pytest.raises(ValueError, match=r"nometa\.gpkg: layer 'meta' has no 'projectedCoordSystem' row"):
        load_nuplan_map(write_map(tmp_path / "nometa.gpkg", {}, meta=(("geographicCoordSystem", "epsg:4326"),)))
    with pytest.raises(ValueError, match=r"cartesian\.gpkg: layer 'lanes_polygons': cannot project srs_id -1"):
        load_nuplan_map(write_map(tmp_path / "cartesian.gpkg", {}, layer_srs=-1))
    no_baseline = {"lanes_polygons": ("POLYGON", LANE_COLS, [(4, 1, 4, None)], [rect(0, 1, 0, 1)])}
    with pytest.raises(ValueError, match="fid 4 has no row in layer 'baseline_paths'"):
        load_nuplan_map(write_map(tmp_path / "nobase.gpkg", no_baseline))


def test_parsed_maps_are_cached_per_file(small_map):
    assert load_nuplan_map(small_map) is load_nuplan_map(small_map)
    first = load_nuplan_map(small_map)
    clear_map_cache()
    assert load_nuplan_map(small_map) is not first


# --- writer ------------------------------------------------------------------------------------

@pytest.fixture
def road_scene():
    return scene_from_dict(straight_road_dict(with_intersection=True, with_oncoming=True))


def test_fids_follow_the_documented_order(road_scene):
    fids = assign_fids(road_scene.map)
    assert list(fids.lanes) == ["L1a", "L1b", "L2a", "L2b", "L3a", "L3b", "LO", "Ca", "Cb"]
    assert list(fids.lanes.values()) == list(range(1, 10))
    assert fids.roadblocks == {"RB1": 10, "RB2": 11, "RB3": 12, "RBO": 13, "RBC1": 14}
    assert fids.intersections == {"I1": 15} and fids.area_ids("roadblock_connectors") is fids.roadblocks


def test_written_map_reads_back_identical_up_to_ids(tmp_path, road_scene):
    original = road_scene.map
    fids = write_nuplan_map(original, tmp_path / "map.gpkg")
    lane_id = {v: k for k, v in fids.lanes.items()}
    block_id = {v: k for k, v in fids.roadblocks.items()}
    back = road_map_near(load_nuplan_map(tmp_path / "map.gpkg"), np.array([10.0, 0.0]), 1e4)
    for a, b in zip((*original.lanes, *original.lane_connectors), (*back.lanes, *back.lane_connectors), strict=True):
        assert lane_id[int(b.id)] == a.id and block_id[int(b.roadblock_id)] == a.roadblock_id
        assert np.array_equal(a.polygon, b.polygon) and np.array_equal(a.centerline, b.centerline)  # WKB is exact
        assert (a.speed_limit, a.is_connector) == (b.speed_limit, b.is_connector)
        assert tuple(lane_id[int(s)] for s in b.successors) == a.successors
        assert tuple(lane_id[int(p)] for p in b.predecessors) == a.predecessors
    for name in ("roadblocks", "roadblock_connectors", "intersections", "carparks", "crosswalks", "stop_lines"):
        ids = fids.area_ids(name)
        assert [(str(ids[a.id]), a.polygon.tolist()) for a in getattr(original, name)] == \
               [(a.id, a.polygon.tolist()) for a in getattr(back, name)]


def test_nuplan_columns_alone_carry_the_connector_edges(tmp_path, road_scene):
    fids = write_nuplan_map(road_scene.map, tmp_path / "map.gpkg")
    with sqlite3.connect(tmp_path / "map.gpkg") as conn:        # what a real nuPlan map looks like: no extension
        conn.execute(f"DROP TABLE {EDGES}")
        conn.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (EDGES,))
    clear_map_cache()
    back = road_map_near(load_nuplan_map(tmp_path / "map.gpkg"), np.array([10.0, 0.0]), 1e4)
    lanes = back.lanes_by_id
    f = {k: str(v) for k, v in fids.lanes.items()}
    assert lanes[f["L2a"]].successors == (f["Ca"],) and lanes[f["L3a"]].predecessors == (f["Ca"],)
    assert lanes[f["Ca"]].successors == (f["L3a"],) and lanes[f["Ca"]].predecessors == (f["L2a"],)
    assert lanes[f["L1a"]].successors == ()                     # direct lane -> lane links need the extension


def test_every_layer_we_write_is_plain_wkb_after_the_header(tmp_path, road_scene):
    write_nuplan_map(road_scene.map, tmp_path / "map.gpkg")
    conn = sqlite3.connect(tmp_path / "map.gpkg")
    tables = [row[0] for row in conn.execute("SELECT table_name FROM gpkg_geometry_columns")]
    assert {"lanes_polygons", "lane_connectors", "gen_lane_connectors_scaled_width_polygons", "baseline_paths",
            "lane_groups_polygons", "lane_group_connectors", "intersections", "carpark_areas", "crosswalks",
            "stop_polygons"} <= set(tables)
    for table in tables:
        for (blob,) in conn.execute(f'SELECT geom FROM "{table}"'):
            assert blob[:2] == b"GP" and blob[3] == 0b11
            geometry = shapely.wkb.loads(bytes(blob[40:]))           # 8-byte header + 4-double envelope
            assert geometry.is_valid and not geometry.is_empty
    assert conn.execute("SELECT value FROM meta WHERE key = 'projectedCoordSystem'").fetchone() == ("epsg:32611",)
    assert conn.execute("SELECT from_lane_group_fid, to_lane_group_fid FROM lane_group_connectors").fetchall() == [(11, 12)]
    conn.close()
