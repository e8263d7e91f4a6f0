"""envs.bench2drive.criteria: every Bench2Drive rule on hand-built episodes (sequences of TickViews).

The map is a straight two-lane road along +x: L1 eastbound centred at y = -1.75, L2 westbound at y = +1.75,
3.5 m wide; the route runs along L1 from x = 0 to x = 150 (151 points, 1 m apart, 150 m). The ego box is
4.9 x 2.1 m. Time = tick x dt with dt = 0.05 s unless a test says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from envs.bench2drive.criteria import (KEY, MAX_TICKS, RouteStatus, criteria_context, criteria_step, finalize,
                                       initial_criteria, reset_criteria_rows)
from envs.bench2drive.route_scenario import (ActorKind, ActorSpec, LightProgram, LightSpec, Role, RouteScenario,
                                             StopSignSpec)
from envs.bench2drive.tick import TickView
from envs.sim.map import Area, Lane, RoadMap
from envs.sim.scene import LightStatus

DT = 0.05
LANE_Y = -1.75


def lane(lane_id: str, y: float, eastbound: bool = True, x0: float = -20.0, x1: float = 220.0,
         connector: bool = False, width: float = 3.5) -> Lane:
    xs = np.arange(x0, x1 + 0.5, 1.0)
    centre = np.stack([xs, np.full_like(xs, y)], -1)
    ring = np.array([[x0, y - width / 2], [x1, y - width / 2], [x1, y + width / 2], [x0, y + width / 2]])
    return Lane(id=lane_id, roadblock_id="RB" + lane_id, polygon=ring, centerline=centre if eastbound else centre[::-1],
                is_connector=connector)


def road_map(junction: tuple[float, float] | None = None, carpark: bool = False) -> RoadMap:
    """The straight road; `junction` = (x0, x1) replaces that stretch of both lanes by connectors."""
    if junction is None:
        lanes, connectors = (lane("L1", LANE_Y), lane("L2", -LANE_Y, eastbound=False)), ()
    else:
        a, b = junction
        lanes = (lane("L1", LANE_Y, x1=a), lane("L3", LANE_Y, x0=b), lane("L2", -LANE_Y, eastbound=False, x0=b),
                 lane("L4", -LANE_Y, eastbound=False, x1=a))
        connectors = (lane("C1", LANE_Y, x0=a, x1=b, connector=True),
                      lane("C2", -LANE_Y, eastbound=False, x0=a, x1=b, connector=True))
    parks = (Area("P1", np.array([[40.0, -30.0], [80.0, -30.0], [80.0, -10.0], [40.0, -10.0]])),) if carpark else ()
    return RoadMap(lanes=lanes, lane_connectors=connectors, carparks=parks)


def scenario(length: int = 150, **overrides) -> RouteScenario:
    xs = np.arange(0.0, length + 1.0)
    route = np.stack([xs, np.full_like(xs, LANE_Y), np.zeros_like(xs)], -1)
    fields = dict(route_id=7, scenario_type="Accident", scenario_name="Accident_1", town="Builtin_straight_0",
                  road_map=road_map(), route=route, speed_limit=10.0)
    fields.update(overrides)
    return RouteScenario(**fields)


def actor(x: float, y: float, heading: float = 0.0, size=(4.0, 2.0), kind=ActorKind.VEHICLE,
          role=Role.SCENARIO, speed: float = 0.0, present: bool = True) -> dict:
    return dict(pose=(x, y, heading), size=size, kind=int(kind), role=int(role), speed=speed, present=present)


def view(x: float, y: float = LANE_Y, heading: float = 0.0, speed: float = 5.0, tick: int = 1,
         actors=(), lights=(), active: bool = False, dt: float = DT, n_actors: int | None = None) -> TickView:
    """One route's view (B = 1); actor slots padded to `n_actors` with absent far-away actors."""
    slots = list(actors) + [actor(1e4, 1e4, present=False)] * ((n_actors or max(1, len(actors))) - len(actors))
    f64 = dict(dtype=torch.float64)
    return TickView(
        ego_pose=torch.tensor([[x, y, heading]], **f64), ego_speed=torch.tensor([speed], **f64),
        ego_accel=torch.zeros(1, 2, **f64), ego_yaw_rate=torch.zeros(1, **f64),
        ego_size=torch.tensor([[4.9, 2.1]], **f64),
        actor_pose=torch.tensor([[a["pose"] for a in slots]], **f64),
        actor_speed=torch.tensor([[a["speed"] for a in slots]], **f64),
        actor_size=torch.tensor([[a["size"] for a in slots]], **f64),
        actor_kind=torch.tensor([[a["kind"] for a in slots]]), actor_role=torch.tensor([[a["role"] for a in slots]]),
        actor_present=torch.tensor([[a["present"] for a in slots]]),
        light_state=torch.tensor([[int(s) for s in lights] or [int(LightStatus.UNKNOWN)]]),
        tick=torch.tensor([tick]), dt=dt, scenario_active=torch.tensor([active]))


