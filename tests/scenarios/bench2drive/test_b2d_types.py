"""The 44 Bench2Drive types (scenarios/bench2drive/*): registry entries, abilities from the spec's table,
params checks, deterministic and sane routes, and the facts of spec §2 each type must realise."""

import math
from dataclasses import fields, is_dataclass, replace
from functools import lru_cache

import numpy as np
import pytest
import torch

import scenarios
from envs.bench2drive.route_scenario import ActorKind, Behaviour, RouteScenario
from envs.bench2drive.vehicle_control import MKZ_2020
from envs.metrics.bench2drive_results import ABILITY_NAMES, ABILITY_TYPES
from envs.sim.geometry import box_corners, boxes_intersect
from envs.sim.route import path_project
from envs.sim.scene import LightStatus
from scenarios import SCENARIOS, build_scene, families
from scenarios.bench2drive import B2D_SCENARIO_TYPES, build_route
from scenarios.lanes import points_at

G, R = int(LightStatus.GREEN), int(LightStatus.RED)
SPEC_TABLE = {   # spec bench2drive.md §2, column "abil."
    "Accident": "O", "AccidentTwoWays": "O", "ParkedObstacle": "O", "ParkedObstacleTwoWays": "O",
    "ConstructionObstacle": "O", "ConstructionObstacleTwoWays": "O", "HazardAtSideLane": "O",
    "HazardAtSideLaneTwoWays": "O", "VehicleOpensDoorTwoWays": "O", "ParkingCutIn": "E", "StaticCutIn": "E",
    "HardBreakRoute": "E", "ControlLoss": "E", "DynamicObjectCrossing": "E", "ParkingCrossingPedestrian": "E",
    "PedestrianCrossing": "E+T", "VehicleTurningRoute": "E+T", "VehicleTurningRoutePedestrian": "E+T",
    "OppositeVehicleRunningRedLight": "E+T", "OppositeVehicleTakingPriority": "E+T", "BlockedIntersection": "E+T",
    "YieldToEmergencyVehicle": "G", "InvadingTurn": "G", "EnterActorFlow": "M+T", "HighwayExit": "M",
    "MergerIntoSlowTraffic": "M", "MergerIntoSlowTrafficV2": "M", "InterurbanActorFlow": "M",
    "InterurbanAdvancedActorFlow": "M", "HighwayCutIn": "M", "ParkingExit": "M", "SequentialLaneChange": "M",
    "SignalizedJunctionLeftTurn": "M+T", "NonSignalizedJunctionLeftTurn": "M+T", "SignalizedJunctionRightTurn": "M+T",
    "NonSignalizedJunctionRightTurn": "M+T", "SignalizedJunctionLeftTurnEnterFlow": "M+T",
    "NonSignalizedJunctionLeftTurnEnterFlow": "M+T", "CrossingBicycleFlow": "M+T", "T_Junction": "T",
    "VanillaNonSignalizedTurn": "T", "VanillaNonSignalizedTurnEncounterStopsign": "T",
    "VanillaSignalizedTurnEncounterGreenLight": "T", "VanillaSignalizedTurnEncounterRedLight": "T",
}
LETTER = {"O": "Overtaking", "M": "Merging", "E": "Emergency_Brake", "G": "Give_Way", "T": "Traffic_Signs"}


@lru_cache(maxsize=None)
def route(name: str, seed: int = 0) -> RouteScenario:
    return build_route(name, seed)


def drawn(name: str, seed: int = 0):
    """The params `build_route(name, seed)` drew."""
    return scenarios.sample_params(name, scenarios.route_rngs(name, seed)[0])


def arc_on_route(r: RouteScenario, xy) -> np.ndarray:
    """Index-metres along the route of the nearest dense point and the signed offset to its left."""
    xy = np.atleast_2d(xy)
    k = np.argmin(np.hypot(*(r.route[None, :, :2] - xy[:, None]).transpose(2, 0, 1)), axis=1)
    rel = xy - r.route[k, :2]
    left = -np.sin(r.route[k, 2]) * rel[:, 0] + np.cos(r.route[k, 2]) * rel[:, 1]
    return np.stack([k.astype(float), left], -1)


def start_xy(actor) -> np.ndarray:
    return points_at(actor.path, np.array([actor.s0]))[0]


