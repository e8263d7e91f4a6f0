"""Scenario families: pure functions from parameters to a `Scene` (style rule 23), and their registry.

A family module defines a frozen params dataclass (ranges checked in `__post_init__`, `sample(rng)`
classmethod) and `build(params, rng) -> Scene`, registered with `@register(name)`.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from envs.sim.scene import Scene


@dataclass(frozen=True)
class ScenarioFamily:
    """One registered family: its name, params type and builder."""

    name: str
    params_type: type
    build: Callable[[Any, np.random.Generator], Scene]

    def sample_params(self, rng: np.random.Generator) -> Any:
        return self.params_type.sample(rng)


SCENARIOS: dict[str, ScenarioFamily] = {}
"""Registered families by name."""


def register(name: str) -> Callable:
    """Decorator for a family's `build(params: ParamsType, rng) -> Scene`; the params type is read from
    the annotation of its first argument. Registering the same function again is harmless."""

    def decorate(build: Callable) -> Callable:
        hints = typing.get_type_hints(build)
        first = next(iter(inspect.signature(build).parameters), None)
        params_type = hints.get(first) if first else None
        if params_type is None or not hasattr(params_type, "sample"):
            raise ValueError(f"{name}: build's first argument must be annotated with a params class "
                             "that has a sample(rng) classmethod")
        known = SCENARIOS.get(name)
        if known is not None and (known.build.__module__, known.build.__qualname__) != (build.__module__, build.__qualname__):
            raise ValueError(f"name={name!r}: already registered by {known.build.__module__}")
        SCENARIOS[name] = ScenarioFamily(name, params_type, build)
        return build

    return decorate


def _family(name: str) -> ScenarioFamily:
    if name not in SCENARIOS:
        raise ValueError(f"name={name!r}: unknown scenario (valid: {', '.join(sorted(SCENARIOS))})")
    return SCENARIOS[name]


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
    family = _family(name)
    params_rng, build_rng = scene_rngs(name, seed)
    if params is None:
        params = family.sample_params(params_rng)
    elif not isinstance(params, family.params_type):
        raise ValueError(f"params={params!r}: expected {family.params_type.__name__} for scenario {name!r}")
    scene = family.build(params, build_rng)
    token = hashlib.sha256(f"{name}|{int(seed)}|{params!r}".encode()).hexdigest()[:16]
    return replace(scene, token=token)


# importing the families fills SCENARIOS
from scenarios import following, urban_drive  # noqa: E402,F401
from scenarios import blocked_lane, construction_zone, cut_in, hard_brake, intersection  # noqa: E402,F401
from scenarios import jaywalker, lane_change, merge, occluded_pedestrian  # noqa: E402,F401
from scenarios import red_light_runner, unprotected_left  # noqa: E402,F401