def batch(*views: TickView) -> TickView:
    """Stack B = 1 views (same slot counts) into one batch."""
    names = [name for name in TickView.__dataclass_fields__ if name != "dt"]
    values = {name: torch.cat([getattr(v, name) for v in views]) for name in names}
    return TickView(dt=views[0].dt, **values)


def run(ctx, views, state=None):
    """Step the criteria through the views; returns (final state, [(state, events) per tick])."""
    state = initial_criteria(ctx) if state is None else state
    history = []
    for v in views:
        state, events = criteria_step(ctx, state, v)
        history.append((state, events))
    return state, history


def drive(x0: float, step: float, ticks: int, first_tick: int = 1, **kwargs) -> list[TickView]:
    """Ego moving +x by `step` m per tick from x0 + step (speed step / dt unless given)."""
    kwargs.setdefault("speed", step / kwargs.get("dt", DT))
    return [view(x0 + step * (k + 1), tick=first_tick + k, **kwargs) for k in range(ticks)]


@pytest.fixture(scope="module")
def ctx():
    return criteria_context([scenario()])


# --------------------------------------------------------------------------- route completion


def test_route_completion_window_cannot_jump_ahead(ctx):
    # the ego appears 25 m ahead: only the points idx..idx+2 are examined, so RC climbs 2 points a tick
    state, history = run(ctx, [view(25.0, tick=t) for t in (1, 2, 3)])
    assert [h[0].route_index.item() for h in history] == [2, 4, 6]
    assert history[0][0].route_completion.item() == pytest.approx(1.33)      # round(2 / 150 * 100, 2)
    assert state.route_completion.item() == pytest.approx(4.0)


def test_route_completion_is_monotone(ctx):
    state, _ = run(ctx, drive(0.0, 0.5, 40))                 # x = 20: point 19 passed
    assert state.route_index.item() == 19
    state, _ = run(ctx, [view(5.0, speed=0.0, tick=41 + k) for k in range(5)], state)   # back to x = 5
    assert state.route_index.item() == 19 and state.route_completion.item() == pytest.approx(12.67)


def test_route_completed_above_99_percent_within_10_m(ctx):
    # 1 m per tick from x = 0.5: x = 149.5 passes point 149 (99.33 %) 0.5 m from the end => RC 100, COMPLETED
    state, history = run(ctx, drive(-0.5, 1.0, 160))
    done_at = next(i for i, (s, _) in enumerate(history) if s.done.item())
    assert done_at == 149                                        # tick 150, x = 149.5
    assert state.route_completion.item() == 100.0
    assert state.status.item() == RouteStatus.COMPLETED           # min-speed checkpoints are infractions entries
    assert state.counts[0, KEY["min_speed_infractions"]].item() > 0


def test_route_not_completed_farther_than_10_m_from_the_end(ctx):
    state, _ = run(ctx, drive(-0.5, 1.0, 148))                   # x = 147.5
    # 11.3 m beside the end, past point 149: 99.33 % but not completed
    state, _ = run(ctx, [view(149.5, y=9.5, tick=149 + k) for k in range(3)], state)
    assert state.route_completion.item() == pytest.approx(99.33) and not state.done.item()


# --------------------------------------------------------------------------- collisions


def touching_run(ticks: int, speed_step: float = 0.25, kind=ActorKind.VEHICLE, first_tick: int = 1, x0: float = 10.0):
    """Ego moving at 5 m/s with a vehicle glued to its front (overlapping by 0.5 m) for `ticks` ticks."""
    views = []
    for k in range(ticks):
        x = x0 + speed_step * k
        views.append(view(x, tick=first_tick + k, speed=speed_step / DT, actors=[actor(x + 4.4, LANE_Y, kind=kind)]))
    return views


