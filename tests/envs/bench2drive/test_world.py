"""Hand-worked checks of the batched Bench2Drive world (envs/bench2drive/world.py + world_actors.py)."""

import math

import numpy as np
import pytest
import torch

from envs.bench2drive.route_scenario import (
    ActorKind, ActorSpec, Behaviour, LightProgram, LightSpec, RouteScenario, StopSignSpec, Trigger,
)
from envs.bench2drive.vehicle_control import DRAG, MKZ_2020, THROTTLE_ACCEL
from envs.bench2drive.world import reset_rows, route_progress_index, tick_view, world_init, world_step
from envs.bench2drive.world_actors import ACTOR_IDM, HOLD_DECEL, STOP_SIGN_WAIT
from envs.sim.map import Lane, RoadMap
from envs.sim.scene import LightStatus

DT = 0.05
CRUISE = DRAG * 10.0 / THROTTLE_ACCEL       # throttle that holds 10 m/s exactly (drag balanced)


def straight_route(x0=0.0, length=200):
    xs = x0 + np.arange(length, dtype=float)
    return np.stack([xs, np.zeros(length), np.zeros(length)], -1)


def scenario(actors=(), route=None, **kwargs):
    route = straight_route() if route is None else route
    lane = Lane(id="l0", roadblock_id="r0", centerline=route[:, :2],
                polygon=np.array([[route[0, 0], -1.75], [route[-1, 0], -1.75], [route[-1, 0], 1.75],
                                  [route[0, 0], 1.75]]))
    return RouteScenario(route_id=kwargs.pop("route_id", 0), scenario_type="Accident", scenario_name="Accident_1",
                         town="Builtin_straight_0", road_map=RoadMap(lanes=(lane,)), route=route,
                         speed_limit=kwargs.pop("speed_limit", 10.0), actors=tuple(actors), **kwargs)


def lane_actor(x0=-60.0, x1=200.0, **kwargs):
    kwargs.setdefault("size", (4.5, 2.0))
    return ActorSpec(kind=kwargs.pop("kind", ActorKind.VEHICLE), path=np.array([[x0, 0.0], [x1, 0.0]]), **kwargs)


def control(batch, steer=0.0, throttle=0.0, brake=0.0):
    return torch.tensor([[steer, throttle, brake]] * batch, dtype=torch.float64)


def run(static, state, ticks, ctrl, generator=None):
    views = []
    for _ in range(ticks):
        state, view = world_step(static, state, ctrl, generator)
        views.append(view)
    return state, views


# --------------------------------------------------------------------------- ego


def test_full_throttle_matches_formula_and_route_progress():
    static, state = world_init([scenario(trigger_index=10, end_index=25)])
    assert tick_view(static, state).tick.item() == 0
    state, views = run(static, state, 80, control(1, throttle=1.0))
    # v_n = (A / c) (1 - (1 - c dt)^n), explicit Euler of dv/dt = A - c v
    q = 1.0 - DRAG * DT
    speeds = [THROTTLE_ACCEL / DRAG * (1.0 - q ** n) for n in range(81)]
    assert speeds[80] == pytest.approx(13.792, abs=1e-3)         # 76 (1 - 0.9975^80)
    assert state.ego_speed.item() == pytest.approx(speeds[80], rel=1e-12)
    x = sum(0.5 * (speeds[n] + speeds[n + 1]) * DT for n in range(80))
    assert state.ego_pose[0, 0].item() == pytest.approx(x, rel=1e-12)
    assert state.ego_pose[0, 1].item() == 0.0 and views[-1].tick.item() == 80
    assert route_progress_index(state).item() == int(x)
    active = [v.scenario_active.item() for v in views]
    first = active.index(True)
    assert int(sum(0.5 * (speeds[n] + speeds[n + 1]) * DT for n in range(first + 1))) == 10
    assert not active[-1]                                          # x > 25: past end_index
    assert views[-1].ego_accel[0, 0].item() == pytest.approx((speeds[80] - speeds[79]) / DT)


