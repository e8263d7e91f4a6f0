"""envs.backends.openscene: NAVSIM scene construction from OpenScene logs, and a hand-built round trip
through tools.export_openscene whose agents move at constant velocity (so 2 Hz sampling loses nothing)."""

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from envs.backends.nuplan_map import clear_map_cache
from envs.backends.openscene import (
    FrameObjects, OpenSceneConfig, driving_command, frame_objects, interpolate_tracks, iter_scene_tokens,
    load_camera_images, load_scenes, normalize_angle, quaternion_yaw, traffic_light_tracks,
)
from envs.metrics.scorer import Metric, ScoringConfig, prepare_scenes, score_poses, score_rows
from envs.scene_file import scene_from_dict
from envs.sim.map import Lane, RoadMap
from envs.sim.scene import AgentType, Command, LightStatus
from tests.scene_builders import add_box, straight_road_dict
from tools.export_openscene import export_scenes

RED, GREEN, UNKNOWN = int(LightStatus.RED), int(LightStatus.GREEN), int(LightStatus.UNKNOWN)


# --- pure pieces, hand-worked ------------------------------------------------------------------

def test_quaternion_yaw_is_pyquaternions_yaw():
    half = math.radians(45.0)
    assert quaternion_yaw(np.array([math.cos(half), 0, 0, math.sin(half)])) == pytest.approx(math.pi / 2, abs=1e-15)
    assert quaternion_yaw(np.array([2 * math.cos(0.15), 0, 0, 2 * math.sin(0.15)])) == pytest.approx(0.3, abs=1e-15)
    # With roll/pitch parts: atan2(2(wz - xy), 1 - 2(y^2 + z^2)) of the normalised (0.5, 0.5, 0.5, 0.5).
    assert quaternion_yaw(np.array([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.0, abs=1e-15)
    assert quaternion_yaw(np.array([[1, 0, 0, 0], [0, 0, 0, 1.0]])).tolist() == [0.0, math.pi]


def test_normalize_angle_is_atan2_of_sin_cos():
    assert normalize_angle(np.array([3 * math.pi / 2, -3 * math.pi / 2, 0.25]))[[0, 1]] == pytest.approx(
        [-math.pi / 2, math.pi / 2])


def test_frame_objects_rotates_boxes_and_velocities_by_the_ego_heading():
    anns = {"gt_boxes": np.array([[2.0, 1.0, 0.3, 4.5, 1.9, 1.6, 0.1], [0.0, -3.0, 0.0, 0.5, 0.5, 0.8, 0.0]]),
            "gt_names": np.array(["vehicle", "traffic_cone"]), "gt_velocity_3d": np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0]]),
            "track_tokens": ["a", "k"], "instance_tokens": ["i1", "i2"]}
    objects = frame_objects(anns, np.array([10.0, 5.0, math.pi / 2]), "f")
    # (2, 1) rotated by 90 deg is (-1, 2); plus the ego position (10, 5).
    assert objects.pose[0] == pytest.approx([9.0, 7.0, 0.1 + math.pi / 2])
    assert objects.pose[1] == pytest.approx([13.0, 5.0, math.pi / 2])
    assert objects.velocity[0] == pytest.approx([0.0, 3.0], abs=1e-15)
    assert objects.velocity[1].tolist() == [0.0, 0.0]                  # static objects carry no velocity
    assert objects.types.tolist() == [int(AgentType.VEHICLE), int(AgentType.TRAFFIC_CONE)]
    assert objects.size.tolist() == [[4.5, 1.9], [0.5, 0.5]] and objects.track_tokens == ("a", "k")


def test_frame_objects_rejects_unknown_names_and_repeated_tokens():
    anns = {"gt_boxes": np.zeros((1, 7)), "gt_names": ["truck"], "gt_velocity_3d": np.zeros((1, 3)), "track_tokens": ["a"]}
    with pytest.raises(ValueError, match="f: gt_names='truck': unknown object type"):
        frame_objects(anns, np.zeros(3), "f")
    anns = {"gt_boxes": np.zeros((2, 7)), "gt_names": ["vehicle"] * 2, "gt_velocity_3d": np.zeros((2, 3)),
            "track_tokens": ["a", "a"]}
    with pytest.raises(ValueError, match="track_tokens repeat"):
        frame_objects(anns, np.zeros(3), "f")