def test_collision_counted_once_within_5_seconds(ctx):
    # 3 s of contact while the ego moves 15 m: the same actor within 5 s is one collision
    state, history = run(ctx, touching_run(60))
    assert state.counts[0, KEY["collisions_vehicle"]].item() == 1
    assert history[0][1].collision_key.item() == KEY["collisions_vehicle"]
    assert history[0][1].collision_actor.item() == 0
    assert state.penalty.item() == pytest.approx(0.6)


def test_collision_counted_again_after_5_seconds_and_5_metres(ctx):
    # first contact at tick 1 (t = 0.05); the id is forgotten on the first tick with t - 0.05 > 5, and the
    # next contact counts (the ego is then > 5 m from the first location): two vehicle collisions, P = 0.36
    state, history = run(ctx, touching_run(130))
    forget = next(t for t in range(1, 200) if t * DT - DT > 5.0)
    ticks = [i + 1 for i, (_, e) in enumerate(history) if e.collision_key.item() >= 0]
    assert ticks == [1, forget + 1]
    assert state.counts[0, KEY["collisions_vehicle"]].item() == 2
    assert state.penalty.item() == pytest.approx(0.36)


def test_collision_near_the_last_location_is_ignored_even_with_another_actor(ctx):
    # a second actor touches 2 m further on, 1 s later: within 5 m of the first collision => ignored;
    # a third touches once the ego is 6 m away => counted although only 1.6 s passed
    first = [view(10.0, tick=1, actors=[actor(14.4, LANE_Y), actor(500, 0), actor(500, 0)])]
    second = [view(12.0, tick=20, actors=[actor(500, 0), actor(16.4, LANE_Y), actor(500, 0)])]
    third = [view(16.0, tick=32, actors=[actor(500, 0), actor(500, 0), actor(20.4, LANE_Y)])]
    state, history = run(ctx, first + second + third)
    assert [e.collision_actor.item() for _, e in history] == [0, -1, 2]
    assert state.counts[0, KEY["collisions_vehicle"]].item() == 2


def test_collision_with_a_stopped_ego_is_not_counted(ctx):
    state, _ = run(ctx, [view(10.0, speed=0.05, tick=t, actors=[actor(14.4, LANE_Y)]) for t in range(1, 5)])
    assert state.counts[0, :3].sum().item() == 0 and state.penalty.item() == 1.0
    # once the ego moves (>= 0.1 m/s) the same contact counts
    state, _ = run(ctx, [view(10.0, speed=0.1, tick=5, actors=[actor(14.4, LANE_Y)])], state)
    assert state.counts[0, KEY["collisions_vehicle"]].item() == 1


@pytest.mark.parametrize("kind, key, coefficient", [
    (ActorKind.PEDESTRIAN, "collisions_pedestrian", 0.5), (ActorKind.STATIC, "collisions_layout", 0.65),
    (ActorKind.VEHICLE, "collisions_vehicle", 0.6), (ActorKind.BICYCLE, "collisions_vehicle", 0.6),
    (ActorKind.EMERGENCY, "collisions_vehicle", 0.6)])
def test_collision_coefficients_per_kind(ctx, kind, key, coefficient):
    state, _ = run(ctx, [view(10.0, actors=[actor(14.4, LANE_Y, size=(4.0, 2.0), kind=kind)])])
    assert state.counts[0, KEY[key]].item() == 1
    assert state.penalty.item() == pytest.approx(coefficient)


def test_collision_geometry_rotated_boxes_and_absent_actors(ctx):
    # a 45-degree box whose corner reaches 0.2 m into the ego's front: contact; 0.2 m short: none
    reach = math.sqrt(2.0)                     # half diagonal of a 2 x 2 box
    front = 10.0 + 2.45
    hit = view(10.0, actors=[actor(front + reach - 0.2, LANE_Y, heading=math.pi / 4, size=(2.0, 2.0))])
    miss = view(10.0, actors=[actor(front + reach + 0.2, LANE_Y, heading=math.pi / 4, size=(2.0, 2.0))])
    absent = view(10.0, actors=[actor(13.0, LANE_Y, present=False)])
    for v, expected in ((hit, 1), (miss, 0), (absent, 0)):
        state, _ = run(ctx, [v])
        assert state.counts[0, KEY["collisions_vehicle"]].item() == expected


def test_two_actors_in_one_tick_count_once(ctx):
    state, history = run(ctx, [view(10.0, actors=[actor(500, 0), actor(14.4, LANE_Y), actor(10.0, LANE_Y + 2.0)])])
    assert state.counts[0, :3].sum().item() == 1 and history[0][1].collision_actor.item() == 1


