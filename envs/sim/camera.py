"""Pinhole cameras mounted on the ego (intrinsics, sensor-to-ego extrinsics) and camera rigs.

Frames: the ego frame has its origin on the ground below the centre of the rear axle, x forward, y left,
z up [m]. The camera (optical) frame is OpenCV's: x right, y down, z along the optical axis. A pixel
(u, v) = (column, row) with (0, 0) the centre of the top-left pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Mapping, Sequence

import numpy as np

NAVSIM_IMAGE_SIZE = (1920, 1080)
"""(width, height) [px] of nuPlan/OpenScene camera images, which `cam_intrinsic` refers to."""
NAVSIM_CAMERA_NAMES = ("cam_f0", "cam_l0", "cam_l1", "cam_l2", "cam_r0", "cam_r1", "cam_r2", "cam_b0")
"""NAVSIM `SensorConfig` camera order."""
DEFAULT_HFOV_DEG = 70.0
"""Horizontal field of view of the preset cameras [deg]. With square pixels at a 2:1 image this gives
a 38.6 deg vertical FOV, the same as nuPlan's (fx = 1545 px at 1920 x 1080: 64 deg x 38.5 deg)."""
MOUNT_HEIGHT = 1.57
"""[m] above the ground; the z of nuPlan's CAM_F0 sensor-to-lidar translation (1.572 m)."""
# (x [m], y [m], yaw [deg]) of the preset mounts: cam_f0 from the nuPlan CAM_F0 calibration
# (1.66 m ahead of the rear axle); the others an approximate nuPlan-like ring, not measured values.
_PRESET_MOUNTS = {
    "cam_f0": (1.66, 0.0, 0.0),
    "cam_l0": (1.55, 0.45, 55.0),
    "cam_l1": (1.00, 0.95, 100.0),
    "cam_l2": (0.20, 0.95, 145.0),
    "cam_r0": (1.55, -0.45, -55.0),
    "cam_r1": (1.00, -0.95, -100.0),
    "cam_r2": (0.20, -0.95, -145.0),
    "cam_b0": (-1.10, 0.0, 180.0),
}


def _finite_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name}.shape={array.shape!r}: expected {shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}={array.tolist()!r}: must be finite")
    return array


