"""collision.py: NC collision typing on hand-worked scenes, and the batched first-contact rule
against a step-by-step re-statement of NAVSIM's loop (shapely polygons, per-proposal ignore lists)."""

import math

import numpy as np
import pytest
import torch
from shapely import LineString, Polygon

from envs.metrics.collision import (
    blame_result,
    bounding_circles,
    first_contacts,
    near_pairs,
    no_at_fault_collision,
    relative_angle,
)
from envs.sim.vehicle import VehicleParams
from envs.metrics.ego_areas import EgoAreas, ego_areas, ego_footprint
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

F64 = torch.float64


def nc(proposals, tracks, spec=None, steps=41):
    """NC for one scene: proposals = [(pose (T, 3), speed (T,))], tracks = [Track]."""
    pose = batch([[p for p, _ in proposals]])
    speed = batch([[s for _, s in proposals]])
    corners, _ = ego_footprint(pose, PACIFICA)
    areas = ego_areas(pose, PACIFICA, build_map([spec or two_lane_road()]))
    return no_at_fault_collision(pose, speed, corners, areas, build_observation([tracks], steps=steps), PACIFICA)


# --------------------------------------------------------------------------- hand-worked scenes


def test_rear_ending_a_stopped_car_is_at_fault():
    # front bumper at 4.049 + 10 t reaches the car's rear (x = 28) at t = 2.3951 s -> step 24
    result = nc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [moving_track(30.0, EGO_LANE_Y, 0.0)])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[24]]
    assert result.agent.tolist() == [[0]]


def test_catching_up_with_a_slower_car_is_an_active_front_collision():
    # 4.049 + 10 t >= 18 + 5 t at t = 2.79 s -> step 28; the bumper x = 32.049 lies in the car [32, 36]
    result = nc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [moving_track(20.0, EGO_LANE_Y, 5.0)])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[28]]


def test_being_rear_ended_is_not_at_fault_and_the_car_is_then_ignored():
    # car from x = -10 at 10 m/s, ego at 5 m/s: first contact at step 14 with the car centre (4.0)
    # behind the rear axle (7.0) -> ACTIVE_REAR, ignored. From step ~21 the car drives through the ego
    # and would be an ACTIVE_FRONT hit, but it is on the ignore list.
    ego = straight_poses(0.0, EGO_LANE_Y, 5.0)
    car = moving_track(-10.0, EGO_LANE_Y, 10.0)
    assert nc([ego], [car]).value.tolist() == [[1.0]]
    # proof that the later contact alone is at fault: the same car, first seen at step 25
    # (centre 15 ahead of the rear axle 12.5, the bumper x = 16.549 inside the car [13, 17])
    car.valid = np.arange(41) >= 25
    result = nc([ego], [car])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[25]]


def test_hitting_a_static_object_halves_the_score_and_an_agent_zeroes_it():
    cone = moving_track(20.0, EGO_LANE_Y, 0.0, length=0.5, width=0.5, is_agent=False)
    # front 4.049 + 10 t reaches the cone (x = 19.75) at t = 1.5701 s -> step 16
    result = nc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [cone])
    assert result.value.tolist() == [[0.5]]
    assert result.step.tolist() == [[16]]
    both = nc([straight_poses(0.0, EGO_LANE_Y, 10.0)], [cone, moving_track(30.0, EGO_LANE_Y, 0.0)])
    assert both.value.tolist() == [[0.0]]
    assert both.step.tolist() == [[16]]  # earliest at-fault contact (the cone)


def test_a_car_at_rest_when_first_seen_is_stopped_even_when_it_hits_from_behind():
    # rests at x = -10 until 0.5 s, then drives at 12 m/s into the back of the ego (5 m/s):
    # contact at step 19 from behind, but nuPlan types the object by its first state -> STOPPED_TRACK
    x = np.where(np.arange(41) < 5, -10.0, -10.0 + 12.0 * (0.1 * np.arange(41) - 0.5))
    ego = straight_poses(0.0, EGO_LANE_Y, 5.0)
    result = nc([ego], [track_from_x(x, EGO_LANE_Y, first_speed=0.0)])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[19]]
    assert nc([ego], [track_from_x(x, EGO_LANE_Y, first_speed=12.0)]).value.tolist() == [[1.0]]


