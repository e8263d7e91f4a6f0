"""Simulated drives, shared by the scenario families: road users on lane paths, a signal plan, the IDM
rollout from t = -1.6 s to 4.0 s (or any longer `Timeline`, `envs.sim.traffic`), and the rollout turned
into a NAVSIM-style `Scene` at any "now" (ego history, human trajectory, agent tracks, lights, command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from envs.sim.geometry import box_corners, boxes_intersect, polygon_is_simple
from envs.sim.idm import IDMParams
from envs.sim.map import Lane, RoadMap
from envs.sim.mapgen import GeneratedMap
from envs.sim.route import driving_command, find_route, lane_path_poses, path_interpolate
from envs.sim.scene import (
    HISTORY_STEP_S, NUM_STEPS, STEP_S, AgentTracks, AgentType, EgoHistory, LightStatus, Plan, Scene, TrafficLights,
)
from envs.sim.traffic import (
    BoxObstacles, PathAgents, advance_on_path, find_leads, idm_path_accel, path_agents_to_tracks,
)
from envs.sim.vehicle import PACIFICA

HISTORY_STEPS = 16
"""Simulated steps before t = 0: -1.6 s, one more than the 1.5 s history so finite differences at
-1.5 s are central."""
NOW = HISTORY_STEPS
"""Rollout index of t = 0."""
TOTAL_STEPS = HISTORY_STEPS + NUM_STEPS - 1
"""Simulated 0.1 s steps (-1.6 s .. 4.0 s)."""
SPEED_CAP = 15.0
"""[m/s] no driver's desired speed exceeds this (urban scenes; keeps 5.5 s of driving on the map)."""
TRAFFIC_IDM = IDMParams(target_speed=10.0, min_gap=2.0, headway=1.5, accel_max=1.5, decel_max=3.0)
"""Scene traffic. Gentler on gaps and harder on brakes than NAVSIM's reactive IDM (1.0 m, 2 m/s^2), so
generated logs rarely contain crashes; desired speeds are set per agent."""
COMFORT_DECEL = 1.5
"""[m/s^2] drivers slow for slower lanes ahead and stop for yellow only if this suffices."""
STOP_SIGN_RELEASE_GAP = 5.0
"""[m] a stop sign releases an agent once it has stopped with its front this close to the line."""
YELLOW_S, ALL_RED_S, GREEN_RANGE_S = 3.0, 1.0, (6.0, 14.0)
"""Signal timing [s]: yellow, all-red clearance, and the range of each group's green."""
PATH_BEHIND, PATH_AHEAD = 10.0, 230.0
"""[m] of lane sequence kept behind / ahead of an agent's start: its path end (a stopped lead for IDM)
stays >= 100 m ahead after 5.6 s at 16.5 m/s."""
_FAR = 1e9


@dataclass(frozen=True)
class Timeline:
    """Which 0.1 s steps a drive simulates: `history_steps` before t0 (the scene's "now") and
    `total_steps` in all, so states run from -history_steps * 0.1 s to (total - history) * 0.1 s."""

    history_steps: int = HISTORY_STEPS
    total_steps: int = TOTAL_STEPS

    def __post_init__(self):
        if not (isinstance(self.history_steps, int) and self.history_steps >= HISTORY_STEPS):
            raise ValueError(f"history_steps={self.history_steps!r}: must be an int >= {HISTORY_STEPS}")
        if not (isinstance(self.total_steps, int) and self.total_steps >= self.history_steps + NUM_STEPS - 1):
            raise ValueError(f"total_steps={self.total_steps!r}: must be an int >= history_steps + {NUM_STEPS - 1}")

    @property
    def start_s(self) -> float:
        """[s] time of the first state (negative)."""
        return -self.history_steps * STEP_S

    @property
    def end_s(self) -> float:
        """[s] time of the last state."""
        return (self.total_steps - self.history_steps) * STEP_S

    def step_times(self) -> np.ndarray:
        """(total_steps,) times [s] of steps 1 .. total_steps (what a speed script gives)."""
        return (np.arange(1, self.total_steps + 1) - self.history_steps) * STEP_S


# --------------------------------------------------------------------------- drive description