def inside(ring: np.ndarray, point: np.ndarray) -> bool:
    """Even-odd point in polygon."""
    x, y = point
    a, b = ring, np.roll(ring, -1, 0)
    x_cross = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1] + 1e-300)
    crosses = ((a[:, 1] > y) != (b[:, 1] > y)) & (x < x_cross)
    return bool(crosses.sum() % 2)


def equal(u, v) -> bool:
    """Deep equality of dataclasses, arrays, tuples and scalars (arrays bit for bit)."""
    if is_dataclass(u):
        return type(u) is type(v) and all(equal(getattr(u, f.name), getattr(v, f.name)) for f in fields(u))
    if isinstance(u, np.ndarray):
        return isinstance(v, np.ndarray) and u.shape == v.shape and np.array_equal(u, v)
    if isinstance(u, (tuple, list)):
        return len(u) == len(v) and all(equal(a, b) for a, b in zip(u, v))
    return u == v


def same_route(a: RouteScenario, b: RouteScenario) -> None:
    for f in fields(RouteScenario):
        assert equal(getattr(a, f.name), getattr(b, f.name)), f.name


# --------------------------------------------------------------------------- registry


def test_the_44_types_in_spec_order_are_registered_as_bench2drive():
    assert len(B2D_SCENARIO_TYPES) == 44 == len(set(B2D_SCENARIO_TYPES))
    assert B2D_SCENARIO_TYPES[:2] == ("Accident", "AccidentTwoWays")
    assert B2D_SCENARIO_TYPES[21] == "YieldToEmergencyVehicle"
    assert B2D_SCENARIO_TYPES[-1] == "VanillaSignalizedTurnEncounterRedLight"
    assert set(families("bench2drive")) == set(B2D_SCENARIO_TYPES) == set(SPEC_TABLE)
    assert "cut_in" in families("navsim") and not set(families("navsim")) & set(B2D_SCENARIO_TYPES)
    with pytest.raises(ValueError, match="^benchmark='carla'"):
        families("carla")


def test_abilities_match_the_spec_table_and_the_ability_tool():
    per_ability = {name: 0 for name in ABILITY_NAMES}
    for name, letters in SPEC_TABLE.items():
        expected = tuple(n for n in ABILITY_NAMES if n in {LETTER[p] for p in letters.split("+")})
        assert SCENARIOS[name].abilities == expected, name
        assert expected == tuple(n for n in ABILITY_NAMES if name in ABILITY_TYPES[n]), name
        for ability in expected:
            per_ability[ability] += 5
    assert per_ability == {"Overtaking": 45, "Merging": 80, "Emergency_Brake": 60, "Give_Way": 10,
                           "Traffic_Signs": 95}          # bench2drive220 routes per ability (spec §3.7)
    assert route("PedestrianCrossing").abilities == ("Emergency_Brake", "Traffic_Signs")
    with pytest.raises(ValueError, match="^abilities='X'"):
        scenarios.ability_names("X")


def test_registry_keeps_the_benchmarks_apart():
    with pytest.raises(ValueError, match="^name='Accident': a bench2drive scenario, not navsim"):
        build_scene("Accident", None, 0)
    with pytest.raises(ValueError, match="^name='cut_in': a navsim scenario, not bench2drive"):
        scenarios.build_route("cut_in", 0)
    with pytest.raises(ValueError, match="^scenario_type='cut_in'"):
        build_route("cut_in", 0)
    with pytest.raises(ValueError, match="^params="):
        build_route("Accident", 0, params=SCENARIOS["ParkedObstacle"].params_type())
    with pytest.raises(ValueError, match="^seed=-1"):
        build_route("Accident", -1)
    with pytest.raises(ValueError, match="^route_id=-2"):
        build_route("Accident", 0, route_id=-2)


@pytest.mark.parametrize("name", B2D_SCENARIO_TYPES)
def test_params_are_sampled_in_range_and_rejected_out_of_range_by_name(name):
    params_type = SCENARIOS[name].params_type
    rng = np.random.default_rng(1)
    for _ in range(10):
        params = params_type.sample(rng)
        assert replace(params) == params
    params_type()                                           # the defaults are valid
    for field, (low, high) in params_type.RANGES.items():
        with pytest.raises(ValueError, match=f"^{field}="):
            replace(params, **{field: high + 1.0})
        with pytest.raises(ValueError, match=f"^{field}="):
            replace(params, **{field: low - 1.0})
    for field in params_type.CHOICES:
        with pytest.raises(ValueError, match=f"^{field}='sideways'"):
            replace(params, **{field: "sideways"})


