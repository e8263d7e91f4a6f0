"""The route set of `roadloop/Bench2Drive-v0`: each route's setup (commands, drawing, observation table, criteria
context, world at tick 0) built once per process, and the stacking of such single-route tables into a batch
(`put_rows`), which the env's autoreset uses instead of rebuilding a batch's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from torch import Tensor

from envs.bench2drive import criteria as crit_lib
from envs.bench2drive import world as world_lib
from envs.bench2drive.observation import (ObservationConfig, RouteDrawing, RouteTable, route_commands, route_drawing,
                                          route_table)
from envs.bench2drive.route_scenario import RouteScenario

if TYPE_CHECKING:
    from envs.bench2drive.env import Bench2DriveConfig

@dataclass(frozen=True, eq=False)
class PreparedRoute:
    """One route with its per-route setup, cached by the env (built once per route id)."""

    scenario: RouteScenario
    commands: np.ndarray
    drawing: RouteDrawing
    table: RouteTable
    context: Any = None
    """Single-route criteria context (builtin), batched into the env's context by `_stack_rows`."""
    world: Any = None
    """Single-route (WorldStatic, WorldState) at tick 0 (builtin)."""


def prepare_route(scenario: RouteScenario, obs: ObservationConfig, device: str, dt: float,
                  with_world: bool) -> PreparedRoute:
    """Per-route setup: commands, drawing, observation table and (builtin) the criteria context and world."""
    commands = route_commands(scenario.route, scenario.road_map)
    table = route_table([scenario], obs, [commands], device)
    context = world = None
    if with_world:
        context = crit_lib.criteria_context([scenario], device)
        world = world_lib.world_init([scenario], device, dt)
    return PreparedRoute(scenario, commands, route_drawing(scenario), table, context, world)


@lru_cache(maxsize=512)
def builtin_route(route_id: int, obs: ObservationConfig, device: str, dt: float) -> PreparedRoute:
    """Built-in route `route_id` prepared once per process (every env instance shares it; all of it is immutable)."""
    from scenarios.bench2drive import build_builtin_route

    return prepare_route(build_builtin_route(route_id), obs, device, dt, with_world=True)


def _pad(tensor: Tensor, dims: list[str], sizes: dict[str, int], pad) -> Tensor:
    """Pad the lettered axes of `tensor` to `sizes` with `pad`; without a pad value (None) route axes (N) repeat
    their last entry, as `criteria_context` pads its routes, and other axes take 0 / False."""
    for axis, letter in enumerate(dims):
        extra = sizes.get(letter, tensor.shape[axis]) - tensor.shape[axis]
        if letter == "B" or letter.isdigit() or extra <= 0:
            continue
        if pad is None and letter == "N":
            tail = tensor.narrow(axis, tensor.shape[axis] - 1, 1)
            filler = tail.expand(*[extra if a == axis else -1 for a in range(tensor.dim())])
        else:
            shape = [extra if a == axis else n for a, n in enumerate(tensor.shape)]
            filler = torch.full(shape, (False if tensor.dtype == torch.bool else 0) if pad is None else pad,
                                dtype=tensor.dtype, device=tensor.device)
        tensor = torch.cat([tensor, filler], axis)
    return tensor


@lru_cache(maxsize=None)
def _layout(cls) -> tuple[tuple[str, list[str] | None, Any], ...]:
    """(name, dims letters or None, pad or None) of each init field of a table dataclass."""
    return tuple((f.name, f.metadata["dims"].split() if "dims" in f.metadata else None, f.metadata.get("pad"))
                 for f in fields(cls) if f.init)


def _sizes(objs: Sequence[Any], sizes: dict[str, int]) -> dict[str, int]:
    for obj in objs:
        for name, dims, _ in _layout(type(obj)):
            value = getattr(obj, name)
            if hasattr(value, "__dataclass_fields__"):
                _sizes([value], sizes)
            elif isinstance(value, Tensor):
                for letter, size in zip(dims, value.shape):
                    sizes[letter] = max(sizes.get(letter, 0), size)
    return sizes


