"""Bench2Drive env throughput: env-steps (ticks) per second, single and batched, with vector observations,
a 128² BEV, and the 3 front cameras.

    python benchmarks/bench2drive_env.py [--batch 64] [--steps 400] [--routes 64] [--threads 1] [--device cpu]
                                         [--only vector|bev|cameras] [--processes 2]

Prints markdown rows (what, device, batch, wall figure, CPU-time figure, unit). An env-step is one 0.05 s tick
of one route (one world step, criteria step, observation and reward), autoreset included: the timed window is
long enough for finished routes to be replaced at the steady-state rate. The agent steers at the route at half
throttle, so traffic and criteria do their usual work. The first `--routes` built-in routes are prepared before
timing (route setup is a one-off per process); the first steps are a warm-up and excluded.

Two figures per row: per wall-clock second, and per second of this process's CPU time (`time.process_time`).
With one torch thread the second is what one dedicated core would give; it is the steadier figure on a shared
machine, whose wall-clock figures are noisy. `--processes N` adds a row for `Bench2DriveProcessVectorEnv`
(N worker processes, each a native batch of batch / N routes; wall-clock only, it needs N free cores).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import envs  # noqa: F401  (registers the ids)

ENV_ID = "roadloop/Bench2Drive-v0"


def _drive(obs: dict, batched: bool) -> np.ndarray:
    """Steer towards the second target point at half throttle: (B, 3) or (3,) control."""
    target = obs["target_points"][..., 1, :]
    steer = np.clip(-np.arctan2(target[..., 1], np.maximum(target[..., 0], 1.0)) * 2.0, -1.0, 1.0)
    control = np.stack([steer, np.full_like(steer, 0.5), np.zeros_like(steer)], -1).astype(np.float32)
    return control if batched else control.reshape(3)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rate(env, steps: int, warmup: int) -> tuple[float, float]:
    """(env-steps per wall-clock second, env-steps per CPU second of this process) after `warmup` steps."""
    batched = hasattr(env, "num_envs")
    obs, _ = env.reset(seed=0)
    done = 0
    start = cpu_start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            _sync()
            start, cpu_start, done = time.perf_counter(), time.process_time(), 0
        obs, _, terminated, truncated, _ = env.step(_drive(obs, batched))
        done += env.num_envs if batched else 1
        if not batched and (terminated or truncated):
            obs, _ = env.reset()
    _sync()
    return done / (time.perf_counter() - start), done / max(time.process_time() - cpu_start, 1e-9)


def _prepare_routes(count: int, device: str) -> tuple[int, ...]:
    """The first `count` built-in route ids, each prepared once (cached for every env of this process)."""
    from envs.bench2drive.env_routes import builtin_route
    from envs.bench2drive.observation import ObservationConfig

    ids = tuple(range(count))
    for route_id in tqdm(ids, desc="preparing routes", leave=False):
        builtin_route(route_id, ObservationConfig(), device, 0.05)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=400, help="timed steps per configuration (batched)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--routes", type=int, default=64, help="built-in routes drawn from (prepared up front)")
    parser.add_argument("--only", choices=("vector", "bev", "cameras"), default=None)
    parser.add_argument("--processes", type=int, default=0,
                        help="also time Bench2DriveProcessVectorEnv with this many worker processes (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    routes = _prepare_routes(args.routes, args.device)
    print("| what | device | batch | env-steps/s (wall) | env-steps/s (CPU time) |")
    print("|---|---|---|---|---|")
    configs = {"vector": ("vector obs", {}, 1), "bev": ("vector + 128² BEV", {"bev": True}, 4),
               "cameras": ("vector + 3 cameras 256x128", {"cameras": True}, 16)}
    device = f"{args.device} ({args.threads} thr)"
    for name, (label, obs, slow) in configs.items():
        if args.only and name != args.only:
            continue
        kwargs = {"obs": obs, "device": args.device, "routes": routes}
        single = gym.make(ENV_ID, **kwargs)
        wall, cpu = _rate(single, max(args.steps * 2 // slow, 20), args.warmup)
        print(f"| Bench2Drive-v0 step, {label} | {device} | 1 | {wall:,.0f} | {cpu:,.0f} |", flush=True)
        single.close()
        batched = gym.make_vec(ENV_ID, num_envs=args.batch, vectorization_mode="vector_entry_point", **kwargs)
        wall, cpu = _rate(batched, max(args.steps // slow, 5), max(args.warmup // slow, 2))
        print(f"| Bench2Drive-v0 step, {label} | {device} | {args.batch} | {wall:,.0f} | {cpu:,.0f} |", flush=True)
        batched.close()
        if args.processes > 1:
            from envs.bench2drive.env_parallel import Bench2DriveProcessVectorEnv

            parallel = Bench2DriveProcessVectorEnv(args.batch, args.processes, threads=args.threads, prepare=routes,
                                                   **kwargs)
            wall, _ = _rate(parallel, max(args.steps // slow, 5), max(args.warmup // slow, 2))
            print(f"| Bench2Drive-v0 step, {label}, {args.processes} processes | {device} each | {args.batch} "
                  f"| {wall:,.0f} | (not measured) |", flush=True)
            parallel.close()


if __name__ == "__main__":
    main()
