"""Write roadloop scenes in the OpenScene / NAVSIM on-disk format, so `envs.backends.openscene` can be
exercised end to end without real data (and synthetic scenes can be fed to NAVSIM tooling).

    python -m tools.export_openscene --scenes DIR_OF_SCENE_JSONS --out ROOT [--split synthetic]
                                     [--cameras [--camera-size 1920x1080]]

Writes ROOT/navsim_logs/<split>/<log>.pkl (one log of 4 history + 8 future frames at 2 Hz per scene),
ROOT/maps/nuplan-maps-v1.0.json and ROOT/maps/<location>/<version>/map.gpkg (one synthetic location per
distinct map) and, with --cameras, ROOT/sensor_blobs/<split>/<log>/CAM_*/<token>.jpg rendered by
envs.sim.render_camera. Point data_root at ROOT and maps_root at ROOT/maps. What each frame holds, and what a
round trip keeps: docs/openscene.md. Bad input exits non-zero with a one-line message.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from envs.backends.nuplan_map import MapFids, write_nuplan_map
from envs.backends.openscene import FRAME_INTERVAL_S, HUMAN_POSES, normalize_angle
from envs.sim.camera import NAVSIM_IMAGE_SIZE, CameraRig
from envs.sim.map import RoadMap
from envs.sim.scene import AgentType, LightStatus, Scene
from envs.sim.vehicle import PACIFICA

MAP_VERSION = "nuplan-maps-v1.0"
"""Name of the map index json (NAVSIM's NUPLAN_MAP_VERSION)."""
LOCATION_VERSION = "roadloop.1"
"""Version folder of every exported location (<location>/<version>/map.gpkg)."""
HISTORY_FRAMES = 4
FUTURE_FRAMES = HUMAN_POSES
BASE_TIMESTAMP_US = 1_600_000_000_000_000
"""Timestamp of every exported log's first frame [us]; frames follow at exactly 0.5 s."""
BOX_HEIGHT_M = 1.5
"""gt_boxes height: roadloop boxes are 2-D, NAVSIM never reads the height."""
STEPS_PER_FRAME = 5
"""0.1 s scored steps per 0.5 s frame."""


@dataclass(frozen=True)
class ExportedScene:
    """Where one scene went."""

    token: str
    log_name: str
    location: str
    fids: MapFids
    """roadloop map id -> nuPlan fid (read back as str(fid))."""


def map_location(road_map: RoadMap) -> str:
    """Synthetic location name of a map: 'roadloop-' + 12 hex of a digest of its content."""
    digest = hashlib.sha256()
    for obj in road_map.all_polygon_objects():
        digest.update(repr((type(obj).__name__, obj.id)).encode())
        digest.update(np.ascontiguousarray(obj.polygon, np.float64).tobytes())
        if hasattr(obj, "centerline"):
            digest.update(repr((obj.roadblock_id, obj.speed_limit, obj.successors, obj.predecessors,
                                obj.is_connector)).encode())
            digest.update(np.ascontiguousarray(obj.centerline, np.float64).tobytes())
    for name in ("lanes", "lane_connectors", "roadblocks", "roadblock_connectors", "intersections", "carparks",
                 "crosswalks", "stop_lines"):
        digest.update(f"{name}:{len(getattr(road_map, name))}".encode())
    return f"roadloop-{digest.hexdigest()[:12]}"


def _hex(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _quaternion(heading: float) -> np.ndarray:
    """w, x, y, z of a rotation by `heading` about z."""
    return np.array([np.cos(heading / 2), 0.0, 0.0, np.sin(heading / 2)])


def _future_ego(scene: Scene) -> np.ndarray:
    """(8, 3) global rear-axle poses at 0.5 .. 4.0 s from the human trajectory."""
    plan = scene.human_trajectory
    if plan is None:
        raise ValueError(f"scene {scene.token}: human_trajectory=None: the future ego frames need it")
    stride = FRAME_INTERVAL_S / plan.interval
    if abs(stride - round(stride)) > 1e-9 or len(plan.poses) < FUTURE_FRAMES * round(stride):
        raise ValueError(f"scene {scene.token}: human_trajectory: needs poses at every 0.5 s up to 4 s "
                         f"(interval={plan.interval}, {len(plan.poses)} poses)")
    local = np.asarray(plan.poses, np.float64)[round(stride) - 1::round(stride)][:FUTURE_FRAMES]
    x0, y0, h0 = scene.ego_pose
    cos, sin = np.cos(h0), np.sin(h0)
    return np.stack([x0 + local[:, 0] * cos - local[:, 1] * sin, y0 + local[:, 0] * sin + local[:, 1] * cos,
                     normalize_angle(h0 + local[:, 2])], axis=1)


def frame_ego_poses(scene: Scene) -> np.ndarray:
    """(12, 3) global rear-axle poses of the exported frames: the 4 history poses, then 0.5 .. 4.0 s."""
    return np.concatenate([scene.history.pose, _future_ego(scene)])


def _check_exportable(scene: Scene) -> None:
    if scene.vehicle != PACIFICA:
        raise ValueError(f"scene {scene.token}: vehicle={scene.vehicle}: OpenScene logs carry no vehicle; "
                         "NAVSIM always uses the Pacifica")
    expected = -FRAME_INTERVAL_S * np.arange(HISTORY_FRAMES - 1, -1, -1)
    if len(scene.history.t) != HISTORY_FRAMES or not np.allclose(scene.history.t, expected, atol=1e-9):
        raise ValueError(f"scene {scene.token}: ego.history t={np.asarray(scene.history.t).tolist()}: "
                         f"expected {expected.tolist()}")


def scene_frames(scene: Scene, log_name: str, location: str, fids: MapFids, rig: CameraRig | None = None) -> list[dict]:
    """The 12 OpenScene frame dicts of one scene (4 history + 8 future, 2 Hz; frame 3 is the scene token).

    Frame k shows the world at scored step s = 5 (k - 3): the agents valid then (in frame k's ego frame)
    and the light statuses then. History frames (k < 3) hold the logged ego pose/dynamics but, as scenes
    carry no agent or light history, the objects and lights of t = 0, frozen. Future ego poses come from
    the human trajectory, their dynamics from finite differences of those poses. `rig` gives the camera
    calibration written in `cams` (default: the 8 preset NAVSIM cameras at 1920 x 1080).
    """
    _check_exportable(scene)
    rig = rig or CameraRig.navsim_all(*NAVSIM_IMAGE_SIZE)
    cur = HISTORY_FRAMES - 1
    poses = frame_ego_poses(scene)
    velocity_g = np.gradient(poses[:, :2], FRAME_INTERVAL_S, axis=0)
    accel_g = np.gradient(velocity_g, FRAME_INTERVAL_S, axis=0)
    dynamics = np.zeros((len(poses), 4))
    for k, (vg, ag, heading) in enumerate(zip(velocity_g, accel_g, poses[:, 2])):
        if k <= cur:
            dynamics[k] = [*scene.history.velocity[k], *scene.history.acceleration[k]]
        else:
            c, s = np.cos(heading), np.sin(heading)
            dynamics[k] = [c * vg[0] + s * vg[1], -s * vg[0] + c * vg[1], c * ag[0] + s * ag[1], -s * ag[0] + c * ag[1]]
    route = []
    for block in scene.route_roadblock_ids:
        if block not in fids.roadblocks:
            raise ValueError(f"scene {scene.token}: route roadblock {block!r} is not in the map")
        route.append(str(fids.roadblocks[block]))
    tokens = [scene.token if k == cur else _hex(scene.token, k) for k in range(len(poses))]
    command = np.zeros(4, dtype=np.int64)
    command[int(scene.command)] = 1
    frames = []
    for k, pose in enumerate(poses):
        step = max(k - cur, 0) * STEPS_PER_FRAME
        translation = np.array([pose[0], pose[1], 0.0])
        rotation = _quaternion(pose[2])
        ego2global = np.eye(4)
        ego2global[:3, :3] = [[np.cos(pose[2]), -np.sin(pose[2]), 0.0], [np.sin(pose[2]), np.cos(pose[2]), 0.0], [0, 0, 1]]
        ego2global[:3, 3] = translation
        frames.append({
            "token": tokens[k], "frame_idx": k, "timestamp": BASE_TIMESTAMP_US + k * 500_000,
            "log_name": log_name, "log_token": _hex(log_name), "scene_name": log_name, "scene_token": scene.token,
            "map_location": location, "vehicle_name": "roadloop", "roadblock_ids": list(route),
            "can_bus": np.concatenate([translation, rotation, np.zeros(11)]),
            "lidar_path": f"{log_name}/MergedPointCloud/{tokens[k]}.pcd",
            "lidar2ego_translation": np.zeros(3), "lidar2ego_rotation": np.array([1.0, 0.0, 0.0, 0.0]),
            "ego2global_translation": translation, "ego2global_rotation": rotation,
            "lidar2ego": np.eye(4), "ego2global": ego2global, "lidar2global": ego2global.copy(),
            "ego_dynamic_state": dynamics[k].copy(),
            "traffic_lights": _lights_at(scene, step, fids),
            "driving_command": command.copy(),
            "cams": {camera.name.upper(): {
                "data_path": f"{log_name}/{camera.name.upper()}/{tokens[k]}.jpg",
                "sensor2lidar_rotation": camera.rotation.copy(), "sensor2lidar_translation": camera.translation.copy(),
                "cam_intrinsic": camera.intrinsics.copy(), "distortion": np.zeros(5),
            } for camera in rig},
            "sample_prev": tokens[k - 1] if k > 0 else None,
            "sample_next": tokens[k + 1] if k + 1 < len(poses) else None,
            "anns": _annotations_at(scene, step, pose, tokens[k]),
        })
    return frames


def _lights_at(scene: Scene, step: int, fids: MapFids) -> list[tuple[int, bool]]:
    """(lane connector fid, is_red) of every light with a known status at `step`."""
    lights = scene.traffic_lights
    out = []
    for cid, status in zip(lights.lane_connector_ids, np.asarray(lights.status)[:, step].tolist()):
        if status != int(LightStatus.UNKNOWN):
            out.append((fids.lanes[cid], status == int(LightStatus.RED)))
    return out


def _annotations_at(scene: Scene, step: int, ego_pose: np.ndarray, frame_token: str) -> dict:
    """OpenScene `anns` of the agents valid at `step`, in the ego frame of `ego_pose`."""
    agents = scene.agents
    rows = np.flatnonzero(np.asarray(agents.valid)[:, step]) if agents.num_agents else np.zeros(0, np.int64)
    pose, velocity = np.asarray(agents.pose)[rows, step], np.asarray(agents.velocity)[rows, step]
    c, s = np.cos(ego_pose[2]), np.sin(ego_pose[2])
    dx, dy = pose[:, 0] - ego_pose[0], pose[:, 1] - ego_pose[1]
    boxes = np.zeros((len(rows), 7))
    boxes[:, 0], boxes[:, 1] = c * dx + s * dy, -s * dx + c * dy
    boxes[:, 3:5] = np.asarray(agents.size)[rows]
    boxes[:, 5] = BOX_HEIGHT_M
    boxes[:, 6] = normalize_angle(pose[:, 2] - ego_pose[2])
    local_v = np.zeros((len(rows), 3))
    local_v[:, 0], local_v[:, 1] = c * velocity[:, 0] + s * velocity[:, 1], -s * velocity[:, 0] + c * velocity[:, 1]
    ids = [agents.ids[r] for r in rows]
    return {
        "gt_boxes": boxes, "gt_names": np.array([AgentType(int(agents.types[r])).label for r in rows], dtype=object),
        "gt_velocity_3d": local_v, "instance_tokens": [_hex(frame_token, i) for i in ids], "track_tokens": ids,
    }


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_scenes(scenes: Sequence[Scene], root: str | os.PathLike, split: str = "synthetic",
                  cameras: bool = False, camera_size: tuple[int, int] = NAVSIM_IMAGE_SIZE) -> list[ExportedScene]:
    """Write every scene as one log under ROOT/navsim_logs/<split>/ and each distinct map once under
    ROOT/maps/ (merging into an existing map index); with `cameras`, also JPEGs of the 8 preset NAVSIM
    cameras (`envs.sim.render_camera`, `camera_size` = (width, height) px) for every frame under
    ROOT/sensor_blobs/<split>/. Returns where each scene went, in input order."""
    root = Path(root)
    if not split or "/" in split or split in (".", ".."):
        raise ValueError(f"split={split!r}: must be a plain folder name")
    tokens = [s.token for s in scenes]
    if len(set(tokens)) != len(tokens):
        duplicate = next(t for t in tokens if tokens.count(t) > 1)
        raise ValueError(f"token={duplicate!r}: two scenes share this token")
    width, height = camera_size
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise ValueError(f"camera_size={camera_size!r}: expected (width, height) in px, both > 0")
    rig = CameraRig.navsim_all(width, height)
    maps_dir = root / "maps"
    index_path = maps_dir / f"{MAP_VERSION}.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else {}
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{index_path}: cannot read the existing map index: {err}") from None
    written: dict[str, MapFids] = {}
    out = []
    for scene in scenes:
        _check_exportable(scene)
        location = map_location(scene.map)
        if location not in written:
            gpkg = maps_dir / location / LOCATION_VERSION / "map.gpkg"
            gpkg.parent.mkdir(parents=True, exist_ok=True)
            written[location] = write_nuplan_map(scene.map, gpkg)
            index[location] = {"version": LOCATION_VERSION}
        log_name = f"roadloop_{scene.token}"
        frames = scene_frames(scene, log_name, location, written[location], rig)
        _write_atomic(root / "navsim_logs" / split / f"{log_name}.pkl", pickle.dumps(frames, protocol=4))
        if cameras:
            _write_images(scene, frames, rig, root / "sensor_blobs" / split)
        out.append(ExportedScene(scene.token, log_name, location, written[location]))
    _write_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    return out


def _write_images(scene: Scene, frames: list[dict], rig: CameraRig, blobs: Path) -> None:
    """Render every frame from every camera of `rig` and write the JPEGs at each frame's `data_path`."""
    import cv2

    from envs.sim.frame import frame_from_scene
    from envs.sim.render_camera import render_cameras

    poses = frame_ego_poses(scene)
    worlds = [frame_from_scene(scene, max(k - (HISTORY_FRAMES - 1), 0) * STEPS_PER_FRAME, ego_pose=pose)
              for k, pose in enumerate(poses)]
    images = render_cameras(worlds, rig)                                       # (12, C, H, W, 3) RGB
    for frame, per_camera in zip(frames, images):
        for camera, image in zip(rig, per_camera):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise ValueError(f"scene {scene.token}: JPEG encoding failed for {camera.name}")
            _write_atomic(blobs / frame["cams"][camera.name.upper()]["data_path"], jpeg.tobytes())


def _camera_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise ValueError(f"--camera-size={text!r}: expected WIDTHxHEIGHT in px, e.g. 1920x1080")
    return int(width), int(height)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage + message -> our one-line error
        raise ValueError(message)


def main(argv: list[str] | None = None) -> int:
    from envs.scene_file import load_scene

    try:
        parser = _Parser(prog="python -m tools.export_openscene", description=__doc__.split("\n\n")[0])
        parser.add_argument("--scenes", required=True, type=Path, help="folder of scene/1 *.json files")
        parser.add_argument("--out", required=True, type=Path, help="output root (data_root; maps under ROOT/maps)")
        parser.add_argument("--split", default="synthetic", help="log folder name under navsim_logs/")
        parser.add_argument("--cameras", action="store_true", help="also render the 8 NAVSIM cameras as JPEGs")
        parser.add_argument("--camera-size", default="1920x1080", help="camera image WIDTHxHEIGHT [px]")
        args = parser.parse_args(argv)
        size = _camera_size(args.camera_size)
        if not args.scenes.is_dir():
            raise ValueError(f"--scenes={str(args.scenes)!r}: not a folder")
        files = sorted(args.scenes.glob("*.json"))
        if not files:
            raise ValueError(f"--scenes={str(args.scenes)!r}: no *.json scene files")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out={str(args.out)!r}: exists and is not a folder")
        exported = export_scenes([load_scene(f) for f in files], args.out, args.split, args.cameras, size)
    except ValueError as error:  # user or scene error: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2
    locations = len({e.location for e in exported})
    print(f"wrote {len(exported)} logs and {locations} maps to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
