"""Tiny hand-built scoring contexts: a straight two-lane road along +x and boxes driving on it.

Road: roadblock y in [-3.5, 3.5]; lane 0 (on route, the ego lane) y in [-3.5, 0]; lane 1 (off
route) y in [0, 3.5]; centerline y = -1.75. Steps are 0.1 s; scenes have 41 steps unless told.
`random_interactions` makes crowded random scenes for the checks against NAVSIM's sequential loops.
Test modules import these helpers from `tests.envs.metrics.conftest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from envs.metrics.context import MapContext, Observation
from envs.sim.geometry import box_corners
from envs.sim.polygon_index import PolygonIndex

STEPS = 41
DT = 0.1
EGO_LANE_Y = -1.75
OTHER_LANE_Y = 1.75
ROAD_X = (-50.0, 250.0)


def rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle ring (4, 2), counter-clockwise."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


@dataclass
class MapSpec:
    """Polygons of one scene (numpy), turned into a batched MapContext by `build_map`."""

    roadblocks: list = field(default_factory=list)
    lanes: list = field(default_factory=list)
    lane_on_route: list = field(default_factory=list)
    intersections: list = field(default_factory=list)
    centerline: np.ndarray = field(default_factory=lambda: np.array([[ROAD_X[0], EGO_LANE_Y], [ROAD_X[1], EGO_LANE_Y]]))


def two_lane_road(intersection: tuple[float, float] | None = None) -> MapSpec:
    """The straight road; `intersection` = (x0, x1) adds an intersection square across both lanes."""
    spec = MapSpec(
        roadblocks=[rect(ROAD_X[0], ROAD_X[1], -3.5, 3.5)],
        lanes=[rect(ROAD_X[0], ROAD_X[1], -3.5, 0.0), rect(ROAD_X[0], ROAD_X[1], 0.0, 3.5)],
        lane_on_route=[True, False],
    )
    if intersection is not None:
        spec.intersections.append(rect(intersection[0], intersection[1], -3.5, 3.5))
    return spec


def build_map(specs: list[MapSpec]) -> MapContext:
    """Batch of scenes (padding lanes / centerline vertices as needed)."""
    num_lanes = max(len(s.lanes) for s in specs)
    num_points = max(len(s.centerline) for s in specs)
    on_route = torch.zeros(len(specs), num_lanes, dtype=torch.bool)
    centerline = torch.zeros(len(specs), num_points, 2, dtype=torch.float64)
    centerline_valid = torch.zeros(len(specs), num_points, dtype=torch.bool)
    for b, spec in enumerate(specs):
        on_route[b, : len(spec.lanes)] = torch.tensor(spec.lane_on_route, dtype=torch.bool)
        centerline[b, : len(spec.centerline)] = torch.as_tensor(spec.centerline)
        centerline_valid[b, : len(spec.centerline)] = True
    return MapContext(
        drivable=PolygonIndex.build([s.roadblocks + s.intersections for s in specs]),
        lanes=PolygonIndex.build([s.lanes for s in specs]),
        lane_on_route=on_route,
        intersections=PolygonIndex.build([s.intersections for s in specs]),
        centerline=centerline,
        centerline_valid=centerline_valid,
    )


@dataclass
class Track:
    """One object: centre per step (T, 2), heading [rad], size; invalid steps are absent."""

    center: np.ndarray
    heading: float = 0.0
    length: float = 4.0
    width: float = 2.0
    is_agent: bool = True
    first_speed: float = 0.0
    valid: np.ndarray | None = None


def moving_track(x0: float, y: float, speed: float, steps: int = STEPS, **kwargs) -> Track:
    """Object driving along +x at constant speed [m/s] (first_speed = speed unless given)."""
    x = x0 + speed * DT * np.arange(steps)
    kwargs.setdefault("first_speed", abs(speed))
    return Track(center=np.stack([x, np.full(steps, y)], axis=-1), **kwargs)


def track_from_x(x: np.ndarray, y: float, **kwargs) -> Track:
    """Object along +x with hand-given x per step."""
    return Track(center=np.stack([np.asarray(x, dtype=np.float64), np.full(len(x), y)], axis=-1), **kwargs)


@dataclass
class RedLight:
    polygon: np.ndarray
    active: np.ndarray


def build_observation(
    scenes: list[list[Track]], steps: int = STEPS, red_lights: list[list[RedLight]] | None = None
) -> Observation:
    """Batch of scenes with objects padded to the largest scene (padding slots never valid)."""
    num_scenes = len(scenes)
    num_agents = max([len(s) for s in scenes] + [0])
    red_lights = red_lights if red_lights is not None else [[] for _ in scenes]
    num_lights = max([len(r) for r in red_lights] + [0])
    num_vertices = max([len(light.polygon) for r in red_lights for light in r] + [1])
    center = torch.zeros(num_scenes, steps, num_agents, 2, dtype=torch.float64)
    heading = torch.zeros(num_scenes, steps, num_agents, dtype=torch.float64)
    length = torch.ones(num_scenes, steps, num_agents, dtype=torch.float64)
    width = torch.ones(num_scenes, steps, num_agents, dtype=torch.float64)
    valid = torch.zeros(num_scenes, steps, num_agents, dtype=torch.bool)
    first_heading = torch.zeros(num_scenes, num_agents, dtype=torch.float64)
    first_speed = torch.zeros(num_scenes, num_agents, dtype=torch.float64)
    is_agent = torch.zeros(num_scenes, num_agents, dtype=torch.bool)
    for b, tracks in enumerate(scenes):
        for a, track in enumerate(tracks):
            center[b, :, a] = torch.as_tensor(track.center[:steps])
            heading[b, :, a] = track.heading
            length[b, :, a], width[b, :, a] = track.length, track.width
            valid[b, :, a] = True if track.valid is None else torch.as_tensor(track.valid[:steps])
            first_heading[b, a], first_speed[b, a] = track.heading, track.first_speed
            is_agent[b, a] = track.is_agent
    polygons = torch.zeros(num_scenes, num_lights, num_vertices, 2, dtype=torch.float64)
    vertex_valid = torch.zeros(num_scenes, num_lights, num_vertices, dtype=torch.bool)
    active = torch.zeros(num_scenes, steps, num_lights, dtype=torch.bool)
    for b, lights in enumerate(red_lights):
        for r, light in enumerate(lights):
            polygons[b, r, : len(light.polygon)] = torch.as_tensor(light.polygon)
            vertex_valid[b, r, : len(light.polygon)] = True
            active[b, :, r] = torch.as_tensor(light.active[:steps])
    return Observation(
        corners=box_corners(center, heading, length, width),
        center=center,
        valid=valid,
        first_heading=first_heading,
        first_speed=first_speed,
        is_agent=is_agent,
        red_light_polygons=polygons,
        red_light_vertex_valid=vertex_valid,
        red_light_active=active,
    )


def straight_poses(x0: float, y: float, speed: float, steps: int = STEPS, heading: float = 0.0):
    """Ego rear-axle poses (T, 3) and speeds (T,) at constant speed along `heading`."""
    distance = speed * DT * np.arange(steps)
    pose = np.stack(
        [x0 + distance * np.cos(heading), y + distance * np.sin(heading), np.full(steps, heading)], axis=-1
    )
    return torch.as_tensor(pose), torch.full((steps,), float(speed), dtype=torch.float64)


def poses_from_x(x: np.ndarray, y: float, speed: np.ndarray | float):
    """Ego rear-axle poses (T, 3) heading +x with hand-given x per step, and speeds (T,)."""
    x = np.asarray(x, dtype=np.float64)
    pose = np.stack([x, np.full(len(x), y), np.zeros(len(x))], axis=-1)
    speed = np.broadcast_to(np.asarray(speed, dtype=np.float64), x.shape).copy()
    return torch.as_tensor(pose), torch.as_tensor(speed)


def batch(items: list[list[torch.Tensor]]) -> torch.Tensor:
    """Nested [scene][proposal] tensors -> (B, P, ...)."""
    return torch.stack([torch.stack(proposals) for proposals in items])


@dataclass
class RandomScene:
    """Ego proposals, hand-set area flags and tracks of one random interaction scene."""

    pose: torch.Tensor  # (P, T, 3)
    speed: torch.Tensor  # (P, T)
    multiple_lanes: torch.Tensor  # (P, T) bool
    non_drivable: torch.Tensor
    rear_axle_in_intersection: torch.Tensor
    tracks: list


def random_interactions(seed: int, proposals: int = 3, objects: int = 8, steps: int = STEPS,
                        obs_steps: int = STEPS, area_rate: float = 1.0) -> RandomScene:
    """Ego proposals crossing a crowd of boxes: contacts from every side, at every speed.

    The area flags are set at random, `area_rate` scaling how often."""
    rng = np.random.default_rng(seed)
    t = DT * np.arange(steps)
    poses, speeds = [], []
    for _ in range(proposals):
        start = rng.choice([0.0, 0.03, 0.3, rng.uniform(2.0, 12.0), rng.uniform(2.0, 12.0)])
        speed = np.clip(start + rng.uniform(-3.0, 2.0) * t, 0.0, None)
        heading = rng.uniform(-0.3, 0.3) + rng.uniform(-0.2, 0.2) * t
        x = np.concatenate([[0.0], np.cumsum(speed[:-1] * np.cos(heading[:-1]) * DT)])
        y = rng.uniform(-2.0, 2.0) + np.concatenate([[0.0], np.cumsum(speed[:-1] * np.sin(heading[:-1]) * DT)])
        poses.append(np.stack([x, y, heading], -1))
        speeds.append(speed)
    pose = np.stack(poses)
    tracks = []
    to = DT * np.arange(obs_steps)
    for _ in range(objects):
        p = rng.integers(proposals)
        if rng.uniform() < 0.4:  # a follower catching up with the ego from behind, then passing through it
            k = rng.integers(15)
            heading = pose[p, k, 2] + rng.uniform(-0.2, 0.2)
            speed = speeds[p][k] + rng.uniform(3.0, 8.0)
            back = speed * DT * k + rng.uniform(2.0, 5.0)
            lateral = rng.uniform(-1.0, 1.0)
        else:  # anything crossing the ego path somewhere
            k = rng.integers(steps)
            heading = rng.uniform(-np.pi, np.pi)
            speed = rng.choice([0.0, 0.02, rng.uniform(1.0, 12.0), rng.uniform(1.0, 12.0)])
            back = rng.uniform(0.0, 3.0) * speed
            lateral = rng.uniform(-4.0, 4.0)
        along = np.array([np.cos(heading), np.sin(heading)])
        across = np.array([-np.sin(heading), np.cos(heading)])
        start = pose[p, k, :2] + (rng.uniform(-1.0, 1.0) - back) * along + lateral * across
        center = start + (speed * to)[:, None] * along
        first = rng.integers(0, 20)
        valid = np.zeros(obs_steps, dtype=bool)
        valid[first : rng.integers(first + 5, obs_steps + 1)] = True
        is_agent = rng.uniform() > 0.2
        first_speed = speed if rng.uniform() > 0.15 else rng.choice([0.0, 0.05])
        tracks.append(Track(center=center, heading=heading, length=rng.uniform(0.5, 5.0),
                            width=rng.uniform(0.5, 2.5), is_agent=is_agent, first_speed=first_speed, valid=valid))

    def flag(probability):
        return torch.as_tensor(rng.uniform(size=(proposals, steps)) < probability * area_rate)

    return RandomScene(pose=torch.as_tensor(pose), speed=torch.as_tensor(np.stack(speeds)),
                       multiple_lanes=flag(0.3), non_drivable=flag(0.2), rear_axle_in_intersection=flag(0.2),
                       tracks=tracks)