# --------------------------------------------------------------------------- red lights and stop signs


def light_scenario(**overrides):
    light = LightSpec(stop_line=np.array([[50.0, -3.5], [50.0, 0.0]]), heading=0.0,
                      program=LightProgram(cycle=((int(LightStatus.RED), 10.0),)))
    return scenario(lights=(light,), **overrides)


@pytest.fixture(scope="module")
def light_ctx():
    return criteria_context([light_scenario()])


def test_red_light_run_counted_once(light_ctx):
    # tail segment = centre - 1.96 .. centre - 3.45 m: it is across x = 50 for centre x in [51.96, 53.45]
    views = drive(0.0, 0.5, 80) + drive(40.0, 0.25, 80, first_tick=81, lights=[LightStatus.RED])   # to x = 60
    state, history = run(light_ctx, views)
    ran = [(round(v.ego_pose[0, 0].item(), 2), e.red_light.item()) for v, (_, e) in zip(views, history)
           if e.red_light.item() >= 0]
    assert ran == [(52.0, 0)]
    assert state.counts[0, KEY["red_light"]].item() == 1 and state.penalty.item() == pytest.approx(0.7)


@pytest.mark.parametrize("status", [LightStatus.GREEN, LightStatus.YELLOW])
def test_no_red_light_infraction_when_not_red(light_ctx, status):
    state, _ = run(light_ctx, drive(0.0, 0.5, 80) + drive(40.0, 0.25, 80, first_tick=81, lights=[status]))
    assert state.counts[0, KEY["red_light"]].item() == 0


def test_red_light_crossed_against_its_direction_is_ignored(light_ctx):
    # reversing along the route (heading pi) over the line, without deviating from the route
    views = drive(0.0, 1.0, 65)
    views += [view(65.0 - 0.5 * k, heading=math.pi, tick=66 + k, lights=[LightStatus.RED]) for k in range(30)]
    state, _ = run(light_ctx, views)
    assert state.counts[0, KEY["red_light"]].item() == 0


def stop_scenario():
    # trigger box 4 x 3.5 m centred at x = 45 (x 1.2: |dx| < 2.4, |dy| < 2.1)
    return scenario(stop_signs=(StopSignSpec(center=np.array([45.0, LANE_Y]), heading=0.0, length=4.0, width=3.5),))


@pytest.fixture(scope="module")
def stop_ctx():
    return criteria_context([stop_scenario()])


def test_stop_sign_rolled_through(stop_ctx):
    # the sign is picked up at x = 41 (box centre within 4 m of the lane waypoint, waypoint x + 2 inside),
    # and the ego leaves it at x = 47.5 (no waypoint 0..4 m ahead inside any more)
    views = drive(0.0, 0.5, 70) + drive(35.0, 0.25, 60, first_tick=71)     # then x from 35.25 to 50, 5 m/s
    state, history = run(stop_ctx, views)
    rolled = [round(v.ego_pose[0, 0].item(), 2) for v, (_, e) in zip(views, history) if e.stop_sign.item() >= 0]
    assert rolled == [47.5]
    assert state.counts[0, KEY["stop_infraction"]].item() == 1 and state.penalty.item() == pytest.approx(0.8)


def test_stop_sign_respected_when_the_ego_stops_inside(stop_ctx):
    views = drive(0.0, 0.5, 70) + drive(35.0, 0.25, 30, first_tick=71)   # to x = 42.5, inside the trigger range
    views += [view(42.5, speed=0.0, tick=101 + k) for k in range(10)]
    views += drive(42.5, 0.25, 40, first_tick=111)
    state, _ = run(stop_ctx, views)
    assert state.counts[0, KEY["stop_infraction"]].item() == 0 and state.stop_target.item() == -1


# --------------------------------------------------------------------------- lanes


def test_outside_lanes_for_30_percent_of_the_route_gives_penalty_0_7(ctx):
    # on the lane up to x = 70.5, then at y = -5 (3.25 m from the L1 centre > 1.75 + 0.5) to x = 100.5: a
    # point counts for the tick that passes it, so points 71..100 are passed outside => 30 of 100 m, x0.7
    views = drive(-0.5, 1.0, 71)                                  # x = 70.5 at tick 71
    views += [view(70.5 + k + 1, y=-5.0, tick=72 + k, speed=20.0) for k in range(30)]   # to x = 100.5
    state, history = run(ctx, views)
    assert state.total_m.item() == pytest.approx(100.0)
    assert state.wrong_m.item() == pytest.approx(30.0)
    assert state.penalty.item() == pytest.approx(0.7)
    assert state.driving_score.item() == pytest.approx(66.67 * 0.7)
    assert history[-1][1].outside_lanes.item() and not history[70][1].outside_lanes.item()