def test_scenario_active_until_end_index():
    static, state = world_init([scenario(trigger_index=2, end_index=6, ego_speed0=10.0)])
    state, views = run(static, state, 30, control(1, throttle=CRUISE))
    flags = [(v.ego_pose[0, 0].item(), v.scenario_active.item()) for v in views]
    assert all(active == (2.0 <= x < 6.0) for x, active in flags if abs(x - round(x)) > 1e-6)


def test_bad_control_raises():
    static, state = world_init([scenario(), scenario()])
    with pytest.raises(ValueError, match="control"):
        world_step(static, state, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="control=nan"):
        world_step(static, state, torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0]]))


# --------------------------------------------------------------------------- reactive IDM, constant


def test_idm_actor_stops_behind_stopped_ego():
    follower = lane_actor(s0=0.0, speed0=8.0, target_speed=8.0)          # centre starts at x = -60
    static, state = world_init([scenario([follower])])
    state, views = run(static, state, 600, control(1, brake=1.0))
    gaps = [(MKZ_2020.length / -2) - (v.actor_pose[0, 0, 0].item() + 2.25) for v in views]
    assert min(gaps) > 0.5                                             # never touches the ego
    assert state.actor_speed[0, 0].item() < 0.05
    assert gaps[-1] == pytest.approx(ACTOR_IDM.min_gap, abs=0.3)       # jam distance s0


def test_constant_actor_ignores_ego():
    runner = lane_actor(s0=0.0, speed0=8.0, target_speed=8.0, behaviour=Behaviour.CONSTANT)
    static, state = world_init([scenario([runner])])
    state, _ = run(static, state, 200, control(1, brake=1.0))
    assert state.actor_s[0, 0].item() == pytest.approx(80.0)           # 8 m/s for 10 s, through the ego
    assert state.actor_speed[0, 0].item() == 8.0


def test_idm_actor_ignores_ego_in_other_lane():
    follower = ActorSpec(kind=ActorKind.VEHICLE, path=np.array([[-60.0, 3.5], [200.0, 3.5]]), size=(4.5, 2.0),
                         speed0=8.0, target_speed=8.0)
    static, state = world_init([scenario([follower])])
    state, _ = run(static, state, 100, control(1, brake=1.0))
    assert state.actor_speed[0, 0].item() == pytest.approx(8.0, abs=1e-9)


def test_idm_actor_follows_slower_actor():
    lead = lane_actor(x0=0.0, s0=40.0, speed0=4.0, target_speed=4.0, behaviour=Behaviour.CONSTANT)
    follower = lane_actor(x0=0.0, s0=0.0, speed0=10.0, target_speed=10.0)
    static, state = world_init([scenario([lead, follower], route=straight_route(-300.0, 100))])
    state, _ = run(static, state, 600, control(1, brake=1.0))
    gap = state.actor_s[0, 0] - state.actor_s[0, 1] - 4.5
    # IDM equilibrium behind a 4 m/s lead: gap* = (s0 + v T) / sqrt(1 - (v / v0)^4)
    expected = (ACTOR_IDM.min_gap + 4.0 * ACTOR_IDM.headway) / math.sqrt(1 - (4.0 / 10.0) ** 4)
    assert gap.item() == pytest.approx(expected, abs=0.1)
    assert state.actor_speed[0, 1].item() == pytest.approx(4.0, abs=0.01)


def test_idm_actor_yields_to_crossing_pedestrian_then_goes():
    car = lane_actor(x0=20.0, x1=100.0, speed0=8.0, target_speed=8.0)
    walker = ActorSpec(kind=ActorKind.PEDESTRIAN, path=np.array([[40.0, -3.0], [40.0, 10.0]]), size=(0.6, 0.6),
                       target_speed=1.5, speed0=1.5, behaviour=Behaviour.CONSTANT)
    static, state = world_init([scenario([car, walker], route=straight_route(-300.0, 100))])
    state, views = run(static, state, 160, control(1))
    # the walker is in the car's corridor (|y| < 1.0 + 0.3) for t in (1.13, 2.87) s; the car (front at
    # x = 22.25 + 8 t) would reach it at t = 2.2 s, so it must brake and wait: the boxes never touch
    for view in views:
        car_x, (walk_x, walk_y) = view.actor_pose[0, 0, 0].item(), view.actor_pose[0, 1, :2].tolist()
        assert not (abs(car_x - walk_x) < 2.25 + 0.3 and abs(walk_y) < 1.0 + 0.3)
    assert min(v.actor_speed[0, 0].item() for v in views) < 2.0
    assert state.actor_pose[0, 0, 0].item() > 50.0        # and drives on once the walker has crossed