def objects(*entries) -> FrameObjects:
    """entries: (token, type, x, y, heading, vx, vy)."""
    return FrameObjects(
        track_tokens=tuple(e[0] for e in entries), types=np.array([int(e[1]) for e in entries], dtype=np.int64),
        size=np.array([[4.0, 2.0]] * len(entries)).reshape(-1, 2),
        pose=np.array([e[2:5] for e in entries], dtype=np.float64).reshape(-1, 3),
        velocity=np.array([e[5:7] for e in entries], dtype=np.float64).reshape(-1, 2))


V, CONE = AgentType.VEHICLE, AgentType.TRAFFIC_CONE


def test_tracks_interpolate_linearly_between_2hz_samples_and_exist_only_between_them():
    frames = [objects(("a", V, 0.0, 0.0, 0.0, 2.0, 0.0))] + [objects(("a", V, 1.0, 4.0, 0.0, 4.0, 0.0))] + \
             [objects()] * 7
    tracks = interpolate_tracks(frames, 4.0)
    assert tracks.ids == ("a",) and tracks.valid[0].tolist() == [True] * 6 + [False] * 35
    assert tracks.pose[0, 2] == pytest.approx([0.4, 1.6, 0.0]) and tracks.velocity[0, 2] == pytest.approx([2.8, 0.0])
    assert tracks.pose[0, 5].tolist() == [1.0, 4.0, 0.0] and tracks.pose[0, 6].tolist() == [0.0, 0.0, 0.0]


def test_gaps_are_bridged_and_headings_interpolate_through_pi():
    frames = [objects(("a", V, 0.0, 0.0, 3.0, 0.0, 0.0)), objects(), objects(("a", V, 10.0, 0.0, -3.0, 0.0, 0.0))] + \
             [objects()] * 6
    tracks = interpolate_tracks(frames, 4.0)
    assert tracks.valid[0, :11].all() and not tracks.valid[0, 11:].any()
    assert tracks.pose[0, 5, 0] == pytest.approx(5.0)                   # t = 0.5 s, between the 0 s and 1 s samples
    # Unwrapped, -3 is 2 pi - 3 = 3.2832: at 0.2 s the heading is 3 + 0.2 * 0.2832, at 0.8 s it crossed pi.
    assert tracks.pose[0, 2, 2] == pytest.approx(3.0 + 0.2 * (2 * math.pi - 6.0))
    assert tracks.pose[0, 8, 2] == pytest.approx(3.0 + 0.8 * (2 * math.pi - 6.0) - 2 * math.pi)


def test_an_object_seen_once_is_copied_into_every_step():
    frames = [objects()] * 3 + [objects(("once", V, 7.0, 8.0, 0.5, 1.0, 2.0))] + [objects()] * 5
    tracks = interpolate_tracks(frames, 4.0)
    assert tracks.valid[0].all()                                         # even before 1.5 s: NAVSIM's quirk
    assert np.all(tracks.pose[0] == [7.0, 8.0, 0.5]) and np.all(tracks.velocity[0] == [1.0, 2.0])


def test_size_and_type_come_from_the_first_sample():
    first = objects(("a", V, 0.0, 0.0, 0.0, 0.0, 0.0))
    later = replace(objects(("a", CONE, 1.0, 0.0, 0.0, 0.0, 0.0)), size=np.array([[9.0, 9.0]]))
    tracks = interpolate_tracks([first, later] + [objects()] * 7, 4.0)
    assert tracks.types.tolist() == [int(V)] and tracks.size.tolist() == [[4.0, 2.0]]


def test_v11_horizon_copies_objects_seen_once_after_4s_into_the_scored_steps():
    frames = [objects()] * 9 + [objects(("late", V, 3.0, 3.0, 0.0, 0.0, 0.0))] + [objects()]
    tracks = interpolate_tracks(frames, 5.0)
    assert tracks.pose.shape == (1, 41, 3) and tracks.valid.all()
    assert interpolate_tracks(frames[:9], 4.0).num_agents == 0
    with pytest.raises(ValueError, match="expected 9 frames"):
        interpolate_tracks(frames, 4.0)