def test_driving_in_the_opposite_lane_counts_unless_switched_off():
    # the ego drifts into L2 (westbound, heading pi) for x in (30, 50]: a 180-degree waypoint jump => wrong lane
    views = drive(0.0, 1.0, 30)
    views += [view(30.0 + k + 1, y=1.75, tick=31 + k, speed=20.0) for k in range(20)]
    views += [view(50.0 + k + 1, tick=51 + k, speed=20.0) for k in range(10)]
    state, _ = run(criteria_context([scenario()]), views)
    assert state.wrong_m.item() == pytest.approx(20.0) and not state.wrong_lane.item()
    # a TwoWays scenario running: the wrong-direction check is switched off (not the outside-lane one)
    quiet = [replace(v, scenario_active=torch.tensor([True])) for v in views]
    state, _ = run(criteria_context([scenario(wrong_direction_check=False)]), quiet)
    assert state.wrong_m.item() == 0.0


def test_no_wrong_lane_inside_a_junction():
    # connectors (junction) for x in [40, 60]: driving on the westbound connector is not a wrong lane there
    ctx = criteria_context([scenario(road_map=road_map(junction=(40.0, 60.0)))])
    views = drive(0.0, 1.0, 42)                                    # to x = 42
    views += [view(42.0 + k + 1, y=1.75, tick=43 + k, speed=20.0) for k in range(15)]   # to x = 57
    views += [view(57.0 + k + 1, tick=58 + k, speed=20.0) for k in range(10)]
    state, _ = run(ctx, views)
    assert state.wrong_m.item() == 0.0


def test_car_park_counts_as_parking_lane():
    # at y = -20 the ego is 18 m from any lane: outside, except inside the car park (x 40..80)
    ctx = criteria_context([scenario(road_map=road_map(carpark=True))])
    views = drive(0.0, 1.0, 50) + [view(50.0 + k + 1, y=-20.0, tick=51 + k, speed=20.0) for k in range(10)]
    state, _ = run(ctx, views)
    assert state.wrong_m.item() == 0.0
    state, _ = run(criteria_context([scenario()]), views)
    assert state.wrong_m.item() == pytest.approx(10.0)


# --------------------------------------------------------------------------- route-ending criteria


def test_blocked_for_60_seconds_ends_the_route(ctx):
    # standing still from tick 1 (t = 0.05 s; time is tick x dt, so ticks may be skipped): blocked once
    # t - 0.05 > 60 s, i.e. at tick 1201 (60.05 - 0.05 rounds just above 60) and surely by tick 1202
    ticks = [1, 600, 1199, 1200, 1201, 1202, 1203, 1204]
    state, history = run(ctx, [view(10.0, speed=0.0, tick=t) for t in ticks])
    end = next(t for t in range(1, 2000) if t * DT - DT > 60.0)
    done = [t for t, (s, _) in zip(ticks, history) if s.done.item()]
    assert done[0] == end and 1201 <= end <= 1202
    assert state.status.item() == RouteStatus.BLOCKED and history[ticks.index(end)][1].blocked.item()
    assert state.tick.item() == end                              # frozen after the end
    # moving at 0.1 m/s or more restarts the timer
    state, _ = run(ctx, [view(10.0, speed=0.0, tick=1), view(10.0, speed=0.1, tick=600),
                         view(10.0, speed=0.0, tick=1700), view(10.0, speed=0.0, tick=1801)])
    assert state.done.item() and state.tick.item() == 1801


def test_blocked_timer_paused_while_the_scenario_runs(ctx):
    # 70 s inside a scenario (ticks 1..1400 at 20 Hz): never blocked
    ticks = [1, 500, 1000, 1400]
    state, _ = run(ctx, [view(10.0, speed=0.0, tick=t, active=True) for t in ticks])
    assert not state.done.item()
    # the scenario ends at tick 1401 (t = 70.05): the timer restarts there, 60 s more are needed
    ticks = [1401, 2000, 2600, 2601, 2602, 2603]
    state, history = run(ctx, [view(10.0, speed=0.0, tick=t) for t in ticks], state)
    first = next(t for t, (s, _) in zip(ticks, history) if s.done.item())
    assert 2601 <= first <= 2602 and state.status.item() == RouteStatus.BLOCKED