def test_idm_actor_queues_behind_parked_obstacle():
    parked = lane_actor(x0=0.0, s0=50.0, behaviour=Behaviour.PARKED, lateral_offset=-0.6)
    car = lane_actor(x0=0.0, speed0=8.0, target_speed=8.0)
    static, state = world_init([scenario([parked, car], route=straight_route(-300.0, 100))])
    state, _ = run(static, state, 300, control(1))
    gap = (50.0 - 2.25) - (state.actor_s[0, 1].item() + 2.25)
    assert gap == pytest.approx(ACTOR_IDM.min_gap, abs=0.3) and state.actor_speed[0, 1].item() < 0.05


# --------------------------------------------------------------------------- scripts


def test_trigger_by_distance_and_by_time_to_arrival():
    by_distance = lane_actor(x0=0.0, x1=50.0, speed0=0.0, target_speed=5.0, behaviour=Behaviour.CONSTANT,
                             trigger=Trigger(point=np.array([50.0, 0.0]), distance=10.2))
    by_tta = lane_actor(x0=0.0, x1=50.0, speed0=0.0, target_speed=5.0, behaviour=Behaviour.CONSTANT,
                        trigger=Trigger(point=np.array([50.0, 0.0]), distance=1.0, time_to_arrival=2.01))
    static, state = world_init([scenario([by_distance, by_tta], ego_speed0=10.0)])
    state, views = run(static, state, 90, control(1, throttle=CRUISE))   # ego x = 0.5 m per tick
    fired = [[v.tick.item() for v in views if v.actor_speed[0, k] > 0][0] for k in range(2)]
    assert fired == [80, 60]          # distance: 50 - 0.5 n < 10.2 first at n = 80; tta: < 20.1 at n = 60
    assert state.activation_time[0].tolist() == pytest.approx([80 * DT, 60 * DT])
    assert state.actor_s[0, 1].item() == pytest.approx(2.5 * DT + 5.0 * DT * 30)   # ticks 60..90: 0 -> 5 m/s, then 5


def test_spawn_delay_hides_then_shows():
    delayed = lane_actor(x0=0.0, s0=20.0, target_speed=0.0, behaviour=Behaviour.PARKED, spawn_delay=1.0)
    after_trigger = lane_actor(x0=0.0, s0=20.0, behaviour=Behaviour.PARKED, spawn_delay=0.5,
                               trigger=Trigger(point=np.array([0.0, 0.0]), distance=5.0))
    static, state = world_init([scenario([delayed, after_trigger])])
    assert tick_view(static, state).actor_present[0].tolist() == [False, False]
    state, views = run(static, state, 25, control(1))
    present = [v.actor_present[0].tolist() for v in views]
    assert [p[0] for p in present] == [False] * 19 + [True] * 6              # t = 1.0 s is tick 20
    assert [p[1] for p in present] == [False] * 10 + [True] * 15              # fired tick 1, + 0.5 s


def test_pause_stops_for_duration_then_resumes():
    pauser = lane_actor(x0=0.0, speed0=10.0, target_speed=10.0, behaviour=Behaviour.CONSTANT, pause=(0.5, 3.0))
    static, state = world_init([scenario([pauser])])
    state, views = run(static, state, 80, control(1))
    speed = [v.actor_speed[0, 0].item() for v in views]
    assert speed[8] == 10.0 and speed[9] == pytest.approx(10.0 - HOLD_DECEL * DT)   # tick 10: t = 0.5 s
    assert speed[48] == pytest.approx(0.0, abs=1e-9) and speed[68] == 0.0         # tick 49 .. 69: stopped
    assert speed[69] == 10.0                                                      # t = 3.5 s: resumes