def lane_connector_map(*ids) -> RoadMap:
    ring, line = np.array([[0, 0], [1, 0], [1, 1]], float), np.array([[0, 0], [1, 0]], float)
    return RoadMap(lane_connectors=tuple(Lane(i, "B", ring, line, is_connector=True) for i in ids))


def test_light_frames_cover_five_steps_each_and_non_red_reads_green():
    frames = [[(7, True), (9, False)]] * 4 + [[(7, False)]] + [[]] * 4
    lights = traffic_light_tracks(frames, lane_connector_map("7", "9"))
    assert lights.lane_connector_ids == ("7", "9") and lights.status.shape == (2, 41)
    assert lights.status[0].tolist() == [RED] * 20 + [GREEN] * 5 + [UNKNOWN] * 16
    assert lights.status[1].tolist() == [GREEN] * 20 + [UNKNOWN] * 21
    assert traffic_light_tracks(frames, lane_connector_map("9")).lane_connector_ids == ("9",)  # 7 not in the map


@pytest.mark.parametrize("one_hot, command", [([1, 0, 0, 0], Command.LEFT), ([0, 0, 1, 0], Command.RIGHT),
                                              ([0, 0, 0, 1], Command.UNKNOWN), ([0, 0, 0, 0], Command.UNKNOWN)])
def test_driving_command(one_hot, command):
    assert driving_command(np.array(one_hot), "f") is command


def test_driving_command_rejects_non_one_hot():
    with pytest.raises(ValueError, match=r"f: driving_command=\[1, 1, 0, 0\]"):
        driving_command([1, 1, 0, 0], "f")


@pytest.mark.parametrize("overrides, message", [
    ({"num_future_frames": 7}, "num_future_frames=7: must be >= 8"),
    ({"observation_horizon_s": 5.0}, "observation_horizon_s=5.0: needs num_future_frames >= 10"),
    ({"observation_horizon_s": 3.0}, "must be 4.0 (v2) or 5.0 (v1.1)"),
    ({"camera_names": ("cam_x",)}, "camera_names='cam_x': unknown camera"),
    ({"data_root": ""}, "data_root='': must be a non-empty path"),
    ({"map_radius": 0.0}, "map_radius=0.0: must be > 0"),
])
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OpenSceneConfig(**{"data_root": "d", "maps_root": "m", **overrides})


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("OPENSCENE_DATA_ROOT", "/data/openscene")
    monkeypatch.setenv("NUPLAN_MAPS_ROOT", "/data/maps")
    config = OpenSceneConfig.from_env(split="test")
    assert (config.data_root, config.maps_root, config.split, config.map_version) == (
        "/data/openscene", "/data/maps", "test", "nuplan-maps-v1.0")
    assert config.logs_dir.as_posix() == "/data/openscene/navsim_logs/test"


# --- round trip of a hand-built scene ----------------------------------------------------------

def hand_built_scene():
    """Straight road with a signalised junction: the light of connector Ca is red for 2 s; a lead car at
    8 m/s, a pedestrian crossing beyond the junction, a cone on lane b and a car on lane b seen 1..3 s."""
    data = straight_road_dict(speed=10.0, with_intersection=True)
    add_box(data, "V", "vehicle", 40.0, 0.0, speed=8.0)
    add_box(data, "P", "pedestrian", 125.0, -6.0, heading=math.pi / 2, speed=1.25, length=0.6, width=0.6)
    add_box(data, "K", "traffic_cone", 60.0, 3.5, length=0.5, width=0.5)
    add_box(data, "L", "vehicle", 0.0, 3.5, speed=12.0, times=np.round(np.arange(10, 31) * 0.1, 1))
    data["traffic_lights"] = [
        {"lane_connector_id": "Ca", "states": [{"t": k / 10, "status": "red" if k < 20 else "green"} for k in range(41)]},
        {"lane_connector_id": "Cb", "states": [{"t": k / 10, "status": "green"} for k in range(41)]},
    ]
    return scene_from_dict(data)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("openscene")
    scene = hand_built_scene()
    (entry,) = export_scenes([scene], root, cameras=True, camera_size=(64, 32))
    clear_map_cache()
    config = OpenSceneConfig(data_root=str(root), maps_root=str(root / "maps"), split="synthetic")
    return scene, entry, config, load_scenes(config)[0]