# --------------------------------------------------------------------------- every route


@pytest.mark.parametrize("name", B2D_SCENARIO_TYPES)
def test_route_is_deterministic_and_sane(name):
    for seed in (0, 1):
        r = route(name, seed)
        same_route(r, build_route(name, seed))                       # same seed => identical arrays
        assert r.scenario_type == name and r.scenario_name == f"{name}_1" and r.seed == seed
        assert r.town.startswith("Builtin_") and r.weather_id is not None
        steps = np.hypot(*np.diff(r.route[:, :2], axis=0).T)
        assert 99.5 <= steps.sum() <= 160.0                           # chords of a 100-160 m arc
        assert steps.min() > 0.8 and steps.max() < 1.2                 # ~1 m dense route
        assert np.allclose(np.cos(r.route[:-1, 2]) * np.diff(r.route[:, 0]) + np.sin(r.route[:-1, 2])
                           * np.diff(r.route[:, 1]), steps, atol=1e-6)
        # the ego starts on a lane, along it
        start = r.route[0, :2]
        lane = next((l for l in (*r.road_map.lanes, *r.road_map.lane_connectors) if inside(l.polygon, start)), None)
        assert lane is not None
        k = int(np.argmin(np.hypot(*(lane.centerline - start).T)))
        step = lane.centerline[min(k + 1, len(lane.centerline) - 1)] - lane.centerline[max(k - 1, 0)]
        assert math.cos(math.atan2(step[1], step[0]) - r.route[0, 2]) > math.cos(math.radians(15))
        # the scenario triggers early and ends after it
        assert 0 <= r.trigger_index <= 26
        assert r.end_index is None or r.trigger_index < r.end_index <= len(r.route) - 1
        assert all(np.isfinite(a.path).all() and np.isfinite([a.s0, a.speed0, a.target_speed]).all() for a in r.actors)
        assert all(0.0 <= a.s0 <= np.hypot(*np.diff(a.path, axis=0).T).sum() + 1e-6 for a in r.actors)
        assert sum(a.role == 1 for a in r.actors) >= (0 if name in ("ControlLoss", "SequentialLaneChange", "T_Junction")
                                                      or name.startswith("Vanilla") else 1)
    assert not np.array_equal(route(name, 0).route, route(name, 1).route)


@pytest.mark.parametrize("name", B2D_SCENARIO_TYPES)
def test_nothing_overlaps_at_the_start(name):
    r = route(name, 0)
    present = [a for a in r.actors if a.spawn_delay <= 0.0]
    boxes = [(start_xy(a), a) for a in present]
    poses = torch.tensor([[*xy, math.atan2(*np.diff(points_at(a.path, np.array([a.s0, a.s0 + 0.1])), axis=0)[0][::-1])]
                          for xy, a in boxes], dtype=torch.float64).reshape(-1, 3)
    sizes = torch.tensor([a.size for a in present], dtype=torch.float64).reshape(-1, 2)
    corners = box_corners(poses[:, :2], poses[:, 2], sizes[:, 0], sizes[:, 1])
    ego = box_corners(torch.tensor(r.route[:1, :2]), torch.tensor(r.route[:1, 2]), MKZ_2020.length, MKZ_2020.width)
    assert not boxes_intersect(ego.expand_as(corners), corners).any()
    n = len(present)
    pairs = boxes_intersect(corners[:, None].expand(n, n, 4, 2), corners[None].expand(n, n, 4, 2))
    assert not (pairs & ~torch.eye(n, dtype=torch.bool)).any()


# --------------------------------------------------------------------------- what each type realises


