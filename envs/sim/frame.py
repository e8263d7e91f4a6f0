"""What the renderers draw at one instant: map, ego pose, agent boxes, light states, route (`WorldFrame`).

Numpy, one scene per frame; `frame_from_scene` cuts a frame out of a `Scene` at one scored step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.sim.map import RoadMap
from envs.sim.scene import AgentType, LightStatus, Scene
from envs.sim.vehicle import PACIFICA, VehicleParams


@dataclass(frozen=True, eq=False)
class AgentBoxes:
    """Oriented boxes of the non-ego objects at one instant (A of them), global frame."""

    pose: np.ndarray = field(metadata={"dims": "A 3"})
    """Box centre x, y [m], heading [rad]."""
    size: np.ndarray = field(metadata={"dims": "A 2"})
    """Length, width [m], > 0."""
    types: np.ndarray = field(metadata={"dims": "A"})
    """AgentType values (int64)."""
    keys: np.ndarray | None = field(default=None, metadata={"dims": "A"})
    """Stable per-object integers (e.g. the track index) that pick a vehicle's paint colour, so colours
    do not change between frames; None -> 0..A-1."""

    def __post_init__(self):
        pose = np.asarray(self.pose, dtype=np.float64)
        pose = pose.reshape(0, 3) if pose.size == 0 else pose
        if pose.ndim != 2 or pose.shape[1] != 3:
            raise ValueError(f"pose.shape={pose.shape!r}: expected (A, 3)")
        num = pose.shape[0]
        size = np.asarray(self.size, dtype=np.float64)
        size = size.reshape(0, 2) if size.size == 0 else size
        if size.shape != (num, 2):
            raise ValueError(f"size.shape={size.shape!r}: expected ({num}, 2)")
        types = np.asarray(self.types).astype(np.int64).reshape(-1)
        if types.shape != (num,):
            raise ValueError(f"types.shape={np.shape(self.types)!r}: expected ({num},)")
        keys = np.arange(num) if self.keys is None else np.asarray(self.keys).astype(np.int64).reshape(-1)
        if keys.shape != (num,):
            raise ValueError(f"keys.shape={np.shape(self.keys)!r}: expected ({num},)")
        if not np.isfinite(pose).all():
            raise ValueError(f"pose={pose[~np.isfinite(pose)][0]!r}: must be finite")
        if not (np.isfinite(size).all() and (size > 0).all()):
            raise ValueError(f"size={size[~(np.isfinite(size) & (size > 0))][0]!r}: must be finite and > 0")
        if num and not ((types >= 0) & (types <= max(AgentType))).all():
            raise ValueError(f"types={types.tolist()!r}: must be AgentType values 0..{int(max(AgentType))}")
        for name, value in (("pose", pose), ("size", size), ("types", types), ("keys", keys)):
            object.__setattr__(self, name, value)

    @property
    def num_agents(self) -> int:
        return self.pose.shape[0]

    @classmethod
    def empty(cls) -> "AgentBoxes":
        return cls(np.zeros((0, 3)), np.zeros((0, 2)), np.zeros(0, np.int64))


@dataclass(frozen=True, eq=False)
class WorldFrame:
    """Everything drawn at one instant of one scene."""

    road_map: RoadMap
    ego_pose: np.ndarray = field(metadata={"dims": "3"})
    """Global rear-axle x, y [m], heading [rad]."""
    agents: AgentBoxes = field(default_factory=AgentBoxes.empty)
    light_connector_ids: tuple[str, ...] = ()
    """Signalised lane connectors (others have no signal head)."""
    light_status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), metadata={"dims": "L"})
    """LightStatus of each listed connector."""
    route_roadblock_ids: tuple[str, ...] = ()
    """Roadblocks / roadblock connectors of the ego route (BEV route channel); may be empty."""
    vehicle: VehicleParams = PACIFICA

    def __post_init__(self):
        if not isinstance(self.road_map, RoadMap):
            raise ValueError(f"road_map={type(self.road_map).__name__!r}: must be a RoadMap")
        pose = np.asarray(self.ego_pose, dtype=np.float64)
        if pose.shape != (3,) or not np.isfinite(pose).all():
            raise ValueError(f"ego_pose={np.asarray(self.ego_pose).tolist()!r}: expected 3 finite numbers")
        if not isinstance(self.agents, AgentBoxes):
            raise ValueError(f"agents={type(self.agents).__name__!r}: must be AgentBoxes")
        ids = tuple(self.light_connector_ids)
        status = np.asarray(self.light_status).astype(np.int64).reshape(-1)
        if status.shape != (len(ids),):
            raise ValueError(f"light_status.shape={np.shape(self.light_status)!r}: expected ({len(ids)},)")
        if len(ids) and not ((status >= 0) & (status <= max(LightStatus))).all():
            raise ValueError(f"light_status={status.tolist()!r}: must be LightStatus values 0..{int(max(LightStatus))}")
        object.__setattr__(self, "ego_pose", pose)
        object.__setattr__(self, "light_connector_ids", ids)
        object.__setattr__(self, "light_status", status)
        object.__setattr__(self, "route_roadblock_ids", tuple(self.route_roadblock_ids))


def frame_from_scene(scene: Scene, step: int = 0, agents_override: AgentBoxes | None = None,
                     ego_pose: np.ndarray | None = None) -> WorldFrame:
    """The frame of `scene` at scored step `step` (0 = now, 10 Hz; lights and logged agents of that step).

    The ego stays at the scene's current pose (a scene logs no ego future) unless `ego_pose` (3,), the
    global rear-axle pose of a simulated ego, is given. agents_override: boxes to draw instead of the
    logged agents (e.g. reactive traffic in closed loop).
    """
    num_steps = scene.agents.valid.shape[1]
    if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or not 0 <= step < num_steps:
        raise ValueError(f"step={step!r}: must be an int in [0, {num_steps - 1}]")
    if agents_override is None:
        tracks = scene.agents
        index = np.flatnonzero(tracks.valid[:, step])
        agents = AgentBoxes(tracks.pose[index, step], tracks.size[index], tracks.types[index], keys=index)
    else:
        agents = agents_override
    lights = scene.traffic_lights
    status = lights.status[:, step] if lights.status.ndim == 2 else np.zeros(0, np.int64)
    return WorldFrame(
        road_map=scene.map,
        ego_pose=scene.ego_pose if ego_pose is None else ego_pose,
        agents=agents,
        light_connector_ids=lights.lane_connector_ids,
        light_status=status,
        route_roadblock_ids=scene.route_roadblock_ids,
        vehicle=scene.vehicle,
    )