def test_round_trip_keeps_ego_route_command_and_human_trajectory(exported):
    scene, entry, _, back = exported
    assert back.token == scene.token and back.command is Command.STRAIGHT
    assert back.route_roadblock_ids == tuple(str(entry.fids.roadblocks[r]) for r in scene.route_roadblock_ids)
    assert np.array_equal(back.history.t, scene.history.t) and np.array_equal(back.history.pose, scene.history.pose)
    assert np.array_equal(back.history.velocity, scene.history.velocity)   # 10 m/s is exact in float32
    assert back.human_trajectory.interval == 0.5
    assert np.abs(back.human_trajectory.poses - scene.human_trajectory.poses).max() < 1e-12


def test_round_trip_keeps_constant_velocity_agents_at_every_step(exported):
    scene, _, _, back = exported
    agents, original = back.agents, scene.agents
    assert agents.ids == ("V", "P", "K", "L")                              # first-appearance order
    assert np.array_equal(agents.types, original.types) and np.array_equal(agents.size, original.size)
    assert np.array_equal(agents.valid, original.valid)                    # L: exactly steps 10..30
    assert np.abs(agents.pose - original.pose).max() < 1e-12
    assert np.abs(agents.velocity[:2] - original.velocity[:2]).max() < 1e-12
    assert np.all(agents.velocity[2] == 0.0)                               # the cone


def test_round_trip_keeps_lights_and_map(exported):
    scene, entry, _, back = exported
    fids = entry.fids.lanes
    assert back.traffic_lights.lane_connector_ids == (str(fids["Ca"]), str(fids["Cb"]))
    assert np.array_equal(back.traffic_lights.status, scene.traffic_lights.status)
    assert sorted(int(lane.id) for lane in (*back.map.lanes, *back.map.lane_connectors)) == sorted(fids.values())
    assert len(back.map.roadblocks) == 3 and len(back.map.intersections) == 1


def score_table(scenes, plans):
    rows = {}
    for metric in (Metric.PDMS, Metric.EPDMS):
        prep = prepare_scenes(scenes, ScoringConfig(metric=metric))
        rows[metric] = score_rows(score_poses(prep, plans, 0.5))
    return rows


def test_round_trip_gives_identical_pdms_and_epdms_sub_scores(exported):
    scene, _, _, back = exported
    human = torch.as_tensor(scene.human_trajectory.poses)
    slow = human.clone()
    slow[:, 0] *= 0.75                                                      # fractional ego progress
    lane_change = human.clone()
    lane_change[:, 1] = torch.linspace(0.4, 3.2, 8)                        # into lane b: fails lane keeping
    rear_end = human.clone()
    rear_end[:, 0] *= 1.6                                                   # into the lead car
    plans = torch.stack([human, slow, lane_change, rear_end])[None].expand(2, 4, 8, 3)
    table = score_table([scene, back], plans)
    for metric, rows in table.items():
        for original, round_trip in zip(rows[0], rows[1]):
            assert original.keys() == round_trip.keys()
            for key in original:
                assert abs(original[key] - round_trip[key]) <= 1e-9, (metric, key, original, round_trip)
    human_row, slow_row, _, rear_row = table[Metric.PDMS][0]               # the cases are not trivial
    assert 0.0 < slow_row["ep"] < human_row["ep"] < 1.0 and 0.0 < slow_row["pdms"] < human_row["pdms"]
    assert table[Metric.EPDMS][0][2]["lk"] == 0.0 and rear_row["nc"] == 0.0 and rear_row["c"] == 0.0


def test_camera_images_and_calibration(exported):
    scene, _, config, _ = exported
    images = load_camera_images(config, scene.token)
    assert list(images) == list(config.camera_names)
    front = images["cam_f0"]
    assert front.image.shape == (32, 64, 3) and front.image.dtype == np.uint8
    assert front.intrinsics[0, 2] == 32.0 and front.sensor2lidar_translation[2] == pytest.approx(1.57)
    assert front.image[0].mean(axis=0)[2] > front.image[0].mean(axis=0)[0]   # RGB order: the sky is blue
    assert load_camera_images(config, scene.token, ["cam_b0"], history_index=0)["cam_b0"].image.shape == (32, 64, 3)
    with pytest.raises(ValueError, match="camera_names='cam_z'"):
        load_camera_images(config, scene.token, ["cam_z"])
    with pytest.raises(ValueError, match="token='nope': no scene"):
        load_camera_images(config, "nope")


