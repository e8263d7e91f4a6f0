"""Camera rendering: placement of boxes, near-plane clipping, traffic lights, determinism."""

import math

import numpy as np
import pytest

from envs.sim.camera import DEFAULT_HFOV_DEG, CameraRig
from envs.sim.frame import AgentBoxes, WorldFrame
from envs.sim.map import Area, RoadMap
from envs.sim.render_camera import NEAR, SURFACE_RGB, clip_near, render_cameras
from envs.sim.scene import AgentType, LightStatus
from envs.sim.scenery import Surface
from tests.envs.sim.test_scenery import rect, straight_road_map

FOCAL = 128.0 / math.tan(math.radians(DEFAULT_HFOV_DEG / 2))   # px, 256 x 128 presets
FRONT = CameraRig.navsim_front()                                  # cam_l0, cam_f0, cam_r0
ASPHALT = SURFACE_RGB[Surface.ROADBLOCK]


def boxes(*rows) -> AgentBoxes:
    """AgentBoxes from (x, y, heading, length, width, type) rows."""
    array = np.array(rows, dtype=float).reshape(-1, 6)
    return AgentBoxes(array[:, :3], array[:, 3:5], array[:, 5].astype(int))


def changed(frame_a: WorldFrame, frame_b: WorldFrame, rig: CameraRig = FRONT) -> np.ndarray:
    """(C, H, W) bool: pixels that differ between the two frames' images."""
    images = render_cameras([frame_a, frame_b], rig)
    return (images[0] != images[1]).any(axis=-1)


def test_clip_near_hand_worked():
    # a square in the x-z plane from depth -1 to 3: the part behind NEAR is cut off along depth = NEAR
    square = np.array([[-1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, 3.0], [-1.0, 0.0, 3.0]])
    clipped = clip_near(square)
    assert np.allclose(clipped, [[1.0, 0.0, NEAR], [1.0, 0.0, 3.0], [-1.0, 0.0, 3.0], [-1.0, 0.0, NEAR]])
    assert len(clip_near(square - [0.0, 0.0, 5.0])) == 0                 # wholly behind
    assert np.allclose(clip_near(square + [0.0, 0.0, 2.0]), square + [0.0, 0.0, 2.0])


def test_output_shape_sky_and_road_reaching_behind_the_camera():
    # one big road polygon that starts 100 m behind the ego: it must be clipped, not dropped or inverted
    road = RoadMap(roadblocks=(Area("R", rect(-100.0, 300.0, -60.0, 60.0)),))
    images = render_cameras([WorldFrame(road, np.zeros(3))], FRONT)
    assert images.shape == (1, 3, 128, 256, 3) and images.dtype == np.uint8
    front = images[0, 1]
    # rows 8 px below the horizon see the ground 36 m ahead and at most 26 m aside: all road
    assert (front[72:] == ASPHALT).all()
    sky = front[:60].reshape(-1, 3).astype(int)
    assert (sky[:, 2] > sky[:, 0]).all()                                 # blue above the horizon
    assert render_cameras([], FRONT).shape == (0, 3, 128, 256, 3)


def test_lane_lines_run_up_to_the_car():
    # ego in lane LE1 (y = 1.75): the yellow centre line (y = 0) is 1.75 m to its right. 10 m ahead of the
    # front camera it is at u = 128 + f 1.75 / 10, v = 64 + f 1.57 / 10 (a long line, cut into short quads)
    image = render_cameras([WorldFrame(straight_road_map(), np.array([0.0, 1.75, 0.0]))], FRONT)[0, 1].astype(int)
    yellow = (image[..., 0] > 200) & (image[..., 1] > 160) & (image[..., 2] < 90)
    row, col = round(64 + FOCAL * 1.57 / 10), 128 + FOCAL * 1.75 / 10
    assert yellow[row, round(col) - 3:round(col) + 4].any()
    assert yellow[110:].any()                                           # and further down, ~5 m ahead


def test_box_ahead_appears_in_the_middle_of_the_front_image_only():
    road_map = straight_road_map()
    ego = np.array([0.0, 1.75, 0.0])
    empty = WorldFrame(road_map, ego)
    camera_x = FRONT.cameras[1].translation[0]
    # 2 m x 2 m x 1 m object, its near face 14 m ahead of the front camera
    with_box = WorldFrame(road_map, ego, agents=boxes((camera_x + 15.0, 1.75, 0.0, 2.0, 2.0, AgentType.GENERIC_OBJECT)))
    diff = changed(empty, with_box)
    assert not diff[0].any() and not diff[2].any()                       # not in cam_l0 / cam_r0
    rows, cols = np.nonzero(diff[1])
    half_width = FOCAL * 1.0 / 14.0                                      # 1 m half width at 14 m: 13 px
    assert cols.min() >= 128 - half_width - 1.5 and cols.max() <= 128 + half_width + 1.5
    assert 128 in cols
    # from the top edge at 16 m (0.57 m below the camera) to the bottom edge at 14 m (1.57 m below it)
    assert rows.min() >= 64 + FOCAL * 0.57 / 16 - 1.5 and rows.max() <= 64 + FOCAL * 1.57 / 14 + 1.5
    back = CameraRig.navsim(("cam_b0",))
    assert not changed(empty, with_box, back).any()


