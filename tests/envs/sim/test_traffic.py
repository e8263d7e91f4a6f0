"""Background traffic: IDM along paths, constant velocity, log replay (hand-worked cases)."""

import math
from dataclasses import fields, replace

import pytest
import torch

from envs.sim.idm import IDMParams
from envs.sim.traffic import (
    NAVSIM_TRAFFIC_IDM, BoxObstacles, PathAgents, advance_on_path, constant_velocity_rollout, find_leads,
    idm_follow_step, idm_path_accel, log_replay, path_agents_to_tracks,
)

F64 = torch.float64


def straight_agents(s, speed, reactive=None, length=4.0, width=2.0, path_end=200.0, lateral=None, valid=None):
    """One scene, agents on parallel straight paths along +x (y = lateral offset)."""
    num = len(s)
    lateral = [0.0] * num if lateral is None else lateral
    path = torch.tensor([[[[0.0, y], [path_end / 2, y], [path_end, y]] for y in lateral]], dtype=F64)
    return PathAgents.create(
        path=path,
        path_valid=torch.ones(1, num, 3, dtype=torch.bool),
        s=torch.tensor([s], dtype=F64),
        speed=torch.tensor([speed], dtype=F64),
        size=torch.tensor([[[length, width]] * num], dtype=F64),
        types=torch.zeros(1, num, dtype=torch.int64),
        is_reactive=torch.tensor([reactive if reactive is not None else [True] * num]),
        valid=torch.tensor([valid if valid is not None else [True] * num]),
    )


def box(x, y, heading, speed, length=4.0, width=2.0):
    return BoxObstacles(
        pose=torch.tensor([[[x, y, heading]]], dtype=F64), size=torch.tensor([[[length, width]]], dtype=F64),
        speed=torch.tensor([[speed]], dtype=F64), valid=torch.ones(1, 1, dtype=torch.bool),
    )


def run(agents, steps, **kwargs):
    states = [agents]
    for _ in range(steps):
        states.append(idm_follow_step(states[-1], **kwargs))
    return states


def test_default_params_are_navsim_reactive_traffic():
    p = NAVSIM_TRAFFIC_IDM
    assert (p.target_speed, p.min_gap, p.headway, p.accel_max, p.decel_max, p.exponent) == (10.0, 1.0, 1.5, 1.0, 2.0, 4.0)


def test_lead_gap_is_bumper_to_bumper_and_speed_projected():
    # agent centre at s=10 (front bumper 12); oncoming box centred at x=30, half length 2 -> rear at 28
    agents = straight_agents([10.0], [5.0])
    leads = find_leads(agents, box(30.0, 0.5, math.pi, 5.0))
    assert leads.has_lead.tolist() == [[True]]
    assert leads.gap.item() == pytest.approx(16.0)
    assert leads.speed.item() == pytest.approx(-5.0)        # 5 m/s * cos(pi): coming towards us


def test_crossing_box_uses_its_width_along_the_path():
    # a car crossing at 90 deg, centre 20 m ahead on the path: its near side is 1 m (half width) closer
    agents = straight_agents([0.0], [5.0])
    leads = find_leads(agents, box(20.0, 0.0, math.pi / 2, 3.0))
    assert leads.gap.item() == pytest.approx(20.0 - 1.0 - 2.0)
    assert leads.speed.item() == pytest.approx(0.0, abs=1e-12)


def test_box_in_next_lane_or_behind_is_not_a_lead():
    agents = straight_agents([50.0], [5.0], path_end=200.0)
    # centre 3.5 m to the side: 3.5 - 1 (its half width) >= 1 (our half width) -> outside the corridor
    side = find_leads(agents, box(60.0, 3.5, 0.0, 0.0))
    behind = find_leads(agents, box(40.0, 0.0, 0.0, 0.0))
    for leads in (side, behind):
        assert leads.has_lead.tolist() == [[False]]
        # free road: the path end is a stopped lead, gap = 200 - 50 - 2
        assert leads.gap.item() == pytest.approx(148.0)
        assert leads.speed.item() == 0.0
    # a box reaching into the corridor (1.9 - 1 < 1) does lead
    assert find_leads(agents, box(60.0, 1.9, 0.0, 0.0)).has_lead.item()


