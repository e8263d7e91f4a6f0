"""Reading, writing and validating `scene/1` scene files and plan files (specs/scene-format.md).

Structure is checked with `envs.scene_schema`, then meaning (finite numbers, the 10 Hz grid, known ids,
simple polygons) here. Every rejection is one `SceneFormatError` line that names the JSON path and value.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import stat
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from envs.scene_schema import MAP_LAYERS, PLAN_VALIDATORS, SCENE_VALIDATORS
from envs.sim.geometry import polygon_is_simple
from envs.sim.map import Area, Lane, RoadMap
from envs.sim.scene import (
    NUM_STEPS, STEP_S, AgentTracks, AgentType, Command, EgoHistory, LightStatus, Plan, Scene, TrafficLights,
)
from envs.sim.vehicle import PACIFICA, VehicleParams

FORMAT = "scene/1"
TIME_TOLERANCE_S = 1e-6
"""How far a time may sit from the 0.1 s grid (or from t = 0) and still count as on it [s]."""

_NOT_IN_FORMAT = ("max_steering_angle", "accel_time_constant", "steering_time_constant")
"""VehicleParams fields scene/1 cannot store: they always read back as the Pacifica's."""


class SceneFormatError(ValueError):
    """A scene or plan file (or dict) that breaks scene/1; the message is one line naming the field."""


# --- reading ---------------------------------------------------------------------------------------

def load_scene(path: str | os.PathLike) -> Scene:
    """Read and validate a scene/1 file; errors are prefixed with the file path."""
    data = _read_json(path)
    try:
        return scene_from_dict(data)
    except SceneFormatError as err:
        raise SceneFormatError(f"{path}: {err}") from None


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and validate a plan file `{"interval", "poses"}`; errors are prefixed with the file path."""
    data = _read_json(path)
    try:
        return plan_from_dict(data)
    except SceneFormatError as err:
        raise SceneFormatError(f"{path}: {err}") from None


def scene_from_dict(data: Any) -> Scene:
    """Validate a parsed scene/1 document and build the Scene (numpy arrays, T = 41 steps).

    Of `meta`, only `scenario_type` is kept (Scene.scenario_type); other meta keys are accepted and dropped.
    """
    _require_finite(data, [], "")
    _require_schema(data, SCENE_VALIDATORS, "")
    road_map = _map_from_dict(data["map"])
    route = tuple(data["route"]["roadblock_ids"])
    known_blocks = set(road_map.roadblock_ids)
    for i, block in enumerate(route):
        if block not in known_blocks:
            _fail(f"route.roadblock_ids[{i}]", block,
                  "not a roadblock or roadblock connector of the map (declared, or a lane's roadblock_id)")
    ego = data["ego"]
    human, reference = data.get("human_trajectory"), data.get("reference_trajectory")
    meta = data.get("meta", {})
    return Scene(
        token=data["token"],
        map=road_map,
        route_roadblock_ids=route,
        history=_history_from_dict(ego["history"]),
        agents=_agents_from_dict(data.get("agents", [])),
        traffic_lights=_lights_from_dict(data.get("traffic_lights", []), road_map),
        command=Command[data.get("command", "unknown").upper()],
        vehicle=_vehicle_from_dict(ego.get("vehicle")),
        human_trajectory=None if human is None else _plan_from_checked(human, "human_trajectory"),
        reference_trajectory=None if reference is None else _plan_from_checked(reference, "reference_trajectory"),
        scenario_type=meta.get("scenario_type", "unknown"),
    )


def plan_from_dict(data: Any, field: str = "trajectory") -> Plan:
    """Validate `{"interval": s, "poses": [[x, y, heading], ...]}` -> Plan; `field` names it in errors."""
    _require_finite(data, [], field)
    _require_schema(data, PLAN_VALIDATORS, field)
    return _plan_from_checked(data, field)


def _read_json(path: str | os.PathLike) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneFormatError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SceneFormatError(f"{path}: cannot read: {err}") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as err:
        raise SceneFormatError(f"{path}: not valid JSON: {err}") from None
    except SceneFormatError as err:
        raise SceneFormatError(f"{path}: not valid JSON: {err}") from None


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """json.loads keeps the last of repeated keys silently; a scene file must not be ambiguous."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise SceneFormatError(f"duplicate key {key!r} in an object")
        out[key] = value
    return out


