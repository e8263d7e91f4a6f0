"""Points per second of `PolygonIndex.contains` on CPU: 64 scenes x 2,624 points (168k, i.e. B G T corners
= 64 x 16 x 41 x 4) against 50 star-shaped polygons of 40 vertices per scene. Prints one markdown row.

Run from the repository root: `python -m benchmarks.polygon_index [--threads 1] [--strip-height 1.0]`."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs.sim.polygon_index import PolygonIndex


def random_scene(rng: np.random.Generator, num_polygons: int, num_vertices: int) -> list[np.ndarray]:
    """Star-shaped (hence simple) polygons of radius 5-25 m scattered over a 200 m square."""
    scene = []
    for _ in range(num_polygons):
        center, radius = rng.uniform(-100, 100, 2), rng.uniform(5, 25)
        angle = np.sort(rng.uniform(0, 2 * np.pi, num_vertices))
        r = rng.uniform(0.5, 1.0, num_vertices) * radius
        scene.append(np.stack([center[0] + r * np.cos(angle), center[1] + r * np.sin(angle)], 1))
    return scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=64)
    parser.add_argument("--points", type=int, default=16 * 41 * 4, help="points per scene")
    parser.add_argument("--polygons", type=int, default=50)
    parser.add_argument("--vertices", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strip-height", type=float, default=2.0, help="PolygonIndex strip height [m]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    scenes = [random_scene(rng, args.polygons, args.vertices) for _ in range(args.scenes)]
    index = PolygonIndex.build(scenes, device=args.device, strip_height=args.strip_height)
    points = torch.as_tensor(rng.uniform(-110, 110, (args.scenes, args.points, 2)), device=args.device)

    index.contains(points)                                     # warm-up
    timings = []
    for _ in range(args.repeats):
        if points.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        index.contains(points)
        if points.is_cuda:
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    total = args.scenes * args.points
    figure = total / min(timings)
    print(f"| PolygonIndex.contains ({args.polygons} polygons x {args.vertices} vertices, "
          f"strip {args.strip_height} m, K={index.row_edge.numel()}, {torch.get_num_threads()} threads) | {args.device} | "
          f"{total} points | {figure:,.0f} | points/s |")


if __name__ == "__main__":
    main()
