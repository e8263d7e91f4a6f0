"""Plans re-simulated per second by the NAVSIM LQR tracker + kinematic bicycle (`envs.sim.lqr.lqr_track`).

    python benchmarks/lqr_track.py [--batch 1024] [--threads N] [--repeats 5]

Prints one markdown row per device (CPU, then CUDA when available): what, device, batch, figure, unit.
Plans are seeded 41-pose references (curving, accelerating, noisy) at 10 Hz, float64. Warm-up is
excluded and CUDA is synchronised before each clock read; the figure is the best of the repeats.
"""

from __future__ import annotations

import argparse
import time

import torch

from envs.sim.dynamics import initial_ego_state
from envs.sim.lqr import lqr_track

NUM_POSES = 41


def _plans(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference poses (batch, 41, 3) and initial speeds (batch,)."""
    times = torch.arange(NUM_POSES, dtype=torch.float64) * 0.1
    speed = 2.0 + 13.0 * torch.rand(batch, 1, generator=generator, dtype=torch.float64)
    accel = torch.randn(batch, 1, generator=generator, dtype=torch.float64)
    curvature = 0.03 * torch.randn(batch, 1, generator=generator, dtype=torch.float64)
    arc = (speed * times + 0.5 * accel * times**2).clamp(min=0.0)
    heading = curvature * arc
    step = torch.diff(arc, dim=-1, prepend=arc[:, :1])
    x = torch.cumsum(step * torch.cos(heading), dim=-1)
    y = torch.cumsum(step * torch.sin(heading), dim=-1)
    poses = torch.stack([x, y, heading], dim=-1)
    poses = poses + 0.02 * torch.randn(poses.shape, generator=generator, dtype=torch.float64)
    return poses, speed[:, 0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(batch: int, device: torch.device, repeats: int) -> float:
    poses, speed = _plans(batch, torch.Generator().manual_seed(0))
    poses, speed = poses.to(device), speed.to(device)
    velocity = torch.stack([speed, torch.zeros_like(speed)], -1)
    initial = initial_ego_state(poses[:, 0], velocity, torch.zeros_like(velocity))
    lqr_track(poses, initial)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        lqr_track(poses, initial)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        if device.type == "cpu":
            name = f"cpu ({torch.get_num_threads()} threads)"
        else:
            name = torch.cuda.get_device_name()
        rate = _rate(args.batch, device, args.repeats)
        print(f"| lqr_track, {NUM_POSES} poses, float64 | {name} | {args.batch} | {rate:,.0f} | plans/s |")


if __name__ == "__main__":
    main()
