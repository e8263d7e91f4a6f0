"""Value types (Location, Transform, VehicleControl, settings, enums) and the Map / Waypoint of the `carla`
stand-in (`carla_standin.py`): a RoadMap exposed as CARLA roads, lanes and topology, in CARLA's left-handed
frame (y right, yaw clockwise in degrees)."""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
from scipy.spatial import cKDTree

from envs.sim.scene import LightStatus


# --- geometry value types ---------------------------------------------------------------------------------

class Vector3D:
    def __init__(self, x=0.0, y=0.0, z=0.0):
        self.x, self.y, self.z = float(x), float(y), float(z)

    def __repr__(self):
        return f"{type(self).__name__}(x={self.x}, y={self.y}, z={self.z})"


class Location(Vector3D):
    def distance(self, other) -> float:
        return math.dist((self.x, self.y, self.z), (other.x, other.y, other.z))


class Rotation:
    def __init__(self, pitch=0.0, yaw=0.0, roll=0.0):
        self.pitch, self.yaw, self.roll = float(pitch), float(yaw), float(roll)


class Transform:
    def __init__(self, location=None, rotation=None):
        self.location = location if location is not None else Location()
        self.rotation = rotation if rotation is not None else Rotation()


class BoundingBox:
    def __init__(self, location=None, extent=None):
        self.location = location if location is not None else Location()
        self.extent = extent if extent is not None else Vector3D()
        self.rotation = Rotation()


def carla_transform(x: float, y: float, heading: float, z: float = 0.0) -> Transform:
    """roadloop pose -> CARLA transform (y and yaw flipped, yaw in degrees)."""
    return Transform(Location(x, -y, z), Rotation(yaw=-math.degrees(heading)))


class VehicleControl:
    def __init__(self, throttle=0.0, steer=0.0, brake=0.0, hand_brake=False, reverse=False,
                 manual_gear_shift=False, gear=0):
        # carla.VehicleControl stores float32 (rpc::VehicleControl): 0.1234567891 reads back as 0.12345679104
        self.throttle, self.steer, self.brake = (float(np.float32(v)) for v in (throttle, steer, brake))
        self.hand_brake, self.reverse, self.manual_gear_shift, self.gear = hand_brake, reverse, manual_gear_shift, gear


class WorldSettings:
    def __init__(self, synchronous_mode=False, no_rendering_mode=False, fixed_delta_seconds=0.0, **kwargs):
        self.synchronous_mode, self.no_rendering_mode = synchronous_mode, no_rendering_mode
        self.fixed_delta_seconds = fixed_delta_seconds
        self.deterministic_ragdolls, self.spectator_as_ego = False, True
        self.tile_stream_distance, self.actor_active_distance = 3000.0, 2000.0
        for key, value in kwargs.items():
            setattr(self, key, value)


class WeatherParameters:
    _FIELDS = ("cloudiness", "precipitation", "precipitation_deposits", "wind_intensity", "sun_azimuth_angle",
               "sun_altitude_angle", "fog_density", "fog_distance", "wetness", "fog_falloff", "scattering_intensity",
               "mie_scattering_scale", "rayleigh_scattering_scale", "dust_storm")

    def __init__(self, **kwargs):
        for name in self._FIELDS:
            setattr(self, name, float(kwargs.pop(name, 0.0)))
        if kwargs:
            raise TypeError(f"WeatherParameters: unexpected {sorted(kwargs)}")


class LaneType(IntEnum):
    NONE = 1
    Driving = 2
    Parking = 1 << 9
    Any = -2


class TrafficLightState(IntEnum):
    Red = 0
    Yellow = 1
    Green = 2
    Off = 3
    Unknown = 4


LIGHT_FROM_STATUS = {LightStatus.GREEN: TrafficLightState.Green, LightStatus.YELLOW: TrafficLightState.Yellow,
                      LightStatus.RED: TrafficLightState.Red, LightStatus.UNKNOWN: TrafficLightState.Unknown}


class LaneMarking:
    def __init__(self, type="Broken"):
        self.type = type


# --- map --------------------------------------------------------------------------------------------------

class _Lane:
    """One lane of the RoadMap with the CARLA identity (road_id, section_id, lane_id) it is exposed under."""

    def __init__(self, lane, road_id: int, lane_id: int):
        self.lane, self.road_id, self.lane_id = lane, road_id, lane_id
        self.xy = np.asarray(lane.centerline, np.float64)
        self.arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(self.xy, axis=0).T))])
        self.heading = np.arctan2(*np.diff(self.xy, axis=0).T[::-1])
        ring = np.asarray(lane.polygon)
        area = 0.5 * abs(float(np.dot(ring[:, 0], np.roll(ring[:, 1], -1)) - np.dot(ring[:, 1], np.roll(ring[:, 0], -1))))
        self.width = area / max(self.arc[-1], 1e-9)   # polygon area / length: the mean lane width
        self.left = self.right = None

    def pose(self, s: float) -> tuple[float, float, float]:
        s = min(max(s, 0.0), self.arc[-1])
        i = int(np.clip(np.searchsorted(self.arc, s, side="right") - 1, 0, len(self.heading) - 1))
        return (float(np.interp(s, self.arc, self.xy[:, 0])), float(np.interp(s, self.arc, self.xy[:, 1])),
                float(self.heading[i]))