@dataclass(frozen=True)
class LightCycle:
    """Fixed-time signal plan: groups get green in turn, each followed by yellow and all-red."""

    groups: tuple[int, ...]
    green_s: tuple[float, ...]
    offset_s: float

    @classmethod
    def sample(cls, groups, rng: np.random.Generator) -> "LightCycle":
        order = tuple(sorted(set(int(g) for g in groups)))
        green = tuple(float(g) for g in rng.uniform(*GREEN_RANGE_S, size=len(order)))
        cycle = sum(green) + len(order) * (YELLOW_S + ALL_RED_S)
        return cls(order, green, float(rng.uniform(0.0, cycle)) if order else 0.0)

    def status(self, group: np.ndarray, t: float) -> np.ndarray:
        """LightStatus per entry of `group` (any shape) at time t [s]; unknown groups are GREEN."""
        out = np.full(np.shape(group), int(LightStatus.GREEN), np.int64)
        if not self.groups:
            return out
        cycle = sum(self.green_s) + len(self.groups) * (YELLOW_S + ALL_RED_S)
        local, start = (t + self.offset_s) % cycle, 0.0
        for g, green in zip(self.groups, self.green_s):
            phase = local - start
            now = (LightStatus.GREEN if 0 <= phase < green else LightStatus.YELLOW
                   if green <= phase < green + YELLOW_S else LightStatus.RED)
            out[np.asarray(group) == g] = int(now)
            start += green + YELLOW_S + ALL_RED_S
        return out


@dataclass(frozen=True)
class AgentPlan:
    """One road user before simulation: a path and where/how fast it starts (numpy, per scene)."""

    path: np.ndarray
    """(P, 2) [m]; the box centre moves along it."""
    s: float
    """Start arc length of the box centre at t = -1.6 s [m]."""
    speed: float
    size: tuple[float, float]
    type: AgentType = AgentType.VEHICLE
    is_reactive: bool = True
    speed_factor: float = 1.0
    """Reactive agents want this fraction of the lane speed limit (capped at SPEED_CAP)."""
    lane_starts: tuple[tuple[float, float], ...] = ()
    """(arc length where a lane begins, its speed limit) along the path."""
    controls: tuple[tuple[float, int], ...] = ()
    """(stop position on the path [m], signal group or -1 for a stop sign)."""
    speed_script: tuple[float, ...] | None = None
    """Speeds for steps 1 .. TOTAL_STEPS that override the simulation (scripted lead)."""
    path_offset: float = 0.0
    """Arc length of path[0] along the agent's full lane sequence [m]."""
    timed_stops: tuple[tuple[float, float, float], ...] = ()
    """(stop position on the path [m], active from t [s], until t [s]): a reactive agent yields there
    in that window (a human waiting for a pedestrian or a gap), like a red light."""


@dataclass(frozen=True)
class Drive:
    """A scene ready to simulate: agent 0 is the ego (box centre on its route path)."""

    gen: GeneratedMap
    route_lane_ids: tuple[str, ...]
    agents: tuple[AgentPlan, ...]
    ego_params: IDMParams
    lights: LightCycle
    wander: tuple[float, float, float] = (0.0, 50.0, 0.0)
    """Human lateral wander: amplitude [m], wavelength [m], phase [rad] of a sine in arc length."""
    timeline: Timeline = Timeline()
    ego_baseline: np.ndarray | None = None
    """(P, 3) rear-axle baseline x, y, heading replacing the route lanes' (an ego that changes lanes);
    same arc length as the ego's full path."""
    key_agents: tuple[int, ...] = ()
    """Agents (indices >= 1) the scenario is about (`scenarios.family` keeps them in the log)."""


# --------------------------------------------------------------------------- lanes and paths


def concat_lanes(road_map: RoadMap, lane_ids) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """Centerlines of consecutive lanes as one (P, 2) path, and (start arc length, speed limit) per lane."""
    points, starts, total = [], [], 0.0
    for lane_id in lane_ids:
        lane = road_map.lanes_by_id[lane_id]
        line = np.asarray(lane.centerline, np.float64)
        if points:
            total += float(np.hypot(*(line[0] - points[-1][-1])))   # 0 where the lanes share the joint
        starts.append((total, float(lane.speed_limit or SPEED_CAP)))
        total += lane_length(lane)
        # every other vertex (plus the lane end): ~2 m spacing keeps the per-step projections cheap
        # and is within 0.12 m of the baseline on a 10 m radius
        line = np.concatenate([line[:-1:2], line[-1:]])
        points.append(line[1:] if points and np.allclose(line[0], points[-1][-1]) else line)
    return np.concatenate(points), tuple(starts)