def test_accident_police_and_crashed_cars_shifted_right():
    r = route("Accident")
    params = drawn("Accident")
    prop, police, first, second = r.actors[:4]
    assert [a.kind for a in (prop, police, first, second)] == [ActorKind.STATIC, ActorKind.EMERGENCY,
                                                                ActorKind.VEHICLE, ActorKind.VEHICLE]
    assert all(a.behaviour == Behaviour.PARKED for a in (prop, police, first, second))
    at = arc_on_route(r, [start_xy(a) for a in (police, first, second)])
    expected = [params.distance, params.distance + 10, params.distance + 16]   # police, +10 m, +6 m more
    assert at[:, 0] - r.trigger_index == pytest.approx(expected, abs=0.6)
    assert at[:, 1] == pytest.approx([-0.6 * 1.75] * 3, abs=0.05)
    assert r.end_index == pytest.approx(at[2, 0] + 50, abs=1.0)
    side = [a for a in r.actors if a.role == 0 and abs(arc_on_route(r, start_xy(a))[0, 1] - 3.5) < 0.5]
    assert side and all(a.target_speed == pytest.approx(params.speed / 3.6) for a in side)   # SetMaxSpeed


@pytest.mark.parametrize("name", ["AccidentTwoWays", "ParkedObstacleTwoWays", "ConstructionObstacleTwoWays",
                                  "HazardAtSideLaneTwoWays", "VehicleOpensDoorTwoWays"])