class Waypoint:
    def __init__(self, carla_map, lane: _Lane, s: float):
        self._map, self._lane, self.s = carla_map, lane, float(min(max(s, 0.0), lane.arc[-1]))
        x, y, heading = lane.pose(self.s)
        self.transform = carla_transform(x, y, heading)
        self.road_id, self.section_id, self.lane_id = lane.road_id, 0, lane.lane_id
        self.lane_width, self.lane_type = lane.width, LaneType.Driving
        self.is_junction = lane.lane.is_connector
        self.id = hash((lane.road_id, lane.lane_id, round(self.s, 3)))

    def next(self, distance: float) -> list:
        target = self.s + distance
        if target <= self._lane.arc[-1] + 1e-9:
            return [Waypoint(self._map, self._lane, target)]
        rest = target - self._lane.arc[-1]
        return [wp for nxt in self._lane.lane.successors
                for wp in Waypoint(self._map, self._map.lanes[nxt], 0.0).next(rest)] if rest > 1e-9 else \
            [Waypoint(self._map, self._map.lanes[nxt], 0.0) for nxt in self._lane.lane.successors]

    def next_until_lane_end(self, distance: float) -> list:
        end = self._lane.arc[-1]
        out = [Waypoint(self._map, self._lane, s) for s in np.arange(self.s + distance, end, distance)]
        if not out or end - out[-1].s > 1e-9:
            out.append(Waypoint(self._map, self._lane, end))
        return out

    def _side(self, other: _Lane | None):
        if other is None:
            return None
        return Waypoint(self._map, other, self.s / max(self._lane.arc[-1], 1e-9) * other.arc[-1])

    def get_left_lane(self):
        return self._side(self._lane.left)

    def get_right_lane(self):
        return self._side(self._lane.right)


class Map:
    """A RoadMap as CARLA roads: a roadblock is a road (lane ids -1, -2... from its left), a connector is a
    one-lane junction road."""

    def __init__(self, name: str, road_map):
        self.name = name
        self.lanes: dict[str, _Lane] = {}
        blocks: dict[str, list] = {}
        for lane in road_map.lanes:
            blocks.setdefault(lane.roadblock_id, []).append(lane)
        road_id = 0
        for lanes in blocks.values():
            road_id += 1
            ref = np.asarray(lanes[0].centerline)
            direction = ref[1] - ref[0]
            # left offset of each lane's start from the first lane's start, across its driving direction
            starts = np.array([np.asarray(lane.centerline)[0] for lane in lanes]) - ref[0]
            offsets = direction[0] * starts[:, 1] - direction[1] * starts[:, 0]
            ordered = [lanes[i] for i in np.argsort(offsets)[::-1]]
            wrapped = [_Lane(lane, road_id, -(k + 1)) for k, lane in enumerate(ordered)]
            for left, right in zip(wrapped[:-1], wrapped[1:]):
                left.right, right.left = right, left
            self.lanes.update({w.lane.id: w for w in wrapped})
        for lane in road_map.lane_connectors:
            road_id += 1
            self.lanes[lane.id] = _Lane(lane, road_id, -1)
        self._all = list(self.lanes.values())
        self._xy = np.concatenate([w.xy for w in self._all])
        self._owner = np.concatenate([np.full(len(w.xy), i) for i, w in enumerate(self._all)])
        self._tree = cKDTree(self._xy)

    def get_topology(self) -> list:
        return [(Waypoint(self, w, 0.0), Waypoint(self, w, w.arc[-1])) for w in self._all]

    def generate_waypoints(self, distance: float) -> list:
        return [Waypoint(self, w, s) for w in self._all for s in np.arange(0.0, w.arc[-1], distance)]

    def nearest(self, x: float, y: float, heading: float | None = None) -> Waypoint:
        """Waypoint on the lane centre closest to roadloop (x, y), preferring lanes along `heading`."""
        near = self._tree.query([x, y], k=min(32, len(self._xy)))[1]
        best = None
        for i in dict.fromkeys(self._owner[near]):
            lane = self._all[i]
            a, b = lane.xy[:-1], lane.xy[1:]
            ab = b - a
            t = np.clip(((np.array([x, y]) - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
            dist = np.hypot(*(a + t[:, None] * ab - np.array([x, y])).T)
            j = int(np.argmin(dist))
            penalty = 0.0 if heading is None or math.cos(lane.heading[j] - heading) > 0 else 1e3
            key = dist[j] + penalty
            if best is None or key < best[0]:
                best = (key, lane, lane.arc[j] + t[j] * (lane.arc[j + 1] - lane.arc[j]))
        return Waypoint(self, best[1], best[2])

    def get_waypoint(self, location, project_to_road=True, lane_type=LaneType.Driving):
        return self.nearest(location.x, -location.y)