def lane_walk(road_map: RoadMap, lane_id: str, min_length: float, rng: np.random.Generator) -> tuple[str, ...]:
    """Lanes from `lane_id` on, picking random successors until `min_length` [m] or a dead end."""
    lanes, length = [lane_id], 0.0
    while True:
        lane = road_map.lanes_by_id[lanes[-1]]
        length += float(np.hypot(*np.diff(lane.centerline, axis=0).T).sum())
        nxt = [s for s in lane.successors if s in road_map.lanes_by_id and s not in lanes]
        if length >= min_length or not nxt:
            return tuple(lanes)
        lanes.append(nxt[int(rng.integers(len(nxt)))])


def _route_lanes(road_map: RoadMap, start_lane: str, route_blocks) -> tuple[str, ...]:
    """Lane sequence from `start_lane` through the given roadblock sequence (successor per next block)."""
    lanes = [start_lane]
    for block in list(route_blocks)[1:]:
        nxt = [s for s in road_map.lanes_by_id[lanes[-1]].successors
               if s in road_map.lanes_by_id and road_map.lanes_by_id[s].roadblock_id == block]
        if not nxt:
            break
        lanes.append(nxt[0])
    return tuple(lanes)


def _reachable_ends(road_map: RoadMap, start_lane: str) -> list[str]:
    """Lanes without successors reachable from `start_lane`, in discovery order."""
    seen, stack, ends = {start_lane}, [start_lane], []
    while stack:
        lane = road_map.lanes_by_id[stack.pop()]
        nxt = [s for s in lane.successors if s in road_map.lanes_by_id]
        if not nxt:
            ends.append(lane.id)
        for s in nxt:
            if s not in seen:
                seen.add(s)
                stack.append(s)
    return ends


def _lane_controls(gen: GeneratedMap, lane_ids, starts) -> tuple[tuple[float, int], ...]:
    """Stop positions (connector starts) of signalised (group) and stop-sign (-1) connectors on a path."""
    out = []
    for lane_id, (start, _) in zip(lane_ids, starts):
        if lane_id in gen.signal_groups:
            out.append((start, int(gen.signal_groups[lane_id])))
        elif lane_id in gen.stop_sign_connectors:
            out.append((start, -1))
    return tuple(out)


