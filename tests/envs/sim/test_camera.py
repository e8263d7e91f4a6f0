"""Pinhole cameras: presets, projection, OpenScene calibration import."""

import math

import numpy as np
import pytest

from envs.sim.camera import DEFAULT_HFOV_DEG, MOUNT_HEIGHT, NAVSIM_CAMERA_NAMES, Camera, CameraRig

# nuPlan CAM_F0 calibration (sensor-to-lidar), as OpenScene stores it for 1920 x 1080 images
NUPLAN_K = np.array([[1545.0, 0.0, 960.0], [0.0, 1545.0, 560.0], [0.0, 0.0, 1.0]])
NUPLAN_R = np.array([[-0.00395669, -0.03969443, 0.99920403],
                     [-0.99971496, -0.02336898, -0.00488707],
                     [0.02354437, -0.99893856, -0.03959065]])
NUPLAN_T = np.array([1.66433035, -1.32379618e-03, 1.57190200])


def test_mounted_camera_intrinsics_and_axes():
    cam = Camera.mounted("c", 256, 128, 90.0, 1.0, 0.0, 1.5, yaw_deg=0.0)
    assert np.allclose(cam.intrinsics, [[128.0, 0, 128.0], [0, 128.0, 64.0], [0, 0, 1]])   # f = 128 / tan 45
    # optical x right = ego -y, y down = ego -z, z forward = ego +x
    assert np.allclose(cam.rotation, [[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    assert np.allclose(cam.translation, [1.0, 0.0, 1.5])


def test_point_straight_ahead_projects_to_principal_point():
    rig = CameraRig.navsim_front()
    front = rig.cameras[1]
    assert front.name == "cam_f0"
    uv, depth = front.project(front.translation[None] + [[10.0, 0.0, 0.0]])
    assert np.allclose(uv, [[128.0, 64.0]]) and np.allclose(depth, [10.0])
    # 1 m left and 1 m up at 10 m: f / 10 pixels left of and above the centre
    focal = 128.0 / math.tan(math.radians(DEFAULT_HFOV_DEG / 2))
    uv, _ = front.project(front.translation[None] + [[10.0, 1.0, 1.0]])
    assert np.allclose(uv, [[128.0 - focal / 10, 64.0 - focal / 10]])


def test_point_behind_camera_has_negative_depth_and_no_pixel():
    front = CameraRig.navsim_front().cameras[1]
    uv, depth = front.project(front.translation[None] + [[-5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    assert depth[0] == pytest.approx(-5.0) and np.isnan(uv[0]).all()
    assert depth[1] == pytest.approx(5.0) and np.isfinite(uv[1]).all()


def test_side_camera_looks_along_its_yaw():
    left = CameraRig.navsim_front().cameras[0]
    assert left.name == "cam_l0"
    yaw = math.radians(55.0)
    uv, depth = left.project(left.translation[None] + 8.0 * np.array([[math.cos(yaw), math.sin(yaw), 0.0]]))
    assert np.allclose(uv, [[128.0, 64.0]]) and depth[0] == pytest.approx(8.0)


def test_presets_names_size_and_height():
    front = CameraRig.navsim_front(320, 160)
    assert front.names == ("cam_l0", "cam_f0", "cam_r0") and front.image_size == (160, 320)
    all8 = CameraRig.navsim_all()
    assert all8.names == NAVSIM_CAMERA_NAMES and len(all8) == 8
    assert all(c.translation[2] == MOUNT_HEIGHT for c in all8)
    # the back camera looks backwards: a point 10 m behind it lands on its principal point
    back = all8.cameras[-1]
    uv, depth = back.project(back.translation[None] + [[-10.0, 0.0, 0.0]])
    assert np.allclose(uv, [[128.0, 64.0]]) and depth[0] == pytest.approx(10.0)


def test_from_navsim_scales_intrinsics_and_composes_lidar_to_ego():
    lidar_to_ego = np.eye(4)
    lidar_to_ego[:3, 3] = [0.5, 0.0, 0.2]
    cams = {"CAM_F0": {"cam_intrinsic": NUPLAN_K, "sensor2lidar_rotation": NUPLAN_R,
                       "sensor2lidar_translation": NUPLAN_T, "distortion": np.zeros(5)}}
    rig = CameraRig.from_navsim(cams, lidar_to_ego, width=256, height=128)
    cam = rig.cameras[0]
    assert cam.name == "cam_f0"
    assert np.allclose(cam.intrinsics, [[1545 * 256 / 1920, 0, 960 * 256 / 1920],
                                        [0, 1545 * 128 / 1080, 560 * 128 / 1080], [0, 0, 1]])
    assert np.allclose(cam.translation, NUPLAN_T + [0.5, 0.0, 0.2])
    # the optical axis of nuPlan's front camera points forward and ~2.3 deg down
    assert cam.rotation[:, 2] @ [1.0, 0.0, 0.0] > 0.999 and cam.rotation[2, 2] == pytest.approx(-0.0396, abs=1e-3)
    # a yawed lidar frame yaws the camera with it
    yawed = np.eye(4)
    yawed[:2, :2] = [[0.0, -1.0], [1.0, 0.0]]                            # lidar x = ego y (90 deg left)
    cam = CameraRig.from_navsim(cams, yawed).cameras[0]
    assert cam.rotation[:, 2] @ [0.0, 1.0, 0.0] > 0.999


def test_invalid_inputs_are_rejected_by_name():
    K = np.array([[100.0, 0, 50], [0, 100.0, 25], [0, 0, 1]])
    with pytest.raises(ValueError, match="width"):
        Camera("c", 0, 10, K, np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="rotation"):
        Camera("c", 10, 10, K, 2 * np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="intrinsics"):
        Camera("c", 10, 10, -K, np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="translation"):
        Camera("c", 10, 10, K, np.eye(3), [0.0, np.nan, 0.0])
    a = Camera.mounted("a", 64, 32, 70, 0, 0, 1.5, 0)
    with pytest.raises(ValueError, match="sizes"):
        CameraRig((a, Camera.mounted("b", 32, 32, 70, 0, 0, 1.5, 0)))
    with pytest.raises(ValueError, match="unique"):
        CameraRig((a, a))
    with pytest.raises(ValueError, match="cam_x9"):
        CameraRig.navsim(("cam_x9",))
    with pytest.raises(ValueError, match="points_ego"):
        a.project(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="missing"):
        CameraRig.from_navsim({"CAM_F0": {"cam_intrinsic": NUPLAN_K}}, np.eye(4))