def test_two_ways_oncoming_flow_and_wrong_direction_check_off(name):
    r = route(name)
    assert r.wrong_direction_check is False
    flows = [a for a in r.actors if a.recycle]
    assert flows and all(a.behaviour == Behaviour.IDM and a.speed0 == a.target_speed > 0 for a in flows)
    middle = r.route[len(r.route) // 2]
    line = flows[0].path
    j = int(np.argmin(np.hypot(*(line - middle[:2]).T)))
    step = line[j + 1] - line[j]
    assert math.cos(math.atan2(step[1], step[0]) - middle[2]) < -0.9            # against the ego
    assert not [a for a in r.actors if a.role == 0 and a.trigger is None
                and math.cos(math.atan2(*np.diff(a.path[:2], axis=0)[0][::-1]) - r.route[0, 2]) < -0.9]


def test_hazard_bicycles_ride_then_stop():
    r = route("HazardAtSideLane")
    params = drawn("HazardAtSideLane")
    bikes = r.actors[:2]
    assert all(b.kind == ActorKind.BICYCLE and b.behaviour == Behaviour.CONSTANT for b in bikes)
    assert all(b.stop_after == params.bicycle_drive_distance for b in bikes)
    assert all(b.target_speed == pytest.approx(params.bicycle_speed / 3.6) and b.speed0 == 0.0 for b in bikes)
    at = arc_on_route(r, [start_xy(b) for b in bikes])
    assert at[1, 0] - at[0, 0] == pytest.approx(9.0, abs=0.6) and at[:, 1] == pytest.approx([-0.9625] * 2, abs=0.05)
    assert np.hypot(*(bikes[0].trigger.point - r.route[r.trigger_index, :2])) < 1e-6


def test_opening_door_widens_on_a_time_to_arrival_trigger():
    car = route("VehicleOpensDoorTwoWays").actors[0]
    assert car.behaviour == Behaviour.PARKED and car.width_after_trigger == pytest.approx(car.size[1] + 1.0)
    assert (car.trigger.time_to_arrival, car.trigger.distance) == (3.0, 10.0)


@pytest.mark.parametrize("name, tta, distance", [("ParkingCutIn", 2.35, 10.0), ("StaticCutIn", 2.7, 15.0)])
def test_cut_in_changes_into_the_ego_lane(name, tta, distance):
    r = route(name)
    cutter = r.actors[0]
    start, end = arc_on_route(r, points_at(cutter.path, np.array([0.0, cutter.s0 + 20.0])))
    assert abs(abs(start[1]) - 3.5) < 0.1 and abs(end[1]) < 0.1          # from the side lane into the ego's
    assert (cutter.trigger.time_to_arrival, cutter.trigger.distance) == (tta, distance)
    queue = arc_on_route(r, [start_xy(a) for a in r.actors[1:] if a.behaviour == Behaviour.PARKED])
    if name == "StaticCutIn":
        assert np.diff(np.sort(queue[:, 0])) == pytest.approx([11, 22, 11, 11], abs=1.0)   # 2 behind, 3 ahead
        assert cutter.target_speed == pytest.approx(min(60 / 3.6, r.speed_limit))


def test_hard_break_leads_pause_ten_seconds():
    r = route("HardBreakRoute")
    leads = [a for a in r.actors if a.pause is not None]
    assert len(leads) == 2 and all(a.pause == (0.0, 10.0) and a.speed0 > 0 for a in leads)
    assert all(np.hypot(*(a.trigger.point - r.route[r.trigger_index, :2])) < 1e-6 for a in leads)


def test_control_loss_noise_points_along_the_route():
    r = route("ControlLoss")
    assert r.control_noise_points == pytest.approx(r.route[[r.trigger_index + d for d in (14, 48, 74)], :2])
    assert r.end_index == r.trigger_index + 110


@pytest.mark.parametrize("name, tta, distance, speed", [("DynamicObjectCrossing", 2.1, 6.0, 2.0),
                                                        ("ParkingCrossingPedestrian", 2.15, 6.0, 2.0),
                                                        ("VehicleTurningRoute", 1.8, 6.0, 1.8),
                                                        ("VehicleTurningRoutePedestrian", 2.2, 6.0, 1.8)])
def test_crossers_are_sudden_constant_actors_across_the_route(name, tta, distance, speed):
    r = route(name)
    crosser = r.actors[0]
    assert crosser.behaviour == Behaviour.CONSTANT and crosser.target_speed == speed and crosser.speed0 == 0.0
    assert (crosser.trigger.time_to_arrival, crosser.trigger.distance) == (tta, distance)
    start, end = arc_on_route(r, crosser.path[[0, -1]])
    assert start[1] < -1.0 and end[1] > 1.0                                 # from the right kerb across
    assert arc_on_route(r, crosser.trigger.point)[0, 1] == pytest.approx(0.0, abs=0.1)


def test_pedestrian_crossing_group_of_three():
    walkers = [a for a in route("PedestrianCrossing").actors if a.kind == ActorKind.PEDESTRIAN]
    assert len(walkers) == 3 and all(w.target_speed == 1.3 for w in walkers)
    assert len({id(w.trigger) for w in walkers}) == 1 and walkers[0].trigger.time_to_arrival == 3.5


@pytest.mark.parametrize("name, kind, lit", [("OppositeVehicleRunningRedLight", ActorKind.EMERGENCY, True),
                                             ("OppositeVehicleTakingPriority", ActorKind.VEHICLE, False)])
def test_vehicle_crossing_the_junction_ignores_lights(name, kind, lit):
    r = route(name)
    runner = r.actors[0]
    assert runner.kind == kind and runner.behaviour == Behaviour.CONSTANT and not runner.obeys_lights
    assert runner.target_speed == pytest.approx(60 / 3.6) and runner.trigger.time_to_arrival == 2.2
    assert len(r.lights) == (4 if lit else 0)
    if lit:
        programs = sorted(l.program.cycle[0][0] for l in r.lights)
        assert programs == [G, R, R, R]


def test_blocked_intersection_car_vanishes():
    car = route("BlockedIntersection").actors[0]
    assert car.behaviour == Behaviour.PARKED and car.despawn_after == 10.0 and car.trigger.distance == 13.0


def test_emergency_vehicle_from_behind():
    r = route("YieldToEmergencyVehicle")
    params = drawn("YieldToEmergencyVehicle")
    ev = r.actors[r.emergency_actor]
    assert r.emergency_actor == 0 and ev.kind == ActorKind.EMERGENCY and ev.spawn_delay > 0
    assert ev.target_speed == pytest.approx(r.speed_limit + 25 / 3.6) and not ev.obeys_lights
    behind = path_project(ev.path, r.route[r.trigger_index, None, :2])[0] - ev.s0   # along its path
    assert behind == pytest.approx(params.distance, abs=0.05)


def test_invading_turn_flow_swerves_into_the_ego_lane():
    r = route("InvadingTurn")
    params = drawn("InvadingTurn")
    invader = next(a for a in r.actors if a.recycle)
    at = arc_on_route(r, invader.path)
    offsets = at[(at[:, 0] > 2) & (at[:, 0] < len(r.route) - 3), 1]
    assert offsets.min() == pytest.approx(3.5 - 0.25 * 3.5 - params.offset * 3.5, abs=0.1)   # into the ego lane
    assert offsets.max() == pytest.approx(3.5, abs=0.2)                                    # its own lane elsewhere


@pytest.mark.parametrize("name", ["SignalizedJunctionLeftTurn", "SignalizedJunctionRightTurn",
                                  "SignalizedJunctionLeftTurnEnterFlow", "CrossingBicycleFlow"])
def test_signalised_flow_types_ego_red_five_seconds_then_green(name):
    r = route(name)
    def crossed_by_route(light) -> bool:   # the route crosses the stop line, driving its way
        a, b = light.stop_line
        t = np.clip((r.route[:, :2] - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
        gap = np.hypot(*(r.route[:, :2] - (a + t[:, None] * (b - a))).T)
        k = int(np.argmin(gap))
        return gap[k] < 0.8 and math.cos(r.route[k, 2] - light.heading) > 0.9

    (ego,) = [light for light in r.lights if crossed_by_route(light)]
    assert ego.program.prelude == ((R, 5.0),) and ego.program.cycle == ((G, 300.0),)
    speed = drawn(name).flow_speed
    flows = [a for a in r.actors if a.recycle]
    assert flows and all(a.target_speed == a.speed0 == speed for a in flows)
    if name == "CrossingBicycleFlow":
        assert all(a.kind == ActorKind.BICYCLE and a.lateral_offset == pytest.approx(-1.15) for a in flows)


@pytest.mark.parametrize("name", ["NonSignalizedJunctionLeftTurn", "NonSignalizedJunctionRightTurn",
                                  "NonSignalizedJunctionLeftTurnEnterFlow", "VanillaNonSignalizedTurn"])
def test_unsignalised_types_have_no_lights(name):
    assert route(name).lights == () and route(name).stop_signs == ()


def test_vanilla_light_preludes():
    green = route("VanillaSignalizedTurnEncounterGreenLight")
    preludes = sorted(l.program.prelude for l in green.lights)
    assert preludes == [((G, 5.0), (R, 5.0))] + [((R, 10.0),)] * 3
    red = route("VanillaSignalizedTurnEncounterRedLight")
    assert sorted((l.program.prelude, l.program.cycle) for l in red.lights) == \
        [((), ((R, 300.0),))] * 3 + [(((R, 5.0),), ((G, 300.0),))]


@pytest.mark.parametrize("name", ["VanillaNonSignalizedTurnEncounterStopsign", "EnterActorFlow"])
def test_stop_sign_on_the_route(name):
    r = route(name)
    (sign,) = r.stop_signs
    rel = r.route[:, :2] - sign.center
    along = np.cos(sign.heading) * rel[:, 0] + np.sin(sign.heading) * rel[:, 1]
    across = -np.sin(sign.heading) * rel[:, 0] + np.cos(sign.heading) * rel[:, 1]
    assert ((np.abs(along) <= sign.length / 2) & (np.abs(across) <= sign.width / 2)).any()


def test_merging_types_routes():
    exit_route = route("HighwayExit")
    assert arc_on_route(exit_route, exit_route.route[0, :2])[0, 1] == pytest.approx(0.0)
    parking = route("ParkingExit")
    front, back = (start_xy(a) - parking.route[0, :2] for a in parking.actors[:2])
    heading = np.array([math.cos(parking.route[0, 2]), math.sin(parking.route[0, 2])])
    sizes = [a.size[0] for a in parking.actors[:2]]
    reach = MKZ_2020.length / 2                                            # 9 m between bumpers
    assert front @ heading == pytest.approx(reach + 9.0 + sizes[0] / 2, abs=0.3)
    assert back @ heading == pytest.approx(-reach - 9.0 - sizes[1] / 2, abs=0.3)
    # the route pulls out clear of the front car: 0.5 m between the ego's box and the car's at its rear
    rear_bumper = front @ heading - sizes[0] / 2
    k = int(round(rear_bumper - reach))                                    # ego front at the car's rear
    offset = np.hypot(*(parking.route[k, :2] - parking.route[0, :2])) * math.sin(
        math.atan2(*(parking.route[k, :2] - parking.route[0, :2])[::-1]) - parking.route[0, 2])
    assert offset - MKZ_2020.width / 2 > parking.actors[0].size[1] / 2 + 0.5
    assert parking.trigger_index == 0 and parking.ego_speed0 == 0.0
    cutter = route("HighwayCutIn").actors[0]
    assert cutter.behaviour == Behaviour.CONSTANT and cutter.target_speed == pytest.approx(0.8 * 25.0)
