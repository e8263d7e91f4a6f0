"""envs.backends.bench2drive_routes: route XML, OpenDRIVE geometry and lanes, densification, junction point."""

import math

import numpy as np
import pytest
from scipy.special import fresnel

from envs.backends.bench2drive_routes import (
    Geometry, TownJunctions, densify, geometry_pose, junction_point, parse_opendrive, parse_routes, read_opendrive,
    read_routes, reference_line, road_lane_centres, town_map_path,
)

ROUTES_XML = """<?xml version="1.0"?>
<routes>
  <route id="17" town="Town03">
    <waypoints><position x="0" y="0" z="0.5"/><position x="2.5" y="-1" z="0.5"/></waypoints>
    <scenarios>
      <scenario name="PedestrianCrossing_1" type="PedestrianCrossing"><trigger_point x="0" y="0" z="0" yaw="0"/></scenario>
      <scenario name="Accident_2" type="Accident"/>
    </scenarios>
    <weathers><weather route_percentage="0" cloudiness="5"/></weathers>
  </route>
  <route id="3" town="Town01"><waypoints/></route>
</routes>"""


def road_xml(road_id, x0, length, junction="-1", y0=0.0, hdg=0.0, z=0.0, lanes=None, extra=""):
    """A straight road with a left and a right 3.5 m driving lane (or the given <lanes> body)."""
    lanes = lanes or """<laneSection s="0">
        <left><lane id="1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></left>
        <center><lane id="0" type="none"/></center>
        <right><lane id="-1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></right>
      </laneSection>"""
    return f"""<road id="{road_id}" junction="{junction}" length="{length}">
      <planView><geometry s="0" x="{x0}" y="{y0}" hdg="{hdg}" length="{length}"><line/></geometry></planView>
      <elevationProfile><elevation s="0" a="{z}" b="0" c="0" d="0"/></elevationProfile>
      <lanes>{extra}{lanes}</lanes></road>"""


def town_xodr(overpass=False):
    """Eastbound road 1 (x 0..50), junction road 2 (x 50..70), road 3 (x 70..150); optionally a junction road
    crossing x = 30 northbound 10 m above the ground."""
    roads = road_xml(1, 0, 50) + road_xml(2, 50, 20, junction="5") + road_xml(3, 70, 80)
    if overpass:
        roads += road_xml(4, 30, 60, junction="9", y0=-30, hdg=math.pi / 2, z=10.0)
    return f'<?xml version="1.0"?><OpenDRIVE><header/>{roads}<junction id="5"/></OpenDRIVE>'


def eastbound_keypoints(x_end=99.5):
    """Keypoints every 2 m on the right lane centre (y = -1.75) from x = 0.5."""
    xs = np.r_[np.arange(0.5, x_end, 2.0), x_end]
    return np.column_stack([xs, np.full_like(xs, -1.75), np.zeros_like(xs)])


# --- route XML ---------------------------------------------------------------------------------------------

def test_parse_routes_reads_id_town_first_scenario_type_and_keypoints():
    first, second = parse_routes(ROUTES_XML)
    assert (first.route_id, first.town, first.scenario_type, first.has_scenario) == (
        "17", "Town03", "PedestrianCrossing", True)
    assert first.keypoints.tolist() == [[0, 0, 0.5], [2.5, -1, 0.5]]
    assert (second.route_id, second.scenario_type, second.has_scenario) == ("3", None, False)
    assert second.keypoints.shape == (0, 3)


@pytest.mark.parametrize("text, message", [
    ("<routes><route id='1'/></routes>", "town=None"),
    ("<routes><route id='1' town='T'><waypoints><position x='a' y='0' z='0'/></waypoints></route></routes>",
     r"route 1 position\.x='a'"),
    ("<routes><route", "not valid XML"),
])
def test_parse_routes_rejects_bad_documents(text, message):
    with pytest.raises(ValueError, match=message):
        parse_routes(text)


def test_read_routes_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="routes=.*missing.xml.*cannot read"):
        read_routes(tmp_path / "missing.xml")
    (tmp_path / "r.xml").write_text(ROUTES_XML)
    assert [r.route_id for r in read_routes(tmp_path / "r.xml")] == ["17", "3"]