def put_rows(batch: Any, rows: Sequence[Any], index: Sequence[int] | None, sizes: dict[str, int] | None = None,
             inplace: bool = False):
    """Stack single-route dataclasses `rows` (each B = 1) into `batch` at row `index` (or, with batch None, into
    a new batch in order). Tensors are padded to the larger size; ints take the max, bools any, tuples of
    per-route entries are spliced. inplace: write into `batch`'s tensors when the rows fit their padded sizes
    (`batch` is then changed; the cost is that of the rows, not of the batch)."""
    if sizes is None:
        sizes = _sizes(list(rows) + ([batch] if batch is not None else []), {})
        inplace = inplace and batch is not None and _sizes([batch], {}) == sizes
    template = rows[0]
    values = {}
    for name, dims, pad in _layout(type(template)):
        parts = [getattr(r, name) for r in rows]
        old = getattr(batch, name) if batch is not None else None
        if hasattr(parts[0], "__dataclass_fields__"):
            values[name] = put_rows(old, parts, index, sizes, inplace)
        elif isinstance(parts[0], Tensor):
            padded = [_pad(p, dims, sizes, pad) for p in parts]
            new = padded[0] if len(padded) == 1 else torch.cat(padded)
            if old is None:
                values[name] = new.clone() if len(padded) == 1 else new
            elif inplace:
                old[list(index)] = new
                values[name] = old
            else:
                merged = _pad(old, dims, sizes, pad).clone()
                merged[list(index)] = new
                values[name] = merged
        elif isinstance(parts[0], bool):
            values[name] = any(parts) or bool(old)
        elif isinstance(parts[0], int):
            values[name] = max(parts + ([old] if old is not None else []))
        elif isinstance(parts[0], tuple):
            spliced = [p[0] for p in parts] if old is None else list(old)
            if old is not None:
                for i, p in zip(index, parts):
                    spliced[i] = p[0]
            values[name] = tuple(spliced)
        else:
            values[name] = parts[0]
    return type(template)(**values)


class RouteSource:
    """The env's route set: route ids and, for each, its `PreparedRoute` built once (the scenario catalog is
    imported lazily: it is the built-in route source, not a dependency of the env)."""

    def __init__(self, config: Bench2DriveConfig):
        self.config = config
        if config.backend == "carla":
            from envs.backends.bench2drive_routes import read_routes
            from envs.bench2drive.carla_route import read_route_extras

            self.xml_routes = read_routes(Path(config.routes))
            self.extras = read_route_extras(Path(config.routes))
            self.ids: tuple[int, ...] = tuple(range(len(self.xml_routes)))
            return
        from scenarios.bench2drive import builtin_route_set

        known = tuple(route.index for route in builtin_route_set())
        self.ids = known if config.routes == "builtin" else tuple(config.routes)
        unknown = sorted(set(self.ids) - set(known))
        if unknown:
            raise ValueError(f"routes={unknown!r}: not built-in route ids (0..{len(known) - 1})")

    def __len__(self) -> int:
        return len(self.ids)

    def check(self, route_id: Any) -> int:
        if isinstance(route_id, bool) or not isinstance(route_id, (int, np.integer)) or int(route_id) not in self.ids:
            raise ValueError(f"route_id={route_id!r}: not in this env's routes ({len(self.ids)} ids, e.g. {self.ids[0]})")
        return int(route_id)

    def prepared(self, route_id: int) -> PreparedRoute:
        """The built-in route `route_id`, set up once per process."""
        targets = ObservationConfig(target_points=self.config.obs.target_points,
                                    target_spacing=self.config.obs.target_spacing)   # all the table depends on
        return builtin_route(route_id, targets, self.config.device, float(self.config.dt))

    def draw(self, rng: np.random.Generator, count: int) -> list[int]:
        return [self.ids[int(i)] for i in rng.integers(len(self.ids), size=count)]
