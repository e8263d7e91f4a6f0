"""NAVSIM env throughput: scene-steps per second, single and batched, with and without cameras.

    python benchmarks/navsim_env.py [--split navmini] [--batch 64] [--threads 1] [--device cpu]

Prints markdown rows (what, device, batch, figure, unit). A scene-step is one plan scored in one
scene (one reset + one step of Navsim-v1). The first pass over the scenes (PDM-Closed reference,
camera rendering) is a warm-up and excluded; `--cold` reports it instead.
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


def _rate(env, steps: int) -> float:
    obs, _ = env.reset(seed=0)
    start = time.perf_counter()
    done = 0
    for _ in range(steps):
        obs, *_ = env.step(_cruise(obs))
        done += getattr(env, "num_envs", 1)
        if not hasattr(env, "num_envs"):
            obs, _ = env.reset()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="navmini")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="measure the first pass (no warm-up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for label, obs in (("no cameras", {"cameras": ()}), ("3 cameras 256x128", {})):
        kwargs = dict(split=args.split, obs=obs, device=args.device)
        single = gym.make("roadloop/Navsim-v1", **kwargs)
        batched = gym.make_vec("roadloop/Navsim-v1", num_envs=args.batch, vectorization_mode="vector_entry_point", **kwargs)
        if not args.cold:  # warm-up: every scene planned (PDM-Closed) and rendered once
            _rate(batched, 2)
        rate_single = _rate(single, args.steps * 4)
        rate_batched = _rate(batched, args.steps)
        device = f"{args.device} ({args.threads} thr)"
        print(f"| Navsim-v1 step, {label} | {device} | 1 | {rate_single:,.1f} | scene-steps/s |")
        print(f"| Navsim-v1 step, {label} | {device} | {args.batch} | {rate_batched:,.1f} | scene-steps/s |")


if __name__ == "__main__":
    main()