# --- OpenDRIVE geometry ------------------------------------------------------------------------------------

def test_line_and_arc_poses():
    x, y, hdg = geometry_pose(Geometry(0, 1, 2, math.pi / 2, 10, "line"), np.array([4.0]))
    assert (x[0], y[0], hdg[0]) == pytest.approx((1, 6, math.pi / 2))
    # radius 10 left turn starting north at (1, 2): a quarter circle ends heading west at (-9, 12)
    x, y, hdg = geometry_pose(Geometry(0, 1, 2, math.pi / 2, 5 * math.pi, "arc", (0.1,)), np.array([5 * math.pi]))
    assert (x[0], y[0], hdg[0]) == pytest.approx((-9, 12, math.pi))


def test_spiral_matches_the_fresnel_integrals():
    length, k_end = 50.0, 0.05
    x, y, hdg = geometry_pose(Geometry(0, 0, 0, 0, length, "spiral", (0.0, k_end)), np.array([length]))
    scale = math.sqrt(math.pi * length / k_end)          # clothoid: heading = s^2 k_end / (2 length)
    sine, cosine = fresnel(length / scale)
    assert (x[0], y[0]) == pytest.approx((scale * cosine, scale * sine), abs=1e-4)
    assert hdg[0] == pytest.approx(k_end * length / 2)


def test_poly3_and_parampoly3_follow_arc_length():
    # v = 0.75 u is a straight line at slope 3/4: arc length 5 is u = 4, v = 3
    x, y, hdg = geometry_pose(Geometry(0, 10, 0, math.pi / 2, 10, "poly3", (0, 0.75, 0, 0)), np.array([5.0]))
    assert (x[0], y[0], hdg[0]) == pytest.approx((10 - 3, 4, math.pi / 2 + math.atan(0.75)), abs=1e-6)
    # normalized p in [0, 1]: u = 8 p, v = 6 p (length 10); arcLength p in [0, 10]: u = 0.8 p, v = 0.6 p
    normalized = Geometry(0, 0, 0, 0, 10, "paramPoly3", (0, 8, 0, 0, 0, 6, 0, 0, 1.0))
    by_length = Geometry(0, 0, 0, 0, 10, "paramPoly3", (0, 0.8, 0, 0, 0, 0.6, 0, 0, 10.0))
    for geometry in (normalized, by_length):
        x, y, hdg = geometry_pose(geometry, np.array([5.0]))
        assert (x[0], y[0], hdg[0]) == pytest.approx((4, 3, math.atan2(3, 4)), abs=1e-6)


def test_parse_opendrive_reads_geometries_lanes_and_reference_line():
    text = """<OpenDRIVE><road id="7" junction="-1" length="20">
      <planView>
        <geometry s="0" x="0" y="0" hdg="0" length="10"><line/></geometry>
        <geometry s="10" x="10" y="0" hdg="0" length="10"><paramPoly3 aU="0" bU="10" cU="0" dU="0"
            aV="0" bV="0" cV="0" dV="0" pRange="normalized"/></geometry>
      </planView>
      <lanes><laneSection s="0"><right><lane id="-1" type="driving"/></right></laneSection></lanes>
    </road></OpenDRIVE>"""
    (road,) = parse_opendrive(text).roads
    assert [g.kind for g in road.geometries] == ["line", "paramPoly3"] and not road.is_junction
    x, y, _ = reference_line(road, np.array([5.0, 15.0, 20.0]))
    assert x.tolist() == pytest.approx([5, 15, 20]) and y.tolist() == pytest.approx([0, 0, 0])
    with pytest.raises(ValueError, match="geometry='bezier'"):
        parse_opendrive(text.replace("<line/>", "<bezier/>"))
    with pytest.raises(ValueError, match="no <road>"):
        parse_opendrive("<OpenDRIVE/>")


