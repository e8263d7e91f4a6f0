"""Tiny hand-built scenes (no files, no network) shared by the end-to-end tests.

`straight_road_scene` is a scene/1 dict of a straight eastbound road along +x: three roadblocks
RB1..RB3 of 60 m, two lanes each (lane `a` centred at y = 0, lane `b` at y = 3.5, 3.5 m wide),
optionally a signalised intersection I1 between RB2 and RB3 (a 20 m gap bridged by connectors).
The ego's rear axle starts at x = 10, y = 0, heading 0, at `speed` m/s.
"""

from __future__ import annotations

import numpy as np

LANE_W = 3.5


def _rect(x0, x1, y0, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def straight_road_dict(speed: float = 10.0, with_intersection: bool = False, ego_x: float = 10.0,
                       with_oncoming: bool = False) -> dict:
    """Scene dict (see module doc). `with_oncoming` adds an off-route westbound roadblock RBO at
    y in [-5.25, -1.75] (lane LO); the ego's history is at constant `speed` ending at x = `ego_x`."""
    blocks = [(0.0, 60.0), (60.0, 120.0), (140.0, 200.0) if with_intersection else (120.0, 180.0)]
    lanes, roadblocks = [], []
    for i, (x0, x1) in enumerate(blocks, start=1):
        roadblocks.append({"id": f"RB{i}", "polygon": _rect(x0, x1, -LANE_W / 2, 1.5 * LANE_W)})
        for name, yc in (("a", 0.0), ("b", LANE_W)):
            lanes.append({
                "id": f"L{i}{name}", "roadblock_id": f"RB{i}",
                "polygon": _rect(x0, x1, yc - LANE_W / 2, yc + LANE_W / 2),
                "centerline": [[x0, yc], [(x0 + x1) / 2, yc], [x1, yc]],
                "speed_limit": 15.0, "successors": [], "predecessors": [],
            })
    by_id = {lane["id"]: lane for lane in lanes}
    connectors, rbc, intersections = [], [], []
    route = ["RB1", "RB2", "RB3"]
    for name in ("a", "b"):
        by_id[f"L1{name}"]["successors"].append(f"L2{name}")
        by_id[f"L2{name}"]["predecessors"].append(f"L1{name}")
        if with_intersection:
            yc = 0.0 if name == "a" else LANE_W
            cid = f"C{name}"
            connectors.append({
                "id": cid, "roadblock_id": "RBC1",
                "polygon": _rect(120.0, 140.0, yc - LANE_W / 2, yc + LANE_W / 2),
                "centerline": [[120.0, yc], [130.0, yc], [140.0, yc]],
                "speed_limit": None, "successors": [f"L3{name}"], "predecessors": [f"L2{name}"],
            })
            by_id[f"L2{name}"]["successors"].append(cid)
            by_id[f"L3{name}"]["predecessors"].append(cid)
        else:
            by_id[f"L2{name}"]["successors"].append(f"L3{name}")
            by_id[f"L3{name}"]["predecessors"].append(f"L2{name}")
    if with_intersection:
        rbc.append({"id": "RBC1", "polygon": _rect(120.0, 140.0, -LANE_W / 2, 1.5 * LANE_W)})
        intersections.append({"id": "I1", "polygon": _rect(119.5, 140.5, -LANE_W / 2 - 3, 1.5 * LANE_W + 3)})
        route = ["RB1", "RB2", "RBC1", "RB3"]
    if with_oncoming:
        x1 = blocks[-1][1]
        roadblocks.append({"id": "RBO", "polygon": _rect(0.0, x1, -1.5 * LANE_W, -LANE_W / 2)})
        lanes.append({
            "id": "LO", "roadblock_id": "RBO", "polygon": _rect(0.0, x1, -1.5 * LANE_W, -LANE_W / 2),
            "centerline": [[x1, -LANE_W], [0.0, -LANE_W]], "speed_limit": 15.0, "successors": [], "predecessors": [],
        })
    history = [
        {"t": t, "x": ego_x + speed * t, "y": 0.0, "heading": 0.0, "vx": speed, "vy": 0.0, "ax": 0.0, "ay": 0.0}
        for t in (-1.5, -1.0, -0.5, 0.0)
    ]
    return {
        "format": "scene/1",
        "token": "straight0000001",
        "map": {
            "lanes": lanes, "lane_connectors": connectors, "roadblocks": roadblocks,
            "roadblock_connectors": rbc, "intersections": intersections, "carparks": [], "crosswalks": [],
        },
        "route": {"roadblock_ids": route},
        "ego": {"history": history},
        "command": "straight",
        "agents": [],
        "traffic_lights": [],
        "human_trajectory": constant_speed_plan(speed),
    }


def constant_speed_plan(speed: float, y: float = 0.0, interval: float = 0.5, count: int = 8) -> dict:
    """Straight plan along +x at `speed` (ego frame), optionally drifting to lateral offset `y`."""
    return {
        "interval": interval,
        "poses": [[speed * interval * k, y * k / count, 0.0] for k in range(1, count + 1)],
    }


def add_box(scene: dict, agent_id: str, kind: str, x: float, y: float, heading: float = 0.0,
            speed: float = 0.0, length: float = 4.5, width: float = 1.9, times=None, accel: float = 0.0) -> dict:
    """Append an object moving along its heading at `speed` (+ `accel`, floored at 0) to a scene dict."""
    times = np.round(np.arange(0, 41) * 0.1, 1) if times is None else times
    states = []
    for t in times:
        v = max(speed + accel * t, 0.0)
        s = speed * t + 0.5 * accel * t * t if accel >= 0 or speed + accel * t > 0 else speed * speed / (-2 * accel)
        states.append({
            "t": float(t), "x": x + s * np.cos(heading), "y": y + s * np.sin(heading), "heading": heading,
            "vx": v * np.cos(heading), "vy": v * np.sin(heading),
        })
    scene["agents"].append({"id": agent_id, "type": kind, "length": length, "width": width, "states": states})
    return scene

