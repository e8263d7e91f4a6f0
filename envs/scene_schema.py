"""JSON Schema (draft 2020-12) of the `scene/1` scene file and of a plan file (specs/scene-format.md).

The schema checks structure only: keys, types, enums, signs, list lengths. What it cannot say (times on
the 10 Hz grid, known ids, simple polygons, finite numbers) is checked by `envs.scene_file`.
`x-messages` is our own annotation keyword: the error text `envs.scene_file` reports when that
keyword of that node fails; validators ignore it. The schemas are kept as Python dicts only (no
docs/*.schema.json copy to drift); `json.dumps(SCENE_SCHEMA)` publishes one.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from envs.sim.scene import AgentType, Command, LightStatus

_NUMBER = {"type": "number"}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_ID = {"type": "string", "minLength": 1}
_IDS = {"type": "array", "items": _ID}

_POINT = {
    "type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2,
    "x-messages": {"type": "expected an [x, y] pair", "minItems": "expected an [x, y] pair",
                   "maxItems": "expected an [x, y] pair"},
}
_POLYGON = {
    "description": "Outline ring [[x, y], ...] in metres, first vertex not repeated.",
    "type": "array", "items": _POINT, "minItems": 3,
    "x-messages": {"minItems": "a polygon needs at least 3 vertices"},
}
_POLYLINE = {
    "description": "Centerline [[x, y], ...] in metres, in driving direction.",
    "type": "array", "items": _POINT, "minItems": 2,
    "x-messages": {"minItems": "a centerline needs at least 2 points"},
}


def _object(required: list[str], **properties) -> dict:
    """A closed object: unknown keys are rejected (a misspelt key must not silently vanish)."""
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


_LANE = _object(
    ["id", "roadblock_id", "polygon", "centerline"],
    id=_ID,
    roadblock_id=_ID,
    polygon=_POLYGON,
    centerline=_POLYLINE,
    speed_limit={"type": ["number", "null"], "exclusiveMinimum": 0, "description": "[m/s], null if unknown"},
    successors=_IDS,
    predecessors=_IDS,
)
_AREA = _object(["id", "polygon"], id=_ID, polygon=_POLYGON)

MAP_LAYERS = ("lanes", "lane_connectors", "roadblocks", "roadblock_connectors", "intersections", "carparks",
              "crosswalks")
"""Map lists of scene/1, in file order; each is optional (absent = empty)."""

_MAP = _object(
    [],
    **{name: {"type": "array", "items": _LANE if name in ("lanes", "lane_connectors") else _AREA}
       for name in MAP_LAYERS},
)

_ROUTE = _object(
    ["roadblock_ids"],
    roadblock_ids={
        "description": "Ordered roadblock / roadblock-connector ids, the ego's roadblock first.",
        "type": "array", "items": _ID, "minItems": 1,
        "x-messages": {"minItems": "the route must name at least one roadblock"},
    },
)

_VEHICLE = _object(
    ["length", "width", "wheel_base", "rear_axle_to_center"],
    length=_POSITIVE, width=_POSITIVE, wheel_base=_POSITIVE, rear_axle_to_center=_POSITIVE,
)
_HISTORY_STATE = _object(
    ["t", "x", "y", "heading", "vx", "vy", "ax", "ay"],
    **{key: _NUMBER for key in ("t", "x", "y", "heading", "vx", "vy", "ax", "ay")},
)
_EGO = _object(
    ["history"],
    vehicle=_VEHICLE,
    history={
        "description": "Rear-axle states, oldest first, the last at t = 0; vx, vy, ax, ay in the ego frame.",
        "type": "array", "items": _HISTORY_STATE, "minItems": 1,
        "x-messages": {"minItems": "the history needs at least the current frame (t = 0)"},
    },
)

_AGENT_STATE = _object(
    ["t", "x", "y", "heading", "vx", "vy"],
    **{key: _NUMBER for key in ("t", "x", "y", "heading", "vx", "vy")},
)
_AGENT = _object(
    ["id", "type", "length", "width", "states"],
    id=_ID,
    type={"title": "agent type", "enum": [t.label for t in AgentType]},
    length=_POSITIVE,
    width=_POSITIVE,
    states={
        "description": "Box-centre states at 10 Hz within t = 0.0 .. 4.0 s, in order; vx, vy global.",
        "type": "array", "items": _AGENT_STATE, "minItems": 1,
        "x-messages": {"minItems": "an object needs at least one state"},
    },
)

_LIGHT_STATE = _object(
    ["t", "status"],
    t=_NUMBER,
    status={"title": "traffic-light status", "enum": [s.label for s in LightStatus]},
)
_TRAFFIC_LIGHT = _object(
    ["lane_connector_id", "states"],
    lane_connector_id=_ID,
    states={
        "description": "Status at 10 Hz within t = 0.0 .. 4.0 s, in order; missing steps are unknown.",
        "type": "array", "items": _LIGHT_STATE, "minItems": 1,
        "x-messages": {"minItems": "a traffic light needs at least one state"},
    },
)

_POSE = {"type": "array", "items": _NUMBER, "minItems": 3, "maxItems": 3}
_PLAN = _object(
    ["interval", "poses"],
    interval={"description": "[s], a positive multiple of 0.1", **_POSITIVE},
    poses={
        "description": "[[x, y, heading], ...] in the current ego rear-axle frame, first at t = interval.",
        "type": "array", "items": _POSE, "minItems": 1,
    },
)

PLAN_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "roadloop plan (ego-frame trajectory)",
    **_PLAN,
}
"""A planned trajectory file: `{"interval": 0.5, "poses": [[x, y, heading], ...]}`."""

SCENE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "roadloop scene/1",
    **_object(
        ["format", "token", "map", "route", "ego"],
        format={"const": "scene/1"},
        token=_ID,
        meta={
            "description": "Free-form labels; only scenario_type is read (Scene.scenario_type).",
            "type": "object",
            "properties": {"scenario_type": {"type": "string", "minLength": 1}},
        },
        map=_MAP,
        route=_ROUTE,
        ego=_EGO,
        command={"title": "command", "enum": [c.label for c in Command]},
        agents={"type": "array", "items": _AGENT},
        traffic_lights={"type": "array", "items": _TRAFFIC_LIGHT},
        human_trajectory=_PLAN,
        reference_trajectory=_PLAN,
    ),
}
"""The scene/1 document. Optional keys: meta, command (default unknown), agents, traffic_lights,
human_trajectory, reference_trajectory, every map list, ego.vehicle (default Pacifica), lane
speed_limit (null), successors and predecessors (empty)."""


# --- validators ------------------------------------------------------------------------------------
# jsonschema costs ~10 us per number, which is seconds for a large map, so a derived fast schema is
# tried first and the full one runs only to find and word an error.

_NUMBER_TYPES = (int, float)  # what json.loads makes of numbers; bool (a subclass of int) is not one


def _fast_matrix(validator, spec, instance, schema):
    """`x-matrix: [min_rows, cols]`: a list of >= min_rows lists of `cols` numbers."""
    min_rows, cols = spec
    if type(instance) is not list or not (len(instance) >= min_rows and all(
            type(row) is list and len(row) == cols and all(type(v) in _NUMBER_TYPES for v in row) for row in instance)):
        yield ValidationError("not a numeric matrix")


def _fast_records(validator, spec, instance, schema):
    """`x-records: [[key, ...], min_rows]`: a list of >= min_rows objects holding exactly these keys, all numbers."""
    keys, min_rows = spec
    wanted = set(keys)
    if type(instance) is not list or not (len(instance) >= min_rows and all(
            type(row) is dict and row.keys() == wanted and all(type(v) in _NUMBER_TYPES for v in row.values())
            for row in instance)):
        yield ValidationError("not a list of numeric records")


_LIST_KEYS = {"type", "items", "minItems", "description", "x-messages"}


def _fast_schema(node: Any) -> Any:
    """The schema with its two bulkiest shapes (point lists; lists of all-number states) replaced by
    one-pass checks. On JSON-parsed input it accepts exactly what the full schema accepts; on other
    input (numpy scalars) it may reject more, and the full schema then decides."""
    if not isinstance(node, dict):
        return node
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict) and set(node) <= _LIST_KEYS:
        min_rows = node.get("minItems", 0)
        if (set(items) <= {"type", "items", "minItems", "maxItems", "x-messages"} and items.get("type") == "array"
                and items.get("items") == {"type": "number"} and items.get("minItems") == items.get("maxItems")):
            return {"type": "array", "x-matrix": [min_rows, items["minItems"]]}
        props = items.get("properties", {})
        if (set(items) == {"type", "additionalProperties", "required", "properties"} and items["type"] == "object"
                and items["additionalProperties"] is False and set(items["required"]) == set(props)
                and all(p == {"type": "number"} for p in props.values())):
            return {"type": "array", "x-records": [list(props), min_rows]}
    return {key: _fast_schema(value) for key, value in node.items()}


def validators_for(schema: dict) -> tuple[Draft202012Validator, Draft202012Validator]:
    """(fast pre-check, full validator that words the error) for one schema."""
    fast = validators.extend(Draft202012Validator, {"x-matrix": _fast_matrix, "x-records": _fast_records})
    return fast(_fast_schema(schema)), Draft202012Validator(schema)


SCENE_VALIDATORS = validators_for(SCENE_SCHEMA)
"""(fast pre-check, full validator) of SCENE_SCHEMA."""
PLAN_VALIDATORS = validators_for(PLAN_SCHEMA)