def test_route_deviation_beyond_30_m_ends(ctx):
    state, history = run(ctx, drive(0.0, 0.5, 20) + [view(10.0, y=LANE_Y + 30.5, tick=21)])
    assert state.done.item() and state.status.item() == RouteStatus.DEVIATED and history[-1][1].route_dev.item()


def test_route_deviation_after_30_percent_of_the_route_far_away(ctx):
    # 20 m beside the route (15..30 m: not safe): deviated once the metres advanced there exceed 45 (30 % of 150)
    views = [view(0.5 * (k + 1), y=LANE_Y + 20.0, tick=k + 1, speed=10.0) for k in range(120)]
    state, history = run(ctx, views)
    done_at = next(i for i, (s, _) in enumerate(history) if s.done.item())
    assert state.status.item() == RouteStatus.DEVIATED
    assert state.out_route_m.item() == pytest.approx(46.0)       # first whole metre past 45
    assert views[done_at].ego_pose[0, 0].item() == pytest.approx(45.5)      # nearest point 46 (ties: later)


def test_tick_runtime_after_4000_ticks(ctx):
    state, _ = run(ctx, [view(10.0, tick=MAX_TICKS)])
    assert not state.done.item()
    before = state
    state, history = run(ctx, [view(20.0, tick=MAX_TICKS + 1)], before)
    assert state.done.item() and state.status.item() == RouteStatus.TICK_RUNTIME
    assert state.route_index.item() == before.route_index.item()   # no criterion ran on that tick
    assert history[0][1].done.item()


def test_scenario_timeout_and_route_timeout():
    # dt = 1 s, a scenario runs from tick 1 while the ego waits (blocked check paused): the scenario times
    # out once 240 s passed (tick 242, x0.7), the route once 300 s + 1 s per metre advanced passed (tick 302)
    ctx = criteria_context([scenario()])
    ticks = [1, 100, 240, 241, 242, 243, 300, 301, 302, 303]
    state, history = run(ctx, [view(0.0, speed=0.0, tick=t, dt=1.0, active=True) for t in ticks])
    timeouts = [t for t, (_, e) in zip(ticks, history) if e.scenario_timeout.item()]
    assert timeouts == [242]
    done = next(t for t, (s, _) in zip(ticks, history) if s.done.item())
    assert done == 302 and state.status.item() == RouteStatus.TIMED_OUT
    assert state.counts[0, KEY["route_timeout"]].item() == 1 and state.penalty.item() == pytest.approx(0.7)


# --------------------------------------------------------------------------- min speed, YTEV, finalize


def test_min_speed_checkpoints(ctx):
    # checkpoints every 150 / 20 = 7.5 m of route: the first when point 8 is passed (x = 8.25, tick 33); the
    # ego drove 5 m/s while the one background vehicle drove 10 m/s => 50 %
    traffic = [actor(500.0, 30.0, role=Role.BACKGROUND, speed=10.0), actor(500.0, 40.0, kind=ActorKind.PEDESTRIAN,
                                                                          role=Role.BACKGROUND, speed=1.0)]
    views = drive(0.0, 0.25, 70, actors=traffic)
    state, history = run(ctx, views)
    ticks = [i + 1 for i, (_, e) in enumerate(history) if e.min_speed.item()]
    assert ticks == [33, 65]                                      # then point 16 at x = 16.25
    event = history[32][1]
    assert event.min_speed_percent.item() == pytest.approx(50.0) and not event.min_speed_default.item()
    # without background vehicles the checkpoint value is the default 100
    state, history = run(ctx, drive(0.0, 0.25, 40))
    assert history[32][1].min_speed_default.item() and history[32][1].min_speed_percent.item() == 100.0


def test_tick_events_any_is_precomputed_by_the_step(ctx):
    # the checkpoint tick (33) and a collision tick log something; the others do not
    views = drive(0.0, 0.25, 34)
    views[-1] = view(8.5, tick=34, actors=[actor(10.0, LANE_Y)])
    _, history = run(ctx, views)
    logged = [bool(e.any().item()) for _, e in history]
    assert [i + 1 for i, flag in enumerate(logged) if flag] == [33, 34]
    assert history[33][1].collision_key.item() == KEY["collisions_vehicle"]
    # the precomputed flags equal the rule written out on the fields
    for _, e in history:
        assert e.logged is not None and torch.equal(e.any(), replace(e, logged=None).any())


