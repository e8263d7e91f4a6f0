"""Hand-worked cases for scenarios/bench2drive/common.py: corridors, the dense route, actor specs, flows,
params checks and lane-neighbour helpers, on a synthetic straight road."""

from dataclasses import dataclass
from typing import ClassVar

import math

import numpy as np
import pytest

from envs.bench2drive.route_scenario import ActorKind, Behaviour, Role
from envs.sim.map import Lane, RoadMap
from envs.sim.mapgen import GeneratedMap, MapKind
from scenarios.bench2drive.common import (
    B2DParams, Corridor, corridor, crossing, dense_route, flow, kmh, lanes_beside, neighbours, on_lane, parked,
    road_corridors, road_edges, siblings, span, start_trigger,
)

W = 3.5


def straight_road(lanes_per_direction: int, length: float = 250.0, pieces: int = 1) -> GeneratedMap:
    """A road along +x: forward lanes (y < 0, L<piece>_<k>, k = 0 innermost) and backward lanes (y > 0)."""
    lanes, cut = [], length / pieces
    for piece in range(pieces):
        x = np.arange(piece * cut, (piece + 1) * cut + 0.5, 1.0)
        for k in range(lanes_per_direction):
            for sign, block in ((-1, "F"), (1, "B")):
                y = sign * (k + 0.5) * W
                line = np.stack([x, np.full_like(x, y)], -1)
                if sign > 0:
                    line = line[::-1]
                ring = np.array([[x[0], y - W / 2], [x[-1], y - W / 2], [x[-1], y + W / 2], [x[0], y + W / 2]])
                lane_id = f"{block}{piece}_{k}"
                forward_next = (f"{block}{piece + 1}_{k}",) if piece + 1 < pieces else ()
                forward_prev = (f"{block}{piece - 1}_{k}",) if piece > 0 else ()
                succ, pred = (forward_next, forward_prev) if sign < 0 else (forward_prev, forward_next)
                lanes.append(Lane(lane_id, f"{block}{piece}", ring, line, 13.9, succ, pred))
    return GeneratedMap(MapKind.STRAIGHT, RoadMap(lanes=tuple(lanes)), {}, (), ())


def test_corridor_joins_lanes_and_measures_arc_length():
    gen = straight_road(1, length=200.0, pieces=2)
    path = corridor(gen.map, ("F0_0", "F1_0"))
    assert path.length == pytest.approx(200.0)
    assert path.lane_starts == pytest.approx((0.0, 100.0))
    assert len(path.xy) == 201                                 # the shared joint vertex appears once
    assert path.lane_at(99.9) == "F0_0" and path.lane_at(100.0) == "F1_0"
    assert path.lane_end("F0_0") == pytest.approx(100.0) and path.lane_end("F1_0") == pytest.approx(200.0)
    assert path.point(30.0, 2.0) == pytest.approx([30.0, -W / 2 + 2.0])
    assert path.heading(50.0) == pytest.approx(0.0)
    assert path.project([[42.0, 5.0]]) == pytest.approx([42.0])
    shifted = path.path(10.0, 40.0, knots=((20.0, 0.0), (30.0, W)))
    assert shifted[0] == pytest.approx([10.0, -W / 2]) and shifted[-1] == pytest.approx([40.0, W / 2])
    assert np.diff(shifted[:, 0]).max() <= 2.0 + 1e-9


def test_dense_route_every_metre_with_heading_and_lane_change():
    path = corridor(straight_road(2).map, ("F0_0",))
    route = dense_route(path, 10.0, 50.0)
    assert route.shape == (51, 3)
    assert route[:, 0] == pytest.approx(np.arange(10.0, 60.5, 1.0))
    assert route[:, 1] == pytest.approx(np.full(51, -W / 2)) and route[:, 2] == pytest.approx(np.zeros(51))
    changed = dense_route(path, 10.0, 50.0, knots=((20.0, -W), (40.0, 0.0)))
    assert changed[0, 1] == pytest.approx(-1.5 * W) and changed[-1, 1] == pytest.approx(-W / 2)
    assert changed[20, 1] == pytest.approx(-W / 2 - W / 2)    # half-way (s = 30): half a lane over
    assert changed[20, 2] > 0.0                                # moving left


def test_parked_on_lane_and_start_trigger():
    path = corridor(straight_road(1).map, ("F0_0",))
    car = parked(path, 50.0, -1.0, (4.5, 2.0))
    assert car.behaviour == Behaviour.PARKED and car.role == Role.SCENARIO and car.s0 == 1.0
    assert car.path[0] == pytest.approx([49.0, -W / 2 - 1.0]) and car.path[1] == pytest.approx([51.0, -W / 2 - 1.0])
    lead = on_lane(path, 30.0, (4.5, 2.0), 10.0, behind=5.0, ahead=50.0)
    assert lead.path[0] == pytest.approx([25.0, -W / 2]) and lead.path[-1] == pytest.approx([80.0, -W / 2])
    assert lead.s0 == pytest.approx(5.0) and lead.behaviour == Behaviour.IDM and lead.target_speed == 10.0
    trigger = start_trigger(path, 12.0)
    assert trigger.point == pytest.approx([12.0, -W / 2]) and trigger.distance == 3.0


