"""What the closed-loop world shows the criteria, the observation builder and the CARLA backend each
tick: the ego and every actor as batched boxes, light states and the clock (B routes, A actor slots,
L lights). Produced by `envs.bench2drive.world` (built-in) or by the CARLA backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass(frozen=True)
class TickView:
    """The world after one tick. Poses are the box centre; float64 tensors on one device."""

    ego_pose: Tensor = field(metadata={"dims": "B 3"})
    """x, y [m], heading [rad] of the ego box centre."""
    ego_speed: Tensor = field(metadata={"dims": "B"})
    """[m/s] signed longitudinal speed (negative when reversing)."""
    ego_accel: Tensor = field(metadata={"dims": "B 2"})
    """[m/s^2] world-frame acceleration (metric_info / comfortness)."""
    ego_yaw_rate: Tensor = field(metadata={"dims": "B"})
    """[rad/s]"""
    ego_size: Tensor = field(metadata={"dims": "B 2"})
    """length, width [m]."""
    actor_pose: Tensor = field(metadata={"dims": "B A 3"})
    actor_speed: Tensor = field(metadata={"dims": "B A"})
    actor_size: Tensor = field(metadata={"dims": "B A 2"})
    """length, width [m] (a door that opened is already in the width)."""
    actor_kind: Tensor = field(metadata={"dims": "B A"})
    """ActorKind values (int64)."""
    actor_role: Tensor = field(metadata={"dims": "B A"})
    """Role values (int64)."""
    actor_present: Tensor = field(metadata={"dims": "B A"})
    """bool: the slot holds an actor that exists now (spawned, not despawned); only these collide."""
    light_state: Tensor = field(metadata={"dims": "B L"})
    """LightStatus values (int64); padding slots UNKNOWN."""
    tick: Tensor = field(metadata={"dims": "B"})
    """Ticks since reset (int64), this tick included (1 after the first step)."""
    dt: float
    """[s] per tick (0.05 at 20 Hz)."""
    scenario_active: Tensor = field(metadata={"dims": "B"})
    """bool: the scenario has triggered and not ended (ScenarioTimeout runs: AgentBlocked paused)."""