# --- windows and errors ------------------------------------------------------------------------

def test_windows_follow_navsim_scene_filter(exported):
    scene, _, config, _ = exported
    assert list(iter_scene_tokens(config)) == [scene.token]
    assert list(iter_scene_tokens(replace(config, frame_interval=1))) == [scene.token]  # only one 12-frame window
    assert list(iter_scene_tokens(replace(config, num_future_frames=10))) == []          # logs hold 12 frames
    assert list(iter_scene_tokens(replace(config, log_names=("other",)))) == []
    assert len(load_scenes(config, max_scenes=1)) == 1
    assert [load_scenes(config, tokens=[t])[0].token for t in iter_scene_tokens(config)] == [scene.token]


def copy_export(exported, tmp_path):
    import shutil

    _, entry, config, _ = exported
    shutil.copytree(config.data_root, tmp_path / "root")
    clear_map_cache()
    return entry, replace(config, data_root=str(tmp_path / "root"), maps_root=str(tmp_path / "root" / "maps"))


def test_missing_camera_image_names_the_file(exported, tmp_path):
    scene, entry, _, _ = exported
    _, config = copy_export(exported, tmp_path)
    image = next((config.sensor_dir / entry.log_name / "CAM_F0").glob(f"{scene.token}.jpg"))
    image.unlink()
    with pytest.raises(ValueError, match=f"{image}: cannot read the camera image"):
        load_camera_images(config, scene.token, ["cam_f0"])


def test_windows_without_route_are_skipped_unless_asked(exported, tmp_path):
    entry, config = copy_export(exported, tmp_path)
    log = config.logs_dir / f"{entry.log_name}.pkl"
    frames = pickle.loads(log.read_bytes())
    for frame in frames:
        frame["roadblock_ids"] = []
    log.write_bytes(pickle.dumps(frames))
    assert list(iter_scene_tokens(config)) == []
    (scene,) = load_scenes(replace(config, has_route=False))
    assert scene.route_roadblock_ids == () and scene.map.lanes                 # the patch is still loaded


@pytest.mark.parametrize("breakage, message", [
    ("no_logs", "data_root='{root}': no log folder {root}/navsim_logs/synthetic"),
    ("no_index", "maps_root='{root}/maps': no map index {root}/maps/nuplan-maps-v1.0.json"),
    ("bad_location", "map_location='nowhere': not in {root}/maps/nuplan-maps-v1.0.json"),
    ("corrupt_log", "{log}: cannot read the log pickle"),
    ("missing_key", "{log}: frame 5: missing key 'anns'"),
    ("unknown_token", "tokens='nope': no scene with this token in {root}/navsim_logs/synthetic"),
])
def test_bad_data_gives_one_line_errors_naming_the_path(exported, tmp_path, breakage, message):
    entry, config = copy_export(exported, tmp_path)
    root = tmp_path / "root"
    log = config.logs_dir / f"{entry.log_name}.pkl"
    tokens = None
    if breakage == "no_logs":
        config = replace(config, split="synthetic")
        import shutil
        shutil.rmtree(root / "navsim_logs")
    elif breakage == "no_index":
        (root / "maps" / "nuplan-maps-v1.0.json").unlink()
    elif breakage in ("bad_location", "missing_key"):
        frames = pickle.loads(log.read_bytes())
        if breakage == "bad_location":
            frames[3]["map_location"] = "nowhere"
        else:
            del frames[5]["anns"]
        log.write_bytes(pickle.dumps(frames))
    elif breakage == "corrupt_log":
        log.write_bytes(b"not a pickle")
    else:
        tokens = ["nope"]
    with pytest.raises(ValueError) as error:
        load_scenes(config, tokens=tokens)
    text = str(error.value)
    assert "\n" not in text and message.format(root=root, log=log) in text