def test_stop_after_distance():
    biker = lane_actor(x0=0.0, speed0=10.0, target_speed=10.0, behaviour=Behaviour.CONSTANT, stop_after=20.0,
                       kind=ActorKind.BICYCLE, size=(2.0, 0.8))
    static, state = world_init([scenario([biker])])
    state, _ = run(static, state, 200, control(1))
    # 20 m at 10 m/s, then a trapezoidal stop at 5 m/s^2 covers v^2 / 2a = 10 m exactly
    assert state.actor_s[0, 0].item() == pytest.approx(30.0, abs=1e-9)
    assert state.actor_speed[0, 0].item() == 0.0


def test_despawn_after_and_path_end():
    blocker = lane_actor(x0=0.0, s0=10.0, behaviour=Behaviour.PARKED, despawn_after=2.0,
                         trigger=Trigger(point=np.array([0.0, 0.0]), distance=1.0))
    leaver = lane_actor(x0=0.0, x1=10.0, speed0=10.0, target_speed=10.0, behaviour=Behaviour.CONSTANT)
    static, state = world_init([scenario([blocker, leaver])])
    state, views = run(static, state, 60, control(1))
    present = [v.actor_present[0].tolist() for v in views]
    assert [p[0] for p in present] == [True] * 40 + [False] * 20     # fired tick 1 (t 0.05), gone at 2.05 s
    assert [p[1] for p in present] == [True] * 19 + [False] * 41     # 10 m at 10 m/s: s = 10 at tick 20


def test_recycle_wraps_to_path_start():
    flow = lane_actor(x0=0.0, x1=50.0, speed0=10.0, target_speed=10.0, behaviour=Behaviour.CONSTANT, recycle=True)
    static, state = world_init([scenario([flow])])
    state, _ = run(static, state, 120, control(1))
    assert state.actor_s[0, 0].item() == pytest.approx(10.0)         # 60 m on a 50 m loop
    assert state.actor_present[0, 0].item()
    assert state.actor_pose[0, 0, 0].item() == pytest.approx(10.0)


def test_width_after_trigger_and_lateral_offset():
    door = lane_actor(x0=0.0, s0=30.0, behaviour=Behaviour.PARKED, size=(4.5, 2.0), width_after_trigger=3.0,
                      lateral_offset=-1.5, trigger=Trigger(point=np.array([0.0, 0.0]), distance=1.0))
    static, state = world_init([scenario([door])])
    view = tick_view(static, state)
    assert view.actor_size[0, 0].tolist() == [4.5, 2.0]
    assert view.actor_pose[0, 0].tolist() == pytest.approx([30.0, -1.5, 0.0])
    state, view = world_step(static, state, control(1))
    assert view.actor_size[0, 0].tolist() == [4.5, 3.0]


# --------------------------------------------------------------------------- lights, stop signs


def test_light_program_prelude_then_cycle_from_offset():
    program = LightProgram(cycle=((int(LightStatus.RED), 10.0), (int(LightStatus.GREEN), 10.0),
                                  (int(LightStatus.YELLOW), 2.0)), offset=3.0,
                           prelude=((int(LightStatus.GREEN), 5.0),))
    light = LightSpec(stop_line=np.array([[100.0, -2.0], [100.0, 2.0]]), heading=0.0, program=program)
    static, state = world_init([scenario(lights=(light,))])
    states = [state.light_state[0, 0].item()]
    for _ in range(500):
        state, view = world_step(static, state, control(1))
        states.append(view.light_state[0, 0].item())
    at = lambda t: LightStatus(states[round(t / DT)])  # noqa: E731
    assert at(0.0) == at(4.95) == LightStatus.GREEN              # prelude
    assert at(5.0) == LightStatus.RED                            # cycle at 0 + offset 3 -> red (0..10)
    assert at(11.95) == LightStatus.RED and at(12.0) == LightStatus.GREEN    # cycle 10 s
    assert at(22.0) == LightStatus.YELLOW and at(24.0) == LightStatus.RED    # cycle 20 s, wraps at 22