def _trim(path: np.ndarray, start: float, end: float) -> np.ndarray:
    """The part of a (P, 2) path between arc lengths start and end [m] (ends interpolated)."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    end = min(end, s[-1])
    inside = (s > start) & (s < end)
    ends = np.stack([np.interp([start, end], s, path[:, 0]), np.interp([start, end], s, path[:, 1])], -1)
    return np.concatenate([ends[:1], path[inside], ends[1:]])


def path_plan(gen: GeneratedMap, lane_ids, s: float, speed: float, size, speed_factor: float,
              path: np.ndarray | None = None, ahead: float = PATH_AHEAD, timed_stops=(), **kw) -> AgentPlan:
    """A vehicle following the given lanes from arc length s (reactive unless `is_reactive=False`).

    Its simulated path is the PATH_BEHIND .. `ahead` window around s (shorter paths, cheaper steps).
    `path` (P, 2) replaces the lanes' centerline (same arc length, e.g. a lane change); `timed_stops`
    positions are arc lengths along the full lane sequence, like s."""
    lane_path, starts = concat_lanes(gen.map, lane_ids)
    path = lane_path if path is None else path
    offset = max(0.0, s - PATH_BEHIND)

    def shifted(items):
        return tuple((at - offset, *values) for at, *values in items)

    return AgentPlan(path=_trim(path, offset, s + ahead), s=s - offset, speed=speed, size=tuple(size),
                     speed_factor=speed_factor, lane_starts=shifted(starts),
                     controls=shifted(_lane_controls(gen, lane_ids, starts)), path_offset=offset,
                     timed_stops=shifted(timed_stops), **kw)


def lane_length(lane: Lane) -> float:
    return float(np.hypot(*np.diff(lane.centerline, axis=0).T).sum())


def human_idm(style: float) -> IDMParams:
    """Human ego IDM: style 0 = cautious (long gaps, soft), 1 = aggressive (short gaps, brisk)."""
    return IDMParams(target_speed=10.0, min_gap=3.0 - 1.5 * style, headway=2.0 - 1.0 * style,
                     accel_max=0.8 + 1.2 * style, decel_max=2.5 + 1.5 * style)


# --------------------------------------------------------------------------- simulation


def _pad(rows: list[list[tuple[float, float]]], fill: tuple[float, float]) -> np.ndarray:
    width = max([1] + [len(r) for r in rows])
    return np.array([list(r) + [fill] * (width - len(r)) for r in rows], np.float64).reshape(len(rows), width, 2)


def _path_agents(plans: list[AgentPlan]) -> PathAgents:
    width = max([2] + [len(p.path) for p in plans])
    path, path_valid = np.zeros((len(plans), width, 2)), np.zeros((len(plans), width), bool)
    for a, p in enumerate(plans):
        path[a, :len(p.path)], path_valid[a, :len(p.path)] = p.path, True

    def tensor(values, dtype=torch.float64):
        return torch.as_tensor(np.asarray(values), dtype=dtype).reshape(1, len(plans), *np.shape(values)[1:])

    return PathAgents.create(
        path=tensor(path), path_valid=tensor(path_valid, torch.bool), s=tensor([p.s for p in plans]),
        speed=tensor([p.speed for p in plans]), size=tensor(np.array([p.size for p in plans]).reshape(-1, 2)),
        types=tensor([int(p.type) for p in plans], torch.int64),
        is_reactive=tensor([p.is_reactive for p in plans], torch.bool),
        valid=torch.ones(1, len(plans), dtype=torch.bool),
    )


@dataclass(frozen=True)
class Rollout:
    """Simulated drive, numpy, T = timeline.total_steps + 1 states (by default from -1.6 s, index NOW is
    t = 0)."""

    pose: np.ndarray = field(metadata={"dims": "A T 3"})
    """Box centres x, y [m], heading [rad]; agent 0 is the ego."""
    velocity: np.ndarray = field(metadata={"dims": "A T 2"})
    """Global vx, vy [m/s]."""
    ego_s: np.ndarray = field(metadata={"dims": "T"})
    """Arc length of the ego box centre along its route path [m]."""


def simulate_drive(drive: Drive) -> Rollout:
    """Roll the drive out over `drive.timeline.total_steps` steps of 0.1 s (`envs.sim.traffic`, batch of 1).

    Reactive agents (the ego with its own params) follow IDM behind leads, red lights, yellow lights
    they can stop for, stop signs until they have stopped at the line, and their timed stops; their
    desired speed anticipates slower lanes ahead at COMFORT_DECEL. Non-reactive agents keep their speed
    (or follow their speed script; a short script holds its last value) and are obstacles to the
    reactive ones.
    """
    steps, history_steps = drive.timeline.total_steps, drive.timeline.history_steps
    reactive = [a for a, p in enumerate(drive.agents) if p.is_reactive]
    others = [a for a, p in enumerate(drive.agents) if not p.is_reactive]
    if reactive[:1] != [0]:
        raise ValueError("drive.agents[0]: the ego must be reactive")
    plans = [drive.agents[a] for a in reactive]
    movers, passive = _path_agents(plans), _path_agents([drive.agents[a] for a in others])
    lanes = _pad([list(p.lane_starts) for p in plans], (_FAR, SPEED_CAP))
    lane_s, lane_limit = lanes[..., 0], np.minimum(lanes[..., 1], SPEED_CAP)
    controls = _pad([list(p.controls) for p in plans], (_FAR, -2))
    stop_at, group = controls[..., 0], controls[..., 1].astype(np.int64)
    factor = np.array([p.speed_factor for p in plans])
    scripts = [drive.agents[a].speed_script for a in others]
    scripted = torch.tensor([[s is not None for s in scripts]], dtype=torch.bool)
    script = torch.tensor([(list(s) + [s[-1]] * steps)[:steps] if s else [0.0] * steps for s in scripts],
                          dtype=torch.float64).reshape(len(others), steps).T
    timed = np.array([[list(stop) for stop in p.timed_stops] + [[_FAR, 0.0, 0.0]] * (
        max(len(q.timed_stops) for q in plans) - len(p.timed_stops)) for p in plans]).reshape(len(plans), -1, 3)
    released = np.zeros(stop_at.shape, bool)
    is_ego = torch.zeros(1, len(plans), dtype=torch.bool)
    is_ego[0, 0] = True
    length = movers.size[0, :, 0].numpy()
    history = [(movers, passive)]
    for k in range(steps):
        s, speed = movers.s[0].numpy(), movers.speed[0].numpy()
        front = s + length / 2
        to_stop = stop_at - front[:, None]
        released |= (group == -1) & (speed[:, None] < 0.3) & (to_stop < STOP_SIGN_RELEASE_GAP)
        status = drive.lights.status(group, (k - history_steps) * STEP_S)
        can_stop = to_stop >= speed[:, None] ** 2 / (2 * COMFORT_DECEL)
        active = ((group >= 0) & ((status == LightStatus.RED) | ((status == LightStatus.YELLOW) & can_stop))
                  | ((group == -1) & ~released))
        stop_s = np.where(active & (stop_at < _FAR), stop_at, math.inf)
        if timed.shape[1]:
            t = (k - history_steps) * STEP_S
            waiting = (timed[..., 1] <= t) & (t < timed[..., 2]) & (timed[..., 0] < _FAR)
            stop_s = np.concatenate([stop_s, np.where(waiting, timed[..., 0], math.inf)], 1)
        stop_s = torch.as_tensor(stop_s)[None]
        # the current lane's limit, lowered to the fastest speed from which each slower lane ahead is
        # reached braking at COMFORT_DECEL (padding lanes sit at _FAR and never bind)
        current = np.clip((lane_s <= s[:, None]).sum(1) - 1, 0, None)
        reach = np.sqrt(lane_limit ** 2 + 2 * COMFORT_DECEL * np.clip(lane_s - front[:, None], 0.0, None))
        limit = np.minimum(np.take_along_axis(lane_limit, current[:, None], 1)[:, 0],
                           np.where(lane_s > s[:, None], reach, np.inf).min(1))
        target = torch.as_tensor(np.clip(factor * limit, 0.5, SPEED_CAP))[None]
        obstacles = BoxObstacles(pose=passive.pose, size=passive.size, speed=passive.speed, valid=passive.valid)
        leads = find_leads(movers, obstacles, stop_s)
        accel = torch.where(is_ego, idm_path_accel(movers, leads, drive.ego_params, target),
                            idm_path_accel(movers, leads, TRAFFIC_IDM, target))
        movers = advance_on_path(movers, accel, STEP_S)
        passive = advance_on_path(passive, torch.zeros_like(passive.s), STEP_S)
        passive = replace(passive, speed=torch.where(scripted, script[k][None], passive.speed))
        history.append((movers, passive))
    pose = np.zeros((len(drive.agents), steps + 1, 3))
    velocity = np.zeros((len(drive.agents), steps + 1, 2))
    for index, states in ((reactive, [h[0] for h in history]), (others, [h[1] for h in history])):
        if index:
            part_pose, part_velocity, _ = path_agents_to_tracks(states)
            pose[index], velocity[index] = part_pose[0].numpy(), part_velocity[0].numpy()
    return Rollout(pose=pose, velocity=velocity, ego_s=np.array([h[0].s[0, 0].item() for h in history]))


# --------------------------------------------------------------------------- rollout -> Scene


def _ego_rear_axle(drive: Drive, ego_s: np.ndarray) -> np.ndarray:
    """(T, 3) rear-axle poses: the route baseline at (box-centre arc length - rear_axle_to_center), plus
    the human's lateral wander (a sine in arc length; heading follows its slope)."""
    baseline = drive.ego_baseline
    if baseline is None:
        baseline = lane_path_poses(drive.gen.map, drive.route_lane_ids)
    s = ego_s - PACIFICA.rear_axle_to_center
    pose = path_interpolate(baseline, s)
    amplitude, wavelength, phase = drive.wander
    k = 2 * math.pi / wavelength
    offset, slope = amplitude * np.sin(k * s + phase), amplitude * k * np.cos(k * s + phase)
    pose[:, 0] -= np.sin(pose[:, 2]) * offset
    pose[:, 1] += np.cos(pose[:, 2]) * offset
    pose[:, 2] = np.arctan2(np.sin(pose[:, 2] + np.arctan(slope)), np.cos(pose[:, 2] + np.arctan(slope)))
    return pose