def test_lateral_contact_is_at_fault_only_when_straddling_lanes():
    # a car level with the ego centre, same speed, overlapping its left side by ~0.1 m: not behind
    # (54 deg from the rear axle), clear of the front bumper -> ACTIVE_LATERAL from step 0
    in_lane = straight_poses(0.0, EGO_LANE_Y, 10.0)
    beside = moving_track(1.461, EGO_LANE_Y + 2.05, 10.0)
    assert nc([in_lane], [beside]).value.tolist() == [[1.0]]
    straddling = straight_poses(0.0, -0.5, 10.0)  # corners in both lanes
    beside_straddling = moving_track(1.461, -0.5 + 2.0485, 10.0)
    result = nc([straddling], [beside_straddling])
    assert result.value.tolist() == [[0.0]]
    assert result.step.tolist() == [[0]]


@pytest.mark.parametrize("ego_speed, expected", [(0.0, 1.0), (0.05, 1.0), (0.06, 0.0)])
def test_a_stopped_ego_is_never_at_fault(ego_speed, expected):
    # car driving backwards into the ego's front (touches at step 28): ego speed <= 0.05 m/s -> STOPPED_EGO
    ego = poses_from_x(np.zeros(41), EGO_LANE_Y, ego_speed)
    car = moving_track(20.0, EGO_LANE_Y, -5.0, heading=math.pi)
    assert nc([ego], [car]).value.tolist() == [[expected]]


def test_rejects_mismatched_inputs():
    pose, speed = straight_poses(0.0, EGO_LANE_Y, 10.0)
    with pytest.raises(ValueError, match="obs.num_steps"):
        nc([(pose, speed)], [moving_track(30.0, EGO_LANE_Y, 0.0, steps=30)], steps=30)
    pose4, speed4 = batch([[pose]]), batch([[speed]])
    corners, _ = ego_footprint(pose4, PACIFICA)
    areas = ego_areas(pose4, PACIFICA, build_map([two_lane_road()]))
    obs = build_observation([[]])
    with pytest.raises(ValueError, match="speed.shape"):
        no_at_fault_collision(pose4, speed4[..., :40], corners, areas, obs, PACIFICA)
    with pytest.raises(ValueError, match="corners.shape"):
        no_at_fault_collision(pose4, speed4, corners[..., :3, :], areas, obs, PACIFICA)


# --------------------------------------------------------------------------- building blocks


def test_relative_angle_matches_nuplan():
    pose = torch.tensor([[0.0, 0.0, 0.0]] * 4 + [[1.0, 1.0, math.pi / 2]], dtype=F64)
    point = torch.tensor([[5.0, 0.0], [0.0, 3.0], [-2.0, 0.0], [0.0, 0.0], [1.0, -1.0]], dtype=F64)
    angle = relative_angle(pose, point)
    torch.testing.assert_close(angle[[0, 1, 2, 4]], torch.tensor([0.0, math.pi / 2, math.pi, math.pi], dtype=F64))
    assert math.isnan(angle[3])  # coincident points: neither ahead nor behind


def test_near_pairs_keep_every_pair_whose_bounding_circles_meet():
    square = VehicleParams(length=2.0, width=2.0, wheel_base=1.0, rear_axle_to_center=0.0)
    unit = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=F64)  # 2x2 box at origin
    ego = unit[None, None, None]  # (B=1, P=1, S=1, 4, 2)
    shifts = [[2.0, 0.0], [2.01, 0.0], [0.5, 0.5], [2.0, 2.0], [2.9, 0.0]]  # edge, 1 cm gap, deep, corner, far
    objects = torch.stack([unit + torch.tensor(shift, dtype=F64) for shift in shifts])[None, None]
    # circumscribed radii sqrt(2) each: centres up to 2.83 m apart (the corner touch) are near, 2.9 m not
    ego_center, ego_radius = bounding_circles(ego)
    assert ego_center.tolist() == [[[[0.0, 0.0]]]] and ego_radius.item() == math.sqrt(2.0)
    obj_center, obj_radius = bounding_circles(objects)
    radius = math.hypot(square.length, square.width) / 2
    rows = near_pairs(ego_center, radius, obj_center, obj_radius, torch.ones(1, 1, 1, len(shifts), dtype=torch.bool))
    assert rows.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 0, 3]]
    present = torch.tensor([[[[True, False, False, True, True]]]])
    masked = near_pairs(ego_center, radius, obj_center, obj_radius, present)
    assert masked[:, 3].tolist() == [0, 3]
    assert near_pairs(ego_center, radius, obj_center, obj_radius, torch.ones(1, 1, 1, 5, dtype=torch.bool),
                      ego_valid=torch.zeros(1, 1, 1, dtype=torch.bool)).shape == (0, 4)


