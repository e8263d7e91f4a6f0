"""An in-process stand-in of the `carla` 0.9.16 client module that runs roadloop's built-in Bench2Drive world.

Only the calls `envs.bench2drive.carla_backend` makes exist, with CARLA's names, argument order and
conventions: left-handed world frame (y right, yaw clockwise in degrees), angular velocity in deg/s,
positive steer = right, sensors delivering through `listen` callbacks with frame numbers, RuntimeError on
timeouts. Under it a `StandinServer` owns one built-in world per loaded town (`envs.bench2drive.world`),
exposes the route's RoadMap as CARLA topology/waypoints and can crash or refuse connections on demand.
Inject it with `sys.modules["carla"] = make_carla_module(server)` (or pass it to the backend). Value types
and the map live in `carla_standin_map.py`.
"""

from __future__ import annotations

import fnmatch
import math
import types
from dataclasses import replace

import numpy as np
import torch

from envs.bench2drive.route_scenario import ActorKind, Role, RouteScenario
from envs.sim.scene import LightStatus
from tests.envs.bench2drive.carla_standin_map import (LIGHT_FROM_STATUS, BoundingBox, LaneMarking, LaneType, Location,
                                                      Map, Rotation, TrafficLightState, Transform, Vector3D,
                                                      VehicleControl, WeatherParameters, Waypoint, WorldSettings,
                                                      carla_transform)

STEER_SIGN = 1.0
"""Built-in control steer (positive = right, as CARLA's VehicleControl) -> CARLA steer."""

_BLUEPRINTS = {ActorKind.VEHICLE: "vehicle.tesla.model3", ActorKind.PEDESTRIAN: "walker.pedestrian.0001",
               ActorKind.BICYCLE: "vehicle.diamondback.century", ActorKind.STATIC: "static.prop.trafficcone01",
               ActorKind.EMERGENCY: "vehicle.ford.ambulance"}


# --- actors -----------------------------------------------------------------------------------------------

class ActorBlueprint:
    def __init__(self, blueprint_id: str):
        self.id, self.attributes = blueprint_id, {}

    def set_attribute(self, key: str, value: str) -> None:
        self.attributes[key] = str(value)

    def has_attribute(self, key: str) -> bool:
        return True


class BlueprintLibrary:
    def find(self, blueprint_id: str) -> ActorBlueprint:
        return ActorBlueprint(blueprint_id)


class Actor:
    def __init__(self, world, actor_id: int, type_id: str, attributes: dict, size=(1.0, 1.0)):
        self._world, self.id, self.type_id, self.attributes = world, actor_id, type_id, dict(attributes)
        self.bounding_box = BoundingBox(extent=Vector3D(size[0] / 2, size[1] / 2, 0.8))
        self.is_alive = True

    # dynamic state comes from the world's current TickView
    def _pose_speed(self):
        return self._world._actor_pose_speed(self)

    def get_transform(self) -> Transform:
        x, y, heading, _ = self._pose_speed()
        return carla_transform(x, y, heading)

    def get_location(self) -> Location:
        return self.get_transform().location

    def get_velocity(self) -> Vector3D:
        _, _, heading, speed = self._pose_speed()
        return Vector3D(speed * math.cos(heading), -speed * math.sin(heading), 0.0)

    def get_acceleration(self) -> Vector3D:
        return self._world._actor_accel(self)

    def get_angular_velocity(self) -> Vector3D:
        return self._world._actor_angular_velocity(self)

    def destroy(self) -> bool:
        self._world._check()
        self.is_alive = False
        self._world._actors.pop(self.id, None)
        return True


class Vehicle(Actor):
    def apply_control(self, control: VehicleControl) -> None:
        self._world._check()
        self._world._ego_control = control

    def get_speed_limit(self) -> float:
        return self._world._scenario.speed_limit * 3.6


class Sensor(Actor):
    def listen(self, callback) -> None:
        self._callback = callback

    def stop(self) -> None:
        self._callback = None