# --- error reporting -------------------------------------------------------------------------------

def _json_path(parts: list, root: str = "") -> str:
    """['agents', 3, 'states'] -> 'agents[3].states' (after `root`, if given)."""
    text = root
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(where: str, value: Any, reason: str) -> NoReturn:
    raise SceneFormatError(f"{where}={_show(value)}: {reason}")


def _require_finite(value: Any, parts: list, root: str) -> None:
    """Python's json accepts NaN/Infinity; no field of scene/1 may hold one."""
    if isinstance(value, float) and not math.isfinite(value):
        _fail(_json_path(parts, root), value, "must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _require_finite(item, [*parts, key], root)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _require_finite(item, [*parts, i], root)


_TYPE_NAMES = {"number": "a number", "string": "a string", "array": "a list", "object": "an object", "null": "null"}


def _require_schema(data: Any, checks: tuple[Draft202012Validator, Draft202012Validator], root: str) -> None:
    fast, full = checks
    if fast.is_valid(data):
        return
    error = best_match(full.iter_errors(data))  # the full schema finds (and words) the actual error
    if error is not None:
        raise SceneFormatError(_schema_message(error, data, root))


def _schema_message(error: ValidationError, data: Any, root: str) -> str:
    """One line for a jsonschema error: the JSON path, the value, and what was expected."""
    parts = list(error.absolute_path)
    where, value, kind = _json_path(parts, root), _show(error.instance), error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    poses_at = _poses_index(parts)
    if poses_at is not None and kind in ("type", "minItems", "maxItems"):
        poses = data
        for part in parts[: poses_at + 1]:
            poses = poses[part]
        return (f"{_json_path(parts[: poses_at + 1], root)}: expected a list of [x, y, heading] triples, "
                f"got {_shape_text(poses)}")
    custom = schema.get("x-messages", {}).get(kind)
    if custom is not None:
        return f"{where}={value}: {custom}"
    if kind == "required":
        missing = next(key for key in error.validator_value if key not in error.instance)
        return f"{_json_path([*parts, missing], root)}: required key is missing"
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        extra = next(key for key in error.instance if key not in known)
        scope = "top-level key" if not parts and not root else "key"
        return f"{_json_path([*parts, extra], root)}: unknown {scope} (valid: {', '.join(known)})"
    if kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"{where}={value}: expected {' or '.join(_TYPE_NAMES.get(t, t) for t in types)}"
    if kind == "enum":
        return f"{where}={value}: unknown {schema.get('title', 'value')} (valid: {', '.join(error.validator_value)})"
    if kind == "const":
        return f"{where}={value}: must be {error.validator_value!r}"
    if kind == "exclusiveMinimum" and error.validator_value == 0:
        return f"{where}={value}: must be a positive number"
    if kind == "minLength":
        return f"{where}={value}: must be a non-empty string"
    if kind == "minItems":
        return f"{where}: needs at least {error.validator_value} items, got {len(error.instance)}"
    return f"{where}={value}: {error.message}"


def _poses_index(parts: list) -> int | None:
    """Index of 'poses' when the path is a plan's poses list or one of its entries, else None."""
    if parts and parts[-1] == "poses":
        return len(parts) - 1
    if len(parts) >= 2 and parts[-2] == "poses" and isinstance(parts[-1], int):
        return len(parts) - 2
    return None


def _shape_text(value: Any) -> str:
    if not isinstance(value, list):
        kinds = {dict: "an object", str: "a string", bool: "a boolean", type(None): "null"}
        return kinds.get(type(value), "a number")
    try:
        return f"shape {np.asarray(value, dtype=float).shape}"
    except (TypeError, ValueError):
        return f"a ragged or non-numeric list of {len(value)}"


# --- semantic checks and conversion ----------------------------------------------------------------

def _step_index(t: float, where: str) -> int:
    """Step k of a time t = k * 0.1 s, 0 <= k <= 40 (within TIME_TOLERANCE_S)."""
    k = round(t / STEP_S)
    if not (0 <= k < NUM_STEPS and abs(t - k * STEP_S) <= TIME_TOLERANCE_S):
        _fail(where, t, f"must be a multiple of {STEP_S} s in [0, {(NUM_STEPS - 1) * STEP_S:.1f}]")
    return k


def _step_indices(states: list[dict], where: str) -> list[int]:
    """Grid steps of a 10 Hz states list, which must be strictly increasing."""
    steps: list[int] = []
    for i, state in enumerate(states):
        k = _step_index(state["t"], f"{where}[{i}].t")
        if steps and k <= steps[-1]:
            _fail_not_increasing(states, i, where)
        steps.append(k)
    return steps


def _fail_not_increasing(states: list[dict], i: int, where: str) -> NoReturn:
    _fail(f"{where}[{i}].t", states[i]["t"], f"times must be strictly increasing (previous t={states[i - 1]['t']!r})")


def _ring(points: list, where: str) -> np.ndarray:
    ring = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if np.array_equal(ring[0], ring[-1]):
        raise SceneFormatError(f"{where}: the last vertex repeats the first (rings close implicitly; drop it)")
    if not polygon_is_simple(ring):
        is_flat = np.linalg.matrix_rank(ring - ring[0]) < 2
        reason = "zero-area polygon (all vertices on one line)" if is_flat else "self-intersecting polygon"
        raise SceneFormatError(f"{where}: {reason}")
    return ring


def _map_from_dict(data: dict) -> RoadMap:
    layers: dict[str, tuple] = {}
    lane_seen: dict[str, str] = {}
    for name in MAP_LAYERS:
        area_seen: dict[str, str] = {}
        objects = []
        for i, item in enumerate(data.get(name, [])):
            where = f"map.{name}[{i}]"
            # Lanes and connectors share one id space (successor edges may point to either).
            seen = lane_seen if name in ("lanes", "lane_connectors") else area_seen
            if item["id"] in seen:
                _fail(f"{where}.id", item["id"], f"duplicate id (also {seen[item['id']]})")
            seen[item["id"]] = where
            polygon = _ring(item["polygon"], f"{where}.polygon")
            if name in ("lanes", "lane_connectors"):
                objects.append(Lane(
                    id=item["id"], roadblock_id=item["roadblock_id"], polygon=polygon,
                    centerline=np.asarray(item["centerline"], dtype=np.float64).reshape(-1, 2),
                    speed_limit=None if item.get("speed_limit") is None else float(item["speed_limit"]),
                    successors=tuple(item.get("successors", ())), predecessors=tuple(item.get("predecessors", ())),
                    is_connector=name == "lane_connectors",
                ))
            else:
                objects.append(Area(id=item["id"], polygon=polygon))
        layers[name] = tuple(objects)
    for name in ("lanes", "lane_connectors"):
        for i, lane in enumerate(layers[name]):
            for edge in ("successors", "predecessors"):
                for j, other in enumerate(getattr(lane, edge)):
                    if other not in lane_seen:
                        _fail(f"map.{name}[{i}].{edge}[{j}]", other, "unknown lane or lane connector id")
    return RoadMap(**layers)


def _history_from_dict(states: list[dict]) -> EgoHistory:
    t = np.array([s["t"] for s in states], dtype=np.float64)
    for i in range(1, len(t)):
        if t[i] <= t[i - 1]:
            _fail_not_increasing(states, i, "ego.history")
    if abs(t[-1]) > TIME_TOLERANCE_S:
        _fail(f"ego.history[{len(t) - 1}].t", states[-1]["t"], "the last history frame must be the current one, t = 0")
    t[-1] = 0.0
    columns = np.array([[s[k] for k in ("x", "y", "heading", "vx", "vy", "ax", "ay")] for s in states], np.float64)
    return EgoHistory(t=t, pose=columns[:, 0:3], velocity=columns[:, 3:5], acceleration=columns[:, 5:7])


def _vehicle_from_dict(data: dict | None) -> VehicleParams:
    if data is None:
        return PACIFICA
    try:
        return VehicleParams(**{key: float(value) for key, value in data.items()})
    except ValueError as err:  # VehicleParams names the field as `vehicle.<name>=...`
        raise SceneFormatError(f"ego.{err}") from None


def _agents_from_dict(agents: list[dict]) -> AgentTracks:
    if not agents:
        return AgentTracks.empty()
    num = len(agents)
    pose, velocity = np.zeros((num, NUM_STEPS, 3)), np.zeros((num, NUM_STEPS, 2))
    valid = np.zeros((num, NUM_STEPS), dtype=bool)
    seen: dict[str, int] = {}
    for a, agent in enumerate(agents):
        if agent["id"] in seen:
            _fail(f"agents[{a}].id", agent["id"], f"duplicate agent id (also agents[{seen[agent['id']]}])")
        seen[agent["id"]] = a
        steps = _step_indices(agent["states"], f"agents[{a}].states")
        values = np.array([[s[k] for k in ("x", "y", "heading", "vx", "vy")] for s in agent["states"]], np.float64)
        pose[a, steps], velocity[a, steps], valid[a, steps] = values[:, :3], values[:, 3:], True
    return AgentTracks(
        ids=tuple(agent["id"] for agent in agents),
        types=np.array([AgentType[agent["type"].upper()] for agent in agents], dtype=np.int64),
        size=np.array([[agent["length"], agent["width"]] for agent in agents], dtype=np.float64),
        pose=pose, velocity=velocity, valid=valid,
    )


def _lights_from_dict(lights: list[dict], road_map: RoadMap) -> TrafficLights:
    if not lights:
        return TrafficLights.empty()
    connectors = {lane.id for lane in road_map.lane_connectors}
    status = np.full((len(lights), NUM_STEPS), LightStatus.UNKNOWN, dtype=np.int64)
    seen: dict[str, int] = {}
    for i, light in enumerate(lights):
        cid = light["lane_connector_id"]
        if cid not in connectors:
            _fail(f"traffic_lights[{i}].lane_connector_id", cid, "not a lane connector of the map")
        if cid in seen:
            _fail(f"traffic_lights[{i}].lane_connector_id", cid, f"duplicate light (also traffic_lights[{seen[cid]}])")
        seen[cid] = i
        steps = _step_indices(light["states"], f"traffic_lights[{i}].states")
        status[i, steps] = [LightStatus[s["status"].upper()] for s in light["states"]]
    return TrafficLights(lane_connector_ids=tuple(seen), status=status)


def _plan_from_checked(data: dict, field: str) -> Plan:
    interval = data["interval"]
    k = round(interval / STEP_S)
    if k < 1 or abs(interval - k * STEP_S) > TIME_TOLERANCE_S:
        _fail(f"{field}.interval", interval, f"must be a positive multiple of {STEP_S} s")
    # k / 10 rather than k * 0.1: 3 / 10 == 0.3 exactly as written, 3 * 0.1 is 0.30000000000000004.
    return Plan(interval=k / round(1 / STEP_S), poses=np.asarray(data["poses"], dtype=np.float64).reshape(-1, 3))


# --- writing ---------------------------------------------------------------------------------------

def scene_to_dict(scene: Scene) -> dict:
    """The scene/1 document of a Scene (plain Python types; `RoadMap.stop_lines` is not part of scene/1
    and is dropped). Raises SceneFormatError for vehicle parameters scene/1 cannot store."""
    for name in _NOT_IN_FORMAT:
        if getattr(scene.vehicle, name) != getattr(PACIFICA, name):
            _fail(f"vehicle.{name}", getattr(scene.vehicle, name),
                  "scene/1 stores only length, width, wheel_base, rear_axle_to_center; others must be the Pacifica's")
    data: dict[str, Any] = {
        "format": FORMAT,
        "token": scene.token,
        "meta": {"scenario_type": scene.scenario_type},
        "map": {name: [_map_object_to_dict(o) for o in getattr(scene.map, name)] for name in MAP_LAYERS},
        "route": {"roadblock_ids": list(scene.route_roadblock_ids)},
        "ego": {
            "vehicle": {key: float(getattr(scene.vehicle, key))
                        for key in ("length", "width", "wheel_base", "rear_axle_to_center")},
            "history": _history_to_list(scene.history),
        },
        "command": Command(scene.command).label,
        "agents": _agents_to_list(scene.agents),
        "traffic_lights": [
            {"lane_connector_id": cid,
             "states": [{"t": k / 10, "status": LightStatus(s).label} for k, s in enumerate(row.tolist())]}
            for cid, row in zip(scene.traffic_lights.lane_connector_ids, np.asarray(scene.traffic_lights.status))
        ],
    }
    if scene.human_trajectory is not None:
        data["human_trajectory"] = plan_to_dict(scene.human_trajectory)
    if scene.reference_trajectory is not None:
        data["reference_trajectory"] = plan_to_dict(scene.reference_trajectory)
    return data


def plan_to_dict(plan: Plan) -> dict:
    """`{"interval": s, "poses": [[x, y, heading], ...]}` of a Plan (poses (H, 3))."""
    return {"interval": float(plan.interval), "poses": np.asarray(plan.poses, dtype=np.float64).tolist()}


def save_scene(scene: Scene, path: str | os.PathLike) -> None:
    """Validate and write a scene/1 file atomically (temp file in the same folder, then os.replace)."""
    data = scene_to_dict(scene)
    scene_from_dict(data)  # never write a file that would not load
    _write_atomic(data, path)


def save_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Validate and write a plan file atomically."""
    data = plan_to_dict(plan)
    plan_from_dict(data)
    _write_atomic(data, path)


def _map_object_to_dict(obj: Lane | Area) -> dict:
    out = {"id": obj.id}
    if isinstance(obj, Lane):
        out["roadblock_id"] = obj.roadblock_id
    out["polygon"] = np.asarray(obj.polygon, dtype=np.float64).tolist()
    if isinstance(obj, Lane):
        out |= {
            "centerline": np.asarray(obj.centerline, dtype=np.float64).tolist(),
            "speed_limit": None if obj.speed_limit is None else float(obj.speed_limit),
            "successors": list(obj.successors),
            "predecessors": list(obj.predecessors),
        }
    return out


def _history_to_list(history: EgoHistory) -> list[dict]:
    rows = np.concatenate([np.asarray(history.t, np.float64)[:, None], history.pose, history.velocity,
                           history.acceleration], axis=1).tolist()
    return [dict(zip(("t", "x", "y", "heading", "vx", "vy", "ax", "ay"), row)) for row in rows]


def _agents_to_list(agents: AgentTracks) -> list[dict]:
    out = []
    pose, velocity, valid = np.asarray(agents.pose), np.asarray(agents.velocity), np.asarray(agents.valid, bool)
    for a, agent_id in enumerate(agents.ids):
        steps = np.flatnonzero(valid[a])
        rows = np.concatenate([pose[a, steps], velocity[a, steps]], axis=1).tolist()
        out.append({
            "id": agent_id,
            "type": AgentType(int(agents.types[a])).label,
            "length": float(agents.size[a, 0]),
            "width": float(agents.size[a, 1]),
            "states": [{"t": int(k) / 10, **dict(zip(("x", "y", "heading", "vx", "vy"), row))}
                       for k, row in zip(steps, rows)],
        })
    return out


def _write_atomic(data: dict, path: str | os.PathLike) -> None:
    """Write `data` as JSON text to `path` through a temp file in the same folder and os.replace, so a
    reader never sees a partial file. Permissions are what `open(path, "w")` would give: 0o666 less the
    umask for a new file, the old permission bits when replacing one (mkstemp's 0o600 would hide files
    from other users)."""
    path = Path(path)
    text = _json_text(data) + "\n"
    fd, tmp = _create_temp_beside(path)
    try:
        try:
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp_beside(path: Path) -> tuple[int, Path]:
    """Create and open a new hidden temp file next to `path` -> (fd, temp path).

    Created with mode 0o666 so the kernel applies the umask exactly as for `open()` (reading the umask
    would need os.umask, which sets it process-wide and races with other threads).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"path={str(path)!r}: no free temp file name beside it after 100 tries")


def _json_text(value: Any, indent: int = 0, width: int = 100) -> str:
    """Indented JSON that keeps short containers (a vertex, a state) on one line; floats as repr."""
    flat = json.dumps(value, allow_nan=False)
    if not isinstance(value, (dict, list)) or not value or indent + len(flat) <= width:
        return flat
    pad, end = " " * (indent + 2), " " * indent
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(key)}: {_json_text(item, indent + 2, width)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{end}}}"
    items = [pad + _json_text(item, indent + 2, width) for item in value]
    return "[\n" + ",\n".join(items) + f"\n{end}]"
