"""Trajectories scored per second (PDMS / EPDMS) for B scenes x G plans, plus metric-cache build time.

    python benchmarks/pdm_score.py [--device cpu|cuda] [--metric pdms|epdms] [--threads 1]

Prints markdown rows: what, device, B x G, figure, unit. Scenes come from the built-in generator;
each plan is the scene's human trajectory plus seeded noise, so every group is diverse.
Warm-up is excluded and CUDA is synchronised before each clock read. On CPU a second row uses the
process's CPU time (with --threads 1, the time one dedicated core takes), which stays meaningful when
other jobs share the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs.metrics.scorer import Metric, ScoringConfig, prepare_scenes, score_poses
from scenarios import build_scene


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _plans(scenes, G: int, rng: np.random.Generator) -> torch.Tensor:
    base = np.stack([s.human_trajectory.poses for s in scenes])  # (B, 8, 3)
    t = np.arange(1, 9)[None, None, :, None] / 8.0
    noise = rng.normal(0.0, 1.0, size=(len(scenes), G, 1, 3)) * np.array([3.0, 1.0, 0.1]) * t
    return torch.as_tensor(base[:, None] + noise)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--metric", default="pdms", choices=[m.value for m in Metric])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the target is per core)")
    parser.add_argument("--sizes", default="1x1,64x16,512x16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = ScoringConfig(metric=Metric(args.metric))
    rng = np.random.default_rng(0)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    pool = [build_scene("urban_drive", None, seed) for seed in range(max(B for B, _ in sizes))]
    print("| what | device | B x G | figure | unit |")
    print("|---|---|---|---|---|")
    for B, G in sizes:
        scenes = pool[:B]
        start = time.perf_counter()
        prep = prepare_scenes(scenes, config, device=device)
        _sync(device)
        build_s = time.perf_counter() - start
        poses = _plans(scenes, G, rng).to(device)
        score_poses(prep, poses, 0.5)  # warm-up
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(args.repeats):
            score_poses(prep, poses, 0.5)
        _sync(device)
        per_call = (time.perf_counter() - start) / args.repeats
        per_call_cpu = (time.process_time() - start_cpu) / args.repeats
        print(f"| {args.metric} scoring | {device.type} ({args.threads} thr) | {B}x{G} | {B * G / per_call:,.0f} | trajectories/s |")
        if device.type == "cpu":
            # process CPU time: what one dedicated core would take, even on a busy shared machine
            print(f"| {args.metric} scoring, CPU-time basis | cpu ({args.threads} thr) | {B}x{G} "
                  f"| {B * G / per_call_cpu:,.0f} | trajectories/s |")
        print(f"| metric cache build (incl. PDM-Closed) | {device.type} ({args.threads} thr) | {B} scenes | {1000 * build_s / B:.1f} | ms/scene |")


if __name__ == "__main__":
    main()
