"""The built-in Bench2Drive route set (44 types x 5 seeds = 220 routes, like bench2drive220's shape) and its
export as a leaderboard-2.0 route XML (spec §1.1) for the result tools (`tools.bench2drive_merge --routes`).

Route ids are `type_index * 5 + seed` (type_index in `B2D_SCENARIO_TYPES` order). The XML is written in the
built-in maps' own frame (x, y in metres, right-handed; CARLA's y axis points the other way): it describes
built-in routes, not CARLA towns.
"""

from __future__ import annotations

import math
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import scenarios
from envs.bench2drive.route_scenario import RouteScenario

SEEDS_PER_TYPE = 5
"""bench2drive220 has exactly 5 routes per type (spec §1.2)."""
KEYPOINT_STEP = 2
"""Every KEYPOINT_STEP-th dense point is written as a keypoint (B2D files: ~2 m apart, spec §1.1)."""


def _types() -> tuple[str, ...]:
    from scenarios.bench2drive import B2D_SCENARIO_TYPES

    return B2D_SCENARIO_TYPES


def build_route(scenario_type: str, seed: int, route_id: int = 0, params: Any | None = None) -> RouteScenario:
    """The `RouteScenario` of a Bench2Drive type (one of `B2D_SCENARIO_TYPES`) and seed; params None ->
    drawn from the seed; params given -> checked against the type's params class."""
    if scenario_type not in _types():
        raise ValueError(f"scenario_type={scenario_type!r}: not a Bench2Drive type (valid: {', '.join(_types())})")
    return scenarios.build_route(scenario_type, seed, route_id, params)


@dataclass(frozen=True)
class BuiltinRoute:
    """One route of the built-in set, as the result tools read a route XML entry (`RouteInfo` protocol)."""

    index: int
    """Route id as an int: type_index * SEEDS_PER_TYPE + seed."""
    scenario_type: str
    seed: int

    @property
    def route_id(self) -> str:
        return str(self.index)

    @property
    def town(self) -> str:
        return _town(self.scenario_type, self.seed)

    @property
    def has_scenario(self) -> bool:
        return True


@lru_cache(maxsize=None)
def _town(scenario_type: str, seed: int) -> str:
    return scenarios.route_town(scenario_type, seed)


def builtin_route_set() -> tuple[BuiltinRoute, ...]:
    """The 220 built-in routes in id order (towns resolve lazily, once per process)."""
    return tuple(BuiltinRoute(k * SEEDS_PER_TYPE + seed, name, seed)
                 for k, name in enumerate(_types()) for seed in range(SEEDS_PER_TYPE))


def build_builtin_route(route_id: int) -> RouteScenario:
    """The `RouteScenario` of built-in route `route_id` (0 .. 219)."""
    count = len(_types()) * SEEDS_PER_TYPE
    if not isinstance(route_id, (int, np.integer)) or isinstance(route_id, bool) or not 0 <= route_id < count:
        raise ValueError(f"route_id={route_id!r}: must be an int in [0, {count})")
    k, seed = divmod(int(route_id), SEEDS_PER_TYPE)
    return build_route(_types()[k], seed, int(route_id))


def _number(value: float) -> str:
    return f"{float(value):.3f}"


def _params_elements(parent: ET.Element, params: Any) -> None:
    """One child per params field: intervals (`<name>_from`, `<name>_to`) as <name from to/>, the rest as
    <name value/> (the leaderboard's `other_parameters` convention, spec §1.1)."""
    names = [f.name for f in fields(params)]
    for name in names:
        value = getattr(params, name)
        if name.endswith("_to") and name[:-3] + "_from" in names:
            continue
        if name.endswith("_from") and name[:-5] + "_to" in names:
            base = name[:-5]
            ET.SubElement(parent, base, {"from": _number(value), "to": _number(getattr(params, base + "_to"))})
        else:
            ET.SubElement(parent, name, {"value": value if isinstance(value, str) else _number(value)})


def route_element(route: RouteScenario) -> ET.Element:
    """The <route> element of one RouteScenario: keypoints, its one scenario (trigger point, params)."""
    element = ET.Element("route", {"id": str(route.route_id), "town": route.town})
    waypoints = ET.SubElement(element, "waypoints")
    keys = list(range(0, len(route.route), KEYPOINT_STEP))
    keys += [len(route.route) - 1] if keys[-1] != len(route.route) - 1 else []
    for x, y, _ in route.route[keys]:
        ET.SubElement(waypoints, "position", {"x": _number(x), "y": _number(y), "z": "0.000"})
    scenario = ET.SubElement(ET.SubElement(element, "scenarios"), "scenario",
                             {"name": route.scenario_name, "type": route.scenario_type})
    x, y, heading = route.route[route.trigger_index]
    ET.SubElement(scenario, "trigger_point",
                  {"x": _number(x), "y": _number(y), "z": "0.000", "yaw": _number(math.degrees(heading))})
    params_rng = scenarios.route_rngs(route.scenario_type, route.seed)[0]
    _params_elements(scenario, scenarios.sample_params(route.scenario_type, params_rng))
    return element


def write_route_xml(routes: Sequence[RouteScenario], path: str | Path) -> None:
    """Write routes as a leaderboard-2.0 route file (atomically: temp file, then os.replace). Params are
    those drawn from each route's seed (the built-in set never overrides them)."""
    root = ET.Element("routes")
    for route in routes:
        if not isinstance(route, RouteScenario):
            raise ValueError(f"routes: {route!r} is not a RouteScenario")
        root.append(route_element(route))
    ET.indent(root)
    path = Path(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
