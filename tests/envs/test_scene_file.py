"""Tests for envs/scene_file.py: scene/1 and plan JSON round trips and one-line rejections."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from envs.scene_file import (
    SceneFormatError, load_plan, load_scene, plan_from_dict, plan_to_dict, save_plan, save_scene, scene_from_dict,
    scene_to_dict,
)
from envs.scene_schema import PLAN_SCHEMA, SCENE_SCHEMA, SCENE_VALIDATORS
from envs.sim.scene import AgentType, Command, LightStatus, Plan
from envs.sim.vehicle import PACIFICA, VehicleParams


def rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def make_scene_dict() -> dict:
    """Two lanes joined by a connector through an intersection; a car, a cone from 1.5 s, one light."""
    return {
        "format": "scene/1",
        "token": "tok-0001",
        "meta": {"scenario_type": "cut_in", "source": "unit test"},
        "map": {
            "lanes": [
                {"id": "L1", "roadblock_id": "RB1", "polygon": rect(0, -2, 50, 2), "centerline": [[0, 0], [50, 0]],
                 "speed_limit": 13.4, "successors": ["C1"], "predecessors": []},
                {"id": "L2", "roadblock_id": "RB2", "polygon": rect(60, -2, 110, 2),
                 "centerline": [[60, 0], [110, 0]], "speed_limit": None, "successors": [], "predecessors": ["C1"]},
            ],
            "lane_connectors": [
                {"id": "C1", "roadblock_id": "RBC1", "polygon": rect(50, -2, 60, 2),
                 "centerline": [[50, 0], [55, 0], [60, 0]], "speed_limit": None, "successors": ["L2"],
                 "predecessors": ["L1"]},
            ],
            "roadblocks": [{"id": "RB1", "polygon": rect(0, -4, 50, 4)},
                           {"id": "RB2", "polygon": rect(60, -4, 110, 4)}],
            "roadblock_connectors": [{"id": "RBC1", "polygon": rect(50, -4, 60, 4)}],
            "intersections": [{"id": "I1", "polygon": rect(50, -10, 60, 10)}],
            "crosswalks": [{"id": "W1", "polygon": rect(45, -4, 48, 4)}],
        },
        "route": {"roadblock_ids": ["RB1", "RBC1", "RB2"]},
        "ego": {
            "vehicle": {"length": 4.0, "width": 1.8, "wheel_base": 2.7, "rear_axle_to_center": 1.2},
            # 5 m/s along +x, 2 Hz, current frame at x = 12.5.
            "history": [{"t": -1.5 + 0.5 * i, "x": 5 + 2.5 * i, "y": 0, "heading": 0, "vx": 5, "vy": 0, "ax": 0,
                         "ay": 0} for i in range(4)],
        },
        "command": "straight",
        "agents": [
            {"id": "A1", "type": "vehicle", "length": 4.5, "width": 1.9,
             "states": [{"t": k / 10, "x": 20 + 0.8 * k, "y": 3.5, "heading": 0, "vx": 8, "vy": 0}
                        for k in range(41)]},
            # k * 0.1 (1.5000000000000002, ...) exercises the 1e-6 time tolerance.
            {"id": "K1", "type": "traffic_cone", "length": 0.5, "width": 0.5,
             "states": [{"t": k * 0.1, "x": 40, "y": 1, "heading": 0, "vx": 0, "vy": 0} for k in range(15, 41)]},
        ],
        "traffic_lights": [
            {"lane_connector_id": "C1",
             "states": [{"t": k / 10, "status": "green" if k < 10 else "yellow" if k < 15 else "red"}
                        for k in range(21)]},
        ],
        "human_trajectory": {"interval": 0.5, "poses": [[2.5 * (i + 1), 0, 0] for i in range(8)]},
    }


def assert_same(a, b, where: str = "scene") -> None:
    """Field-by-field equality of dataclasses holding numpy arrays (same dtype, shape and values)."""
    assert type(a) is type(b), where
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    elif isinstance(a, tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


# --- reading a valid scene -------------------------------------------------------------------------

def test_scene_from_dict_maps_every_field():
    scene = scene_from_dict(make_scene_dict())
    assert scene.token == "tok-0001" and scene.scenario_type == "cut_in" and scene.command is Command.STRAIGHT
    assert scene.vehicle == VehicleParams(length=4.0, width=1.8, wheel_base=2.7, rear_axle_to_center=1.2)
    assert scene.route_roadblock_ids == ("RB1", "RBC1", "RB2")

    m = scene.map
    assert [lane.id for lane in m.lanes] == ["L1", "L2"] and not m.lanes[0].is_connector
    assert m.lane_connectors[0].is_connector and m.lane_connectors[0].roadblock_id == "RBC1"
    assert m.lanes[0].speed_limit == 13.4 and m.lanes[1].speed_limit is None
    assert m.lanes[0].successors == ("C1",) and m.lane_connectors[0].predecessors == ("L1",)
    np.testing.assert_array_equal(m.lane_connectors[0].centerline, [[50, 0], [55, 0], [60, 0]])
    np.testing.assert_array_equal(m.intersections[0].polygon, [[50, -10], [60, -10], [60, 10], [50, 10]])
    assert m.carparks == () and m.roadblock_connectors[0].id == "RBC1"
    assert m.roadblock_successors["RB1"] == ("RBC1",)

    np.testing.assert_array_equal(scene.history.t, [-1.5, -1.0, -0.5, 0.0])
    np.testing.assert_array_equal(scene.ego_pose, [12.5, 0, 0])
    np.testing.assert_array_equal(scene.history.velocity[:, 0], [5, 5, 5, 5])

    agents = scene.agents
    assert agents.ids == ("A1", "K1")
    np.testing.assert_array_equal(agents.types, [AgentType.VEHICLE, AgentType.TRAFFIC_CONE])
    np.testing.assert_array_equal(agents.size, [[4.5, 1.9], [0.5, 0.5]])
    assert agents.pose.shape == (2, 41, 3) and agents.valid.dtype == bool
    np.testing.assert_array_equal(agents.pose[0, 40], [52.0, 3.5, 0.0])  # 20 + 0.8 * 40
    np.testing.assert_array_equal(agents.velocity[0, 7], [8.0, 0.0])

    status = scene.traffic_lights.status
    assert scene.traffic_lights.lane_connector_ids == ("C1",) and status.shape == (1, 41)
    expected = [LightStatus.GREEN] * 10 + [LightStatus.YELLOW] * 5 + [LightStatus.RED] * 6 + [LightStatus.UNKNOWN] * 20
    np.testing.assert_array_equal(status[0], expected)

    assert scene.human_trajectory.interval == 0.5 and scene.human_trajectory.poses.shape == (8, 3)
    np.testing.assert_array_equal(scene.human_trajectory.poses[-1], [20.0, 0, 0])
    assert scene.reference_trajectory is None


def test_agent_appearing_mid_horizon_gets_its_valid_mask():
    agents = scene_from_dict(make_scene_dict()).agents
    assert agents.valid[0].all()
    assert not agents.valid[1, :15].any() and agents.valid[1, 15:].all()
    np.testing.assert_array_equal(agents.first_step, [0, 15])
    np.testing.assert_array_equal(agents.pose[1, 14], [0, 0, 0])  # zeros where not valid
    np.testing.assert_array_equal(agents.pose[1, 15], [40, 1, 0])


def test_absent_optional_parts_take_their_defaults():
    data = {
        "format": "scene/1", "token": "t",
        "map": {"lanes": [{"id": "L1", "roadblock_id": "RB1", "polygon": rect(0, -2, 10, 2),
                           "centerline": [[0, 0], [10, 0]]}]},
        "route": {"roadblock_ids": ["RB1"]},  # known only as a lane's roadblock_id
        "ego": {"history": [{"t": 0, "x": 1, "y": 2, "heading": 0.5, "vx": 0, "vy": 0, "ax": 0, "ay": 0}]},
    }
    scene = scene_from_dict(data)
    m = scene.map
    assert (m.lane_connectors, m.roadblocks, m.roadblock_connectors, m.intersections, m.carparks, m.crosswalks) == (
        (), (), (), (), (), ())
    assert m.lanes[0].speed_limit is None and m.lanes[0].successors == () and m.lanes[0].predecessors == ()
    assert scene.vehicle is PACIFICA and scene.command is Command.UNKNOWN and scene.scenario_type == "unknown"
    assert scene.agents.pose.shape == (0, 41, 3) and scene.traffic_lights.status.shape == (0, 41)
    assert scene.human_trajectory is None and scene.reference_trajectory is None
    np.testing.assert_array_equal(scene.ego_pose, [1, 2, 0.5])


def test_history_last_time_within_tolerance_reads_as_zero():
    data = make_scene_dict()
    data["ego"]["history"][-1]["t"] = -4e-7
    assert scene_from_dict(data).history.t[-1] == 0.0


# --- round trips -----------------------------------------------------------------------------------

def test_dict_round_trip_gives_identical_scene():
    data = make_scene_dict()
    data["ego"]["history"][0]["x"] = 0.1 + 0.2  # 0.30000000000000004 must survive exactly
    scene = scene_from_dict(data)
    again = scene_from_dict(scene_to_dict(scene))
    assert_same(scene, again)
    assert again.history.pose[0, 0] == 0.30000000000000004
    assert scene_to_dict(again) == scene_to_dict(scene)
    assert "source" not in scene_to_dict(scene)["meta"]  # only scenario_type is kept from meta


def test_file_round_trip_is_identical_strict_json_and_atomic(tmp_path: Path):
    data = make_scene_dict()
    data["reference_trajectory"] = {"interval": 0.1, "poses": [[k / 3, 0.0, 1e-17] for k in range(1, 41)]}
    scene = scene_from_dict(data)
    path = tmp_path / "scene.json"
    save_scene(scene, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json"]  # no temp file left behind

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    json.loads(path.read_text(), parse_constant=no_constants)
    loaded = load_scene(path)
    assert_same(scene, loaded)
    assert loaded.reference_trajectory.poses[0, 0] == 1 / 3
    save_scene(loaded, path)  # overwriting works too
    assert_same(scene, load_scene(path))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)],
                         ids=["umask022", "umask002", "umask077"])
def test_saved_files_get_the_mode_open_would_give(tmp_path: Path, umask: int, expected: int):
    scene = scene_from_dict(make_scene_dict())
    plan = Plan(interval=0.5, poses=np.array([[k * 2.5, 0.0, 0.0] for k in range(1, 9)]))
    old = os.umask(umask)
    try:
        save_scene(scene, tmp_path / "scene.json")
        save_plan(plan, tmp_path / "plan.json")
        with open(tmp_path / "by_open.json", "w"):
            pass
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"scene.json": expected, "plan.json": expected, "by_open.json": expected}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwriting_keeps_the_old_permissions(tmp_path: Path):
    # as open(path, "w") on an existing file: the contents change, the mode bits stay
    path = tmp_path / "plan.json"
    path.write_text("{}")
    path.chmod(0o640)
    save_plan(Plan(interval=0.5, poses=np.array([[2.5, 0.0, 0.0]])), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_plan(path).poses.tolist() == [[2.5, 0.0, 0.0]]
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]


def test_save_scene_refuses_an_invalid_scene_without_writing(tmp_path: Path):
    scene = scene_from_dict(make_scene_dict())
    pose = scene.history.pose.copy()
    pose[0, 0] = np.nan
    bad = dataclasses.replace(scene, history=dataclasses.replace(scene.history, pose=pose))
    with pytest.raises(SceneFormatError, match=re.escape("ego.history[0].x=nan: must be a finite number")):
        save_scene(bad, tmp_path / "bad.json")
    assert list(tmp_path.iterdir()) == []


def test_scene_to_dict_refuses_vehicle_fields_scene1_cannot_store():
    scene = scene_from_dict(make_scene_dict())
    tuned = dataclasses.replace(scene, vehicle=dataclasses.replace(PACIFICA, accel_time_constant=0.3))
    with pytest.raises(SceneFormatError, match=re.escape("vehicle.accel_time_constant=0.3: scene/1 stores only")):
        scene_to_dict(tuned)


def test_schemas_are_valid_json_schema_documents():
    Draft202012Validator.check_schema(SCENE_SCHEMA)
    Draft202012Validator.check_schema(PLAN_SCHEMA)
    json.dumps(SCENE_SCHEMA)  # plain JSON, publishable as a .schema.json file
    assert not list(Draft202012Validator(SCENE_SCHEMA).iter_errors(make_scene_dict()))


# --- rejections ------------------------------------------------------------------------------------

DELETE = object()


def at(path: tuple, value):
    """Mutation setting (or deleting, with DELETE) the value at `path` of the scene dict."""
    def mutate(data: dict) -> None:
        *head, last = path
        for part in head:
            data = data[part]
        if value is DELETE:
            del data[last]
        else:
            data[last] = value
    return mutate


def closed_ring(data: dict) -> None:
    ring = data["map"]["roadblocks"][0]["polygon"]
    ring.append(list(ring[0]))


def duplicate_agent(data: dict) -> None:
    data["agents"][1]["id"] = "A1"


def duplicate_light(data: dict) -> None:
    data["traffic_lights"].append(copy.deepcopy(data["traffic_lights"][0]))


BAD_SCENES = [
    ("nan_coordinate", at(("agents", 0, "states", 2, "x"), float("nan")),
     "agents[0].states[2].x=nan: must be a finite number"),
    ("inf_history_heading", at(("ego", "history", 1, "heading"), float("inf")),
     "ego.history[1].heading=inf: must be a finite number"),
    ("pose_shape", at(("human_trajectory", "poses"), [[1.0, 2.0]] * 8),
     "human_trajectory.poses: expected a list of [x, y, heading] triples, got shape (8, 2)"),
    ("empty_reference_poses", lambda d: d.update(reference_trajectory={"interval": 0.1, "poses": []}),
     "reference_trajectory.poses: expected a list of [x, y, heading] triples, got shape (0,)"),
    ("unknown_agent_type", at(("agents", 0, "type"), "truck"),
     "agents[0].type='truck': unknown agent type (valid: vehicle, pedestrian, bicycle, traffic_cone, barrier, "
     "czone_sign, generic_object)"),
    ("bow_tie_polygon", at(("map", "lanes", 1, "polygon"), [[60, -2], [110, 2], [110, -2], [60, 2]]),
     "map.lanes[1].polygon: self-intersecting polygon"),
    ("collinear_polygon", at(("map", "intersections", 0, "polygon"), [[50, 0], [55, 0], [60, 0]]),
     "map.intersections[0].polygon: zero-area polygon"),
    ("closed_ring", closed_ring, "map.roadblocks[0].polygon: the last vertex repeats the first"),
    ("two_vertex_polygon", at(("map", "crosswalks", 0, "polygon"), [[45, -4], [48, -4]]),
     "map.crosswalks[0].polygon=[[45, -4], [48, -4]]: a polygon needs at least 3 vertices"),
    ("bad_vertex", at(("map", "lanes", 0, "polygon", 2), [1.0]),
     "map.lanes[0].polygon[2]=[1.0]: expected an [x, y] pair"),
    ("poses_not_a_list", at(("human_trajectory", "poses"), 5),
     "human_trajectory.poses: expected a list of [x, y, heading] triples, got a number"),
    ("empty_route", at(("route", "roadblock_ids"), []),
     "route.roadblock_ids=[]: the route must name at least one roadblock"),
    ("unknown_route_id", at(("route", "roadblock_ids", 1), "RB9"),
     "route.roadblock_ids[1]='RB9': not a roadblock or roadblock connector of the map"),
    ("interval_0.25", at(("human_trajectory", "interval"), 0.25),
     "human_trajectory.interval=0.25: must be a positive multiple of 0.1 s"),
    ("interval_zero", at(("human_trajectory", "interval"), 0),
     "human_trajectory.interval=0: must be a positive number"),
    ("non_increasing_agent_times", at(("agents", 0, "states", 3, "t"), 0.1),
     "agents[0].states[3].t=0.1: times must be strictly increasing (previous t=0.2)"),
    ("off_grid_agent_time", at(("agents", 0, "states", 3, "t"), 0.25),
     "agents[0].states[3].t=0.25: must be a multiple of 0.1 s in [0, 4.0]"),
    ("agent_time_past_horizon", at(("agents", 0, "states", 40, "t"), 4.1),
     "agents[0].states[40].t=4.1: must be a multiple of 0.1 s in [0, 4.0]"),
    ("agent_without_states", at(("agents", 1, "states"), []),
     "agents[1].states=[]: an object needs at least one state"),
    ("duplicate_agent_id", duplicate_agent, "agents[1].id='A1': duplicate agent id (also agents[0])"),
    ("unknown_successor", at(("map", "lanes", 0, "successors", 0), "C9"),
     "map.lanes[0].successors[0]='C9': unknown lane or lane connector id"),
    ("duplicate_lane_id", at(("map", "lane_connectors", 0, "id"), "L1"),
     "map.lane_connectors[0].id='L1': duplicate id (also map.lanes[0])"),
    ("unknown_light_connector", at(("traffic_lights", 0, "lane_connector_id"), "L1"),
     "traffic_lights[0].lane_connector_id='L1': not a lane connector of the map"),
    ("duplicate_light", duplicate_light, "traffic_lights[1].lane_connector_id='C1': duplicate light"),
    ("unknown_light_status", at(("traffic_lights", 0, "states", 0, "status"), "blue"),
     "traffic_lights[0].states[0].status='blue': unknown traffic-light status (valid: green, yellow, red, unknown)"),
    ("missing_token", at(("token",), DELETE), "token: required key is missing"),
    ("missing_map", at(("map",), DELETE), "map: required key is missing"),
    ("missing_agent_width", at(("agents", 0, "width"), DELETE), "agents[0].width: required key is missing"),
    ("missing_vehicle_field", at(("ego", "vehicle", "wheel_base"), DELETE), "ego.vehicle.wheel_base: required key"),
    ("bad_format", at(("format",), "scene/2"), "format='scene/2': must be 'scene/1'"),
    ("empty_token", at(("token",), ""), "token='': must be a non-empty string"),
    ("negative_width", at(("agents", 0, "width"), -1.9), "agents[0].width=-1.9: must be a positive number"),
    ("string_length", at(("agents", 0, "length"), "4.5"), "agents[0].length='4.5': expected a number"),
    ("bool_length", at(("agents", 0, "length"), True), "agents[0].length=True: expected a number"),
    ("zero_speed_limit", at(("map", "lanes", 0, "speed_limit"), 0), "map.lanes[0].speed_limit=0: must be a positive"),
    ("negative_wheel_base", at(("ego", "vehicle", "wheel_base"), -3.0),
     "ego.vehicle.wheel_base=-3.0: must be a positive number"),
    ("rear_axle_past_length", at(("ego", "vehicle", "rear_axle_to_center"), 6.0),
     "ego.vehicle.rear_axle_to_center=6.0: must be finite and shorter than the vehicle length 4.0"),
    ("unknown_command", at(("command",), "up"),
     "command='up': unknown command (valid: left, straight, right, unknown)"),
    ("unknown_top_level_key", at(("extras",), 1), "extras: unknown top-level key (valid: format, token, meta, map"),
    ("misspelt_nested_key", at(("map", "lanes", 0, "speedlimit"), 13.4), "map.lanes[0].speedlimit: unknown key"),
    ("empty_history", at(("ego", "history"), []),
     "ego.history=[]: the history needs at least the current frame (t = 0)"),
    ("history_not_ending_at_zero", at(("ego", "history", 3, "t"), 0.5),
     "ego.history[3].t=0.5: the last history frame must be the current one, t = 0"),
    ("history_not_increasing", at(("ego", "history", 1, "t"), -1.5),
     "ego.history[1].t=-1.5: times must be strictly increasing (previous t=-1.5)"),
]


@pytest.mark.parametrize("mutate, message", [case[1:] for case in BAD_SCENES], ids=[case[0] for case in BAD_SCENES])
def test_bad_scene_is_rejected_naming_field_and_value(mutate, message):
    data = make_scene_dict()
    mutate(data)
    with pytest.raises(SceneFormatError) as info:
        scene_from_dict(data)
    text = str(info.value)
    assert text.startswith(message), text
    assert "\n" not in text and isinstance(info.value, ValueError)


@pytest.mark.parametrize("mutate", [case[1] for case in BAD_SCENES], ids=[case[0] for case in BAD_SCENES])
def test_fast_schema_check_agrees_with_the_full_schema(mutate):
    fast, full = SCENE_VALIDATORS
    data = make_scene_dict()
    assert fast.is_valid(data) and full.is_valid(data)
    mutate(data)
    assert fast.is_valid(data) == full.is_valid(data)


def test_numpy_numbers_in_a_dict_are_accepted():
    data = make_scene_dict()
    data["agents"][0]["states"][0]["x"] = np.float64(20.0)
    data["map"]["lanes"][0]["polygon"][0] = [np.float64(0.0), np.int64(-2)]  # fast check fails, full one passes
    scene = scene_from_dict(data)
    assert scene.agents.pose[0, 0, 0] == 20.0 and scene.map.lanes[0].polygon[0, 1] == -2.0


def test_non_object_document_is_rejected():
    with pytest.raises(SceneFormatError, match=re.escape("(root)=[]: expected an object")):
        scene_from_dict([])


def test_load_scene_reports_invalid_json_and_missing_files(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "scene/1",')
    with pytest.raises(SceneFormatError, match=re.escape(f"{path}: not valid JSON: ")):
        load_scene(path)
    path.write_text('{"format": "scene/1", "format": "scene/1"}')
    with pytest.raises(SceneFormatError, match=re.escape(f"{path}: not valid JSON: duplicate key 'format'")):
        load_scene(path)
    with pytest.raises(SceneFormatError, match=re.escape(f"{tmp_path / 'absent.json'}: no such file")):
        load_scene(tmp_path / "absent.json")


def test_load_scene_prefixes_semantic_errors_with_the_path(tmp_path: Path):
    data = make_scene_dict()
    data["agents"][0]["states"][2]["x"] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))  # Python writes the non-standard token NaN
    with pytest.raises(SceneFormatError, match=re.escape(f"{path}: agents[0].states[2].x=nan: must be a finite")):
        load_scene(path)


# --- plans -----------------------------------------------------------------------------------------

def test_plan_from_dict_snaps_interval_to_the_grid():
    plan = plan_from_dict({"interval": 0.30000000000000004, "poses": [[1.0, 0.5, 0.1], [2.0, 1.0, 0.2]]})
    assert plan.interval == 0.3 and plan.poses.dtype == np.float64
    np.testing.assert_array_equal(plan.poses, [[1.0, 0.5, 0.1], [2.0, 1.0, 0.2]])
    assert plan_to_dict(plan) == {"interval": 0.3, "poses": [[1.0, 0.5, 0.1], [2.0, 1.0, 0.2]]}


@pytest.mark.parametrize("data, message", [
    ({"interval": 0.5, "poses": [[1.0, 2.0]] * 8},
     "trajectory.poses: expected a list of [x, y, heading] triples, got shape (8, 2)"),
    ({"interval": 0.5, "poses": [[1.0, 2.0, 0.0], [1.0, 2.0]]},
     "trajectory.poses: expected a list of [x, y, heading] triples, got a ragged"),
    ({"interval": 0.5, "poses": [[1.0, float("nan"), 0.0]]}, "trajectory.poses[0][1]=nan: must be a finite number"),
    ({"interval": 0.25, "poses": [[1.0, 0.0, 0.0]]}, "trajectory.interval=0.25: must be a positive multiple of 0.1 s"),
    ({"poses": [[1.0, 0.0, 0.0]]}, "trajectory.interval: required key is missing"),
    ({"interval": 0.5, "poses": [[1.0, 0.0, 0.0]], "dt": 1}, "trajectory.dt: unknown key (valid: interval, poses)"),
])
def test_bad_plan_is_rejected(data, message):
    with pytest.raises(SceneFormatError) as info:
        plan_from_dict(data)
    assert str(info.value).startswith(message), str(info.value)


def test_plan_file_round_trip(tmp_path: Path):
    plan = Plan(interval=0.5, poses=np.array([[k * 2.5, 0.1 + 0.2, -1 / 7] for k in range(1, 9)]))
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    assert_same(plan, load_plan(path))
    path.write_text("[1, 2")
    with pytest.raises(SceneFormatError, match=re.escape(f"{path}: not valid JSON")):
        load_plan(path)
