"""ttc.py: TTC on hand-worked scenes (spec navsim.md §1.8, §8) and the batched first-overlap rule
against a step-by-step re-statement of NAVSIM's loop (t outer, projection inner, ignore lists)."""

from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from shapely import Polygon

from envs.metrics.collision import no_at_fault_collision
from envs.metrics.ego_areas import EgoAreas, ego_areas, ego_footprint
from envs.metrics.ttc import time_to_collision
from envs.sim.vehicle import PACIFICA
from tests.envs.metrics.conftest import (
    EGO_LANE_Y,
    batch,
    build_map,
    build_observation,
    moving_track,
    poses_from_x,
    random_interactions,
    straight_poses,
    track_from_x,
    two_lane_road,
)

FRONT = 4.049  # rear axle to front bumper [m]


def ttc(proposals, tracks, version="v1", spec=None, obs_steps=41):
    pose = batch([[p for p, _ in proposals]])
    speed = batch([[s for _, s in proposals]])
    corners, _ = ego_footprint(pose, PACIFICA)
    areas = ego_areas(pose, PACIFICA, build_map([spec or two_lane_road()]))
    obs = build_observation([tracks], steps=obs_steps)
    return time_to_collision(pose, speed, corners, areas, obs, PACIFICA, version)


# --------------------------------------------------------------------------- hand-worked scenes


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_braking_lead_within_the_projection_fails(version):
    # lead 10 m ahead of the front bumper, 10 m/s braking at 6 m/s^2: it stops at 5/3 s, 8.33 m on.
    # The ego (10 m/s) projected 0.9 s ahead first overlaps its stopped box at t = 1.0 s (needs
    # t + 0.9 >= 1.8333 s); the lead centre is straight ahead -> TTC 0 at step 10.
    t = 0.1 * np.arange(41)
    braking = np.minimum(t, 5.0 / 3.0)
    lead_x = FRONT + 10.0 + 2.0 + 10.0 * braking - 3.0 * braking**2
    result = ttc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [track_from_x(lead_x, EGO_LANE_Y, first_speed=10.0)],
                 version)
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[10]]
    assert result.agent.tolist() == [[0]]


def test_tailgating_at_the_same_speed_passes_but_a_stopped_car_at_that_gap_fails():
    # 3.5 m gap at the same 10 m/s: the lead's own future box moves away as fast as the projection
    ego = straight_poses(0.0, EGO_LANE_Y, 10.0)
    assert ttc([ego], [moving_track(FRONT + 3.5 + 2.0, EGO_LANE_Y, 10.0)]).value.tolist() == [[1.0]]
    # stopped at 3.5 m: the 0.6 s projection (6 m) already overlaps at step 0
    stopped = ttc([ego], [moving_track(FRONT + 3.5 + 2.0, EGO_LANE_Y, 0.0)])
    assert stopped.value.tolist() == [[0.0]] and stopped.step.tolist() == [[0]]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_an_object_ignored_once_never_fails_later(version):
    # ego 3 m/s, car from x = -15 at 8 m/s: the first overlap is (t = 1.5 s, +0.9 s), car centre 4.2 m
    # behind... the rear axle (4.5) -> behind, not in a risky area -> ignored. From t = 3.1 s the car
    # drives through the ego, ahead of the rear axle, but stays ignored.
    ego = straight_poses(0.0, EGO_LANE_Y, 3.0)
    car = moving_track(-15.0, EGO_LANE_Y, 8.0)
    assert ttc([ego], [car], version).value.tolist() == [[1.0]]
    # the same car first seen at step 31 fails: at t = 2.2 s the 0.9 s projection meets it at 3.1 s,
    # its centre (9.8) ahead of the rear axle (6.6)
    car.valid = np.arange(41) >= 31
    result = ttc([ego], [car], version)
    assert result.value.tolist() == [[0.0]] and result.step.tolist() == [[22]]