def test_nearest_of_several_leads_wins_and_self_is_ignored():
    agents = straight_agents([0.0, 30.0, 15.0], [8.0, 2.0, 4.0])
    leads = find_leads(agents)
    assert leads.has_lead.tolist() == [[True, False, True]]
    assert leads.gap[0].tolist() == pytest.approx([15.0 - 2.0 - 2.0, 200.0 - 32.0, 30.0 - 2.0 - 17.0])
    assert leads.speed[0].tolist() == pytest.approx([4.0, 0.0, 2.0])


def test_first_idm_step_hand_worked():
    # v = 10, stopped lead 20 m ahead: s* = 1 + 10*1.5 + 10*10/(2*sqrt(2)) = 51.355; a = 1 - 1 - (s*/20)^2
    # = -6.59 -> clipped to -2; Euler uses the old speed for the position.
    agents = straight_agents([0.0, 24.0], [10.0, 0.0], reactive=[True, False])
    leads = find_leads(agents)
    assert leads.gap[0, 0].item() == pytest.approx(20.0)
    assert idm_path_accel(agents, leads)[0, 0].item() == pytest.approx(-2.0)
    unclipped = 1.0 - 1.0 - ((1.0 + 15.0 + 100.0 / (2 * math.sqrt(2.0))) / 20.0) ** 2
    assert unclipped < -2.0
    after = idm_follow_step(agents)
    assert after.s[0].tolist() == pytest.approx([1.0, 24.0])
    assert after.speed[0].tolist() == pytest.approx([9.8, 0.0])


def test_follower_stops_behind_stopped_leader_at_min_gap_without_overlap():
    agents = straight_agents([0.0, 40.0], [5.0, 0.0], reactive=[True, False])
    states = run(agents, 400)
    gaps = torch.stack([st.s[0, 1] - st.s[0, 0] - 4.0 for st in states])
    assert gaps.min().item() > 0.99                   # never closer than the jam distance
    assert gaps[-1].item() == pytest.approx(1.0, abs=0.02)
    assert states[-1].speed[0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert states[-1].s[0, 1].item() == 40.0          # the parked leader never moved


def test_free_road_accelerates_towards_target_speed():
    agents = straight_agents([0.0], [0.0], path_end=5000.0)
    first = idm_follow_step(agents)
    # a = 1 * (1 - 0 - (1 / 4998)^2): almost exactly a_max; the position uses the old speed (0)
    assert first.s.item() == 0.0
    assert first.speed.item() == pytest.approx(0.1 * (1 - (1.0 / 4998.0) ** 2))
    speeds = torch.stack([st.speed[0, 0] for st in run(agents, 600)])
    # rises monotonically while the (5 km away) path end is negligible, then levels just under v0
    assert bool((speeds[1:300] >= speeds[:299]).all())
    assert 9.99 < speeds[-1].item() < 10.0
    fast = idm_follow_step(agents, params=IDMParams(target_speed=20.0, accel_max=3.0), dt=0.1)
    assert fast.speed.item() == pytest.approx(0.3, rel=1e-6)


def test_path_end_is_a_stopped_lead():
    # no lead at all: the agent stops with its front bumper 1 m (min gap) before the end of a 60 m path
    agents = straight_agents([0.0], [6.0], path_end=60.0)
    final = run(agents, 400)[-1]
    assert final.s.item() + 2.0 == pytest.approx(59.0, abs=0.05)
    assert final.speed.item() == pytest.approx(0.0, abs=1e-6)


def test_red_light_stop_is_respected_and_green_is_passed():
    agents = straight_agents([0.0], [8.0], path_end=300.0)
    red = torch.tensor([[[50.0]]], dtype=F64)
    states = run(agents, 300, stop_s=red)
    fronts = torch.stack([st.s[0, 0] + 2.0 for st in states])
    assert fronts.max().item() <= 50.0
    assert fronts[-1].item() == pytest.approx(49.0, abs=0.05)
    green = torch.full((1, 1, 1), math.inf, dtype=F64)
    assert run(agents, 100, stop_s=green)[-1].s.item() > 60.0
    # a stop already behind the front bumper is ignored
    assert find_leads(agents, stop_s=torch.tensor([[[1.0]]], dtype=F64)).has_lead.item() is False


def test_ego_box_obstacle_makes_traffic_brake():
    agents = straight_agents([0.0], [6.0])
    ego = box(40.0, 0.0, 0.0, 0.0, length=5.176, width=2.297)
    final = run(agents, 400, obstacles=ego)[-1]
    assert final.s.item() + 2.0 == pytest.approx(40.0 - 5.176 / 2 - 1.0, abs=0.05)


def test_non_reactive_keeps_speed_and_invalid_slots_stay_put():
    agents = straight_agents([0.0, 10.0, 50.0], [3.0, 0.0, 7.0], reactive=[False, True, True],
                             valid=[True, True, False])
    after = run(agents, 10)[-1]
    assert after.speed[0, 0].item() == 3.0 and after.s[0, 0].item() == pytest.approx(3.0)
    # padding slots are sanitised to s = 0, speed = 0 at creation and never move
    assert after.s[0, 2].item() == agents.s[0, 2].item() and after.speed[0, 2].item() == agents.speed[0, 2].item()
    # the invalid slot (ahead of everyone on the same path) never leads: agent 1 sees the path end
    assert find_leads(agents).has_lead[0, 1].item() is False


def test_advance_on_path_rejects_bad_dt():
    agents = straight_agents([0.0], [1.0])
    with pytest.raises(ValueError, match="dt="):
        advance_on_path(agents, torch.zeros(1, 1, dtype=F64), 0.0)


def test_pose_follows_a_bent_path_and_clamps_at_its_end():
    path = torch.tensor([[[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 0.0]]]], dtype=F64)
    agents = PathAgents.create(
        path=path, path_valid=torch.tensor([[[True, True, True, False]]]),
        s=torch.tensor([[15.0]], dtype=F64), speed=torch.tensor([[2.0]], dtype=F64),
        size=torch.tensor([[[4.0, 2.0]]], dtype=F64), types=torch.zeros(1, 1, dtype=torch.int64),
        is_reactive=torch.ones(1, 1, dtype=torch.bool), valid=torch.ones(1, 1, dtype=torch.bool),
    )
    assert agents.path_length.item() == pytest.approx(20.0)        # the padding vertex adds nothing
    assert agents.pose[0, 0].tolist() == pytest.approx([10.0, 5.0, math.pi / 2])
    assert agents.velocity[0, 0].tolist() == pytest.approx([0.0, 2.0], abs=1e-12)
    beyond = replace(agents, s=torch.tensor([[35.0]], dtype=F64))
    assert beyond.pose[0, 0].tolist() == pytest.approx([10.0, 10.0, math.pi / 2])