def _in_frame(vectors: np.ndarray, heading: np.ndarray) -> np.ndarray:
    cos, sin = np.cos(heading), np.sin(heading)
    return np.stack([cos * vectors[:, 0] + sin * vectors[:, 1], cos * vectors[:, 1] - sin * vectors[:, 0]], -1)


def ego_poses(drive: Drive, rollout: Rollout) -> np.ndarray:
    """(T, 3) human ego rear-axle poses of a rollout (route or `ego_baseline`, plus wander)."""
    return rear_axle_at(drive, rollout.ego_s + drive.agents[0].path_offset)


def rear_axle_at(drive: Drive, centre_s: np.ndarray) -> np.ndarray:
    """(N, 3) ego rear-axle poses where its box centre is at arc lengths centre_s (N,) [m] of its full
    path (the baseline the human follows, with its wander)."""
    return _ego_rear_axle(drive, np.asarray(centre_s, np.float64))


def touching_agents(drive: Drive, rollout: Rollout, now: int) -> np.ndarray:
    """(A - 1,) bool: agents 1.. whose box touches the human ego box from now - 1.5 s to now + 4 s
    (a log never shows the human in a crash, so `drive_scene` leaves them out)."""
    ego = ego_poses(drive, rollout)
    span = slice(now - 15, now + NUM_STEPS)
    size = np.array([p.size for p in drive.agents])
    centre = ego[span, :2] + PACIFICA.rear_axle_to_center * np.stack([np.cos(ego[span, 2]), np.sin(ego[span, 2])], -1)
    ego_box = box_corners(torch.as_tensor(centre), torch.as_tensor(ego[span, 2]), PACIFICA.length, PACIFICA.width)
    boxes = box_corners(torch.as_tensor(rollout.pose[1:, span, :2]), torch.as_tensor(rollout.pose[1:, span, 2]),
                        torch.as_tensor(size[1:, 0:1]), torch.as_tensor(size[1:, 1:2]))
    return boxes_intersect(boxes, ego_box[None]).any(-1).numpy()


