"""The rule-based Bench2Drive agents: pieces on hand-worked numbers, then closed loop on hand-built routes
(the ego moved by the env's own control model, actors scripted at constant velocity)."""

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from agents import make_agent
from agents.bench2drive_rules import (
    PrivilegedRulesAgent, RouteSteerAgent, RouteSteerConfig, RulesConfig, initial_memory, predict_actors, reset_memory,
    route_steer, rules_input,
)
from envs.bench2drive.route_scenario import ActorKind
from envs.bench2drive.vehicle_control import MKZ_2020, check_control, ego_step
from envs.sim.geometry import box_corners, boxes_intersect

DT = 0.05


# --- a tiny closed loop ----------------------------------------------------------------------------------

@dataclass
class Actor:
    """A scripted box moving straight at constant speed (kind: ActorKind)."""

    x: float
    y: float
    heading: float = 0.0
    speed: float = 0.0
    size: tuple = (4.5, 2.0)
    kind: int = ActorKind.VEHICLE
    start: float = 0.0            # [s] stands still before this time

    def pose(self, t: float) -> np.ndarray:
        moved = self.speed * max(t - self.start, 0.0)
        return np.array([self.x + moved * math.cos(self.heading), self.y + moved * math.sin(self.heading), self.heading])

    def speed_at(self, t: float) -> float:
        return self.speed if t >= self.start else 0.0


@dataclass
class Row:
    """One hand-built route: dense centre line (N, 2), actors, lights (x, y, heading, state(t)), stop signs."""

    route: np.ndarray
    actors: list = field(default_factory=list)
    lights: list = field(default_factory=list)
    signs: list = field(default_factory=list)     # (x, y, heading, length, width)
    limit: float = 10.0


def straight(length: float = 250.0) -> np.ndarray:
    return np.stack([np.arange(0.0, length, 1.0), np.zeros(int(length))], -1)


def _local(xy: np.ndarray, pose: np.ndarray) -> np.ndarray:
    c, s = math.cos(pose[2]), math.sin(pose[2])
    d = np.asarray(xy, np.float64) - pose[:2]
    return np.stack([d[..., 0] * c + d[..., 1] * s, d[..., 1] * c - d[..., 0] * s], -1)


def observe(rows: list[Row], poses: np.ndarray, speeds: np.ndarray, t: float, slots: int = 6) -> dict:
    """The env's privileged observation layout (envs.bench2drive.observation) for each row."""
    batch = len(rows)
    obs = {"ego": np.zeros((batch, 4), np.float32), "target_points": np.zeros((batch, 10, 2), np.float32),
           "privileged": {"actors": np.zeros((batch, slots, 10), np.float32), "actors_valid": np.zeros((batch, slots), np.int8),
                          "lights": np.zeros((batch, 2, 7), np.float32), "lights_valid": np.zeros((batch, 2), np.int8),
                          "stop_signs": np.zeros((batch, 2, 6), np.float32), "stop_signs_valid": np.zeros((batch, 2), np.int8),
                          "speed_limit": np.zeros((batch, 1), np.float32)}}
    p = obs["privileged"]
    for b, row in enumerate(rows):
        pose = poses[b]
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(row.route, axis=0), axis=1))])
        nearest = int(np.linalg.norm(row.route - pose[:2], axis=1).argmin())
        s = np.minimum(arc[nearest] + 5.0 * np.arange(1, 11), arc[-1])
        targets = np.stack([np.interp(s, arc, row.route[:, 0]), np.interp(s, arc, row.route[:, 1])], -1)
        obs["ego"][b, 0] = speeds[b]
        obs["target_points"][b] = _local(targets, pose)
        for j, actor in enumerate(row.actors):
            ap, rel = actor.pose(t), actor.pose(t)[2] - pose[2]
            v = actor.speed_at(t)
            p["actors"][b, j] = [*_local(ap[:2], pose), math.cos(rel), math.sin(rel), v * math.cos(rel), v * math.sin(rel),
                                 *actor.size, actor.kind, 0]
            p["actors_valid"][b, j] = 1
        for j, (x, y, heading, state) in enumerate(row.lights):
            rel, now = heading - pose[2], state(t)
            p["lights"][b, j] = [*_local(np.array([x, y]), pose), math.cos(rel), math.sin(rel),
                                 now == "red", now == "yellow", now == "green"]
            p["lights_valid"][b, j] = 1
        for j, (x, y, heading, length, width) in enumerate(row.signs):
            rel = heading - pose[2]
            p["stop_signs"][b, j] = [*_local(np.array([x, y]), pose), math.cos(rel), math.sin(rel), length, width]
            p["stop_signs_valid"][b, j] = 1
        p["speed_limit"][b, 0] = row.limit
    return obs


