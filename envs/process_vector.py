"""`ProcessVectorEnv`: a native batched env split over worker processes, so that a machine with N cores steps N
batches at once (each batched env runs on one torch thread). Each worker holds the native vector env of a
contiguous slice of the rows; observations, rewards and infos come back concatenated in row order. The rows'
episodes differ from one native env of all rows (worker k draws from seed + k).
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


def load_object(path: str) -> Any:
    """`"package.module:Name"` -> that object (how workers find the env class and set-up functions)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"path={path!r}: expected 'package.module:Name'")
    return getattr(importlib.import_module(module), name)


class WorkerError:
    """An exception raised in a worker, sent back so that the caller raises it (a bad action names its field)."""

    def __init__(self, error: Exception):
        self.error = error


def _worker(pipe, env_class: str, num_envs: int, threads: int, kwargs: dict) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        env = load_object(env_class)(num_envs=num_envs, **kwargs)
    except Exception as error:  # noqa: BLE001 (a bad setting is raised by the caller)
        pipe.send(WorkerError(error))
        pipe.close()
        return
    pipe.send((env.single_observation_space, env.single_action_space))     # the caller's spaces
    try:
        while True:
            command, payload = pipe.recv()
            if command == "close":
                break
            try:
                if command == "reset":
                    result = env.reset(seed=payload[0], options=payload[1])
                elif command == "step":
                    result = env.step(payload)
                else:                   # "call": an env method, or a "module:function" given the env first
                    target, args = payload
                    result = load_object(target)(env, *args) if ":" in target else getattr(env, target)(*args)
            except Exception as error:  # noqa: BLE001 (any error goes back to the caller)
                result = WorkerError(error)
            pipe.send(result)
    finally:
        env.close()
        pipe.close()


def concat_rows(parts: list[Any], sizes: list[int]) -> Any:
    """Concatenate per-worker batched values (arrays, tuples, nested dicts of arrays with `_key` masks) in row
    order. A key missing from some worker's dict is filled there with an empty value (None, 0, False)."""
    if isinstance(parts[0], tuple):
        return tuple(concat_rows([p[i] for p in parts], sizes) for i in range(len(parts[0])))
    if any(isinstance(p, dict) for p in parts):
        keys = list(dict.fromkeys(k for p in parts if isinstance(p, dict) for k in p))
        out = {}
        for key in keys:
            present = [p.get(key) if isinstance(p, dict) else None for p in parts]
            filler = next(v for v in present if v is not None)
            out[key] = concat_rows([v if v is not None else _empty_like(filler, n) for v, n in zip(present, sizes)], sizes)
        return out
    return np.concatenate([np.asarray(p) for p in parts])


def _empty_like(value: Any, rows: int) -> Any:
    if isinstance(value, dict):
        return {key: _empty_like(v, rows) for key, v in value.items()}
    array = np.asarray(value)
    if array.dtype == object:
        return np.full(rows, None, dtype=object)
    return np.zeros((rows, *array.shape[1:]), dtype=array.dtype)


class ProcessVectorEnv(VectorEnv):
    """`num_envs` rows of the native vector env `env_class` ("module:Class", built as
    `Class(num_envs=rows, **kwargs)`) stepped as `processes` batches in worker processes with `threads` torch
    threads each. Autoreset SAME_STEP and `_key`-masked infos, as the native envs. An error in a worker (a
    refused action) is raised here, naming the worker and its rows; the other workers' rows have stepped, so
    reset before going on with multi-step episodes."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, env_class: str, num_envs: int, processes: int = 2, threads: int = 1, **kwargs):
        if not (isinstance(processes, int) and 1 <= processes <= num_envs):
            raise ValueError(f"processes={processes!r}: need an int in [1, num_envs={num_envs}]")
        if not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"threads={threads!r}: need an int >= 1")
        self.num_envs = num_envs
        self.sizes = [num_envs // processes + (k < num_envs % processes) for k in range(processes)]
        self.bounds = np.cumsum([0] + self.sizes)
        context = mp.get_context("spawn")
        self.pipes, self.workers = [], []
        for size in self.sizes:
            parent, child = context.Pipe()
            worker = context.Process(target=_worker, args=(child, env_class, size, threads, kwargs), daemon=True)
            worker.start()
            child.close()
            self.pipes.append(parent)
            self.workers.append(worker)
        try:        # every worker answers with its spaces once its env is built (this process builds none)
            self.single_observation_space, self.single_action_space = self._receive()[0]
        except Exception:
            self.close_extras()
            raise
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def _receive(self) -> list[Any]:
        """Every worker's answer, in order; the first worker error is raised here."""
        results = [pipe.recv() for pipe in self.pipes]
        for k, result in enumerate(results):
            if isinstance(result, WorkerError):
                message = f"worker {k} (rows {self.bounds[k]}..{self.bounds[k + 1] - 1}): {result.error}"
                try:
                    error = type(result.error)(message)
                except Exception:     # noqa: BLE001 (an exception type with other constructor arguments)
                    error = RuntimeError(message)
                raise error from result.error
        return results

    def rows(self, values: Any, k: int) -> Any:
        """Worker k's slice of a (num_envs, ...) array."""
        return values[self.bounds[k]:self.bounds[k + 1]]

    def reset_parts(self, seed: int | None, options: list[dict]):
        """Reset worker k with seed + k and options[k] -> concatenated (obs, info)."""
        super().reset(seed=seed)
        for k, pipe in enumerate(self.pipes):
            pipe.send(("reset", (None if seed is None else seed + k, options[k])))
        return concat_rows(self._receive(), self.sizes)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        return self.reset_parts(seed, [dict(options or {}) for _ in self.pipes])

    def step(self, actions):
        actions = np.asarray(actions)
        for k, pipe in enumerate(self.pipes):
            pipe.send(("step", self.rows(actions, k)))
        return concat_rows(self._receive(), self.sizes)

    def call_parts(self, target: str, args_of_worker: list[tuple]) -> list[Any]:
        """Call `target` (an env method name, or "module:function" taking the env first) in every worker."""
        for pipe, args in zip(self.pipes, args_of_worker):
            pipe.send(("call", (target, args)))
        return self._receive()

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