def test_near_pairs_compare_each_proposal_with_the_objects_near_any_proposal():
    # scene 0: two proposals 10 m apart, objects 1 m from the first, 1 m from the second and 30 m away;
    # scene 1: one valid proposal near both objects, one invalid proposal
    ego = torch.tensor([[[[0.0, 0.0]], [[10.0, 0.0]]], [[[0.0, 0.0]], [[0.0, 50.0]]]], dtype=F64)  # (2, 2, 1, 2)
    obj = torch.tensor([[[[1.0, 0.0], [11.0, 0.0], [40.0, 0.0]]], [[[0.0, 1.0], [0.0, 49.0], [9.0, 9.0]]]], dtype=F64)
    radius = torch.full((2, 1, 3), 0.5, dtype=F64)
    valid = torch.ones(2, 1, 1, 3, dtype=torch.bool)
    moving = torch.tensor([[[True], [True]], [[True], [False]]])
    rows = near_pairs(ego, 1.0, obj, radius, valid, ego_valid=moving)
    assert rows.tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]]


def test_first_contacts_keeps_the_earliest_touching_row_per_object():
    unit = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], dtype=F64)

    def at(x, y):
        return unit + torch.tensor([x, y], dtype=F64)

    ego = torch.stack([at(0.0, 0.0)] * 7)
    # per row: object key, order, object box. Touching: a shared edge (exact test), a shared corner
    # (exact), a deep overlap (clear); apart: 1 um and 1 cm gaps.
    rows = [(0, 7, at(2.0, 0.0)), (0, 3, at(2.01, 0.0)), (1, 5, at(2.0, 2.0)), (2, 2, at(0.0, 2.000001)),
            (2, 9, at(0.5, 0.0)), (3, 4, at(0.5, 0.5)), (3, 6, at(2.0, 0.0))]
    key = torch.tensor([r[0] for r in rows])
    order = torch.tensor([r[1] for r in rows])
    first = first_contacts(order, key, 5, ego, torch.stack([r[2] for r in rows]))
    assert first.tolist() == [0, 2, 4, 5]


def test_blame_result_takes_the_minimum_and_the_earliest_contact():
    pairs = torch.tensor([[0, 1, 12, 3], [0, 1, 9, 5], [1, 0, 4, 0]])
    result = blame_result(pairs, torch.tensor([0.5, 0.0, 0.5], dtype=F64), 2, 2, 6)
    assert result.value.tolist() == [[1.0, 0.0], [0.5, 1.0]]
    assert result.step.tolist() == [[-1, 9], [4, -1]]
    assert result.agent.tolist() == [[-1, 5], [0, -1]]


# --------------------------------------------------------------------------- against NAVSIM's loop


