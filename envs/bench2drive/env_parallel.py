"""`Bench2DriveProcessVectorEnv`: the native batched Bench2Drive env split over worker processes
(`envs.process_vector`). Same spaces, rewards and info layout as `Bench2DriveVectorEnv`; the routes drawn differ
(each worker draws from its own seed: seed + worker index).
"""

from __future__ import annotations

from typing import Sequence

from envs.process_vector import ProcessVectorEnv


def prepare_routes(env, route_ids: Sequence[int]) -> None:
    """Set up built-in routes in a worker before it starts (route set-up is a one-off per process)."""
    for route_id in route_ids:
        env.batch.routes.prepared(route_id)


class Bench2DriveProcessVectorEnv(ProcessVectorEnv):
    """`num_envs` Bench2Drive rows stepped as `processes` native batches in worker processes (one torch thread
    each unless `threads` says otherwise); other keyword arguments go to `Bench2DriveVectorEnv` (e.g. `config`,
    or `Bench2DriveConfig` fields). `prepare`: built-in route ids every worker sets up before it starts.
    `options["route_ids"]` (num_envs ids) is split between the workers in row order."""

    def __init__(self, num_envs: int, processes: int = 2, threads: int = 1, prepare: Sequence[int] = (), **kwargs):
        super().__init__("envs.bench2drive.env:Bench2DriveVectorEnv", num_envs, processes, threads, **kwargs)
        if prepare:
            self.call_parts("envs.bench2drive.env_parallel:prepare_routes", [(tuple(prepare),)] * len(self.pipes))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        ids = (options or {}).get("route_ids")
        if ids is not None and len(ids) != self.num_envs:
            raise ValueError(f"options.route_ids has {len(ids)} ids: expected num_envs={self.num_envs}")
        parts = []
        for k in range(len(self.pipes)):
            part = dict(options or {})
            if ids is not None:
                part["route_ids"] = list(self.rows(list(ids), k))
            parts.append(part)
        return self.reset_parts(seed, parts)
