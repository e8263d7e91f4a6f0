"""Ego vehicle geometry and actuator limits (nuPlan Chrysler Pacifica, the NAVSIM ego)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VehicleParams:
    """Rigid-body and actuator parameters of the ego.

    Poses of the ego are always its rear axle; the footprint box is centred `rear_axle_to_center`
    metres ahead of it. Defaults are nuPlan's `get_pacifica_parameters()` and the NAVSIM batch
    kinematic bicycle model (`batch_kinematic_bicycle.py`).
    """

    length: float = 5.176
    """Bumper to bumper [m] (front_length 4.049 + rear_length 1.127)."""
    width: float = 2.297
    """[m]"""
    wheel_base: float = 3.089
    """Rear axle to front axle [m]."""
    rear_axle_to_center: float = 1.461
    """Rear axle to the box centre [m] (half length minus rear overhang)."""
    max_steering_angle: float = math.pi / 3
    """Tyre steering limit [rad]."""
    accel_time_constant: float = 0.2
    """First-order lag of the longitudinal actuator [s]."""
    steering_time_constant: float = 0.05
    """First-order lag of the steering actuator [s]."""

    def __post_init__(self):
        for name in ("length", "width", "wheel_base", "accel_time_constant", "steering_time_constant"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"vehicle.{name}={value!r}: must be a positive finite number")
        if not (math.isfinite(self.rear_axle_to_center) and abs(self.rear_axle_to_center) < self.length):
            raise ValueError(
                f"vehicle.rear_axle_to_center={self.rear_axle_to_center!r}: must be finite and shorter "
                f"than the vehicle length {self.length}"
            )

    @property
    def rear_length(self) -> float:
        """Rear axle to rear bumper [m]."""
        return self.length / 2 - self.rear_axle_to_center

    @property
    def front_length(self) -> float:
        """Rear axle to front bumper [m]."""
        return self.length / 2 + self.rear_axle_to_center


PACIFICA = VehicleParams()
