"""Milliseconds per frame of the built-in renderer on one CPU thread: camera images (3 front cameras and
all 8, 256 x 128) and BEV rasters (128 px at 0.5 m/px, 256 px at 0.25 m/px), single frames and batches
of 64, on `urban_drive` scenes. Also times the alternative BEV map path (static layers pre-drawn per map
in a world-aligned mask, cut out with cv2.warpAffine) against drawing polygons directly. One markdown row
per figure; the figure is the best of --repeats runs.

Run from the repository root: `python -m benchmarks.render [--seeds 2 5 0] [--repeats 5] [--clock cpu]`
(`--clock cpu` measures this process's CPU time, for machines shared with other jobs).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")       # one CPU thread throughout (set before numpy loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import torch

import scenarios
from envs.sim.bev import BEVConfig, _Projector, bev_raster, bev_rgb, pixel_transform
from envs.sim.camera import CameraRig
from envs.sim.frame import frame_from_scene
from envs.sim.render_camera import render_cameras
from envs.sim.scenery import Surface, scenery_for


def best_ms_per_frame(fn, frames, batch: int, repeats: int, clock) -> float:
    """Best over `repeats` of the mean time per frame [ms] on `clock`, calling fn on batches of `batch`."""
    fn(frames[:batch])                                                     # warm-up: caches, first calls
    timings = []
    for _ in range(repeats):
        start = clock()
        count = 0
        for i in range(0, len(frames) - batch + 1, batch):
            fn(frames[i:i + batch])
            count += batch
        timings.append((clock() - start) / count)
    return 1e3 * min(timings)


def warp_static_layers(frames, config: BEVConfig, resolution: float = 0.25) -> np.ndarray:
    """Alternative map path for comparison: drivable / lane lines / route pre-drawn per map into a
    world-aligned 3-channel mask at `resolution` m/px (cached), then warped into each frame's BEV with
    cv2.warpAffine (linear, thresholded at 128). Returns (B, 3, size, size) uint8."""
    out = np.zeros((len(frames), 3, config.size, config.size), dtype=np.uint8)
    for b, frame in enumerate(frames):
        key = (id(frame.road_map), frame.route_roadblock_ids)
        if key not in _WORLD_MASKS:
            _WORLD_MASKS[key] = _world_mask(frame, resolution)
        world, origin = _WORLD_MASKS[key]
        to_bev = pixel_transform(frame.ego_pose, config)                # global -> BEV pixel
        # BEV pixel <- world-mask pixel: compose with world pixel -> global (x = x0 + c r, y = y0 + row r)
        world_to_global = np.array([[resolution, 0.0, origin[0]], [0.0, resolution, origin[1]], [0, 0, 1.0]])
        matrix = to_bev @ world_to_global
        warped = cv2.warpAffine(world, matrix, (config.size, config.size), flags=cv2.INTER_LINEAR)
        out[b] = (warped >= 128).transpose(2, 0, 1) * np.uint8(255)
    return out


_WORLD_MASKS: dict = {}


def _world_mask(frame, resolution: float):
    scenery = scenery_for(frame.road_map)
    points = np.concatenate([scenery.surfaces.points, scenery.lanes.points])
    origin = points.min(axis=0) - 10.0
    shape = np.ceil((points.max(axis=0) + 10.0 - origin) / resolution).astype(int)
    world = np.zeros((shape[1], shape[0], 3), dtype=np.uint8)
    transform = np.array([[1.0, 0.0, -origin[0]], [0.0, 1.0, -origin[1]]]) / resolution
    projector = _Projector(transform, BEVConfig(size=int(max(shape)), meters_per_pixel=resolution))
    layers = [np.ascontiguousarray(world[..., c]) for c in range(3)]
    for layer in (Surface.ROADBLOCK, Surface.INTERSECTION, Surface.CARPARK):
        rings = projector.rings(scenery.surfaces, np.flatnonzero(scenery.surfaces.label == layer))
        if rings:
            cv2.fillPoly(layers[0], rings, 255, cv2.LINE_8, 2)
    lines = projector.rings(scenery.boundaries, np.arange(len(scenery.boundaries)))
    if lines:
        cv2.polylines(layers[1], lines, False, 255, 2, cv2.LINE_8, 2)
    route = set(frame.route_roadblock_ids)
    rows = np.array([i for i, block in enumerate(scenery.lane_roadblock_ids) if block in route], dtype=np.int64)
    for ring in projector.rings(scenery.lanes, rows):
        cv2.fillPoly(layers[2], [ring], 255, cv2.LINE_8, 2)
    return np.ascontiguousarray(np.stack(layers, axis=-1)), origin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[2, 5, 0], help="urban_drive seeds (2, 5: junctions)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: time.perf_counter; cpu: this process's CPU time (fairer on a busy machine)")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    frames = []
    for seed in args.seeds:
        scene = scenarios.build_scene("urban_drive", None, seed)
        frames += [frame_from_scene(scene, step) for step in range(41)]
    frames = (frames * (1 + 128 // len(frames)))[:128]                    # two batches of 64
    device = f"cpu 1 thread ({platform.processor() or platform.machine()})"
    front, all8 = CameraRig.navsim_front(256, 128), CameraRig.navsim_all(256, 128)
    bev128 = BEVConfig(size=128, meters_per_pixel=0.5)
    bev256 = BEVConfig(size=256, meters_per_pixel=0.25)
    static = BEVConfig(size=128, meters_per_pixel=0.5, channels=("drivable", "lane_boundaries", "route"))
    cases = [
        ("render_cameras 3 x 256x128 (cam_l0, cam_f0, cam_r0)", lambda f: render_cameras(f, front)),
        ("render_cameras 8 x 256x128 (navsim_all)", lambda f: render_cameras(f, all8)),
        ("bev_raster 8 ch 128x128 @0.5 m/px", lambda f: bev_raster(f, bev128)),
        ("bev_raster 8 ch 256x256 @0.25 m/px", lambda f: bev_raster(f, bev256)),
        ("bev_raster static 3 ch 128x128 (draw polygons)", lambda f: bev_raster(f, static)),
        ("bev static 3 ch 128x128 (warpAffine of cached world mask)", lambda f: warp_static_layers(f, static)),
    ]
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for name, fn in cases:
        for batch in (1, 64):
            ms = best_ms_per_frame(fn, frames, batch, args.repeats, clock)
            print(f"| {name} | {device} | {batch} | {ms:.3f} | {args.clock} ms/frame ({1e3 / ms:,.0f} frames/s) |",
                  flush=True)
    ms = best_ms_per_frame(lambda f: [bev_rgb(x) for x in f], frames[:16], 1, args.repeats, clock)
    print(f"| bev_rgb 384x384 (env.render) | {device} | 1 | {ms:.3f} | {args.clock} ms/frame |")


if __name__ == "__main__":
    main()
