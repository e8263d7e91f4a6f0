"""NAVSIM env throughput: scene-steps per second, single and batched, with and without cameras.

    python benchmarks/navsim_env.py [--split navmini] [--batch 64] [--threads 1] [--device cpu]
                                    [--steps 5] [--repeats 5] [--clock wall|cpu] [--cold] [--processes N] [--warm-steps 20]

Prints markdown rows (what, device, batch, figure, unit). A scene-step is one plan scored in one
scene (one reset + one step of Navsim-v1). Warm-up (excluded) steps until every scene of the split
has been drawn once, so its metric cache, PDM-Closed reference and observation are made; the figure
is the best of `--repeats` runs of `--steps` steps (`--clock cpu`: this process's CPU time, for a
machine shared with other jobs). The last column also counts the work per step of the timed runs:
scene lookups (scoring inputs and observations) made afresh (0 once warm) and served from the env's
caches. `--cold` skips the warm-up and times the first steps of fresh envs (new scenes are prepared
and rendered). `--processes N` (N > 1) instead times one no-camera `NavsimProcessVectorEnv` of `--batch`
rows split over N worker processes (one per core), wall clock, after `--warm-steps` steps that fill
each worker's caches: it needs N free cores.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401


def _cruise(obs: dict) -> np.ndarray:
    speed = np.hypot(obs["ego_status"][..., -1, 3], obs["ego_status"][..., -1, 4])
    plans = np.zeros(speed.shape + (8, 3), np.float32)
    plans[..., 0] = speed[..., None] * 0.5 * np.arange(1, 9)
    return plans


def _warm_up(env, max_steps: int = 200) -> None:
    """Step until every scene of the source is in the env's caches (or max_steps)."""
    batch = env.unwrapped.batch
    obs, _ = env.reset(seed=0)
    for _ in range(max_steps):
        if len(batch.cache) >= len(batch.source) and len(batch.observations) >= len(batch.source):
            return
        obs, *_ = env.step(_cruise(obs))
        if not hasattr(env, "num_envs"):
            obs, _ = env.reset()


def _run(env, steps: int, clock) -> tuple[float, int, int, int]:
    """(seconds, scene-steps, scene lookups that had to prepare or observe afresh, lookups served from
    the caches); every step makes one `prepare_scenes` call (the next episode's reset)."""
    batch = env.unwrapped.batch
    obs, _ = env.reset()
    before = batch.cache.misses + batch.observations.misses, batch.cache.hits + batch.observations.hits
    start, done = clock(), 0
    for _ in range(steps):
        obs, *_ = env.step(_cruise(obs))
        done += getattr(env, "num_envs", 1)
        if not hasattr(env, "num_envs"):
            obs, _ = env.reset()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = clock() - start
    made = batch.cache.misses + batch.observations.misses - before[0]
    served = batch.cache.hits + batch.observations.hits - before[1]
    return seconds, done, made, served


def _run_processes(args: argparse.Namespace) -> None:
    """`--processes N`: one `NavsimProcessVectorEnv` of `--batch` rows split over N worker processes -> one row
    (wall clock: the figure a user of that env gets from N free cores)."""
    from envs.navsim_parallel import NavsimProcessVectorEnv

    env = NavsimProcessVectorEnv(args.batch, processes=args.processes, threads=args.threads, split=args.split,
                                 obs={"cameras": ()}, device=args.device)
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(args.warm_steps):      # every worker draws its scenes into its own caches
            obs, *_ = env.step(_cruise(obs))
        best = 0.0
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.steps):
                obs, *_ = env.step(_cruise(obs))
            best = max(best, args.steps * args.batch / (time.perf_counter() - start))
    finally:
        env.close()
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    print(f"| Navsim-v1 step, no cameras, {args.processes} processes | {args.device} ({args.threads} thr each) | "
          f"{args.batch} ({' + '.join(map(str, env.sizes))}) | {best:,.1f} | scene-steps/s (wall, best of "
          f"{args.repeats} x {args.steps} steps after {args.warm_steps} warm-up steps) |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="navmini")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5, help="batched steps per run (single env: 4x as many)")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best is reported")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--cold", action="store_true", help="measure the first steps of fresh envs (no warm-up)")
    parser.add_argument("--processes", type=int, default=1,
                        help="> 1: NavsimProcessVectorEnv, --batch rows split over that many worker processes")
    parser.add_argument("--warm-steps", type=int, default=20, help="--processes: untimed steps first")
    args = parser.parse_args()
    if args.processes < 1:
        raise ValueError(f"processes={args.processes}: must be >= 1")
    if args.processes > 1:
        if args.cold:
            raise ValueError("processes: --cold times fresh envs in this process only; drop one of them")
        _run_processes(args)
        return
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for label, obs in (("no cameras", {"cameras": ()}), ("3 cameras 256x128", {})):
        kwargs = dict(split=args.split, obs=obs, device=args.device)
        single = gym.make("roadloop/Navsim-v1", **kwargs)
        batched = gym.make_vec("roadloop/Navsim-v1", num_envs=args.batch, vectorization_mode="vector_entry_point", **kwargs)
        device = f"{args.device} ({args.threads} thr)"
        for env, batch, steps in ((single, 1, args.steps * 4), (batched, args.batch, args.steps)):
            if not args.cold:
                _warm_up(env)
            runs = [_run(env, steps, clock) for _ in range(1 if args.cold else args.repeats)]
            seconds, done, made, served = min(runs)
            print(f"| Navsim-v1 step, {label} | {device} | {batch} | {done / seconds:,.1f} | scene-steps/s "
                  f"({args.clock}; per step 1 prepare_scenes call, {made / steps:.1f} scene lookups made afresh, "
                  f"{served / steps:.1f} served from cache) |")


if __name__ == "__main__":
    main()
