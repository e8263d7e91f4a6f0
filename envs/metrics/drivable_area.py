"""Drivable Area Compliance, DAC in {0, 1} (NAVSIM `_calculate_drivable_area_compliance`)."""

from __future__ import annotations

from envs.metrics.ego_areas import EgoAreas
from envs.metrics.result import MetricResult, binary_result


def drivable_area_compliance(areas: EgoAreas) -> MetricResult:
    """DAC (B, P): 0 if any ego corner leaves the drivable polygons (roadblocks, intersections, car
    parks; NOT lane or roadblock connectors) at any step, else 1."""
    return binary_result(areas.non_drivable)