def drive_scene(drive: Drive, rollout: Rollout, token: str, scenario_type: str, now: int | None = None) -> Scene:
    """Scene from a rollout at rollout index `now` (default t0 = timeline.history_steps): ego history
    (4 frames at 2 Hz), human plan (8 poses at 0.5 s), tracks for now .. now + 4 s of every agent that
    never touches the ego, lights of signalised connectors."""
    now = drive.timeline.history_steps if now is None else now
    if not (HISTORY_STEPS <= now <= len(rollout.ego_s) - NUM_STEPS):
        raise ValueError(f"now={now!r}: needs {HISTORY_STEPS} steps before and {NUM_STEPS - 1} after "
                         f"in a rollout of {len(rollout.ego_s)} states")
    pose, velocity = rollout.pose, rollout.velocity
    ego_s = rollout.ego_s + drive.agents[0].path_offset
    ego = _ego_rear_axle(drive, ego_s)
    ego_velocity = np.gradient(ego[:, :2], STEP_S, axis=0)
    ego_accel = np.gradient(ego_velocity, STEP_S, axis=0)
    history_index = now - np.arange(3, -1, -1) * round(HISTORY_STEP_S / STEP_S)
    history = EgoHistory(
        t=(history_index - now) * STEP_S, pose=ego[history_index],
        velocity=_in_frame(ego_velocity[history_index], ego[history_index, 2]),
        acceleration=_in_frame(ego_accel[history_index], ego[history_index, 2]),
    )
    current_pose = ego[now]
    future = ego[now + 5:now + NUM_STEPS:5]
    local_xy = _in_frame(future[:, :2] - current_pose[:2], np.full(len(future), current_pose[2]))
    local_heading = np.arctan2(np.sin(future[:, 2] - current_pose[2]), np.cos(future[:, 2] - current_pose[2]))
    human = Plan(interval=0.5, poses=np.concatenate([local_xy, local_heading[:, None]], 1))

    # agents (index >= 1) whose box ever touches the ego box (from -1.5 s on) are left out of the log
    size = np.array([p.size for p in drive.agents])
    keep = np.flatnonzero(~touching_agents(drive, rollout, now)) + 1
    window = slice(now, now + NUM_STEPS)
    agents = AgentTracks(
        ids=tuple(f"A{i}" for i in range(1, len(keep) + 1)),
        types=np.array([int(drive.agents[a].type) for a in keep], np.int64),
        size=size[keep].reshape(-1, 2), pose=pose[keep, window].reshape(-1, NUM_STEPS, 3),
        velocity=velocity[keep, window].reshape(-1, NUM_STEPS, 2), valid=np.ones((len(keep), NUM_STEPS), bool),
    )
    signals = tuple(sorted(drive.gen.signal_groups, key=lambda c: (len(c), c)))
    groups = np.array([drive.gen.signal_groups[c] for c in signals], np.int64)
    shift = now - drive.timeline.history_steps
    status = np.stack([drive.lights.status(groups, (shift + k) * STEP_S) for k in range(NUM_STEPS)], -1)
    lights = TrafficLights(signals, status.reshape(len(signals), NUM_STEPS))

    # the route starts at the roadblock the ego is in at now
    _, starts = concat_lanes(drive.gen.map, drive.route_lane_ids)
    rear_s = ego_s[now] - PACIFICA.rear_axle_to_center
    current = max([0] + [i for i, (start, _) in enumerate(starts) if start <= rear_s])
    route = tuple(dict.fromkeys(drive.gen.map.lanes_by_id[i].roadblock_id for i in drive.route_lane_ids[current:]))
    return Scene(
        token=token, map=drive.gen.map, route_roadblock_ids=route, history=history, agents=agents,
        traffic_lights=lights, command=driving_command(drive.gen.map, route, current_pose), human_trajectory=human,
        scenario_type=scenario_type,
    )