class TrafficLight(Actor):
    def __init__(self, world, actor_id, index: int, stop_waypoints: list):
        super().__init__(world, actor_id, "traffic.traffic_light", {})
        self._index, self._stop_waypoints = index, stop_waypoints

    def get_state(self) -> TrafficLightState:
        return self._world._light_state(self._index)

    @property
    def state(self) -> TrafficLightState:
        return self.get_state()

    def get_stop_waypoints(self) -> list:
        return list(self._stop_waypoints)


class TrafficSign(Actor):
    def __init__(self, world, actor_id, spec):
        super().__init__(world, actor_id, "traffic.stop", {})
        self._transform = carla_transform(float(spec.center[0]), float(spec.center[1]), spec.heading)
        self.trigger_volume = BoundingBox(extent=Vector3D(spec.length / 2, spec.width / 2, 1.0))

    def get_transform(self) -> Transform:
        return self._transform


class ActorList(list):
    def filter(self, pattern: str) -> "ActorList":
        return ActorList(a for a in self if fnmatch.fnmatch(a.type_id, pattern))


class ActorSnapshot:
    def __init__(self, actor: Actor):
        self._transform, self._velocity = actor.get_transform(), actor.get_velocity()
        self._angular, self._accel = actor.get_angular_velocity(), actor.get_acceleration()

    def get_transform(self):
        return self._transform

    def get_velocity(self):
        return self._velocity

    def get_angular_velocity(self):
        return self._angular

    def get_acceleration(self):
        return self._accel


class WorldSnapshot:
    def __init__(self, world):
        self.frame = world._frame
        self.timestamp = types.SimpleNamespace(frame=world._frame, elapsed_seconds=world._elapsed,
                                               delta_seconds=world._settings.fixed_delta_seconds)
        self._snaps = {i: ActorSnapshot(a) for i, a in world._actors.items() if not isinstance(a, Sensor)}

    def find(self, actor_id: int):
        return self._snaps.get(actor_id)


class CollisionEvent:
    def __init__(self, frame, actor, other_actor):
        self.frame, self.actor, self.other_actor = frame, actor, other_actor
        self.normal_impulse = Vector3D()


class LaneInvasionEvent:
    def __init__(self, frame, actor):
        self.frame, self.actor, self.crossed_lane_markings = frame, actor, [LaneMarking()]


class Image:
    def __init__(self, frame: int, width: int, height: int):
        self.frame, self.width, self.height = frame, width, height
        pixels = np.zeros((height, width, 4), np.uint8)
        pixels[..., 2] = frame % 256          # red channel carries the frame number (BGRA order)
        pixels[..., 3] = 255
        self.raw_data = pixels.tobytes()


# --- world ------------------------------------------------------------------------------------------------

