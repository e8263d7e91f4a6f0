"""scenarios/bench2drive/background.py: where the simplified BackgroundBehavior puts vehicles (spec §2.1)."""

import math
from functools import lru_cache

import numpy as np
import pytest

from envs.bench2drive.route_scenario import Behaviour, Role
from scenarios.bench2drive.background import MAX_BACKGROUND, Background, background_actors, opposite_lanes
from scenarios.bench2drive.common import actor_xy, corridor, dense_route, lanes_beside, road_corridors, siblings
from scenarios.bench2drive.town import town_map, town_name

S_START, LENGTH = 80.0, 120.0


@lru_cache(maxsize=None)
def two_lane_road():
    """A straight town with 2 lanes each way; the route in the outer (right) lane from S_START."""
    for seed in range(200):
        gen = town_map(town_name("straight", seed))
        outer = road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0]) == (1, 0), need=320.0)
        if outer:
            path = corridor(gen.map, outer[0])
            return gen, path, dense_route(path, S_START, LENGTH)
    raise AssertionError("no two-lane straight town in 200 seeds")


def placed(spec: Background, keep_out=np.zeros((0, 2))):
    """(along the route [m], left of the route [m], heading relative to it [rad], actor) per vehicle."""
    gen, path, route = two_lane_road()
    actors = background_actors(gen, route, path, S_START, spec, keep_out, np.random.default_rng(0))
    heading = float(route[0, 2])
    out = []
    for actor in actors:
        rel = actor_xy(actor) - route[0, :2]
        along = math.cos(heading) * rel[0] + math.sin(heading) * rel[1]
        left = -math.sin(heading) * rel[0] + math.cos(heading) * rel[1]
        step = np.diff(actor.path[:2], axis=0)[0]
        out.append((round(along, 3), round(left, 3), math.remainder(math.atan2(step[1], step[0]) - heading,
                                                                    2 * math.pi), actor))
    return out


def test_default_layout_by_hand():
    vehicles = placed(Background())
    assert len(vehicles) == MAX_BACKGROUND == 12
    ego_lane = sorted(a for a, left, _, _ in vehicles if abs(left) < 0.5)
    side_lane = sorted(a for a, left, _, _ in vehicles if abs(left - 3.5) < 0.5)
    oncoming = sorted(a for a, left, h, _ in vehicles if left > 5.0 and abs(h) > 3.0)
    assert ego_lane == pytest.approx([-35.0, -20.0])              # nothing ahead in the ego lane
    assert side_lane == pytest.approx([-35.0, -20.0, 20.0, 35.0])
    assert oncoming == pytest.approx([30.0, 30.0, 70.0, 70.0, 110.0, 110.0], abs=1e-6)
    for _, _, _, actor in vehicles:
        assert actor.role == Role.BACKGROUND and actor.behaviour == Behaviour.IDM
        assert actor.speed0 == 0.0 and actor.target_speed == pytest.approx(16.7) and actor.trigger is None


def test_scenario_switches():
    ahead = [a for a, left, _, _ in placed(Background(ego_lane_ahead=True, opposite=False)) if abs(left) < 0.5]
    assert sorted(ahead) == pytest.approx([-35.0, -20.0, 20.0, 35.0])
    no_behind = placed(Background(behind=False))
    assert all(a > 0 for a, _, _, _ in no_behind) and len(no_behind) == 8
    capped = placed(Background(side_speed=10.0, opposite=False))
    assert sorted(a.target_speed for _, _, _, a in capped) == pytest.approx([10.0] * 4 + [16.7] * 2)
    gen, path, _ = two_lane_road()
    side = next(lane for d, lane in siblings(gen, path.lanes[0]) if d > 0)
    side_lanes = set(corridor(gen.map, road_corridors(gen, lambda lanes: lanes[0] == side, need=0.0)[0]).lanes)
    excluded = placed(Background(exclude_lanes=frozenset(side_lanes), opposite=False))
    assert sorted(left for _, left, _, _ in excluded) == pytest.approx([0.0, 0.0], abs=1e-6)


def test_keep_out_and_opposite_lanes():
    gen, path, route = two_lane_road()
    point = path.point(S_START + 19.0, 3.5)                     # 1 m from the side lane's +20 m vehicle
    near = placed(Background(opposite=False), keep_out=point[None])
    assert sorted(a for a, left, _, _ in near if abs(left - 3.5) < 0.5) == pytest.approx([-35.0, -20.0, 35.0])
    inner, outer = opposite_lanes(gen, route[0, :2], float(route[0, 2]))
    assert all(lanes_beside(gen, i) == (0, 1) for i in (inner,)) and lanes_beside(gen, outer) == (1, 0)
    assert opposite_lanes(gen, route[0, :2], float(route[0, 2]) + math.pi) == []