@pytest.mark.parametrize("ego_speed, expected", [(0.0, 1.0), (0.0049, 1.0), (0.005, 0.0)])
def test_an_ego_slower_than_5mm_per_s_is_skipped(ego_speed, expected):
    ego = poses_from_x(np.zeros(41), EGO_LANE_Y, ego_speed)
    assert ttc([ego], [moving_track(FRONT + 1.0, EGO_LANE_Y, 0.0)]).value.tolist() == [[expected]]


def test_v2_stops_nine_steps_early_and_v1_sees_only_the_observed_steps():
    # stopped car 43.95 m beyond the front bumper: the projection first reaches it at t = 3.5 s + 0.9 s
    ego = straight_poses(0.0, EGO_LANE_Y, 10.0)
    car = [moving_track(FRONT + 43.95 + 2.0, EGO_LANE_Y, 0.0, steps=51)]
    v1_long = ttc([ego], car, "v1", obs_steps=51)
    assert v1_long.value.tolist() == [[0.0]] and v1_long.step.tolist() == [[35]]
    assert ttc([ego], car, "v2", obs_steps=51).value.tolist() == [[1.0]]  # t <= 3.1 s only
    assert ttc([ego], car, "v1", obs_steps=41).value.tolist() == [[1.0]]  # no objects after 4 s


def test_a_side_overlap_fails_only_in_a_risky_area():
    # a car level with the ego centre overlapping its left side (54 deg from the rear axle)
    in_lane = straight_poses(0.0, EGO_LANE_Y, 10.0)
    beside = [moving_track(1.461, EGO_LANE_Y + 2.05, 10.0)]
    assert ttc([in_lane], beside).value.tolist() == [[1.0]]  # one lane, no intersection -> ignored
    in_intersection = ttc([in_lane], beside, spec=two_lane_road(intersection=(-10.0, 100.0)))
    assert in_intersection.value.tolist() == [[0.0]] and in_intersection.step.tolist() == [[0]]
    straddling = straight_poses(0.0, -0.5, 10.0)
    assert ttc([straddling], [moving_track(1.461, -0.5 + 2.0485, 10.0)]).value.tolist() == [[0.0]]


def test_rejects_an_unknown_version():
    with pytest.raises(ValueError, match="version"):
        ttc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [], version="v1.1")


# --------------------------------------------------------------------------- against NAVSIM's loop


