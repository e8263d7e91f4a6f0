"""scenarios.two_stage: a navhard-style group is one drive cut at t0, t0 - 0.5 s and perturbed t0 + 4 s."""

import math

import numpy as np
import pytest

from envs.scene_file import scene_from_dict, scene_to_dict
from envs.sim.scene import NUM_STEPS
from scenarios.two_stage import (
    FOLLOW_UPS, HEADING_RANGE, LATERAL_RANGE, SPEED_RANGE, TWO_STAGE_TIMELINE, TwoStageGroup, build_group,
)


@pytest.fixture(scope="module")
def group() -> TwoStageGroup:
    return build_group("hard_brake", 30_000_001)


def to_global(origin, local):
    x, y, h = origin
    c, s = math.cos(h), math.sin(h)
    return np.array([x + c * local[0] - s * local[1], y + s * local[0] + c * local[1], h + local[2]])


def test_group_structure_and_tokens(group):
    assert group.family == "hard_brake" and group.seed == 30_000_001
    n = len(group.syn_now)
    assert FOLLOW_UPS[0] <= n <= FOLLOW_UPS[1] and len(group.syn_prev) == len(group.perturbations) == n
    for scene in (group.now, group.prev):
        assert len(scene.token) == 16
    for scene in (*group.syn_now, *group.syn_prev):
        assert len(scene.token) == 17 and int(scene.token, 16) >= 0        # NAVSIM's synthetic tokens
        assert scene.agents.pose.shape[1] == NUM_STEPS and scene.human_trajectory.poses.shape == (8, 3)
        scene_from_dict(scene_to_dict(scene))
    tokens = [s.token for s in (group.now, group.prev, *group.syn_now, *group.syn_prev)]
    assert len(set(tokens)) == len(tokens)
    for p in group.perturbations:
        assert LATERAL_RANGE[0] <= p.lateral <= LATERAL_RANGE[1] and HEADING_RANGE[0] <= p.heading <= HEADING_RANGE[1]
        assert min(SPEED_RANGE[0], 1.0) <= p.speed_factor <= SPEED_RANGE[1]
    assert TWO_STAGE_TIMELINE.start_s == pytest.approx(-2.1) and TWO_STAGE_TIMELINE.end_s == pytest.approx(8.0)


def test_prev_is_the_same_drive_half_a_second_earlier(group):
    np.testing.assert_allclose(group.prev.ego_pose, group.now.history.pose[-2], atol=1e-9)
    np.testing.assert_allclose(group.prev.history.pose[1:], group.now.history.pose[:-1], atol=1e-9)
    # the lead (agent A1 in both) 0.5 s apart
    np.testing.assert_allclose(group.prev.agents.pose[0, 5:], group.now.agents.pose[0, :-5], atol=1e-9)


def test_follow_ups_start_four_seconds_later_perturbed(group):
    human_4s = to_global(group.now.ego_pose, group.now.human_trajectory.poses[-1])
    human_35 = to_global(group.now.ego_pose, group.now.human_trajectory.poses[-2])
    speed_4s = np.hypot(*(group.now.human_trajectory.poses[-1, :2] - group.now.human_trajectory.poses[-2, :2])) / 0.5
    for syn_now, syn_prev, p in zip(group.syn_now, group.syn_prev, group.perturbations):
        start = syn_now.ego_pose
        heading = human_4s[2]
        rel = start[:2] - human_4s[:2]
        lateral = -math.sin(heading) * rel[0] + math.cos(heading) * rel[1]
        along = math.cos(heading) * rel[0] + math.sin(heading) * rel[1]
        assert lateral == pytest.approx(p.lateral, abs=1e-6) and along == pytest.approx(0.0, abs=1e-6)
        assert math.remainder(start[2] - heading - p.heading, 2 * math.pi) == pytest.approx(0.0, abs=1e-6)
        # speed at the start: the factor times the human's (the human's over the last 0.5 s, +-0.6 m/s)
        assert syn_now.history.velocity[-1, 0] == pytest.approx(p.speed_factor * speed_4s, abs=0.6)
        # 0.5 s earlier the deviation had grown 3.5/4 of the way (linear over 4 s)
        rel = syn_prev.ego_pose[:2] - human_35[:2]
        lateral_35 = -math.sin(human_35[2]) * rel[0] + math.cos(human_35[2]) * rel[1]
        assert lateral_35 == pytest.approx(0.875 * p.lateral, abs=0.05)
        np.testing.assert_allclose(syn_prev.history.pose[1:], syn_now.history.pose[:-1], atol=1e-9)
        # the world is the drive's 4 s later: the lead as at the end of the stage-1 scene
        np.testing.assert_allclose(syn_now.agents.pose[0, 0], group.now.agents.pose[0, -1], atol=1e-9)
        # the continuation recovers to the human's lane position: back on the human's path after 4 s
        end = to_global(start, syn_now.human_trajectory.poses[-1])
        assert abs(end[2] - start[2]) < 0.5


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match=r"^name='urban_drive': no drive planner"):
        build_group("urban_drive", 0)