def test_idm_actor_stops_at_red_light_unless_it_runs_lights():
    red = LightSpec(stop_line=np.array([[40.0, -2.0], [40.0, 2.0]]), heading=0.0,
                    program=LightProgram(cycle=((int(LightStatus.RED), 100.0),)))
    obeying = lane_actor(x0=0.0, x1=100.0, speed0=8.0, target_speed=8.0)
    runner = lane_actor(x0=0.0, x1=100.0, speed0=8.0, target_speed=8.0, obeys_lights=False)
    route = straight_route(-300.0, 100)
    static, state = world_init([scenario([obeying], route=route, lights=(red,)),
                                scenario([runner], route=route, lights=(red,))])
    state, _ = run(static, state, 400, control(2))
    front = state.actor_s[:, 0] + 2.25
    assert 40.0 - ACTOR_IDM.min_gap - 0.3 < front[0].item() < 40.0 and state.actor_speed[0, 0].item() < 0.05
    assert not state.actor_present[1, 0].item()                          # drove through and off its path


def test_stop_sign_wait_then_go():
    sign = StopSignSpec(center=np.array([37.0, 0.0]), heading=0.0, length=6.0, width=3.5)   # line at x = 40
    car = lane_actor(x0=0.0, x1=80.0, speed0=8.0, target_speed=8.0)
    static, state = world_init([scenario([car], route=straight_route(-300.0, 100), stop_signs=(sign,))])
    state, views = run(static, state, 400, control(1))
    stopped = [v.tick.item() for v in views if v.actor_speed[0, 0] < 0.1 and v.actor_present[0, 0]]
    assert len(stopped) * DT == pytest.approx(STOP_SIGN_WAIT, abs=0.2)
    assert 37.0 < views[stopped[0] - 1].actor_pose[0, 0, 0].item() + 2.25 < 40.0
    assert not state.actor_present[0, 0].item()                           # went on and left


# --------------------------------------------------------------------------- noise, batching, reset


def test_control_noise_is_seeded_and_local():
    noisy = scenario(control_noise_points=np.array([[10.0, 0.0]]), seed=3, ego_speed0=10.0)
    static, state0 = world_init([noisy])
    runs = []
    for seed in (7, 7, 8):
        generator = torch.Generator().manual_seed(seed)
        state, _ = run(static, state0, 60, control(1, throttle=CRUISE), generator)
        runs.append(state.ego_pose[0].clone())
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    assert runs[0][1].abs().item() > 1e-3                        # steering noise pushed the ego sideways
    clean, _ = run(*world_init([scenario(ego_speed0=10.0)]), 60, control(1, throttle=CRUISE))
    assert clean.ego_pose[0, 1].item() == 0.0
    # only ticks that start within 2 m of the debris (x in (8, 12)) are disturbed
    state, _ = run(static, state0, 15, control(1, throttle=CRUISE), torch.Generator().manual_seed(7))
    assert state.ego_pose[0, 1].item() == 0.0 and state.ego_pose[0, 0].item() == pytest.approx(7.5)


def build_mixed():
    light = LightSpec(stop_line=np.array([[40.0, -2.0], [40.0, 2.0]]), heading=0.0,
                      program=LightProgram(cycle=((int(LightStatus.RED), 6.0), (int(LightStatus.GREEN), 6.0))))
    a = scenario([lane_actor(x0=-30.0, speed0=5.0, target_speed=9.0)], lights=(light,), route_id=1)
    b = scenario([lane_actor(x0=0.0, s0=40.0, behaviour=Behaviour.PARKED),
                  lane_actor(x0=0.0, speed0=6.0, target_speed=9.0),
                  ActorSpec(kind=ActorKind.PEDESTRIAN, path=np.array([[60.0, -8.0], [60.0, 8.0]]), size=(0.6, 0.6),
                            target_speed=1.5, behaviour=Behaviour.CONSTANT,
                            trigger=Trigger(point=np.array([60.0, 0.0]), distance=30.0, time_to_arrival=3.0))],
                 route=straight_route(0.0, 150), route_id=2, control_noise_points=np.array([[5.0, 0.0]]))
    c = scenario([], route_id=3, ego_speed0=3.0, trigger_index=5)
    return [a, b, c]