class World:
    """One loaded town: the built-in world of its RouteScenario, stepped by `tick()`."""

    def __init__(self, server, town: str):
        from envs.bench2drive.world import tick_view, world_init   # built-in world (H1)

        self._server, self.town = server, town
        self._scenario: RouteScenario = server.towns[town]
        self._map = Map(town, self._scenario.road_map)
        self._settings = WorldSettings()
        self._static, self._state = world_init([self._scenario], dt=0.05)
        self._view = tick_view(self._static, self._state)
        self._frame, self._elapsed, self._next_id = 7000, 0.0, 100
        self._actors: dict[int, Actor] = {}
        self._ego: Vehicle | None = None
        self._ego_control = VehicleControl()
        self._slot_actor: dict[int, Actor] = {}
        self._prev_lane = None
        self.weather = None
        self.spawned: list = []   # (blueprint id, attributes, transform, parent) of every spawn_actor call
        for index, light in enumerate(self._scenario.lights):
            waypoint = self._map.nearest(*np.asarray(light.stop_line, np.float64).mean(0), light.heading)
            self._add(TrafficLight(self, self._new_id(), index, [waypoint]))
        for sign in self._scenario.stop_signs:
            self._add(TrafficSign(self, self._new_id(), sign))

    def _check(self) -> None:
        if not self._server.alive:
            raise RuntimeError("time-out of 10000ms while waiting for the simulator, make sure the simulator "
                               "is ready and connected to localhost:2000")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _add(self, actor: Actor) -> Actor:
        self._actors[actor.id] = actor
        return actor

    # --- API
    def get_map(self) -> Map:
        self._check()
        return self._map

    def get_settings(self) -> WorldSettings:
        self._check()
        return self._settings

    def apply_settings(self, settings) -> int:
        self._check()
        self._settings = settings
        return self._frame

    def get_blueprint_library(self) -> BlueprintLibrary:
        self._check()
        return BlueprintLibrary()

    def set_weather(self, weather) -> None:
        self._check()
        self.weather = weather

    def reset_all_traffic_lights(self) -> None:
        self._check()

    def get_snapshot(self) -> WorldSnapshot:
        self._check()
        return WorldSnapshot(self)

    def get_actors(self) -> ActorList:
        self._check()
        self._sync_slot_actors()
        return ActorList(self._actors.values())

    def try_spawn_actor(self, blueprint, transform, attach_to=None):
        try:
            return self.spawn_actor(blueprint, transform, attach_to)
        except RuntimeError:
            if not self._server.alive:
                raise
            return None

    def spawn_actor(self, blueprint, transform, attach_to=None):
        self._check()
        self.spawned.append((blueprint.id, dict(blueprint.attributes), transform, attach_to))
        if blueprint.id.startswith("sensor."):
            return self._add(Sensor(self, self._new_id(), blueprint.id, blueprint.attributes))
        if not blueprint.id.startswith("vehicle.") or self._ego is not None:
            raise RuntimeError(f"Spawn failed because of collision at spawn position ({blueprint.id})")
        x, y = transform.location.x, -transform.location.y
        heading = -math.radians(transform.rotation.yaw)
        pose = torch.tensor([[x, y, heading]], dtype=self._state.ego_pose.dtype)
        self._state = replace(self._state, ego_pose=pose)
        from envs.bench2drive.world import tick_view

        self._view = tick_view(self._static, self._state)
        length, width = (float(v) for v in self._view.ego_size[0])
        self._ego = self._add(Vehicle(self, self._new_id(), blueprint.id, blueprint.attributes, (length, width)))
        return self._ego

    def tick(self, seconds: float = 10.0) -> int:
        from envs.bench2drive.world import world_step

        self._check()
        server = self._server
        server.ticks += 1
        if server.crash_at_tick is not None and server.ticks >= server.crash_at_tick:
            server.crash_at_tick = None
            server.alive = False
            self._check()
        if self._ego is None:   # nothing runs before the route's ego exists (the leaderboard ticks once after load)
            self._frame += 1
            return self._frame
        c = self._ego_control
        control = torch.tensor([[STEER_SIGN * c.steer, c.throttle, c.brake]], dtype=torch.float64)
        self._state, self._view = world_step(self._static, self._state, control, generator=server.generator)
        self._frame += 1
        self._elapsed += self._settings.fixed_delta_seconds or 0.05
        self._sync_slot_actors()
        self._fire_sensors()
        return self._frame

    def wait_for_tick(self, seconds: float = 10.0):
        return self.get_snapshot()

    # --- state exposed through actors
    def _sync_slot_actors(self) -> None:
        """Slots present in the built-in view are actors; despawned slots are destroyed."""
        view, specs = self._view, self._scenario.actors
        for slot in range(view.actor_present.shape[1]):
            present = bool(view.actor_present[0, slot]) if slot < len(specs) else False
            actor = self._slot_actor.get(slot)
            if present and actor is None:
                spec = specs[slot]
                kind = ActorKind(int(view.actor_kind[0, slot]))
                attributes = {"role_name": "background" if spec.role == Role.BACKGROUND else "scenario"}
                if kind == ActorKind.BICYCLE:
                    attributes["base_type"] = "bicycle"
                actor = Actor(self, self._new_id(), _BLUEPRINTS[kind], attributes, (1.0, 1.0))
                actor._slot = slot
                self._slot_actor[slot] = self._add(actor)
            elif not present and actor is not None:
                actor.is_alive = False
                self._actors.pop(actor.id, None)
                del self._slot_actor[slot]
            if actor is not None and present:
                length, width = (float(v) for v in view.actor_size[0, slot])
                actor.bounding_box.extent = Vector3D(length / 2, width / 2, 0.8)

    def _actor_pose_speed(self, actor):
        view = self._view
        if actor is self._ego:
            x, y, heading = (float(v) for v in view.ego_pose[0])
            return x, y, heading, float(view.ego_speed[0])
        slot = getattr(actor, "_slot", None)
        if slot is None:
            return 0.0, 0.0, 0.0, 0.0
        x, y, heading = (float(v) for v in view.actor_pose[0, slot])
        return x, y, heading, float(view.actor_speed[0, slot])

    def _actor_accel(self, actor) -> Vector3D:
        if actor is self._ego:
            ax, ay = (float(v) for v in self._view.ego_accel[0])
            return Vector3D(ax, -ay, 0.0)
        return Vector3D()

    def _actor_angular_velocity(self, actor) -> Vector3D:
        if actor is self._ego:   # CARLA: deg/s about a left-handed z axis
            return Vector3D(0.0, 0.0, -math.degrees(float(self._view.ego_yaw_rate[0])))
        return Vector3D()

    def _light_state(self, index: int) -> TrafficLightState:
        self._check()
        return LIGHT_FROM_STATUS[LightStatus(int(self._view.light_state[0, index]))]

    def _fire_sensors(self) -> None:
        server, frame = self._server, self._frame
        if server.mute_sensors_at_frame is not None and frame >= server.mute_sensors_at_frame:
            return
        collided = self._collisions()
        x, y, heading = (float(v) for v in self._view.ego_pose[0])
        lane = self._map.nearest(x, y, heading)._lane
        crossed = self._prev_lane is not None and lane is not self._prev_lane and lane in (
            self._prev_lane.left, self._prev_lane.right)
        self._prev_lane = lane
        for sensor in [a for a in self._actors.values() if isinstance(a, Sensor)]:
            callback = getattr(sensor, "_callback", None)
            if callback is None:
                continue
            if sensor.type_id == "sensor.camera.rgb":
                width = int(sensor.attributes.get("image_size_x", 800))
                height = int(sensor.attributes.get("image_size_y", 600))
                if server.stale_images:   # a late image of the previous frame arrives first
                    callback(Image(frame - 1, width, height))
                callback(Image(frame, width, height))
            elif sensor.type_id == "sensor.other.collision":
                for other in collided:
                    callback(CollisionEvent(frame, self._ego, other))
            elif sensor.type_id == "sensor.other.lane_invasion" and crossed:
                callback(LaneInvasionEvent(frame, self._ego))

    def _collisions(self) -> list:
        """Actors whose box overlaps the ego's (separating-axis test; touching counts)."""
        view = self._view
        if self._ego is None or not self._slot_actor:
            return []
        slots = sorted(self._slot_actor)
        ego = _corners(view.ego_pose[0].numpy(), view.ego_size[0].numpy())[None]
        boxes = _corners(view.actor_pose[0, slots].numpy(), view.actor_size[0, slots].numpy())
        return [self._slot_actor[s] for s, hit in zip(slots, _overlap(ego, boxes)) if hit]