def navsim_angle(pose, point):
    vector = np.array([point[0] - pose[0], point[1] - pose[1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.arccos(np.dot(np.array([np.cos(pose[2]), np.sin(pose[2])]), vector / np.linalg.norm(vector))))


def reference_ttc(pose, speed, corners, areas, obs, b, version, use_ignore_list=True):
    """NAVSIM `_calculate_ttc` step by step for scene b -> (value, step, agent)."""
    num_proposals, num_steps = speed.shape[1:3]
    offsets = (0, 3, 6, 9)
    checked = num_steps if version == "v1" else num_steps - 9
    value, step, agent = [1.0] * num_proposals, [-1] * num_proposals, [-1] * num_proposals
    ignored = [set() for _ in range(num_proposals)]
    for t in range(checked):
        for offset in offsets:
            s = t + offset
            if s >= obs.num_steps:
                continue
            for p in range(num_proposals):
                heading, v = float(pose[b, p, t, 2]), float(speed[b, p, t])
                shift = np.array([np.cos(heading) * v, np.sin(heading) * v]) * (float(offset) * 0.1)
                projected = Polygon(corners[b, p, t].numpy() + shift)
                for a in range(obs.valid.shape[2]):
                    if not obs.valid[b, s, a] or a in ignored[p] or v < 5e-3:
                        continue
                    track = Polygon(obs.corners[b, s, a].numpy())
                    if not projected.intersects(track):
                        continue
                    angle = navsim_angle(pose[b, p, t].numpy(), (track.centroid.x, track.centroid.y))
                    risky = bool(areas.multiple_lanes[b, p, t] or areas.non_drivable[b, p, t]
                                 or areas.rear_axle_in_intersection[b, p, t])
                    if angle < np.deg2rad(30) or (risky and not angle > np.deg2rad(150)):
                        value[p] = 0.0
                        if step[p] < 0 or (t, a) < (step[p], agent[p]):
                            step[p], agent[p] = t, a
                    elif use_ignore_list:
                        ignored[p].add(a)
    return value, step, agent


@pytest.mark.parametrize("version, obs_steps", [("v1", 41), ("v2", 41), ("v1", 51)])
def test_batched_first_overlap_rule_equals_the_sequential_loop(version, obs_steps):
    scenes = [random_interactions(seed, obs_steps=obs_steps, area_rate=0.1) for seed in range(100, 110)]
    pose = torch.stack([s.pose for s in scenes])
    speed = torch.stack([s.speed for s in scenes])
    corners, _ = ego_footprint(pose, PACIFICA)
    none = torch.zeros_like(speed, dtype=torch.bool)
    areas = EgoAreas(non_drivable=torch.stack([s.non_drivable for s in scenes]),
                     multiple_lanes=torch.stack([s.multiple_lanes for s in scenes]), oncoming=none,
                     center_in_intersection=none,
                     rear_axle_in_intersection=torch.stack([s.rear_axle_in_intersection for s in scenes]))
    obs = build_observation([s.tracks for s in scenes], steps=obs_steps)
    result = time_to_collision(pose, speed, corners, areas, obs, PACIFICA, version)
    without_ignore_list = []
    for b in range(len(scenes)):
        value, step, agent = reference_ttc(pose, speed, corners, areas, obs, b, version)
        assert result.value[b].tolist() == value, b
        assert result.step[b].tolist() == step, b
        assert result.agent[b].tolist() == agent, b
        without_ignore_list.append(reference_ttc(pose, speed, corners, areas, obs, b, version, False)[:2])
    assert {0.0, 1.0} <= set(result.value.flatten().tolist())
    # the scenes depend on the ignore list: dropping it changes some values or failing steps
    assert without_ignore_list != [(result.value[b].tolist(), result.step[b].tolist()) for b in range(len(scenes))]


def test_v2_with_too_few_steps_checks_nothing():
    ego = straight_poses(0.0, EGO_LANE_Y, 10.0, steps=9)
    result = ttc([ego], [moving_track(FRONT + 1.0, EGO_LANE_Y, 0.0)], "v2", obs_steps=41)
    assert result.value.tolist() == [[1.0]]
    assert ttc([ego], [moving_track(FRONT + 1.0, EGO_LANE_Y, 0.0)], "v1").value.tolist() == [[0.0]]


def to_device(item, device):
    return replace(item, **{f.name: getattr(item, f.name).to(device) for f in fields(item)})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    scenes = [random_interactions(seed, area_rate=0.3) for seed in range(200, 206)]
    pose = torch.stack([s.pose for s in scenes])
    speed = torch.stack([s.speed for s in scenes])
    corners, _ = ego_footprint(pose, PACIFICA)
    none = torch.zeros_like(speed, dtype=torch.bool)
    areas = EgoAreas(non_drivable=torch.stack([s.non_drivable for s in scenes]),
                     multiple_lanes=torch.stack([s.multiple_lanes for s in scenes]), oncoming=none,
                     center_in_intersection=none,
                     rear_axle_in_intersection=torch.stack([s.rear_axle_in_intersection for s in scenes]))
    obs = build_observation([s.tracks for s in scenes])
    inputs = (pose, speed, corners, areas, obs)
    on_gpu = [x.cuda() if isinstance(x, torch.Tensor) else to_device(x, "cuda") for x in inputs]
    for metric in (lambda *a: no_at_fault_collision(*a, PACIFICA), lambda *a: time_to_collision(*a, PACIFICA, "v1")):
        cpu, gpu = metric(*inputs), metric(*on_gpu)
        for name in ("value", "step", "agent"):
            assert torch.equal(getattr(cpu, name), getattr(gpu, name).cpu()), name