def test_tracks_stack_poses_and_global_velocity():
    agents = straight_agents([0.0, 30.0], [4.0, 0.0], reactive=[False, False], lateral=[0.0, 3.5])
    states = run(agents, 3)
    pose, velocity, valid = path_agents_to_tracks(states)
    assert pose.shape == (1, 2, 4, 3) and velocity.shape == (1, 2, 4, 2) and valid.shape == (1, 2, 4)
    assert pose[0, 0, :, 0].tolist() == pytest.approx([0.0, 0.4, 0.8, 1.2])
    assert pose[0, 1, :, 1].tolist() == pytest.approx([3.5] * 4)
    torch.testing.assert_close(velocity[0, 0], torch.tensor([[4.0, 0.0]] * 4, dtype=F64))
    assert bool(valid.all())
    with pytest.raises(ValueError, match="states"):
        path_agents_to_tracks([])


def test_batched_equals_single():
    one = straight_agents([0.0, 40.0, 10.0], [5.0, 1.0, 9.0], reactive=[True, False, True], lateral=[0, 0, 3.5])
    two = straight_agents([5.0, 25.0, 0.0], [9.0, 3.0, 2.0], reactive=[True, True, True], lateral=[0, 0, 0])
    batch = PathAgents(**{f.name: torch.cat([getattr(one, f.name), getattr(two, f.name)]) for f in fields(PathAgents)})
    stops = torch.tensor([[[math.inf], [math.inf], [math.inf]], [[30.0], [math.inf], [math.inf]]], dtype=F64)
    batched = run(batch, 30, stop_s=stops)[-1]
    single_one = run(one, 30, stop_s=stops[:1])[-1]
    single_two = run(two, 30, stop_s=stops[1:])[-1]
    torch.testing.assert_close(batched.s, torch.cat([single_one.s, single_two.s]), rtol=0, atol=1e-12)
    torch.testing.assert_close(batched.speed, torch.cat([single_one.speed, single_two.speed]), rtol=0, atol=1e-12)