def navsim_angle(pose, point):
    vector = np.array([point[0] - pose[0], point[1] - pose[1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.arccos(np.dot(np.array([np.cos(pose[2]), np.sin(pose[2])]), vector / np.linalg.norm(vector))))


def reference_nc(pose, speed, corners, multiple_lanes, non_drivable, obs, b, use_ignore_list=True):
    """NAVSIM `_calculate_no_at_fault_collision` step by step for scene b -> (value, step, agent, types).

    `use_ignore_list=False` drops NAVSIM's ignore list, to show the random scenes depend on it."""
    num_proposals, num_steps = speed.shape[1:3]
    value, step, agent = [1.0] * num_proposals, [-1] * num_proposals, [-1] * num_proposals
    ignored = [set() for _ in range(num_proposals)]
    types = set()
    for t in range(num_steps):
        for p in range(num_proposals):
            ego_polygon = Polygon(corners[b, p, t].numpy())
            for a in range(obs.valid.shape[2]):
                if not obs.valid[b, t, a] or a in ignored[p]:
                    continue
                track = Polygon(obs.corners[b, t, a].numpy())
                if not ego_polygon.intersects(track):
                    continue
                centroid = track.centroid
                front = LineString([ego_polygon.exterior.coords[0], ego_polygon.exterior.coords[3]])
                if speed[b, p, t] <= 0.05:
                    kind = "stopped_ego"
                elif not obs.is_agent[b, a] or obs.first_speed[b, a] <= 0.05:
                    kind = "stopped_track"
                elif navsim_angle(pose[b, p, t].numpy(), (centroid.x, centroid.y)) > np.deg2rad(150):
                    kind = "rear"
                elif front.intersects(track):
                    kind = "front"
                else:
                    kind = "lateral"
                types.add(kind)
                lateral_at_fault = kind == "lateral" and bool(multiple_lanes[b, p, t] or non_drivable[b, p, t])
                if kind in ("front", "stopped_track") or lateral_at_fault:
                    value[p] = min(value[p], 0.0 if obs.is_agent[b, a] else 0.5)
                    if step[p] < 0:
                        step[p], agent[p] = t, a  # first at-fault step; lowest index within it
                elif use_ignore_list:
                    ignored[p].add(a)
    return value, step, agent, types


def test_batched_first_contact_rule_equals_the_sequential_loop():
    scenes = [random_interactions(seed) for seed in range(12)]
    pose = torch.stack([s.pose for s in scenes])
    speed = torch.stack([s.speed for s in scenes])
    corners, _ = ego_footprint(pose, PACIFICA)
    none = torch.zeros_like(speed, dtype=torch.bool)
    multiple_lanes = torch.stack([s.multiple_lanes for s in scenes])
    non_drivable = torch.stack([s.non_drivable for s in scenes])
    areas = EgoAreas(non_drivable=non_drivable, multiple_lanes=multiple_lanes, oncoming=none,
                     center_in_intersection=none, rear_axle_in_intersection=none)
    obs = build_observation([s.tracks for s in scenes])
    result = no_at_fault_collision(pose, speed, corners, areas, obs, PACIFICA)
    seen, without_ignore_list = set(), []
    for b in range(len(scenes)):
        without_ignore_list += reference_nc(pose, speed, corners, multiple_lanes, non_drivable, obs, b, False)[0]
        value, step, agent, types = reference_nc(pose, speed, corners, multiple_lanes, non_drivable, obs, b)
        seen |= types
        assert result.value[b].tolist() == value, b
        assert result.step[b].tolist() == step, b
        assert result.agent[b].tolist() == agent, b
        alone = no_at_fault_collision(pose[b : b + 1], speed[b : b + 1], corners[b : b + 1],
                                      EgoAreas(**{k: getattr(areas, k)[b : b + 1] for k in areas.__dataclass_fields__}),
                                      build_observation([scenes[b].tracks]), PACIFICA)
        assert torch.equal(alone.value[0], result.value[b]) and torch.equal(alone.step[0], result.step[b])
    # the random scenes exercise every collision type and every score
    assert seen == {"stopped_ego", "stopped_track", "rear", "front", "lateral"}
    assert {0.0, 0.5, 1.0} <= set(result.value.flatten().tolist())
    assert without_ignore_list != result.value.flatten().tolist()


def test_near_pairs_read_the_objects_at_the_given_steps():
    # one ego circle at the origin for two ego steps; an object 1 m away at object step 2 and 10 m away at
    # steps 0, 1 and 3: ego step 0 reads object step 2 (near), ego step 1 reads object step 3 (far), and
    # an absent object at step 2 is never near
    obj_center = torch.tensor([[[[10.0, 0.0]], [[10.0, 0.0]], [[1.0, 0.0]], [[10.0, 0.0]]]], dtype=F64)  # (1, 4, 1, 2)
    obj_radius = torch.ones(1, 4, 1, dtype=F64)
    ego_center = torch.zeros(1, 1, 2, 2, dtype=F64)
    present = torch.ones(1, 1, 4, 1, dtype=torch.bool)
    steps = torch.tensor([2, 3])
    rows = near_pairs(ego_center, 1.0, obj_center, obj_radius, present, obj_steps=steps)
    assert rows.tolist() == [[0, 0, 0, 0]]
    assert near_pairs(ego_center, 1.0, obj_center, obj_radius, present, obj_steps=torch.tensor([3, 2])).tolist() \
        == [[0, 0, 1, 0]]
    present[0, 0, 2, 0] = False
    assert near_pairs(ego_center, 1.0, obj_center, obj_radius, present, obj_steps=steps).shape == (0, 4)
