"""tools.export_openscene: generator scenes survive export -> envs.backends.openscene exactly as far as
the 2 Hz format allows (compared with an independent re-sampling), with identical PDMS/EPDMS; the CLI."""

import json
import pickle
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.backends.nuplan_map import clear_map_cache
from envs.backends.openscene import OpenSceneConfig, load_scenes
from envs.metrics.scorer import Metric, ScoringConfig, prepare_scenes, score_poses, score_rows
from envs.scene_file import save_scene, scene_from_dict
from envs.sim.scene import AgentTracks, AgentType, EgoHistory, LightStatus, TrafficLights
from envs.sim.vehicle import PACIFICA
from scenarios import build_scene
from tests.scene_builders import straight_road_dict
from tools.export_openscene import export_scenes, main, map_location

REPO = Path(__file__).resolve().parents[2]
KNOTS = np.arange(0, 41, 5)
"""Scored steps that coincide with the 2 Hz OpenScene frames."""


def openscene_view(scene):
    """What the OpenScene format can hold of `scene`, computed independently of the reader: agents sampled
    at the 2 Hz frames and re-interpolated linearly (np.interp; heading unwrapped), tracks seen once copied
    everywhere, static objects without velocity; lights sampled at the frames and held 0.5 s, yellow read
    as green; float32 ego velocity/acceleration; no reference plan."""
    agents, steps_t = scene.agents, np.arange(41) / 10
    ids, types, sizes, poses, velocities, valids = [], [], [], [], [], []
    for a, agent_id in enumerate(agents.ids):
        seen = KNOTS[agents.valid[a, KNOTS]]
        if not len(seen):
            continue
        samples = np.concatenate([agents.pose[a, seen], agents.velocity[a, seen]], axis=1)
        if agents.types[a] > int(AgentType.BICYCLE):
            samples[:, 3:] = 0.0
        if len(seen) == 1:
            state, valid = np.repeat(samples, 41, axis=0), np.ones(41, bool)
        else:
            knot_t = seen / 10
            samples[:, 2] = np.unwrap(samples[:, 2])
            state = np.stack([np.interp(steps_t, knot_t, samples[:, c]) for c in range(5)], axis=1)
            state[:, 2] = np.arctan2(np.sin(state[:, 2]), np.cos(state[:, 2]))
            valid = (steps_t >= knot_t[0] - 1e-9) & (steps_t <= knot_t[-1] + 1e-9)
        ids.append(agent_id)
        types.append(agents.types[a])
        sizes.append(agents.size[a])
        poses.append(np.where(valid[:, None], state[:, :3], 0.0))
        velocities.append(np.where(valid[:, None], state[:, 3:], 0.0))
        valids.append(valid)
    tracks = AgentTracks(tuple(ids), np.array(types, np.int64), np.array(sizes).reshape(-1, 2),
                         np.array(poses).reshape(-1, 41, 3), np.array(velocities).reshape(-1, 41, 2),
                         np.array(valids).reshape(-1, 41)) if ids else AgentTracks.empty()
    status = np.repeat(np.asarray(scene.traffic_lights.status)[:, KNOTS], 5, axis=1)[:, :41]
    status[status == int(LightStatus.YELLOW)] = int(LightStatus.GREEN)
    known = (status != int(LightStatus.UNKNOWN)).any(axis=1)
    lights = TrafficLights(tuple(np.array(scene.traffic_lights.lane_connector_ids)[known].tolist()), status[known])
    history = scene.history
    float32 = lambda a: np.asarray(a).astype(np.float32).astype(np.float64)  # noqa: E731
    history = EgoHistory(history.t, history.pose, float32(history.velocity), float32(history.acceleration))
    return replace(scene, agents=tracks, traffic_lights=lights, history=history, reference_trajectory=None)


@pytest.fixture(scope="module")
def urban(tmp_path_factory):
    scenes = [build_scene("urban_drive", None, seed) for seed in (1, 2)]
    root = tmp_path_factory.mktemp("export")
    exported = export_scenes(scenes, root)
    clear_map_cache()
    config = OpenSceneConfig(data_root=str(root), maps_root=str(root / "maps"), split="synthetic")
    return scenes, exported, config, load_scenes(config, tokens=[s.token for s in scenes])


def test_generator_scenes_read_back_as_their_2hz_view(urban):
    scenes, exported, _, back = urban
    assert any(s.traffic_lights.lane_connector_ids for s in scenes)       # lights and junctions are exercised
    for scene, entry, read in zip(scenes, exported, back):
        view = openscene_view(scene)
        assert read.token == scene.token and read.command is scene.command
        assert np.array_equal(read.history.t, view.history.t)
        assert np.array_equal(read.history.pose[:, :2], view.history.pose[:, :2])
        assert np.abs(read.history.pose[:, 2] - view.history.pose[:, 2]).max() < 1e-15   # via a quaternion
        assert np.array_equal(read.history.velocity, view.history.velocity)
        assert np.array_equal(read.history.acceleration, view.history.acceleration)
        assert np.abs(read.human_trajectory.poses - scene.human_trajectory.poses).max() < 1e-9
        order = [view.agents.ids.index(i) for i in read.agents.ids]
        assert sorted(order) == list(range(view.agents.num_agents))
        assert np.array_equal(read.agents.valid, view.agents.valid[order])
        assert np.array_equal(read.agents.types, view.agents.types[order])
        assert np.abs(read.agents.pose - view.agents.pose[order]).max() < 1e-9
        assert np.abs(read.agents.velocity - view.agents.velocity[order]).max() < 1e-9
        fid = {cid: str(f) for cid, f in entry.fids.lanes.items()}
        expected_lights = dict(zip((fid[c] for c in view.traffic_lights.lane_connector_ids), view.traffic_lights.status))
        assert dict(zip(read.traffic_lights.lane_connector_ids, read.traffic_lights.status.tolist())) == \
               {k: v.tolist() for k, v in expected_lights.items()}


