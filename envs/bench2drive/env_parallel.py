"""`Bench2DriveProcessVectorEnv`: the native batched Bench2Drive env split over worker processes, so that a
machine with N cores steps N batches at once (the batched env itself runs on one thread). Each worker holds a
`Bench2DriveVectorEnv` of a contiguous slice of the rows; observations and infos are concatenated back in row
order. Same spaces, rewards and info layout as `Bench2DriveVectorEnv`; the routes drawn differ (each worker
draws from its own seed: seed + worker index).
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


def _worker(pipe, num_envs: int, threads: int, prepare: tuple[int, ...], kwargs: dict) -> None:
    import torch

    from envs.bench2drive.env import Bench2DriveVectorEnv

    torch.set_num_threads(threads)
    env = Bench2DriveVectorEnv(num_envs=num_envs, **kwargs)
    for route_id in prepare:
        env.batch.routes.prepared(route_id)
    try:
        while True:
            command, payload = pipe.recv()
            if command == "reset":
                pipe.send(env.reset(seed=payload[0], options=payload[1]))
            elif command == "step":
                pipe.send(env.step(payload))
            else:
                break
    finally:
        env.close()
        pipe.close()


def _concat(parts: list[Any], sizes: list[int]) -> Any:
    """Concatenate per-worker batched values (arrays, nested dicts of arrays with `_key` masks) in row order.
    A key missing from some worker's dict is filled there with an empty value (None, 0, False) and a False mask."""
    if isinstance(parts[0], dict) or any(isinstance(p, dict) for p in parts):
        keys = list(dict.fromkeys(k for p in parts if isinstance(p, dict) for k in p))
        out = {}
        for key in keys:
            present = [p.get(key) if isinstance(p, dict) else None for p in parts]
            filler = next(v for v in present if v is not None)
            out[key] = _concat([v if v is not None else _empty_like(filler, n) for v, n in zip(present, sizes)], sizes)
        return out
    return np.concatenate([np.asarray(p) if not isinstance(p, np.ndarray) else p for p in parts])


def _empty_like(value: Any, rows: int) -> Any:
    if isinstance(value, dict):
        return {key: _empty_like(v, rows) for key, v in value.items()}
    array = np.asarray(value)
    if array.dtype == object:
        return np.full(rows, None, dtype=object)
    return np.zeros((rows, *array.shape[1:]), dtype=array.dtype)


class Bench2DriveProcessVectorEnv(VectorEnv):
    """`num_envs` Bench2Drive rows stepped as `processes` native batches in worker processes (one torch thread
    each unless `threads` says otherwise); other keyword arguments go to `Bench2DriveVectorEnv` (e.g. `config`,
    or `Bench2DriveConfig` fields). `prepare`: built-in route ids every worker sets up before it starts (route
    setup is a one-off per process). Autoreset SAME_STEP, infos batched with `_key` masks, as the native env."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, processes: int = 2, threads: int = 1, prepare: Sequence[int] = (), **kwargs):
        if not (isinstance(processes, int) and 1 <= processes <= num_envs):
            raise ValueError(f"processes={processes!r}: need an int in [1, num_envs={num_envs}]")
        from envs.bench2drive.env import Bench2DriveVectorEnv

        probe = Bench2DriveVectorEnv(num_envs=1, **kwargs)          # spaces only (no route is prepared)
        self.single_observation_space = probe.single_observation_space
        self.single_action_space = probe.single_action_space
        probe.close()
        self.num_envs = num_envs
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.sizes = [num_envs // processes + (k < num_envs % processes) for k in range(processes)]
        self.bounds = np.cumsum([0] + self.sizes)
        context = mp.get_context("spawn")
        self.pipes, self.workers = [], []
        for size in self.sizes:
            parent, child = context.Pipe()
            worker = context.Process(target=_worker, args=(child, size, threads, tuple(prepare), kwargs), daemon=True)
            worker.start()
            child.close()
            self.pipes.append(parent)
            self.workers.append(worker)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ids = (options or {}).get("route_ids")
        if ids is not None and len(ids) != self.num_envs:
            raise ValueError(f"options.route_ids has {len(ids)} ids: expected num_envs={self.num_envs}")
        for k, pipe in enumerate(self.pipes):
            part = dict(options or {})
            if ids is not None:
                part["route_ids"] = list(ids[self.bounds[k]:self.bounds[k + 1]])
            pipe.send(("reset", (None if seed is None else seed + k, part)))
        results = [pipe.recv() for pipe in self.pipes]
        return _concat([r[0] for r in results], self.sizes), _concat([r[1] for r in results], self.sizes)

    def step(self, actions):
        actions = np.asarray(actions)
        for k, pipe in enumerate(self.pipes):
            pipe.send(("step", actions[self.bounds[k]:self.bounds[k + 1]]))
        results = [pipe.recv() for pipe in self.pipes]
        return tuple(_concat([r[i] for r in results], self.sizes) for i in range(5))

    def close_extras(self, **kwargs):
        for pipe in self.pipes:
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for worker in self.workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
