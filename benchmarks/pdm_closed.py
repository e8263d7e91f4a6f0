"""PDM-Closed planning time per scene (15 proposals: unroll, LQR simulation, scoring, extension).

    python benchmarks/pdm_closed.py [--device cpu|cuda] [--threads 1] [--sizes 1,64] [--repeats 3]

Prints markdown rows: what, device, batch, figure, unit. Scenes are procedural: a straight two-lane
road of three 100 m roadblocks (vertices every 1 m) with 12 seeded vehicles ahead of the ego,
jittered laterally so that no edge is exactly collinear with a path. Warm-up is excluded and CUDA is
synchronised before each clock read.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs.sim.map import Area, Lane, RoadMap
from envs.sim.pdm_closed import pdm_closed_plan
from envs.sim.scene import AgentTracks, EgoHistory, Scene, TrafficLights

STEPS = 41


def _rect(x0, x1, y0, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def _road() -> RoadMap:
    lanes = []
    for i in range(3):
        for side, yc in (("r", -1.75), ("l", 1.75)):
            lanes.append(Lane(
                f"L{i}{side}", f"RB{i}", _rect(100 * i, 100 * i + 100, yc - 1.75, yc + 1.75),
                np.stack([np.linspace(100 * i, 100 * i + 100, 101), np.full(101, yc)], 1), 15.0,
                (f"L{i + 1}{side}",) if i < 2 else (), (f"L{i - 1}{side}",) if i else (),
            ))
    blocks = tuple(Area(f"RB{i}", _rect(100 * i, 100 * i + 100, -3.5, 3.5)) for i in range(3))
    return RoadMap(lanes=tuple(lanes), roadblocks=blocks)


def _scene(road: RoadMap, rng: np.random.Generator, index: int) -> Scene:
    x0, y0, speed = rng.uniform(5, 60), -1.75 + rng.uniform(-0.3, 0.3), rng.uniform(3, 14)
    t = np.array([-1.5, -1.0, -0.5, 0.0])
    history = EgoHistory(t=t, pose=np.stack([x0 + speed * t, np.full(4, y0), np.zeros(4)], 1),
                         velocity=np.tile([speed, 0.0], (4, 1)), acceleration=np.zeros((4, 2)))
    num = 12
    x = x0 + rng.uniform(8, 150, num)
    y = rng.choice([-1.75, 1.75], num) + rng.uniform(-0.3, 0.3, num)
    heading = rng.uniform(-0.05, 0.05, num)
    v = rng.uniform(0, 12, num)
    times = np.arange(STEPS) * 0.1
    pose = np.stack([np.stack([xi + vi * np.cos(hi) * times, yi + vi * np.sin(hi) * times, np.full(STEPS, hi)], 1)
                     for xi, yi, hi, vi in zip(x, y, heading, v)])
    velocity = np.stack([np.stack([np.full(STEPS, vi * np.cos(hi)), np.full(STEPS, vi * np.sin(hi))], 1)
                         for hi, vi in zip(heading, v)])
    agents = AgentTracks(tuple(f"car{i}" for i in range(num)), np.zeros(num, np.int64), np.tile([4.5, 2.0], (num, 1)),
                         pose, velocity, np.ones((num, STEPS), bool))
    return Scene(f"bench{index}", road, ("RB0", "RB1", "RB2"), history, agents, TrafficLights.empty())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sizes", default="1,64")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    road = _road()
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = [_scene(road, rng, i) for i in range(max(sizes))]
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for size in sizes:
        scenes = pool[:size]
        pdm_closed_plan(scenes, device=device)  # warm-up
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            pdm_closed_plan(scenes, device=device)
        _sync(device)
        per_scene_ms = (time.perf_counter() - start) / args.repeats / size * 1e3
        label = f"{device.type} ({args.threads} thread{'s' if args.threads > 1 else ''})"
        print(f"| PDM-Closed planning time per scene | {label} | {size} | {per_scene_ms:.1f} | ms/scene |")


if __name__ == "__main__":
    main()