def test_finalize_logs_the_last_checkpoint_past_95_percent(ctx):
    state, _ = run(ctx, drive(-0.5, 1.0, 150))                  # completed at x = 149.5
    before = state.counts[0, KEY["min_speed_infractions"]].item()
    state, events = finalize(ctx, state)
    assert events.min_speed.item() and state.counts[0, KEY["min_speed_infractions"]].item() == before + 1
    state, events = finalize(ctx, state)                          # only once
    assert not events.min_speed.item()
    # stopped at 50 %: no final checkpoint; the route ends as plain FAILED
    state, _ = run(ctx, drive(-0.5, 1.0, 75))
    state, events = finalize(ctx, state, rows=torch.tensor([True]))
    assert not events.min_speed.item() and state.done.item() and state.status.item() == RouteStatus.FAILED


def emergency_views(ev_x_end: float, ticks: int = 40):
    """Scenario active for `ticks` ticks with the ego at x = 20 and an emergency vehicle moving from x = 5 to
    `ev_x_end`, then the scenario ends."""
    views = []
    for k in range(ticks + 1):
        ev_x = 5.0 + (ev_x_end - 5.0) * min(k, ticks - 1) / (ticks - 1)
        ev = actor(ev_x, LANE_Y + 3.5, kind=ActorKind.EMERGENCY, speed=10.0)
        views.append(view(20.0 + 0.1 * k, speed=2.0, tick=k + 1, actors=[ev], active=k < ticks))
    return views


def test_yield_to_emergency_vehicle():
    ev = ActorSpec(kind=ActorKind.EMERGENCY, path=np.array([[0.0, 0.0], [100.0, 0.0]]), size=(6.0, 2.4))
    ctx = criteria_context([scenario(emergency_actor=0, actors=(ev,))])
    state, history = run(ctx, emergency_views(ev_x_end=15.0))     # the EV never got past the ego
    assert [i for i, (_, e) in enumerate(history) if e.ytev.item()] == [40]
    assert state.penalty.item() == pytest.approx(0.7)
    state, history = run(ctx, emergency_views(ev_x_end=40.0))     # the ego let it pass
    assert not any(e.ytev.item() for _, e in history) and state.penalty.item() == 1.0
    # the route stops while the scenario still runs with the EV behind: logged by finalize
    state, _ = run(ctx, emergency_views(ev_x_end=15.0)[:20])
    state, events = finalize(ctx, state, rows=torch.tensor([True]))
    assert events.ytev.item() and state.penalty.item() == pytest.approx(0.7)


# --------------------------------------------------------------------------- batching


def test_batch_rows_are_independent_and_done_rows_frozen():
    ctx = criteria_context([scenario(), light_scenario()])
    state = initial_criteria(ctx)
    for t in range(1, 30):
        stuck = view(10.0, speed=0.0, tick=t, lights=[LightStatus.RED])
        blocked = view(10.0, y=LANE_Y + 31.0, tick=t, lights=[LightStatus.RED])   # row 0 deviates at once
        state, events = criteria_step(ctx, state, batch(blocked, stuck))
    assert state.done.tolist() == [True, False]
    assert state.tick.tolist() == [1, 29]
    assert state.status.tolist() == [RouteStatus.DEVIATED, RouteStatus.STARTED]
    fresh = reset_criteria_rows(ctx, state, torch.tensor([True, False]))
    assert fresh.done.tolist() == [False, False] and fresh.tick.tolist() == [0, 29]


def test_context_pads_routes_of_different_lengths():
    ctx = criteria_context([scenario(length=150), scenario(length=60)])
    assert ctx.route_last.tolist() == [150, 60]
    assert ctx.route_length.tolist() == pytest.approx([150.0, 60.0])
    state = initial_criteria(ctx)
    for k in range(130):   # both egos drive to x = 65
        x = 0.5 * (k + 1)
        state, _ = criteria_step(ctx, state, batch(view(x, tick=k + 1, speed=10.0), view(x, tick=k + 1, speed=10.0)))
    assert state.done.tolist() == [False, True] and state.route_completion[1].item() == 100.0
    with pytest.raises(ValueError, match="scenarios"):
        criteria_context([])
