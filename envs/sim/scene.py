"""One NAVSIM-style scene: map, route, ego history, other agents' future, traffic lights, plans.

This is the in-memory form of the `scene/1` file format (shared/specs/scene-format.md); numpy,
per scene. Scoring batches many scenes into tensors (`envs.metrics.context`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from envs.sim.map import RoadMap
from envs.sim.vehicle import PACIFICA, VehicleParams

STEP_S = 0.1
"""Scoring/simulation step [s] (NAVSIM 10 Hz)."""
HORIZON_S = 4.0
"""Scored future [s]."""
NUM_STEPS = 41
"""States t = 0.0 .. 4.0 s at 10 Hz."""
HISTORY_STEP_S = 0.5
"""Ego history sampling [s] (2 Hz, 4 frames: -1.5 .. 0 s)."""


class AgentType(IntEnum):
    """nuPlan tracked-object types as they appear in scene files."""

    VEHICLE = 0
    PEDESTRIAN = 1
    BICYCLE = 2
    TRAFFIC_CONE = 3
    BARRIER = 4
    CZONE_SIGN = 5
    GENERIC_OBJECT = 6

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def is_agent(self) -> bool:
        """Moving road users (nuPlan AGENT_TYPES); the rest are static objects (NC 0.5 on hit)."""
        return self <= AgentType.BICYCLE

    @classmethod
    def from_label(cls, label: str) -> "AgentType":
        try:
            return cls[label.upper()]
        except KeyError:
            valid = ", ".join(t.label for t in cls)
            raise ValueError(f"type={label!r}: unknown agent type (valid: {valid})") from None


class LightStatus(IntEnum):
    """Traffic-light status (nuPlan TrafficLightStatusType values)."""

    GREEN = 0
    YELLOW = 1
    RED = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Command(IntEnum):
    """NAVSIM driving command, one-hot order [left, straight, right, unknown]."""

    LEFT = 0
    STRAIGHT = 1
    RIGHT = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class EgoHistory:
    """Logged ego rear-axle states, oldest first; the last one is the current frame (t = 0)."""

    t: np.ndarray = field(metadata={"dims": "T"})
    """[s], increasing, last = 0."""
    pose: np.ndarray = field(metadata={"dims": "T 3"})
    """Global x, y [m], heading [rad]."""
    velocity: np.ndarray = field(metadata={"dims": "T 2"})
    """vx, vy in the ego frame of that time [m/s]."""
    acceleration: np.ndarray = field(metadata={"dims": "T 2"})
    """ax, ay in the ego frame of that time [m/s^2]."""

    @property
    def current_pose(self) -> np.ndarray:
        return self.pose[-1]


@dataclass(frozen=True)
class AgentTracks:
    """Every non-ego object over the 41 scored steps (A objects, T = 41), box-centre poses."""

    ids: tuple[str, ...]
    types: np.ndarray = field(metadata={"dims": "A"})
    """AgentType values (int)."""
    size: np.ndarray = field(metadata={"dims": "A 2"})
    """Box length, width [m]."""
    pose: np.ndarray = field(metadata={"dims": "A T 3"})
    """Global box centre x, y [m], heading [rad]; zeros where not valid."""
    velocity: np.ndarray = field(metadata={"dims": "A T 2"})
    """Global vx, vy [m/s]; zeros where not valid."""
    valid: np.ndarray = field(metadata={"dims": "A T"})
    """True at the steps where the object exists."""

    @property
    def num_agents(self) -> int:
        return len(self.ids)

    @property
    def first_step(self) -> np.ndarray:
        """(A,) index of each object's first listed state (what NAVSIM judges it by)."""
        return np.argmax(self.valid, axis=1)

    @classmethod
    def empty(cls, num_steps: int = NUM_STEPS) -> "AgentTracks":
        return cls(
            ids=(),
            types=np.zeros(0, np.int64),
            size=np.zeros((0, 2)),
            pose=np.zeros((0, num_steps, 3)),
            velocity=np.zeros((0, num_steps, 2)),
            valid=np.zeros((0, num_steps), bool),
        )


@dataclass(frozen=True)
class TrafficLights:
    """Status of the light governing each listed lane connector, per scored step."""

    lane_connector_ids: tuple[str, ...]
    status: np.ndarray = field(metadata={"dims": "L T"})
    """LightStatus values; UNKNOWN where the file gives none."""

    @classmethod
    def empty(cls, num_steps: int = NUM_STEPS) -> "TrafficLights":
        return cls(lane_connector_ids=(), status=np.zeros((0, num_steps), np.int64))


@dataclass(frozen=True)
class Plan:
    """Planned ego rear-axle poses in the current ego frame (x forward, y left), first at t = interval."""

    interval: float
    """[s], a positive multiple of 0.1."""
    poses: np.ndarray = field(metadata={"dims": "H 3"})


@dataclass(frozen=True)
class Scene:
    """Everything needed to re-simulate and score a plan the NAVSIM way (scene/1)."""

    token: str
    map: RoadMap
    route_roadblock_ids: tuple[str, ...]
    """Ordered, the ego's roadblock first (before NAVSIM's route correction)."""
    history: EgoHistory
    agents: AgentTracks
    traffic_lights: TrafficLights
    command: Command = Command.UNKNOWN
    vehicle: VehicleParams = PACIFICA
    human_trajectory: Plan | None = None
    reference_trajectory: Plan | None = None
    """Privileged plan that normalises ego progress; None -> PDM-Closed is run."""
    scenario_type: str = "unknown"
    """Optional label (scene/1 `meta.scenario_type`), e.g. `cut_in`."""

    @property
    def ego_pose(self) -> np.ndarray:
        """(3,) current global rear-axle pose."""
        return self.history.pose[-1]
