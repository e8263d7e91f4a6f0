"""Scenario families: pure functions from parameters to a scene (style rule 23), and their one registry.

A family module defines a frozen params dataclass (ranges checked in `__post_init__`, `sample(rng)`
classmethod) and a builder. NAVSIM families: `build(params, rng) -> Scene`, registered with
`@register(name)`, built by `build_scene`. Bench2Drive types (`scenarios.bench2drive`): `build(params, gen,
rng) -> RouteScenario` on a built-in town map, registered with `@register_route(name, abilities, town_kinds,
accepts)`, built by `build_route`.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from envs.sim.scene import Scene


BENCHMARKS = ("navsim", "bench2drive")
ABILITY_LETTERS = {"O": "Overtaking", "M": "Merging", "E": "Emergency_Brake", "G": "Give_Way", "T": "Traffic_Signs"}
"""The ability abbreviations of the Bench2Drive scenario table (spec bench2drive.md §2)."""


@dataclass(frozen=True)
class ScenarioFamily:
    """One registered family: its name, params type and builder."""

    name: str
    params_type: type
    build: Callable[..., Any]
    """navsim: build(params, rng) -> Scene; bench2drive: build(params, gen: GeneratedMap, rng) ->
    RouteScenario."""
    benchmark: str = "navsim"
    """Which benchmark the family belongs to, one of BENCHMARKS."""
    abilities: tuple[str, ...] = ()
    """Bench2Drive abilities the type counts for (ABILITY_NAMES order); () for NAVSIM families."""
    town_kinds: tuple[str, ...] = ()
    """Bench2Drive: map kinds its towns are drawn from (`scenarios.bench2drive.town.TOWN_CONFIGS`)."""
    accepts: Callable[[Any, Any], bool] | None = None
    """Bench2Drive: accepts(gen, params) -> does the map suit the scenario (lanes, junction kind...)."""

    def sample_params(self, rng: np.random.Generator) -> Any:
        return self.params_type.sample(rng)


SCENARIOS: dict[str, ScenarioFamily] = {}
"""Registered families by name."""


def _params_type(name: str, build: Callable) -> type:
    hints = typing.get_type_hints(build)
    first = next(iter(inspect.signature(build).parameters), None)
    params_type = hints.get(first) if first else None
    if params_type is None or not hasattr(params_type, "sample"):
        raise ValueError(f"{name}: build's first argument must be annotated with a params class "
                         "that has a sample(rng) classmethod")
    return params_type


def _add(family: ScenarioFamily) -> None:
    known = SCENARIOS.get(family.name)
    build = family.build
    if known is not None and (known.build.__module__, known.build.__qualname__) != (build.__module__, build.__qualname__):
        raise ValueError(f"name={family.name!r}: already registered by {known.build.__module__}")
    SCENARIOS[family.name] = family


def register(name: str) -> Callable:
    """Decorator for a family's `build(params: ParamsType, rng) -> Scene`; the params type is read from
    the annotation of its first argument. Registering the same function again is harmless."""

    def decorate(build: Callable) -> Callable:
        _add(ScenarioFamily(name, _params_type(name, build), build))
        return build

    return decorate


def ability_names(letters: str) -> tuple[str, ...]:
    """Abilities from the table's letters, in ABILITY_LETTERS order: "E+T" -> (Emergency_Brake,
    Traffic_Signs). (tests/scenarios/bench2drive check them against the ability tool's lists.)"""
    parts = letters.split("+")
    if not letters or any(p not in ABILITY_LETTERS for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"abilities={letters!r}: distinct '+'-joined letters from {', '.join(ABILITY_LETTERS)}")
    return tuple(name for letter, name in ABILITY_LETTERS.items() if letter in parts)


def register_route(name: str, abilities: str, town_kinds: tuple[str, ...],
                   accepts: Callable[[Any, Any], bool] = lambda gen, params: True) -> Callable:
    """Decorator for a Bench2Drive type's `build(params: ParamsType, gen, rng) -> RouteScenario`;
    `abilities` as in the spec table ("O", "E+T"...); towns are drawn from `town_kinds` until
    `accepts(gen, params)`."""

    def decorate(build: Callable) -> Callable:
        _add(ScenarioFamily(name, _params_type(name, build), build, "bench2drive", ability_names(abilities),
                            tuple(town_kinds), accepts))
        return build

    return decorate


def _family(name: str, benchmark: str | None = None) -> ScenarioFamily:
    if name not in SCENARIOS:
        raise ValueError(f"name={name!r}: unknown scenario (valid: {', '.join(sorted(SCENARIOS))})")
    family = SCENARIOS[name]
    if benchmark is not None and family.benchmark != benchmark:
        valid = sorted(n for n, f in SCENARIOS.items() if f.benchmark == benchmark)
        raise ValueError(f"name={name!r}: a {family.benchmark} scenario, not {benchmark} (valid: {', '.join(valid)})")
    return family


def families(benchmark: str) -> tuple[str, ...]:
    """Names of the registered families of one benchmark ("navsim" or "bench2drive"), sorted."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark={benchmark!r}: one of {', '.join(BENCHMARKS)}")
    return tuple(sorted(n for n, f in SCENARIOS.items() if f.benchmark == benchmark))


def scene_rngs(name: str, seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent (params, build) generators for a family and seed; different families never share
    streams for the same seed."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r}: must be an int >= 0")
    family_key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    params_seq, build_seq = np.random.SeedSequence([int(seed), family_key]).spawn(2)
    return np.random.default_rng(params_seq), np.random.default_rng(build_seq)


def sample_params(name: str, rng: np.random.Generator) -> Any:
    """Random params of a family (within its ranges)."""
    return _family(name).sample_params(rng)


def build_scene(name: str, params: Any | None, seed: int) -> Scene:
    """Scene of family `name`; params None -> drawn from the seed. Deterministic in (name, params, seed):
    the token is 16 hex chars of a hash of the three."""
    family = _family(name, "navsim")
    params_rng, build_rng = scene_rngs(name, seed)
    if params is None:
        params = family.sample_params(params_rng)
    elif not isinstance(params, family.params_type):
        raise ValueError(f"params={params!r}: expected {family.params_type.__name__} for scenario {name!r}")
    scene = family.build(params, build_rng)
    token = hashlib.sha256(f"{name}|{int(seed)}|{params!r}".encode()).hexdigest()[:16]
    return replace(scene, token=token)


def route_rngs(name: str, seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent (params, town, build) generators of a Bench2Drive type and seed."""
    params_rng, _ = scene_rngs(name, seed)   # validates the seed; the params stream matches build_scene's
    key = int.from_bytes(hashlib.sha256(f"route|{name}".encode()).digest()[:4], "little")
    town_seq, build_seq = np.random.SeedSequence([int(seed), key]).spawn(2)
    return params_rng, np.random.default_rng(town_seq), np.random.default_rng(build_seq)


def _route_town(name: str, seed: int, params: Any | None):
    """(family, params, town, map, town rng, build rng) of a Bench2Drive type and seed."""
    family = _family(name, "bench2drive")
    params_rng, town_rng, build_rng = route_rngs(name, seed)
    if params is None:
        params = family.sample_params(params_rng)
    elif not isinstance(params, family.params_type):
        raise ValueError(f"params={params!r}: expected {family.params_type.__name__} for scenario {name!r}")
    from scenarios.bench2drive.town import pick_town   # the catalog imports this module

    town, gen = pick_town(family.town_kinds, lambda g: family.accepts(g, params), town_rng)
    return family, params, town, gen, town_rng, build_rng


def route_town(name: str, seed: int, params: Any | None = None) -> str:
    """The built-in town `build_route(name, seed, params=params)` drives in, without building the route."""
    return _route_town(name, seed, params)[2]


def build_route(name: str, seed: int, route_id: int = 0, params: Any | None = None):
    """`RouteScenario` of Bench2Drive type `name` in a built-in town; params None -> drawn from the seed.
    Deterministic in (name, seed, params); `route_id` only names it."""
    if not isinstance(route_id, (int, np.integer)) or isinstance(route_id, bool) or route_id < 0:
        raise ValueError(f"route_id={route_id!r}: must be an int >= 0")
    family, params, town, gen, town_rng, build_rng = _route_town(name, seed, params)
    from scenarios.bench2drive.town import WEATHER_IDS

    route = family.build(params, gen, build_rng)
    weather = WEATHER_IDS[int(town_rng.integers(len(WEATHER_IDS)))]
    return replace(route, route_id=int(route_id), scenario_type=name, scenario_name=f"{name}_1", town=town,
                   seed=int(seed), weather_id=weather)


# importing the families fills SCENARIOS
from scenarios import following, urban_drive  # noqa: E402,F401
from scenarios import blocked_lane, construction_zone, cut_in, hard_brake, intersection  # noqa: E402,F401
from scenarios import jaywalker, lane_change, merge, occluded_pedestrian  # noqa: E402,F401
from scenarios import red_light_runner, unprotected_left  # noqa: E402,F401
from scenarios import bench2drive  # noqa: E402,F401
