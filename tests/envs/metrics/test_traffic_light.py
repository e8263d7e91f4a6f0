"""traffic_light.py: TLC against red-light connector polygons active per step."""

import numpy as np
import pytest
import torch

from envs.metrics.ego_areas import ego_footprint
from envs.metrics.traffic_light import traffic_light_compliance
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import RedLight, batch, build_observation, rect, straight_poses

CONNECTOR = rect(50.0, 70.0, -3.5, 0.0)


def tlc(poses, lights, steps=41):
    corners, _ = ego_footprint(batch([poses]), PACIFICA)
    return traffic_light_compliance(corners, build_observation([[]], steps=steps, red_lights=[lights]))


def always(value, steps=41):
    return np.full(steps, value)


def test_entering_a_red_connector_fails_at_the_first_touch():
    # front bumper at 34.049 + t m touches x = 50 at step 16 (50.049)
    pose, _ = straight_poses(30.0, -1.75, 10.0)
    result = tlc([pose], [RedLight(CONNECTOR, always(True))])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[16]]
    assert result.agent.tolist() == [[0]]


def test_green_or_turning_red_after_leaving_passes():
    pose, _ = straight_poses(30.0, -1.75, 10.0)
    assert tlc([pose], [RedLight(CONNECTOR, always(False))]).value.tolist() == [[1.0]]
    # starting inside at x = 60: the rear bumper (58.873 + k m) is still at 69.873 at step 11, past 70 at 12
    leaving, _ = straight_poses(60.0, -1.75, 10.0)
    for red_from, expected in ((12, 1.0), (11, 0.0)):
        active = always(False)
        active[red_from:] = True
        assert tlc([leaving], [RedLight(CONNECTOR, active)]).value.tolist() == [[expected]]


def test_light_turning_red_while_inside_fails_and_no_exemption_at_step_zero():
    pose_inside, _ = straight_poses(55.0, -1.75, 0.0)
    red_from_5 = always(False)
    red_from_5[5:] = True
    assert tlc([pose_inside], [RedLight(CONNECTOR, red_from_5)]).step.tolist() == [[5]]
    assert tlc([pose_inside], [RedLight(CONNECTOR, always(True))]).step.tolist() == [[0]]


def test_agent_is_the_light_entered_first():
    pose, _ = straight_poses(30.0, -1.75, 10.0)
    far = RedLight(rect(60.0, 65.0, -3.5, 0.0), always(True))
    near = RedLight(rect(45.0, 48.0, -3.5, 0.0), always(True))
    other_lane = RedLight(rect(30.0, 70.0, 0.5, 3.5), always(True))
    result = tlc([pose], [far, other_lane, near])
    assert result.step.tolist() == [[11]] and result.agent.tolist() == [[2]]


def test_no_red_lights_passes():
    pose, _ = straight_poses(30.0, -1.75, 10.0)
    result = tlc([pose], [])
    assert result.value.tolist() == [[1.0]] and result.step.tolist() == [[-1]]


def test_batched_equals_single():
    poses = [[straight_poses(30.0, -1.75, 10.0)[0], straight_poses(0.0, -1.75, 10.0)[0]],
             [straight_poses(30.0, -1.75, 5.0)[0], straight_poses(55.0, -1.75, 0.0)[0]]]
    lights = [[RedLight(CONNECTOR, always(True))],
              [RedLight(rect(40.0, 45.0, -3.5, 0.0), always(True)), RedLight(CONNECTOR, always(False))]]
    corners, _ = ego_footprint(batch(poses), PACIFICA)
    batched = traffic_light_compliance(corners, build_observation([[], []], red_lights=lights))
    for b in range(2):
        alone = tlc(poses[b], lights[b])
        for name in ("value", "step", "agent"):
            assert torch.equal(getattr(batched, name)[b], getattr(alone, name)[0]), name
    assert batched.value.tolist() == [[0.0, 1.0], [0.0, 1.0]]


def test_rejects_an_observation_shorter_than_the_plan():
    pose, _ = straight_poses(30.0, -1.75, 10.0)
    with pytest.raises(ValueError, match="red_light_active"):
        tlc([pose], [RedLight(CONNECTOR, always(True, steps=30))], steps=30)