def test_lane_centres_use_offset_widths_elevation_and_only_driving_lanes():
    lanes = """<laneOffset s="0" a="0.5" b="0" c="0" d="0"/>
      <laneSection s="0">
        <left><lane id="1" type="driving"><width sOffset="0" a="3" b="0.1" c="0" d="0"/></lane></left>
        <right><lane id="-2" type="sidewalk"><width sOffset="0" a="2" b="0" c="0" d="0"/></lane>
               <lane id="-1" type="driving"><width sOffset="0" a="3.5" b="0" c="0" d="0"/></lane></right>
      </laneSection>
      <laneSection s="5"><right><lane id="-1" type="shoulder"><width sOffset="0" a="1" b="0" c="0" d="0"/></lane>
      </right></laneSection>"""
    xodr = f"<OpenDRIVE>{road_xml(1, 0, 10, lanes=lanes, z=2.0)}</OpenDRIVE>"
    centres = road_lane_centres(parse_opendrive(xodr).roads[0], step=2.0)
    # s = 0, 2, 4 in section 0: left centre 0.5 + (3 + 0.1 s)/2, right centre 0.5 - 3.5/2; section 1 has none
    expected = [[s, 0.5 + (3 + 0.1 * s) / 2, 2.0] for s in (0, 2, 4)] + [[s, -1.25, 2.0] for s in (0, 2, 4)]
    np.testing.assert_allclose(sorted(centres.xyz.tolist()), sorted(expected), atol=1e-12)
    assert not centres.is_junction.any() and set(centres.road_id) == {"1"}


# --- densification and junction ----------------------------------------------------------------------------

def test_densify_walks_the_keypoint_polyline_every_metre():
    points = densify(np.array([[0, 0, 0], [3, 0, 0], [3, 0, 0], [3, 2.5, 5.0]]))
    np.testing.assert_allclose(points, [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0], [3, 1, 2], [3, 2, 4]], atol=1e-12)
    assert densify(np.zeros((0, 3))).shape == (0, 3)


def test_junction_point_is_the_first_dense_point_on_a_junction_road():
    odr = parse_opendrive(town_xodr())
    # dense points at x = 0.5, 1.5, ..., 99.5 (n = 100); x = 50.5 is the first on road 2: c = 51
    assert junction_point(eastbound_keypoints(), odr) == (51, 100)
    assert junction_point(eastbound_keypoints(x_end=40.5), odr) is None
    assert junction_point(eastbound_keypoints() + [0, 0, 0], odr) == (51, 100)


def test_junction_point_ignores_an_overpass_in_3d():
    odr = parse_opendrive(town_xodr(overpass=True))
    assert odr.has_elevation
    assert junction_point(eastbound_keypoints(), odr) == (51, 100)     # not x = 30.5 under the bridge


def test_town_map_path_follows_the_carla_layouts(tmp_path):
    for relative in ("OpenDrive/Town01.xodr", "Town12/OpenDrive/Town12.xodr", "Town05.xodr"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("<OpenDRIVE/>")
    assert town_map_path(tmp_path, "Town01") == tmp_path / "OpenDrive/Town01.xodr"
    assert town_map_path(tmp_path, "Town12") == tmp_path / "Town12/OpenDrive/Town12.xodr"
    assert town_map_path(tmp_path, "Town05") == tmp_path / "Town05.xodr"
    with pytest.raises(ValueError, match="town='Town02': no OpenDRIVE file"):
        town_map_path(tmp_path, "Town02")


def test_town_junctions_reads_each_town_once_and_reports_missing_maps(tmp_path):
    (tmp_path / "Town01.xodr").write_text(town_xodr())
    route = parse_routes(ROUTES_XML)[0]
    lookup = TownJunctions(tmp_path)
    located = type(route)("1", "Town01", "T_Junction", True, eastbound_keypoints())
    assert lookup(located) == (51, 100)
    assert lookup._map is not None and lookup(located) == (51, 100)
    with pytest.raises(ValueError, match="Town03"):
        lookup(route)
    with pytest.raises(ValueError, match="Town03"):
        lookup(route)
    assert read_opendrive(tmp_path / "Town01.xodr").roads[1].is_junction
    with pytest.raises(ValueError, match="cannot read"):
        read_opendrive(tmp_path / "Town09.xodr")