def _corners(pose: np.ndarray, size: np.ndarray) -> np.ndarray:
    """(..., 4, 2) corners of boxes pose (..., 3), size (..., 2)."""
    c, s = np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])
    lon = np.array([1, -1, -1, 1]) * size[..., 0:1] / 2
    lat = np.array([1, 1, -1, -1]) * size[..., 1:2] / 2
    return np.stack([pose[..., 0:1] + lon * c - lat * s, pose[..., 1:2] + lon * s + lat * c], -1)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Do rectangles a, b (..., 4, 2) overlap? No separating edge normal among the 4 axes."""
    a, b = np.broadcast_arrays(a, b)
    separated = np.zeros(a.shape[:-2], dtype=bool)
    for box in (a, b):
        for k in (0, 1):
            edge = box[..., k + 1, :] - box[..., k, :]
            axis = np.stack([-edge[..., 1], edge[..., 0]], -1)[..., None, :]
            pa, pb = (a * axis).sum(-1), (b * axis).sum(-1)
            separated |= (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    return ~separated


# --- client -----------------------------------------------------------------------------------------------

class TrafficManager:
    def __init__(self, server, port: int):
        self._server, self._port = server, port
        self.synchronous = False
        self.seed = None

    def _check(self):
        if not self._server.alive:
            raise RuntimeError("trying to create rpc server for traffic manager; but the system failed to "
                               "create because of bind error.")

    def set_synchronous_mode(self, mode: bool) -> None:
        self._check()
        self.synchronous = bool(mode)

    def set_random_device_seed(self, seed: int) -> None:
        self._check()
        self.seed = int(seed)
        self._server.generator.manual_seed(int(seed))

    def set_hybrid_physics_mode(self, mode: bool) -> None:
        self._check()

    def get_port(self) -> int:
        return self._port


class StandinServer:
    """A fake CARLA server: towns (name -> RouteScenario), a port, and failure injection.

    `crash_at_tick`: the Nth world.tick() over the server's life raises RuntimeError and the server dies.
    `refuse_connections`: that many next connection attempts time out. `start()` is the launcher hook.
    """

    def __init__(self, towns: dict[str, RouteScenario], port: int = 2000, crash_at_tick: int | None = None,
                 refuse_connections: int = 0, stale_images: bool = False):
        self.towns, self.port = dict(towns), port
        self.crash_at_tick, self.refuse_connections = crash_at_tick, refuse_connections
        self.stale_images = stale_images
        self.mute_sensors_at_frame: int | None = None
        self.alive, self.ticks, self.launches, self.stops = True, 0, 0, 0
        self.world: World | None = None
        self.traffic_managers: dict[int, TrafficManager] = {}
        self.generator = torch.Generator().manual_seed(0)
        self.loads: list[str] = []

    def start(self) -> None:
        """Launcher hook: (re)start the server process with no world loaded."""
        self.launches += 1
        self.alive, self.world = True, None

    def stop(self) -> None:
        self.stops += 1
        self.alive = False


def make_carla_module(server: StandinServer) -> types.ModuleType:
    """A `carla` module object whose Client talks to `server`."""

    class Client:
        def __init__(self, host="127.0.0.1", port=2000, worker_threads=0):
            self._host, self._port, self._timeout = host, int(port), 10.0
            self._connected = False

        def set_timeout(self, seconds: float) -> None:
            self._timeout = float(seconds)

        def _check(self) -> None:
            if not self._connected:
                if server.refuse_connections > 0 or not server.alive or self._port != server.port:
                    server.refuse_connections = max(server.refuse_connections - 1, 0)
                    raise RuntimeError(f"time-out of {int(self._timeout * 1000)}ms while waiting for the simulator, "
                                       f"make sure the simulator is ready and connected to {self._host}:{self._port}")
                self._connected = True
            elif not server.alive:
                raise RuntimeError(f"time-out of {int(self._timeout * 1000)}ms while waiting for the simulator")

        def get_server_version(self) -> str:
            self._check()
            return "0.9.16"

        def get_client_version(self) -> str:
            return "0.9.16"

        def get_available_maps(self) -> list:
            self._check()
            return [f"/Game/Carla/Maps/{town}" for town in server.towns]

        def load_world(self, map_name: str, reset_settings: bool = True, map_layers=None) -> World:
            self._check()
            if map_name not in server.towns:
                raise RuntimeError(f"map '{map_name}' not found")
            settings = server.world._settings if server.world is not None and not reset_settings else None
            server.world = World(server, map_name)
            if settings is not None:
                server.world._settings = settings
            server.loads.append(map_name)
            return server.world

        def get_world(self) -> World:
            self._check()
            if server.world is None:
                server.world = World(server, next(iter(server.towns)))
            return server.world

        def get_trafficmanager(self, port: int = 8000) -> TrafficManager:
            self._check()
            return server.traffic_managers.setdefault(port, TrafficManager(server, port))

    module = types.ModuleType("carla")
    for obj in (Client, Location, Rotation, Transform, Vector3D, BoundingBox, VehicleControl, WorldSettings,
                WeatherParameters, LaneType, TrafficLightState, LaneMarking, World, Map, Waypoint, Actor, Vehicle,
                Sensor, TrafficLight, TrafficSign, ActorList, ActorBlueprint, BlueprintLibrary, WorldSnapshot,
                ActorSnapshot, CollisionEvent, LaneInvasionEvent, Image, TrafficManager):
        setattr(module, obj.__name__, obj)
    module.__version__ = "0.9.16-standin"
    module.server = server
    return module