def test_vehicle_to_the_left_appears_in_the_left_camera():
    road_map = straight_road_map()
    ego = np.zeros(3)
    left = FRONT.cameras[0]
    yaw = math.radians(55.0)
    x, y = left.translation[:2] + 12.0 * np.array([math.cos(yaw), math.sin(yaw)])
    diff = changed(WorldFrame(road_map, ego), WorldFrame(road_map, ego, agents=boxes((x, y, 0.0, 4.5, 2.0, 0))))
    assert diff[0].any() and not diff[1].any() and not diff[2].any()
    assert diff[0][:, 124:132].any()                                     # around the left image's centre


def test_faces_are_shaded_differently():
    road_map = RoadMap(roadblocks=(Area("R", rect(-100.0, 300.0, -60.0, 60.0)),))
    ego = np.zeros(3)
    # seen from behind-right and above: rear, right and top faces show, each with its own brightness
    box = boxes((16.0, 3.0, 0.0, 2.0, 2.0, AgentType.GENERIC_OBJECT))
    image = render_cameras([WorldFrame(road_map, ego, agents=box)], FRONT)[0, 1]
    diff = changed(WorldFrame(road_map, ego), WorldFrame(road_map, ego, agents=box))[1]
    assert len(np.unique(image[diff].reshape(-1, 3), axis=0)) >= 3


def test_box_behind_a_nearer_box_is_hidden():
    road_map = straight_road_map()
    ego = np.array([0.0, 1.75, 0.0])
    near = boxes((15.0, 1.75, 0.0, 2.0, 3.0, AgentType.VEHICLE))
    both = boxes((15.0, 1.75, 0.0, 2.0, 3.0, AgentType.VEHICLE), (25.0, 1.75, 0.0, 1.0, 1.0, AgentType.GENERIC_OBJECT))
    # the far, smaller and lower object is fully occluded: painter's order draws the near box last
    assert not changed(WorldFrame(road_map, ego, agents=near), WorldFrame(road_map, ego, agents=both)).any()


@pytest.mark.parametrize("status", [LightStatus.RED, LightStatus.GREEN, LightStatus.UNKNOWN])
def test_traffic_light_shows_its_colour(status):
    road_map = straight_road_map(x1=100.0, connectors=True)
    frame = WorldFrame(road_map, np.array([80.0, 1.75, 0.0]), light_connector_ids=("CS",),
                       light_status=np.array([int(status)]))
    front = render_cameras([frame], FRONT)[0, 1].astype(int)
    red, green, blue = front[..., 0], front[..., 1], front[..., 2]
    is_red = (red > 200) & (green < 60) & (blue < 60)
    is_green = (green > 200) & (red < 80) & (blue < 120)
    assert is_red.any() == (status == LightStatus.RED)
    assert is_green.any() == (status == LightStatus.GREEN)
    # the head hangs 30 m ahead of the camera, 2.6 .. 3.8 m above it
    rows = np.nonzero(is_red | is_green)[0]
    if len(rows):
        assert rows.min() >= 64 - FOCAL * 3.83 / 30.3 - 1.5 and rows.max() <= 64 - FOCAL * 2.63 / 30.3 + 1.5


def test_rendering_is_deterministic_and_batch_independent():
    road_map = straight_road_map(crosswalk_x=30.0)
    frames = [WorldFrame(road_map, np.array([0.0, 1.75, 0.05]), agents=boxes((20.0, 1.75, 0.0, 4.5, 2.0, 0))),
              WorldFrame(road_map, np.array([10.0, -1.75, math.pi]))]
    first = render_cameras(frames, FRONT)
    assert np.array_equal(first, render_cameras(frames, FRONT))
    assert np.array_equal(first[1:], render_cameras(frames[1:], FRONT))
    assert not np.array_equal(first[0], first[1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="rig"):
        render_cameras([], "cam_f0")
    with pytest.raises(ValueError, match="frames"):
        render_cameras([None], FRONT)
