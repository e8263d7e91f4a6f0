"""NAVSIM env throughput: scene-steps per second, single and batched, with and without cameras.

    python benchmarks/navsim_env.py [--split navmini] [--batch 64] [--threads 1] [--device cpu]
                                    [--steps 5] [--repeats 5] [--clock wall|cpu] [--cold] [--processes N]

Prints markdown rows (what, device, batch, figure, unit). A scene-step is one plan scored in one
scene (one reset + one step of Navsim-v1). Warm-up (excluded) steps until every scene of the split
has been drawn once, so its metric cache, PDM-Closed reference and observation are made; the figure
is the best of `--repeats` runs of `--steps` steps (`--clock cpu`: this process's CPU time, for a
machine shared with other jobs). The last column also counts the work per step of the timed runs:
scene lookups (scoring inputs and observations) made afresh (0 once warm) and served from the env's
caches. `--cold` skips the warm-up and times the first steps of fresh envs (new scenes are prepared
and rendered). `--processes N` (N > 1) instead runs N batched no-camera envs in N processes at once
(one per core) and reports their combined wall-clock scene-steps/s: every process warms up, then all
start together and run `--repeats` x `--steps` steps; the figure is all their scene-steps over the time
from the first start to the last finish.
"""

from __future__ import annotations

import argparse
import multiprocessing
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


def _process_worker(args: argparse.Namespace, barrier, results) -> None:
    """One process of `--processes`: warm up its own batched env, wait for the others, step, report."""
    torch.set_num_threads(args.threads)
    env = gym.make_vec("roadloop/Navsim-v1", num_envs=args.batch, vectorization_mode="vector_entry_point",
                       split=args.split, obs={"cameras": ()}, device=args.device)
    _warm_up(env)
    barrier.wait()
    start = time.perf_counter()
    done = sum(_run(env, args.steps, time.perf_counter)[1] for _ in range(args.repeats))
    results.put((start, time.perf_counter(), done))


def _run_processes(args: argparse.Namespace) -> None:
    """`--processes N`: N batched envs stepped in N processes at once -> one combined row."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(args.processes), context.Queue()
    workers = [context.Process(target=_process_worker, args=(args, barrier, results))
               for _ in range(args.processes)]
    for worker in workers:
        worker.start()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    seconds = max(end for _, end, _ in reports) - min(start for start, _, _ in reports)
    done = sum(count for _, _, count in reports)
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    print(f"| Navsim-v1 step, no cameras, {args.processes} processes | {args.device} ({args.threads} thr each) | "
          f"{args.processes} x {args.batch} | {done / seconds:,.1f} | scene-steps/s (wall, all processes together; "
          f"{args.repeats} x {args.steps} steps each) |")


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
                        help="> 1: that many batched no-camera envs in as many processes, combined figure")
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