@dataclass(frozen=True, eq=False)
class Camera:
    """One pinhole camera (no lens distortion) rigidly mounted on the ego.

    A point p_cam in the optical frame is p_ego = rotation @ p_cam + translation in the ego frame, and
    projects to pixel (u, v) = (K @ p_cam)[:2] / p_cam[2].
    """

    name: str
    width: int
    """[px]"""
    height: int
    """[px]"""
    intrinsics: np.ndarray = field(metadata={"dims": "3 3"})
    """K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]] [px]."""
    rotation: np.ndarray = field(metadata={"dims": "3 3"})
    """Sensor-to-ego rotation: its columns are the optical x (right), y (down), z (forward) axes in the
    ego frame."""
    translation: np.ndarray = field(metadata={"dims": "3"})
    """Optical centre in the ego frame [m] (relative to the ground point below the rear axle)."""

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{self.name}.{name}={value!r}: must be a positive int")
        K = _finite_array(f"{self.name}.intrinsics", self.intrinsics, (3, 3))
        if not (K[0, 0] > 0 and K[1, 1] > 0 and K[1, 0] == 0 and np.array_equal(K[2], [0.0, 0.0, 1.0])):
            raise ValueError(f"{self.name}.intrinsics={K.tolist()!r}: need fx, fy > 0 and rows [.., 0 fy cy, 0 0 1]")
        R = _finite_array(f"{self.name}.rotation", self.rotation, (3, 3))
        if not (np.allclose(R.T @ R, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0):
            raise ValueError(f"{self.name}.rotation={R.tolist()!r}: must be a proper rotation (R^T R = I, det 1)")
        t = _finite_array(f"{self.name}.translation", self.translation, (3,))
        object.__setattr__(self, "intrinsics", K)
        object.__setattr__(self, "rotation", R)
        object.__setattr__(self, "translation", t)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @classmethod
    def mounted(cls, name: str, width: int, height: int, hfov_deg: float, x: float, y: float, z: float,
                yaw_deg: float, pitch_deg: float = 0.0) -> "Camera":
        """Camera with square pixels, principal point at the image centre, no roll.

        hfov_deg: horizontal field of view; (x, y, z): optical centre in the ego frame [m]; yaw_deg: left of
        the ego's forward axis; pitch_deg: positive looks down.
        """
        if not 0.0 < hfov_deg < 180.0:
            raise ValueError(f"hfov_deg={hfov_deg!r}: must lie in (0, 180)")
        focal = width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)
        K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
        yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
        forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])
        right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
        down = np.cross(forward, right)
        return cls(name, width, height, K, np.stack([right, down, forward], axis=1), np.array([x, y, z]))

    @cached_property
    def key(self) -> bytes:
        """Bytes identifying the camera's geometry (for caches)."""
        return b"".join([self.name.encode(), np.array([self.width, self.height]).tobytes(),
                         self.intrinsics.tobytes(), self.rotation.tobytes(), self.translation.tobytes()])

    def ego_to_camera(self, points_ego: np.ndarray) -> np.ndarray:
        """Points (N, 3) in the ego frame [m] -> (N, 3) in the optical frame."""
        return (np.asarray(points_ego, dtype=np.float64) - self.translation) @ self.rotation

    def project(self, points_ego: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project ego-frame points (N, 3) [m] -> (uv (N, 2) [px], depth (N,) [m]).

        depth is the optical-axis coordinate; a point behind the camera has depth <= 0, its uv is NaN and
        renderers never draw it. uv may lie outside the image.
        """
        points = _finite_array("points_ego", points_ego, np.shape(points_ego))
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points_ego.shape={points.shape!r}: expected (N, 3)")
        cam = self.ego_to_camera(points)
        depth = cam[:, 2]
        pixels = cam @ self.intrinsics.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.where(depth[:, None] > 0, pixels[:, :2] / depth[:, None], np.nan)
        return uv, depth


@dataclass(frozen=True, eq=False)
class CameraRig:
    """Cameras rendered together (C of them); all share one image size so images stack to (C, H, W, 3)."""

    cameras: tuple[Camera, ...]

    def __post_init__(self):
        cameras = tuple(self.cameras)
        if not cameras or not all(isinstance(c, Camera) for c in cameras):
            raise ValueError(f"cameras={self.cameras!r}: need a non-empty sequence of Camera")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"cameras={names!r}: names must be unique")
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise ValueError(f"cameras={names!r}: image sizes {sorted(sizes)} differ; a rig needs one size")
        object.__setattr__(self, "cameras", cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self) -> Iterator[Camera]:
        return iter(self.cameras)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cameras)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) [px]."""
        return self.cameras[0].height, self.cameras[0].width

    @classmethod
    def navsim(cls, names: Sequence[str], width: int = 256, height: int = 128,
               hfov_deg: float = DEFAULT_HFOV_DEG) -> "CameraRig":
        """Preset nuPlan-like cameras by NAVSIM name (see `NAVSIM_CAMERA_NAMES`), in the order given."""
        unknown = [n for n in names if n not in _PRESET_MOUNTS]
        if unknown:
            raise ValueError(f"names={list(names)!r}: unknown {unknown} (valid: {', '.join(NAVSIM_CAMERA_NAMES)})")
        return cls(tuple(Camera.mounted(n, width, height, hfov_deg, *_PRESET_MOUNTS[n][:2], MOUNT_HEIGHT,
                                        _PRESET_MOUNTS[n][2]) for n in names))

    @classmethod
    def navsim_front(cls, width: int = 256, height: int = 128, hfov_deg: float = DEFAULT_HFOV_DEG) -> "CameraRig":
        """cam_l0, cam_f0, cam_r0 (left to right, so images concatenate into a panorama)."""
        return cls.navsim(("cam_l0", "cam_f0", "cam_r0"), width, height, hfov_deg)

    @classmethod
    def navsim_all(cls, width: int = 256, height: int = 128, hfov_deg: float = DEFAULT_HFOV_DEG) -> "CameraRig":
        """All 8 NAVSIM cameras in `NAVSIM_CAMERA_NAMES` order."""
        return cls.navsim(NAVSIM_CAMERA_NAMES, width, height, hfov_deg)

    @classmethod
    def from_navsim(cls, cams: Mapping[str, Mapping], lidar_to_ego: np.ndarray, width: int = 256,
                    height: int = 128, names: Sequence[str] | None = None,
                    source_size: tuple[int, int] = NAVSIM_IMAGE_SIZE) -> "CameraRig":
        """Rig from an OpenScene log frame's `cams` dict (keys CAM_F0.. or cam_f0..), each entry holding
        `cam_intrinsic` (3, 3), `sensor2lidar_rotation` (3, 3) and `sensor2lidar_translation` (3,).

        lidar_to_ego: (4, 4) homogeneous lidar-to-ego transform, e.g. the frame's `lidar2ego`; the camera
        pose is lidar_to_ego @ sensor2lidar. Intrinsics refer to `source_size` (width, height) images and
        are scaled per axis to (width, height) (a plain resize, no crop). names: cameras to keep and
        their order (default: the dict's order), lower-case.
        """
        T = _finite_array("lidar_to_ego", lidar_to_ego, (4, 4))
        if not (np.allclose(T[3], [0.0, 0.0, 0.0, 1.0])):
            raise ValueError(f"lidar_to_ego={T.tolist()!r}: last row must be [0, 0, 0, 1]")
        by_name = {str(k).lower(): v for k, v in cams.items()}
        names = tuple(by_name) if names is None else tuple(n.lower() for n in names)
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"names={list(names)!r}: {missing} not in cams (have {sorted(by_name)})")
        scale = np.diag([width / source_size[0], height / source_size[1], 1.0])
        cameras = []
        for n in names:
            entry = by_name[n]
            for key in ("cam_intrinsic", "sensor2lidar_rotation", "sensor2lidar_translation"):
                if key not in entry:
                    raise ValueError(f"cams[{n!r}]: missing {key!r}")
            K = scale @ _finite_array(f"{n}.cam_intrinsic", entry["cam_intrinsic"], (3, 3))
            R = _finite_array(f"{n}.sensor2lidar_rotation", entry["sensor2lidar_rotation"], (3, 3))
            t = _finite_array(f"{n}.sensor2lidar_translation", entry["sensor2lidar_translation"], (3,))
            cameras.append(Camera(n, width, height, K, T[:3, :3] @ R, T[:3, :3] @ t + T[:3, 3]))
        return cls(tuple(cameras))