def test_constant_velocity_rollout_is_exact():
    pose = torch.tensor([[1.0, 2.0, 0.3]], dtype=F64)
    velocity = torch.tensor([[3.0, -1.0]], dtype=F64)
    poses, velocities = constant_velocity_rollout(pose, velocity, num_steps=40, dt=0.1)
    assert poses.shape == (1, 41, 3) and velocities.shape == (1, 41, 2)
    k = torch.arange(41, dtype=F64)
    torch.testing.assert_close(poses[0, :, 0], 1.0 + 3.0 * 0.1 * k)
    torch.testing.assert_close(poses[0, :, 1], 2.0 - 1.0 * 0.1 * k)
    assert bool((poses[0, :, 2] == 0.3).all()) and bool((velocities == velocity[:, None]).all())
    with pytest.raises(ValueError, match="num_steps"):
        constant_velocity_rollout(pose, velocity, num_steps=-1)


def test_log_replay_drops_objects_overlapping_the_initial_ego_box():
    # object 0 overlaps the ego box at t=0 (then drives off): dropped at every step.
    # object 1 is clear at t=0 and drives into the ego later: kept.
    steps = 3
    pose = torch.zeros(1, 2, steps, 3, dtype=F64)
    pose[0, 0, :, 0] = torch.tensor([2.0, 10.0, 20.0])
    pose[0, 1, :, 0] = torch.tensor([20.0, 10.0, 0.0])
    size = torch.tensor([[[4.0, 2.0], [4.0, 2.0]]], dtype=F64)
    valid = torch.ones(1, 2, steps, dtype=torch.bool)
    ego_pose = torch.tensor([[0.0, 0.0, 0.0]], dtype=F64)
    ego_size = torch.tensor([[5.176, 2.297]], dtype=F64)
    kept = log_replay(pose, size, valid, ego_pose, ego_size)
    assert kept[0, 0].tolist() == [False] * steps
    assert kept[0, 1].tolist() == [True] * steps
    # an object first seen later (invalid at t=0) is never dropped
    late = valid.clone()
    late[0, 0, 0] = False
    assert log_replay(pose, size, late, ego_pose, ego_size)[0, 0].tolist() == [False, True, True]


def test_create_rejects_bad_input_by_field_name():
    good = straight_agents([0.0], [1.0])
    values = {f.name: getattr(good, f.name) for f in fields(PathAgents)}
    with pytest.raises(ValueError, match=r"^speed="):
        PathAgents.create(**{**values, "speed": torch.tensor([[-1.0]], dtype=F64)})
    with pytest.raises(ValueError, match=r"^s\.shape="):
        PathAgents.create(**{**values, "s": torch.zeros(1, 2, dtype=F64)})
    with pytest.raises(ValueError, match=r"^path="):
        PathAgents.create(**{**values, "path": torch.full_like(good.path, math.nan)})
    with pytest.raises(ValueError, match=r"^valid\.dtype="):
        PathAgents.create(**{**values, "valid": torch.ones(1, 1)})
    with pytest.raises(ValueError, match=r"^stop_s\.shape="):
        find_leads(good, stop_s=torch.zeros(1, 2, 1, dtype=F64))
    # padding slots may hold garbage: they are sanitised
    padded = PathAgents.create(**{**values, "valid": torch.zeros(1, 1, dtype=torch.bool),
                                  "path": torch.full_like(good.path, math.nan)})
    assert bool(torch.isfinite(padded.pose).all())


def test_agent_reaching_its_path_end_stops_there():
    # non-reactive at 5 m/s, 0.3 m before the end of a 20 m path: one step would overshoot by 0.2 m
    agents = straight_agents([19.7], [5.0], reactive=[False], path_end=20.0)
    after = idm_follow_step(agents)
    assert after.s.item() == 20.0 and after.speed.item() == 0.0
    assert after.pose[0, 0].tolist() == pytest.approx([20.0, 0.0, 0.0])
    assert after.velocity[0, 0].tolist() == [0.0, 0.0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    agents = straight_agents([0.0, 40.0, 10.0], [5.0, 1.0, 9.0], reactive=[True, False, True], lateral=[0, 0, 3.5])
    stops = torch.tensor([[[30.0], [math.inf], [math.inf]]], dtype=F64)
    on_gpu = PathAgents(**{f.name: getattr(agents, f.name).cuda() for f in fields(PathAgents)})
    cpu, gpu = run(agents, 20, stop_s=stops)[-1], run(on_gpu, 20, stop_s=stops.cuda())[-1]
    torch.testing.assert_close(gpu.s.cpu(), cpu.s, rtol=0, atol=1e-9)
    torch.testing.assert_close(gpu.speed.cpu(), cpu.speed, rtol=0, atol=1e-9)
