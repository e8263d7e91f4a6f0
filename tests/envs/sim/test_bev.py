"""BEV rasters and the render picture: pixel frame, channels, plan drawing."""

import math

import numpy as np
import pytest

from envs.sim.bev import BEV_CHANNELS, BEVConfig, bev_raster, bev_rgb, pixel_transform
from envs.sim.frame import AgentBoxes, WorldFrame
from envs.sim.scene import AgentType, LightStatus
from tests.envs.sim.test_scenery import straight_road_map

CONFIG = BEVConfig()                          # 128 px, 0.5 m/px, ego-centred, every channel
CHANNEL = {name: i for i, name in enumerate(BEV_CHANNELS)}


def test_pixel_transform_hand_worked():
    # ego at (10, 5) facing north: 4 m ahead is 8 px up, 2 m to its left (west) is 4 px left
    transform = pixel_transform(np.array([10.0, 5.0, math.pi / 2]), CONFIG)
    points = np.array([[10.0, 5.0, 1.0], [10.0, 9.0, 1.0], [8.0, 5.0, 1.0]])
    assert np.allclose(points @ transform.T, [[63.5, 63.5], [63.5, 55.5], [59.5, 63.5]])
    shifted = pixel_transform(np.array([10.0, 5.0, math.pi / 2]), BEVConfig(forward_offset=16.0))
    assert np.allclose(points[:1] @ shifted.T, [[63.5, 95.5]])          # ego 32 px below the centre


def test_drivable_channel_is_the_road():
    # the road spans y in [-7, 7] along x; with the ego heading east it runs up the image, 28 px wide
    raster = bev_raster([WorldFrame(straight_road_map(), np.array([0.0, 0.0, 0.0]))])
    assert raster.shape == (1, len(BEV_CHANNELS), 128, 128) and raster.dtype == np.uint8
    drivable = raster[0, CHANNEL["drivable"]]
    assert set(np.unique(drivable).tolist()) == {0, 255}
    assert (drivable[:, 51:77] == 255).all()                             # columns 49.5 .. 77.5
    assert not drivable[:, :49].any() and not drivable[:, 79:].any()
    lines = raster[0, CHANNEL["lane_boundaries"]]
    assert lines[:, 63:65].any() and lines[:, 56:58].any() and not lines[:, 59:62].any()   # y = 0, 3.5; not 2


def test_agent_box_lands_at_the_right_pixel():
    # a 4 m x 2 m vehicle 10 m ahead and 4 m left of the ego: x 8..12, y 3..5 -> rows 39.5..47.5, cols
    # 53.5..57.5; cv2 fills every pixel the outline touches (a .5 edge rounds up): rows 40..48, cols 54..58
    agents = AgentBoxes(np.array([[110.0, 24.0, 0.0], [100.0, 14.0, 0.0]]), np.array([[4.0, 2.0], [0.5, 0.5]]),
                        np.array([AgentType.VEHICLE, AgentType.TRAFFIC_CONE]))
    frame = WorldFrame(straight_road_map(), np.array([100.0, 20.0, 0.0]), agents=agents)
    raster = bev_raster([frame])[0]
    vehicles = raster[CHANNEL["vehicles"]]
    rows, cols = np.nonzero(vehicles)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (40, 48, 54, 58)
    assert not raster[CHANNEL["pedestrians_bicycles"]].any()
    static_rows, static_cols = np.nonzero(raster[CHANNEL["static_objects"]])   # the cone 6 m (12 px) to the right
    assert static_rows.mean() == pytest.approx(63.5, abs=0.6) and static_cols.mean() == pytest.approx(75.5, abs=0.6)


def test_route_channel_marks_route_lanes_only():
    frame = WorldFrame(straight_road_map(), np.zeros(3), route_roadblock_ids=("RBE",))
    route = bev_raster([frame], BEVConfig(channels=("route",)))[0, 0]
    assert (route[:, 51:63] == 255).all()                                # eastbound lanes: y in [0, 7]
    assert not route[:, 65:].any() and not route[:, :49].any()
    assert not bev_raster([WorldFrame(straight_road_map(), np.zeros(3))], BEVConfig(channels=("route",))).any()


@pytest.mark.parametrize("status, channel", [(LightStatus.RED, "red_lights"), (LightStatus.YELLOW, "red_lights"),
                                             (LightStatus.GREEN, "green_lights"), (LightStatus.UNKNOWN, None)])
def test_light_channels(status, channel):
    frame = WorldFrame(straight_road_map(x1=100.0, connectors=True), np.array([95.0, 1.75, 0.0]),
                       light_connector_ids=("CS",), light_status=np.array([int(status)]))
    raster = bev_raster([frame], BEVConfig(channels=("red_lights", "green_lights")))[0]
    for c, name in enumerate(("red_lights", "green_lights")):
        assert raster[c].any() == (name == channel)
    if channel is not None:
        rows, cols = np.nonzero(raster[0 if channel == "red_lights" else 1])
        # connector CS: x 100..120 (5..25 m ahead: rows 13.5..53.5), y 0..3.5 (1.75 m either side: cols 60..67)
        assert rows.min() == 14 and rows.max() == 54 and cols.min() == 60 and cols.max() == 67


def test_batch_is_independent_and_config_validated():
    road_map = straight_road_map()
    frames = [WorldFrame(road_map, np.zeros(3)), WorldFrame(road_map, np.array([0, 0, math.pi / 2]))]
    both = bev_raster(frames)
    assert np.array_equal(both[1:], bev_raster(frames[1:])) and not np.array_equal(both[0], both[1])
    for bad in (dict(size=1), dict(meters_per_pixel=0.0), dict(channels=("drivable", "sky")), dict(channels=())):
        with pytest.raises(ValueError):
            BEVConfig(**bad)


def test_bev_rgb_shape_and_plan():
    frame = WorldFrame(straight_road_map(), np.zeros(3))
    config = BEVConfig(size=200, meters_per_pixel=0.25)
    plain = bev_rgb(frame, config)
    assert plain.shape == (200, 200, 3) and plain.dtype == np.uint8
    plan = np.stack([np.linspace(2.0, 20.0, 10), np.zeros(10), np.zeros(10)], axis=1)   # straight ahead
    with_plan = bev_rgb(frame, config, plans=plan, tracked=plan[:, :2] + [0.0, 3.0],
                        scores={"pdms": 0.5}, title="t")
    # 15 m ahead (row 99.5 - 60 = 39.5) on the centre column (99.5): plan orange; the tracked path 3 m
    # (12 px) left of it, cyan (anti-aliased lines: compare loosely)
    def near(pixels, rgb):
        return (np.abs(pixels.astype(int) - rgb) < 40).all(axis=-1)
    assert near(with_plan[40, 98:102], (255, 140, 0)).any() and not near(plain[40, 98:102], (255, 140, 0)).any()
    assert near(with_plan[40, 86:90], (0, 230, 230)).any() and not near(with_plan[40, 98:102], (0, 230, 230)).any()
    assert not np.array_equal(with_plan[:12, :60], plain[:12, :60])     # title and scores printed top-left
    several = bev_rgb(frame, config, plans=np.stack([plan[:, :2], plan[:, :2] + [0.0, -3.0]]))
    assert several.shape == (200, 200, 3)
    with pytest.raises(ValueError, match="plans"):
        bev_rgb(frame, config, plans=np.zeros((2, 3, 4, 2)))