def test_whole_map_reads_back_with_a_large_radius(urban):
    scenes, _, config, _ = urban
    for scene, read in zip(scenes, load_scenes(replace(config, map_radius=1e4))):
        for name in ("lanes", "lane_connectors", "roadblocks", "roadblock_connectors", "intersections", "carparks",
                     "crosswalks", "stop_lines"):
            assert [o.polygon.tolist() for o in getattr(read.map, name)] == \
                   [o.polygon.tolist() for o in getattr(scene.map, name)], name


def test_round_trip_scores_equal_the_2hz_views_scores(urban):
    scenes, _, _, back = urban
    views = [openscene_view(s) for s in scenes]
    human = torch.as_tensor(np.stack([s.human_trajectory.poses for s in scenes]))
    slow = human.clone()
    slow[..., :2] *= 0.6
    swerve = human.clone()
    swerve[..., 1] += torch.linspace(0.5, 4.0, 8)
    plans = torch.stack([human, slow, swerve], dim=1).repeat(2, 1, 1, 1)   # (4, 3, 8, 3)
    for metric in (Metric.PDMS, Metric.EPDMS):
        rows = score_rows(score_poses(prepare_scenes([*views, *back], ScoringConfig(metric=metric)), plans, 0.5))
        for expected, got in zip(rows[:2], rows[2:]):
            for plan_expected, plan_got in zip(expected, got):
                for key, value in plan_expected.items():
                    assert abs(value - plan_got[key]) <= 1e-9, (metric, key, plan_expected, plan_got)
        assert min(row["pdms"] for scene_rows in rows for row in scene_rows) < 1.0    # not all trivially perfect


def test_scenes_sharing_a_map_share_one_location(tmp_path):
    first = scene_from_dict(straight_road_dict())
    second = replace(first, token="straight0000002")
    other = scene_from_dict(straight_road_dict(with_intersection=True) | {"token": "junction0000001"})
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "nuplan-maps-v1.0.json").write_text(json.dumps({"us-ma-boston": {"version": "9.12.1817"}}))
    exported = export_scenes([first, second, other], tmp_path)
    assert exported[0].location == exported[1].location == map_location(first.map) != exported[2].location
    index = json.loads((tmp_path / "maps" / "nuplan-maps-v1.0.json").read_text())
    assert set(index) == {"us-ma-boston", exported[0].location, exported[2].location}   # merged, not replaced
    assert len(list((tmp_path / "maps").glob("roadloop-*/*/map.gpkg"))) == 2
    frames = pickle.loads((tmp_path / "navsim_logs" / "synthetic" / f"{exported[0].log_name}.pkl").read_bytes())
    assert len(frames) == 12 and frames[3]["token"] == first.token
    assert [f["timestamp"] - frames[0]["timestamp"] for f in frames] == [500_000 * k for k in range(12)]
    assert frames[0]["anns"]["track_tokens"] == frames[3]["anns"]["track_tokens"]   # history: t = 0 objects


@pytest.mark.parametrize("change, message", [
    ({"vehicle": replace(PACIFICA, length=4.0)}, "OpenScene logs carry no vehicle"),
    ({"human_trajectory": None}, "human_trajectory=None"),
])
def test_unexportable_scenes_are_rejected(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        export_scenes([replace(scene_from_dict(straight_road_dict()), **change)], tmp_path)


def test_duplicate_tokens_and_bad_split_are_rejected(tmp_path):
    scene = scene_from_dict(straight_road_dict())
    with pytest.raises(ValueError, match="token='straight0000001': two scenes share this token"):
        export_scenes([scene, scene], tmp_path)
    with pytest.raises(ValueError, match="split='a/b'"):
        export_scenes([scene], tmp_path, split="a/b")


def test_cli_writes_byte_identical_exports(tmp_path, capsys):
    scenes_dir = tmp_path / "scenes"
    scenes_dir.mkdir()
    save_scene(scene_from_dict(straight_road_dict(with_intersection=True)), scenes_dir / "a.json")
    for out in ("one", "two"):
        assert main(["--scenes", str(scenes_dir), "--out", str(tmp_path / out), "--split", "mini"]) == 0
    assert "wrote 1 logs and 1 maps" in capsys.readouterr().err
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".pkl", ".gpkg", ".json"}
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    config = OpenSceneConfig(data_root=str(tmp_path / "one"), maps_root=str(tmp_path / "one" / "maps"))
    clear_map_cache()
    assert [s.token for s in load_scenes(config)] == ["straight0000001"]


@pytest.mark.parametrize("args, message", [
    (["--scenes", "{tmp}/missing", "--out", "{tmp}/o"], "--scenes='{tmp}/missing': not a folder"),
    (["--scenes", "{tmp}", "--out", "{tmp}/o"], "--scenes='{tmp}': no *.json scene files"),
    (["--scenes", "{tmp}", "--out", "{tmp}/o", "--camera-size", "big"], "--camera-size='big': expected WIDTHxHEIGHT"),
    (["--out", "{tmp}/o"], "the following arguments are required: --scenes"),
])
def test_bad_arguments_give_one_line_errors(tmp_path, capsys, args, message):
    assert main([a.format(tmp=tmp_path) for a in args]) != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(tmp=tmp_path) in lines[0]


def test_bad_argument_in_a_subprocess_exits_non_zero_without_traceback(tmp_path):
    run = subprocess.run([sys.executable, "-m", "tools.export_openscene", "--scenes", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "Traceback" not in run.stderr + run.stdout
    assert run.stderr.strip().splitlines() == [f"error: --scenes='{tmp_path / 'nope'}': not a folder"]