def drive(agent, rows: list[Row], ticks: int) -> dict:
    """Closed loop: returns per-tick ego poses (T, B, 3), speeds (T, B), controls (T, B, 3) and whether the
    ego box ever overlapped an actor's box (B,)."""
    start = [[r.route[0, 0], r.route[0, 1], math.atan2(*(r.route[1] - r.route[0])[::-1])] for r in rows]
    pose = torch.tensor(start, dtype=torch.float64)
    speed = torch.zeros(len(rows), dtype=torch.float64)
    wheel = torch.zeros(len(rows), dtype=torch.float64)
    poses, speeds, controls = [], [], []
    hit = np.zeros(len(rows), bool)
    for k in range(ticks):
        t = k * DT
        control = agent.act(observe(rows, pose.numpy(), speed.numpy(), t))
        controls.append(control)
        pose, speed, wheel = ego_step(pose, speed, wheel, check_control(torch.as_tensor(control), len(rows),
                                                                          torch.float64, "cpu"), DT)[:3]
        owner = [b for b, row in enumerate(rows) for _ in row.actors]
        if owner:
            actors = [a for row in rows for a in row.actors]
            boxes = torch.as_tensor(np.array([a.pose(t + DT) for a in actors]))
            sizes = torch.tensor([a.size for a in actors], dtype=torch.float64)
            ego = box_corners(pose[owner, :2], pose[owner, 2], MKZ_2020.length, MKZ_2020.width)
            overlap = boxes_intersect(ego, box_corners(boxes[:, :2], boxes[:, 2], sizes[:, 0], sizes[:, 1]))
            np.logical_or.at(hit, owner, overlap.numpy())
        poses.append(pose.numpy().copy())
        speeds.append(speed.numpy().copy())
    return {"pose": np.array(poses), "speed": np.array(speeds), "control": np.array(controls), "hit": hit}


# --- pieces ----------------------------------------------------------------------------------------------

def test_rules_input_reads_the_observation_layout():
    row = Row(straight(), actors=[Actor(30.0, 2.0, heading=math.pi / 2, speed=3.0, kind=ActorKind.PEDESTRIAN,
                                        size=(0.5, 0.5))],
              lights=[(40.0, 0.0, 0.0, lambda t: "yellow")], signs=[(20.0, -1.0, 0.0, 4.0, 3.0)], limit=12.0)
    inp = rules_input(observe([row], np.array([[10.0, 0.0, 0.0]]), np.array([4.0]), 0.0))
    assert inp.speed.tolist() == [4.0] and inp.speed_limit.tolist() == [12.0]
    assert inp.actor_pose[0, 0].tolist() == pytest.approx([20.0, 2.0, math.pi / 2])
    assert inp.actor_speed[0, 0].item() == pytest.approx(3.0)
    assert inp.actor_kind[0, 0].item() == ActorKind.PEDESTRIAN and inp.actor_valid[0].tolist()[:2] == [True, False]
    assert inp.light_pose[0, 0].tolist() == pytest.approx([30.0, 0.0, 0.0])
    assert inp.light_stop[0, 0] and inp.light_yellow[0, 0] and not inp.light_valid[0, 1]
    assert inp.sign_box[0, 0].tolist() == pytest.approx([10.0, -1.0, 0.0, 4.0, 3.0])
    assert inp.route[0, 0].tolist() == pytest.approx([5.0, 0.0])
    with pytest.raises(ValueError, match="privileged=True"):
        rules_input({"ego": np.zeros((1, 4)), "target_points": np.zeros((1, 10, 2))})


def test_prediction_is_constant_velocity():
    future = predict_actors(torch.tensor([[[1.0, 2.0, math.pi / 2]]]), torch.tensor([[2.0]]), torch.tensor([1.0, 2.5]))
    assert future[0, 0].flatten().tolist() == pytest.approx([1.0, 4.0, math.pi / 2, 1.0, 7.0, math.pi / 2])


def test_memory_reset_only_touches_the_given_rows():
    memory = initial_memory(3)
    memory = type(memory)(*(getattr(memory, f) + 1 for f in type(memory).__dataclass_fields__))
    out = reset_memory(memory, torch.tensor([False, True, False]))
    assert out.odometer.tolist() == [1.0, 0.0, 1.0] and out.manoeuvre.tolist() == [1, 0, 1]


def test_both_agents_are_registered_and_validate_their_inputs():
    assert isinstance(make_agent("privileged_rules"), PrivilegedRulesAgent)
    assert isinstance(make_agent("route_steer", throttle=0.4), RouteSteerAgent)
    assert PrivilegedRulesAgent.benchmark == RouteSteerAgent.benchmark == "bench2drive"
    with pytest.raises(ValueError, match="lateral_accel"):
        RulesConfig(lateral_accel=0.0)
    with pytest.raises(ValueError, match="throttle"):
        RouteSteerConfig(throttle=1.5)
    with pytest.raises(ValueError, match="target_points"):
        RouteSteerAgent().act({"ego": np.zeros((1, 4))})


def test_route_steer_steers_to_the_target_with_carla_sign_and_constant_throttle():
    targets = torch.tensor([[[5.0, 0.0], [10.0, 2.0]], [[5.0, 0.0], [10.0, -2.0]]], dtype=torch.float64)
    control = route_steer(targets, RouteSteerConfig(throttle=0.25))
    # pure pursuit from the rear axle (1.425 m behind the centre): wheel = atan(2 L sin(a) / d)
    rel = np.array([10.0 + MKZ_2020.wheel_base / 2, 2.0])
    wheel = math.atan2(2 * MKZ_2020.wheel_base * math.sin(math.atan2(rel[1], rel[0])), np.hypot(*rel))
    assert control[:, 0].tolist() == pytest.approx([-wheel / math.radians(70), wheel / math.radians(70)])
    assert control[:, 1].tolist() == [0.25, 0.25] and control[:, 2].tolist() == [0.0, 0.0]


