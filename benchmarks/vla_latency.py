"""VLA planning latency: `act` (greedy tokens / Euler ODE) and `sample` (G plans with log-probs) per batch.

    python benchmarks/vla_latency.py [--heads token,flow] [--batches 1,8,32] [--preset tiny] [--device cpu]
                                     [--dtype float32|bfloat16] [--image 28x56] [--samples 8] [--threads 1]
    python benchmarks/vla_latency.py --preset qwen2_5_vl_3b --device cuda --dtype bfloat16 --image 252x448

Prints markdown rows (what, device, batch, figure, unit): ms per batch and trajectories per second.
Random weights, synthetic observations (3 cameras at the env's 256x128, resized to --image), no_grad,
eval mode. Warm-up is excluded and CUDA is synchronised before each clock read.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from agents.vla.config import VLAConfig
from agents.vla.model import VLA


def synthetic_obs(batch: int, rng: np.random.Generator, height: int = 128, width: int = 256) -> dict:
    """A batched NAVSIM-like observation: 5-10 m/s straight history, random commands and camera noise."""
    status = np.zeros((batch, 4, 7), np.float32)
    speed = rng.uniform(5, 10, batch).astype(np.float32)
    status[:, :, 0] = speed[:, None] * np.array([-1.5, -1.0, -0.5, 0.0], np.float32)
    status[:, :, 3] = speed[:, None]
    obs = {"ego_status": status, "command": np.eye(4, dtype=np.float32)[rng.integers(0, 3, batch)]}
    for camera in ("cam_l0", "cam_f0", "cam_r0"):
        obs[camera] = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    return obs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heads", default="token,flow")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="weights dtype")
    parser.add_argument("--image", default="28x56", help="VLA input image size HxW (multiples of 28)")
    parser.add_argument("--samples", type=int, default=8, help="G plans per scene for the sample rows")
    parser.add_argument("--flow-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    height, width = (int(v) for v in args.image.lower().split("x"))
    rng = np.random.default_rng(0)
    batches = [int(b) for b in args.batches.split(",")]
    label = f"{device.type}" + (f" ({args.threads} thread{'s' if args.threads > 1 else ''})" if device.type == "cpu" else "")
    label += f", {args.preset}, {args.dtype}"
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for head in args.heads.split(","):
        config = VLAConfig(head=head, preset=args.preset, image_height=height, image_width=width, flow_steps=args.flow_steps)
        with torch.device(device):
            model = VLA(config)
        model = model.to(device=device, dtype=getattr(torch, args.dtype)).eval()
        gen = torch.Generator(device).manual_seed(0)
        for batch in batches:
            obs = synthetic_obs(batch, rng)
            runs = {"act": lambda: model.act(obs),
                    f"sample G={args.samples}": lambda: model.sample(obs, args.samples, gen)}
            for mode, run in runs.items():
                with torch.no_grad():
                    run()  # warm-up
                    _sync(device)
                    start = time.perf_counter()
                    for _ in range(args.repeats):
                        run()
                    _sync(device)
                ms = (time.perf_counter() - start) / args.repeats * 1e3
                plans = batch * (args.samples if mode.startswith("sample") else 1)
                print(f"| VLA {head} {mode}, ms per batch | {label} | {batch} | {ms:.1f} | ms |")
                print(f"| VLA {head} {mode}, trajectories per second | {label} | {batch} | {plans / ms * 1e3:.1f} | traj/s |")


if __name__ == "__main__":
    main()