def test_batch_equals_each_route_alone():
    routes = build_mixed()
    ctrl = torch.tensor([[0.02, 0.5, 0.0], [-0.01, 0.3, 0.0], [0.0, 0.0, 0.2]], dtype=torch.float64)
    static, state = world_init(routes)
    batched, _ = run(static, state, 120, ctrl)
    for b, route in enumerate(routes):
        alone, _ = run(*world_init([route]), 120, ctrl[b:b + 1])
        count = len(route.actors)
        assert torch.allclose(batched.ego_pose[b], alone.ego_pose[0], atol=1e-12)
        assert torch.allclose(batched.actor_s[b, :count], alone.actor_s[0, :count], atol=1e-12)
        assert torch.equal(batched.actor_present[b, :count], alone.actor_present[0, :count])
        assert not batched.actor_present[b, count:].any()


def test_reset_rows_replaces_only_chosen_rows():
    routes = build_mixed()
    ctrl = control(3, throttle=0.4)
    static, state = world_init(routes)
    state, _ = run(static, state, 30, ctrl)
    fresh_static, fresh_state = world_init([scenario([lane_actor(x0=0.0, s0=5.0)] * 4, route_id=9)])
    rows = torch.tensor([False, True, False])
    merged_static, merged_state = reset_rows(static, state, fresh_static, fresh_state, rows)
    assert merged_state.actor_s.shape == (3, 4)
    assert merged_state.tick.tolist() == [30, 0, 30]
    assert merged_state.actor_s[1].tolist() == [5.0] * 4
    assert torch.equal(merged_state.ego_pose[0], state.ego_pose[0])
    next_state, _ = world_step(merged_static, merged_state, ctrl)
    alone, _ = world_step(fresh_static, fresh_state, ctrl[1:2])
    assert torch.allclose(next_state.ego_pose[1], alone.ego_pose[0])
    assert torch.allclose(next_state.actor_s[1], alone.actor_s[0])
    with pytest.raises(ValueError, match="rows"):
        reset_rows(static, state, fresh_static, fresh_state, torch.ones(2, dtype=torch.bool))


def test_reset_rows_in_place_writes_the_rows_into_the_batch_tables():
    routes = build_mixed()
    ctrl = control(3, throttle=0.4)
    static, state = world_init(routes)
    state, _ = run(static, state, 30, ctrl)
    rows = torch.tensor([False, True, False])
    # a 1-actor route fits the batch's padded sizes (3 actor slots, 200 route points): written in place
    fresh_static, fresh_state = world_init([scenario([lane_actor(x0=0.0, s0=5.0)], route=straight_route(0.0, 120),
                                                     route_id=9)])
    pure_static, pure_state = reset_rows(static, state, fresh_static, fresh_state, rows)
    path = static.actors.path
    merged_static, merged_state = reset_rows(static, state, fresh_static, fresh_state, rows, inplace=True)
    assert merged_static.actors.path is path                     # same storage, no copy of the batch
    assert merged_static.actors.s0[1].tolist() == [5.0, 0.0, 0.0] and merged_static.route_count.tolist() == [200, 120, 200]
    assert merged_static.actors.valid[1].tolist() == [True, False, False]
    assert merged_static.last_segment.flatten().tolist() == [198, 118, 198]     # derived fields follow the rows
    for name in ("route", "route_table", "noise_valid", "light_valid", "phase_end"):
        assert torch.equal(getattr(merged_static, name), getattr(pure_static, name)), name
    for name in ("path", "ego_table", "partner", "valid", "size", "light_stop_s"):
        assert torch.equal(getattr(merged_static.actors, name), getattr(pure_static.actors, name)), name
    assert torch.equal(merged_state.actor_s, pure_state.actor_s) and merged_state.tick.tolist() == [30, 0, 30]
    # a 4-actor route does not fit (3 slots): the batch is re-padded as without inplace
    big_static, big_state = world_init([scenario([lane_actor(x0=0.0, s0=5.0)] * 4, route_id=10)])
    grown_static, grown_state = reset_rows(merged_static, merged_state, big_static, big_state, rows, inplace=True)
    assert grown_static.actors.path is not path and grown_state.actor_s.shape == (3, 4)
    assert merged_static.actors.valid.shape == (3, 3)            # the old batch keeps its shapes