# --- closed loop -----------------------------------------------------------------------------------------

def test_privileged_agent_stops_behind_a_car_at_a_red_light_and_at_a_stop_sign_then_goes():
    rows = [
        Row(straight(), actors=[Actor(60.0, 0.0)]),                                       # stopped car ahead
        Row(straight(), lights=[(40.0, 0.0, 0.0, lambda t: "red")]),                      # red for ever
        Row(straight(), lights=[(40.0, 0.0, 0.0, lambda t: "red" if t < 12.0 else "green")]),
        Row(straight(), signs=[(40.0, 0.0, 0.0, 4.0, 3.5)]),
        Row(straight(), lights=[(40.0, 0.0, math.pi, lambda t: "red")]),                  # governs the other way
    ]
    log = drive(PrivilegedRulesAgent(), rows, 380)                                          # 19 s
    front = log["pose"][..., 0] + MKZ_2020.length / 2
    assert not log["hit"].any()
    assert log["speed"][-1, 0] == 0.0 and 2.0 < 57.75 - front[-1, 0] < 10.0             # car's rear at 57.75 m
    assert log["speed"][-1, 1] == 0.0 and 36.0 < front[-1, 1] < 40.0                    # before the stop line
    assert front[:240, 2].max() < 40.0 and log["pose"][-1, 2, 0] > 45.0                 # waits, then drives on
    in_box = np.abs(log["pose"][:, 3, 0] - 40.0) <= 2.0
    assert log["speed"][in_box, 3].min() < 0.1 and log["pose"][-1, 3, 0] > 60.0          # stops in the box, goes
    assert log["pose"][-1, 4, 0] > 120.0 and log["speed"][-1, 4] == pytest.approx(10.0, abs=0.3)
    assert log["control"][..., 0].__abs__().max() < 1e-6                                 # straight road: no steering


def test_privileged_agent_overtakes_a_parked_car_and_waits_for_oncoming_traffic():
    parked = [Actor(50.0, -1.0), Actor(58.0, -0.8, size=(1.0, 1.0), kind=ActorKind.STATIC)]
    oncoming = Actor(110.0, 3.5, heading=math.pi, speed=8.0)
    rows = [Row(straight(), actors=list(parked)), Row(straight(), actors=[*parked, oncoming])]
    log = drive(PrivilegedRulesAgent(), rows, 400)                                           # 20 s
    assert not log["hit"].any()                                   # the oncoming car is in the collision check too
    y, x = log["pose"][..., 1], log["pose"][..., 0]
    assert (y.max(0) > 2.5).all() and (np.abs(y[-1]) < 0.3).all() and (x[-1] > 90.0).all()   # out and back in
    # the oncoming car is level with the parked car (x = 50) at t = 7.5 s: row 1 pulls out after it, row 0 before
    out = np.argmax(y > 1.0, axis=0) * DT
    assert out[0] < 7.0 < 7.5 < out[1]


def test_privileged_agent_yields_to_a_crossing_pedestrian_and_moves_aside_for_an_emergency_vehicle():
    walker = Actor(35.0, -6.0, heading=math.pi / 2, speed=1.4, size=(0.5, 0.5), kind=ActorKind.PEDESTRIAN)
    ambulance = Actor(-40.0, 0.0, speed=14.0, size=(6.0, 2.3), kind=ActorKind.EMERGENCY, start=3.0)
    rows = [Row(straight(), actors=[walker]), Row(straight(), actors=[ambulance])]
    log = drive(PrivilegedRulesAgent(), rows, 300)                                           # 15 s
    assert not log["hit"].any()
    y = log["pose"][..., 1]
    assert log["speed"][:, 0].min() < 1.0 and log["pose"][-1, 0, 0] > 60.0                 # slowed for it, then on
    assert y[:, 1].max() > 2.5                                                               # made room


def test_route_steer_agent_follows_a_curve_and_never_brakes():
    theta = np.linspace(0.0, math.pi / 2, 48)
    curve = np.concatenate([straight(10.0), np.stack([10.0 + 30.0 * np.sin(theta), 30.0 - 30.0 * np.cos(theta)], -1),
                            np.stack([np.full(100, 40.0), np.arange(31.0, 131.0)], -1)])
    log = drive(RouteSteerAgent(throttle=0.3), [Row(curve)], 240)
    error = np.linalg.norm(curve[None] - log["pose"][:, 0, None, :2], axis=-1).min(-1)   # (T,) distance to the route
    assert error.max() < 1.0 and log["pose"][-1, 0, 1] > 35.0                              # round the bend, and on
    assert log["control"][..., 2].max() == 0.0 and log["control"][..., 1].min() == pytest.approx(0.3)
