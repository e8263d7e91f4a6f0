"""Ticks per second of the built-in Bench2Drive world (`envs.bench2drive.world.world_step`).

    python benchmarks/bench2drive_world.py [--batches 1 64] [--ticks 400] [--threads 1] [--repeats 3]

Prints one markdown row per batch size and device: what, device, batch, figure, unit. The route is a
synthetic 200 m two-way road with 24 actors (same-lane IDM traffic, a recycling 8-car flow, an oncoming
flow, a parked car, two crossing pedestrians), a traffic light, a stop sign and ControlLoss debris;
every row of the batch runs it with a slightly different constant control. Warm-up is excluded; the
figures are the best of the repeats, per wall-clock second and per second of this process's CPU time
(the second is closer to an idle core when the machine is shared; both are noisy on the shared 2-core
development machine).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from envs.bench2drive.route_scenario import (
    ActorKind, ActorSpec, Behaviour, LightProgram, LightSpec, RouteScenario, StopSignSpec, Trigger,
)
from envs.bench2drive.world import world_init, world_step
from envs.sim.map import Lane, RoadMap
from envs.sim.scene import LightStatus


def benchmark_route() -> RouteScenario:
    """A two-way straight road: the ego lane (y = 0) eastward, the oncoming lane (y = 3.5) westward."""
    xs = np.arange(0.0, 200.0)
    route = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], -1)
    east = np.array([[-50.0, 0.0], [250.0, 0.0]])
    west = np.array([[250.0, 3.5], [-50.0, 3.5]])
    actors = [ActorSpec(ActorKind.VEHICLE, east, (4.6, 2.0), s0=60.0 + 25.0 * k, speed0=6.0, target_speed=8.0)
              for k in range(6)]
    actors += [ActorSpec(ActorKind.VEHICLE, east, (4.6, 2.0), s0=5.0 + 12.0 * k, speed0=8.0, target_speed=9.0,
                         recycle=True) for k in range(4)]
    actors += [ActorSpec(ActorKind.VEHICLE, west, (4.6, 2.0), s0=20.0 * k, speed0=8.0, target_speed=8.0, recycle=True)
               for k in range(10)]
    actors += [ActorSpec(ActorKind.VEHICLE, east, (4.6, 2.0), s0=170.0, behaviour=Behaviour.PARKED,
                         lateral_offset=-1.0)]
    actors += [ActorSpec(ActorKind.PEDESTRIAN, np.array([[x, -8.0], [x, 12.0]]), (0.6, 0.6), target_speed=1.5,
                         behaviour=Behaviour.CONSTANT, trigger=Trigger(np.array([x, 0.0]), 20.0, time_to_arrival=3.0))
               for x in (90.0, 130.0)]
    actors += [ActorSpec(ActorKind.VEHICLE, east, (4.6, 2.0), s0=140.0, speed0=0.0, target_speed=6.0,
                         pause=(5.0, 3.0))]
    light = LightSpec(np.array([[120.0, -2.0], [120.0, 2.0]]), 0.0, LightProgram(
        cycle=((int(LightStatus.GREEN), 8.0), (int(LightStatus.YELLOW), 2.0), (int(LightStatus.RED), 8.0))))
    sign = StopSignSpec(np.array([57.0, 3.5]), np.pi, 6.0, 3.5)
    lane = Lane("l0", "r0", np.array([[-50.0, -1.75], [250.0, -1.75], [250.0, 5.25], [-50.0, 5.25]]), east)
    return RouteScenario(0, "Accident", "Accident_1", "Builtin_straight_0", RoadMap(lanes=(lane,)), route, 10.0,
                         actors=tuple(actors), lights=(light,), stop_signs=(sign,),
                         control_noise_points=np.array([[30.0, 0.0]]), ego_speed0=5.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ticks_per_second(batch: int, device: torch.device, ticks: int, repeats: int) -> tuple[float, float]:
    """(ticks per wall-clock second, ticks per second of this process's CPU time), best of the repeats."""
    static, state0 = world_init([benchmark_route()] * batch, device=device)
    control = torch.zeros(batch, 3, dtype=torch.float64, device=device)
    control[:, 0] = torch.linspace(-0.02, 0.02, batch)
    control[:, 1] = 0.3
    generator = torch.Generator(device=device).manual_seed(0)
    state = state0
    for _ in range(20):                                            # warm-up
        state, _ = world_step(static, state, control, generator)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        state = state0
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(ticks):
            state, _ = world_step(static, state, control, generator)
        _sync(device)
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return ticks / best_wall, ticks / best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--ticks", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print("| what | device | batch | figure | unit |")
    print("|---|---|---|---|---|")
    for device in devices:
        name = "cpu" if device.type == "cpu" else torch.cuda.get_device_name(device)
        for batch in args.batches:
            wall, cpu = ticks_per_second(batch, device, args.ticks, args.repeats)
            print(f"| bench2drive world_step (24 actors) | {name} ({args.threads} thr) | {batch} | {wall:,.0f} "
                  f"| ticks/s wall ({wall * batch:,.0f} env-steps/s); {cpu:,.0f} per CPU-second |")


if __name__ == "__main__":
    main()