def test_crossing_walker_path_and_sudden_trigger():
    path = corridor(straight_road(1).map, ("F0_0",))
    walker = crossing(path, 40.0, -4.0, 6.0, 2.0, (0.6, 0.6), ActorKind.PEDESTRIAN, 2.1, 6.0)
    centre = np.array([40.0, -W / 2])
    assert walker.path[0] == pytest.approx(centre + [0.0, -4.0])
    assert walker.path[1] == pytest.approx(centre + [0.0, 6.0])
    assert walker.behaviour == Behaviour.CONSTANT and walker.target_speed == 2.0 and walker.speed0 == 0.0
    assert walker.trigger.point == pytest.approx(centre)
    assert (walker.trigger.time_to_arrival, walker.trigger.distance) == (2.1, 6.0)
    angled = crossing(path, 40.0, -4.0, 6.0, 2.0, (0.6, 0.6), ActorKind.PEDESTRIAN, 2.1, 6.0, angle=10.0)
    lean = math.tan(math.radians(10.0))
    assert angled.path[0] == pytest.approx(centre + [4.0 * lean, -4.0])   # starts ahead, walks back
    assert angled.path[1] == pytest.approx(centre + [-6.0 * lean, 6.0])


def test_flow_is_periodic_with_every_gap_in_the_interval():
    path = corridor(straight_road(1, length=300.0).map, ("F0_0",))
    rng = np.random.default_rng(5)
    actors = flow(path, 100.0, 200.0, 9.0, (20.0, 30.0), rng)
    line = actors[0].path
    total = float(np.hypot(*np.diff(line, axis=0).T).sum())
    assert line[-1] == pytest.approx([200.0, -W / 2])         # the sink stays, the source moves back
    starts = np.sort([a.s0 for a in actors])
    gaps = np.diff(np.append(starts, starts[0] + total))       # the wrap-around gap included
    assert 100.0 <= total <= 130.0 and len(actors) == len(gaps)
    assert (gaps >= 20.0 - 1e-9).all() and (gaps <= 30.0 + 1e-9).all()
    assert all(a.recycle and a.speed0 == a.target_speed == 9.0 and a.role == Role.SCENARIO for a in actors)
    capped = flow(path, 0.0, 290.0, 9.0, (5.0, 6.0), np.random.default_rng(0), max_count=3)
    assert len(capped) == 3


def test_neighbours_edges_and_road_corridors():
    gen = straight_road(3, pieces=2)
    assert lanes_beside(gen, "F0_0") == (0, 2) and lanes_beside(gen, "F0_2") == (2, 0)
    assert sorted(d for d, _ in siblings(gen, "F0_1")) == pytest.approx([-W, W])
    assert neighbours(gen, ("F0_1", "F1_1"), 1) == ("F0_0", "F1_0")
    with pytest.raises(ValueError, match="^lane_id='F0_2'"):
        neighbours(gen, ("F0_2",), -1)
    assert road_edges(gen, "F0_1") == pytest.approx((-1.5 * W, 1.5 * W + 3 * W))
    full = road_corridors(gen, need=240.0)
    assert ("F0_0", "F1_0") in full and ("B1_0", "B0_0") in full and len(full) == 6
    assert road_corridors(gen, need=260.0) == []
    innermost = road_corridors(gen, lambda lanes: lanes_beside(gen, lanes[0]) == (0, 2), need=0.0)
    assert sorted(innermost) == [("B1_0", "B0_0"), ("F0_0", "F1_0")]


@dataclass(frozen=True)
class _Example(B2DParams):
    gap_from: float = 10.0
    gap_to: float = 20.0
    side: str = "right"
    RANGES: ClassVar = {"gap_from": (5.0, 15.0), "gap_to": (12.0, 30.0)}
    CHOICES: ClassVar = {"side": ("right", "left")}
    SAMPLED_CHOICES: ClassVar = {"side": ("right",)}


def test_params_check_intervals_and_sample_the_route_files_choices():
    with pytest.raises(ValueError, match=r"^gap_from=14.0: must not exceed gap_to=13.0"):
        _Example(gap_from=14.0, gap_to=13.0)
    with pytest.raises(ValueError, match=r"^gap_to=31.0"):
        _Example(gap_to=31.0)
    with pytest.raises(ValueError, match=r"^side='up'"):
        _Example(side="up")
    assert _Example(side="left").side == "left"                 # supported, though never sampled
    rng = np.random.default_rng(0)
    assert {_Example.sample(rng).side for _ in range(20)} == {"right"}


def test_units_and_route_length_clip():
    assert kmh(36.0) == pytest.approx(10.0)
    assert (span(60.0), span(120.0), span(400.0)) == (100.0, 120.0, 150.0)
    assert isinstance(corridor(straight_road(1).map, ("F0_0",)), Corridor)
