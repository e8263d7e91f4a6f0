"""WorldFrame construction and cutting a frame out of a Scene."""

import numpy as np
import pytest

from envs.sim.frame import AgentBoxes, WorldFrame, frame_from_scene
from envs.sim.scene import AgentTracks, AgentType, EgoHistory, LightStatus, Scene, TrafficLights
from tests.envs.sim.test_scenery import straight_road_map


def small_scene() -> Scene:
    """Ego at (5, 1.75) heading east; agent "a" valid at every step, "b" only from step 10 on."""
    steps = 41
    pose = np.zeros((2, steps, 3))
    pose[0, :, 0] = 20.0 + np.arange(steps)                              # x = 20 + t
    pose[0, :, 1] = 1.75
    pose[1, 10:] = [30.0, -1.75, np.pi]
    valid = np.zeros((2, steps), bool)
    valid[0], valid[1, 10:] = True, True
    history = EgoHistory(t=np.array([-1.5, -1.0, -0.5, 0.0]),
                         pose=np.array([[5.0 - 1.5 * d, 1.75, 0.0] for d in (1, 2 / 3, 1 / 3, 0)]),
                         velocity=np.zeros((4, 2)), acceleration=np.zeros((4, 2)))
    status = np.full((1, steps), int(LightStatus.GREEN))
    status[0, 20:] = int(LightStatus.RED)
    return Scene(
        token="t", map=straight_road_map(), route_roadblock_ids=("RBE",), history=history,
        agents=AgentTracks(ids=("a", "b"), types=np.array([AgentType.VEHICLE, AgentType.PEDESTRIAN]),
                           size=np.array([[4.5, 2.0], [0.6, 0.6]]), pose=pose, velocity=np.zeros((2, steps, 2)),
                           valid=valid),
        traffic_lights=TrafficLights(lane_connector_ids=("C9",), status=status),
    )


def test_frame_from_scene_picks_the_step():
    scene = small_scene()
    first = frame_from_scene(scene)
    assert np.allclose(first.ego_pose, [5.0, 1.75, 0.0])
    assert first.agents.num_agents == 1 and np.allclose(first.agents.pose, [[20.0, 1.75, 0.0]])
    assert first.light_status.tolist() == [int(LightStatus.GREEN)] and first.route_roadblock_ids == ("RBE",)
    later = frame_from_scene(scene, step=25)
    assert later.agents.num_agents == 2
    assert np.allclose(later.agents.pose[:, 0], [45.0, 30.0])
    assert later.agents.types.tolist() == [AgentType.VEHICLE, AgentType.PEDESTRIAN]
    assert later.agents.keys.tolist() == [0, 1]                            # track index: stable colours
    assert later.light_status.tolist() == [int(LightStatus.RED)]


def test_frame_overrides():
    scene = small_scene()
    boxes = AgentBoxes(np.array([[1.0, 2.0, 0.5]]), np.array([[4.0, 2.0]]), np.array([AgentType.BICYCLE]), keys=[7])
    frame = frame_from_scene(scene, 3, agents_override=boxes, ego_pose=np.array([9.0, 0.0, 0.1]))
    assert frame.agents is boxes and np.allclose(frame.ego_pose, [9.0, 0.0, 0.1])


def test_bad_inputs_are_rejected():
    scene = small_scene()
    with pytest.raises(ValueError, match="step"):
        frame_from_scene(scene, 41)
    with pytest.raises(ValueError, match="size"):
        AgentBoxes(np.zeros((1, 3)), np.array([[4.0, 0.0]]), np.array([0]))
    with pytest.raises(ValueError, match="types"):
        AgentBoxes(np.zeros((1, 3)), np.ones((1, 2)), np.array([9]))
    with pytest.raises(ValueError, match="pose"):
        AgentBoxes(np.full((1, 3), np.nan), np.ones((1, 2)), np.array([0]))
    with pytest.raises(ValueError, match="ego_pose"):
        WorldFrame(scene.map, np.array([0.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="light_status"):
        WorldFrame(scene.map, np.zeros(3), light_connector_ids=("C1",), light_status=np.array([0, 1]))
    assert AgentBoxes.empty().num_agents == 0