# --------------------------------------------------------------------------- spawning the ego


def map_is_valid(road_map: RoadMap) -> bool:
    """Would scene/1 accept every polygon? (`envs.scene_file` rejects non-simple rings; regenerating is
    better than emitting a scene that does not load.)"""
    return all(polygon_is_simple(o.polygon) for o in road_map.all_polygon_objects())


def spawn_ego(gen: GeneratedMap, rng: np.random.Generator, style: float, min_blocks: int = 3):
    """Ego start: a spawn lane, a route to a random reachable dead end, a start in the lane and a speed.

    On junction maps the ego is near a junction at t = 0 60% of the time (turn commands). The
    route must still span >= min_blocks roadblocks from wherever the ego is at t = 0. Returns
    (route lane ids, AgentPlan), or None if no lane qualifies.
    """
    lanes_by_id = gen.map.lanes_by_id
    spawn = list(gen.spawn_lanes)
    approach = [i for i in spawn if any(lanes_by_id[s].is_connector for s in lanes_by_id[i].successors)]
    near_junction = bool(approach) and rng.random() < 0.6
    spawn = approach if near_junction else spawn
    rng.shuffle(spawn)
    for start in spawn:
        first = lane_length(lanes_by_id[start])
        factor = (0.8 + 0.3 * style) * float(rng.uniform(0.9, 1.0))
        limit = min(lanes_by_id[start].speed_limit or SPEED_CAP, SPEED_CAP)
        speed = 0.0 if rng.random() < 0.15 else float(rng.uniform(0.3, 0.9)) * factor * limit
        if near_junction:   # front bumper 0-12 m before the junction at t = 0 if it kept its speed
            rear_s = max(1.0, first - PACIFICA.front_length - float(rng.uniform(0.0, 12.0)) - NOW * STEP_S * speed)
            # slow enough to stop at 2 m/s^2 before the junction should the light be red
            room = first - rear_s - PACIFICA.front_length - 1.0
            speed = min(speed, math.sqrt(2 * 2.0 * max(room, 0.0)))
        else:
            rear_s = float(rng.uniform(1.0, max(1.0, first - 25.0)))
        ends = _reachable_ends(gen.map, start)
        rng.shuffle(ends)
        for goal in ends:
            blocks = find_route(gen.map, start, goal)
            lanes = _route_lanes(gen.map, start, blocks)
            _, starts = concat_lanes(gen.map, lanes)
            # lanes the ego may enter before t = 0 (its speed plus 2 m/s^2 for 1.6 s, at most)
            travel = NOW * STEP_S * speed + 0.5 * 2.0 * (NOW * STEP_S) ** 2
            passed = sum(rear_s < lane_start <= rear_s + travel for lane_start, _ in starts)
            if len(blocks) < min_blocks + passed or len(lanes) != len(blocks):
                continue
            plan = path_plan(gen, lanes, rear_s + PACIFICA.rear_axle_to_center, speed,
                             (PACIFICA.length, PACIFICA.width), factor)
            return lanes, plan
    return None


def pose_on(path: np.ndarray, s: float) -> np.ndarray:
    """(3,) point [m] and heading [rad] at arc length s on a (P, 2) path."""
    step = np.diff(path, axis=0)
    headings = np.arctan2(step[:, 1], step[:, 0])
    poses = np.concatenate([path, np.append(headings, headings[-1])[:, None]], 1)
    return path_interpolate(poses, np.array([s]))[0]
