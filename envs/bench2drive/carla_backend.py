"""Bench2Drive on a CARLA 0.9.16 server: connect, run one route per `reset` in synchronous mode, read the
sensors frame-matched, and show the world as the same `TickView` the built-in world produces, so the
criteria (`envs.bench2drive.criteria`) score both backends with one code path. A dead or silent server
raises `SimulationCrashed`; `envs.bench2drive.carla_eval.drive_route` turns that into the leaderboard's
'Failed - Simulation crashed'.

`carla` is imported lazily (pip extra `roadloop[carla]`); everything is tested against an in-process
stand-in only (docs/carla_backend.md says what that does and does not verify).
"""

from __future__ import annotations

import math
import os
import queue
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from envs.backends.bench2drive_routes import B2DRoute
from envs.bench2drive.carla_route import (TRIGGER_DISTANCE, LaneGraph, RouteExtras, build_lane_graph, densify_route,
                                          pose_to_carla, route_scenario_from_carla, transform_pose)
from envs.bench2drive.route_scenario import ActorKind, Role, RouteScenario
from envs.bench2drive.tick import TickView
from envs.sim.scene import LightStatus

STEER_SIGN = 1.0
"""roadloop control steer -> carla.VehicleControl.steer. Both are positive to the right (the built-in ego
model follows CARLA's convention), so no flip; kept as a named constant because the frames differ."""
EMERGENCY_BLUEPRINTS = ("vehicle.ford.ambulance", "vehicle.carlamotors.firetruck", "vehicle.dodge.charger_police",
                        "vehicle.dodge.charger_police_2020")
"""Blueprints with special lights (YieldToEmergencyVehicle uses the ambulance); CARLA >= 0.9.14 also tags
them with the attribute special_type=emergency."""
_BOX_ACTORS = ("vehicle.", "walker.", "static.")
"""Actors shown as boxes to the criteria. `traffic.*` (lights, signs) are left out: their boxes are trigger
areas, not poles, so hitting a pole only shows in the collision sensor (`drive_route`'s unscored list)."""
_NOT_BOXES = ("static.trigger",)
"""Invisible volumes (friction triggers) that nothing collides with."""
_LIGHT_STATUS = {"Red": LightStatus.RED, "Yellow": LightStatus.YELLOW, "Green": LightStatus.GREEN}
DEFAULT_SPEED_LIMIT = 50.0 / 3.6
"""[m/s] when the server reports no speed limit at the ego (CARLA towns' urban default)."""
TRIGGER_WINDOW = 5
"""Route points searched ahead of the last index by the scenario triggerer (leaderboard ScenarioTriggerer)."""


class SimulationCrashed(RuntimeError):
    """The server died, timed out or sent no sensor data: the route ends 'Failed - Simulation crashed'."""


def _carla_module():
    try:
        import carla
    except ImportError as error:
        raise ImportError("backend='carla' needs the CARLA client: pip install 'roadloop[carla]' "
                          "(carla==0.9.16, Python 3.11/3.12) and a running CARLA 0.9.15/0.9.16 server") from error
    return carla


# --- configuration ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraSpec:
    """An RGB camera on the ego (leaderboard sensor dict: CARLA ego frame, x forward, y right, z up)."""

    name: str
    x: float = 1.5
    y: float = 0.0
    z: float = 2.4
    """[m] mount position."""
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    """[deg] CARLA rotation (yaw clockwise)."""
    width: int = 800
    height: int = 600
    """[px]"""
    fov: float = 100.0
    """[deg] horizontal field of view."""


@dataclass(frozen=True)
class CarlaConfig:
    """One CARLA server and how the backend uses it. Defaults follow Bench2Drive's evaluator (spec §5)."""

    host: str = "localhost"
    port: int = 2000
    """RPC port; the server also uses port+1 (streaming) and port+2, so parallel servers need >= 3 apart."""
    tm_port: int = 8000
    """Traffic Manager port (one TM per server)."""
    client_timeout: float = 300.0
    """[s] carla.Client.set_timeout (Bench2Drive: 300)."""
    tick_timeout: float = 600.0
    """[s] world.tick timeout (Bench2Drive --timeout 600)."""
    sensor_timeout: float = 300.0
    """[s] wait for a camera's image of the current frame (Bench2Drive: 300)."""
    dt: float = 0.05
    """[s] fixed_delta_seconds (20 Hz)."""
    tm_seed: int = 0
    """Traffic Manager random device seed (leaderboard --traffic-manager-seed)."""
    cameras: tuple[CameraSpec, ...] = ()
    actor_radius: float = 100.0
    """[m] actors farther from the ego are not in the TickView (nor in the min-speed average)."""
    max_actors: int = 64
    """A: actor slots of the TickView; the nearest actors win when more are in range."""
    warmup_ticks: int = 10
    """Ticks after spawning before the episode starts (sensor warm-up; leaderboard: 10). Not counted."""
    server_command: str | None = None
    """Shell command starting a server, formatted with {port} and {gpu}, e.g. "$CARLA_ROOT/CarlaUE4.sh
    -RenderOffScreen -nosound -carla-rpc-port={port} -graphicsadapter={gpu}". None: never launch."""
    gpu: int = 0
    server_start_wait: float = 30.0
    """[s] sleep after launching (Bench2Drive: 30)."""
    connect_attempts: int = 20
    connect_retry_wait: float = 5.0
    """[s] between connection attempts (Bench2Drive: 20 attempts, 5 s apart)."""
    ego_blueprint: str = "vehicle.lincoln.mkz_2020"
    device: str = "cpu"

    def __post_init__(self):
        for name in ("client_timeout", "tick_timeout", "sensor_timeout", "dt", "actor_radius"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value!r}: must be a positive number")
        if self.max_actors < 1 or self.connect_attempts < 1 or self.warmup_ticks < 0:
            raise ValueError(f"max_actors={self.max_actors!r}, connect_attempts={self.connect_attempts!r}, "
                             f"warmup_ticks={self.warmup_ticks!r}: need >= 1, >= 1, >= 0")
        if self.cameras and self.warmup_ticks < 1:
            raise ValueError(f"warmup_ticks={self.warmup_ticks!r}: cameras need >= 1 tick before the first image")
        if len({c.name for c in self.cameras}) != len(self.cameras):
            raise ValueError(f"cameras={[c.name for c in self.cameras]!r}: names must be unique")

    def for_worker(self, index: int, base_port: int = 30000, base_tm_port: int = 50000,
                   spacing: int = 150) -> "CarlaConfig":
        """This config with worker `index`'s ports (Bench2Drive: 30000+150 i / 50000+150 i) and GPU."""
        if index < 0 or spacing < 3:
            raise ValueError(f"index={index!r}, spacing={spacing!r}: need index >= 0 and spacing >= 3")
        return replace(self, port=base_port + spacing * index, tm_port=base_tm_port + spacing * index)


class ServerLauncher:
    """Starts `config.server_command` in its own process group and kills the whole group on `stop`."""

    def __init__(self, config: CarlaConfig):
        if not config.server_command:
            raise ValueError("server_command=None: nothing to launch")
        self.config, self.process = config, None

    def start(self) -> None:
        command = self.config.server_command.format(port=self.config.port, gpu=self.config.gpu)
        self.process = subprocess.Popen(shlex.split(os.path.expandvars(command)), start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(self.config.server_start_wait)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)   # CarlaUE4.sh forks the real server: kill the group
            self.process.wait()
        self.process = None


@dataclass
class SensorFrame:
    """What the ego's sensors delivered for one frame."""

    frame: int
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """camera name -> (H, W, 3) uint8 RGB."""
    collisions: list[tuple[int, str]] = field(default_factory=list)
    """(other actor id, type_id) per collision-sensor event this frame (CARLA reports one per contact)."""
    lane_invasions: int = 0
    """Lane-invasion events this frame (not scored by Bench2Drive; for observations/rewards)."""


# --- backend ----------------------------------------------------------------------------------------------

class CarlaBackend:
    """One CARLA server driven in synchronous mode, one route at a time (B = 1).

    >>> backend = CarlaBackend(CarlaConfig(port=2000))
    >>> view = backend.reset(route, extras)          # TickView of tick 0; backend.scenario is the static context
    >>> view = backend.step(torch.tensor([[steer, throttle, brake]]))
    >>> backend.close()
    """

    def __init__(self, config: CarlaConfig = CarlaConfig(), carla_module=None, launcher=None):
        self.config = config
        self.carla = carla_module if carla_module is not None else _carla_module()
        if launcher is None and config.server_command:
            launcher = ServerLauncher(config)
        self.launcher = launcher
        self.client = self.world = self.ego = self._traffic_manager = None
        self.scenario: RouteScenario | None = None
        """Static context of the current route built from the CARLA map (dense route, lanes, lights, stops)."""
        self.sensors: SensorFrame | None = None
        self._graphs: dict[str, LaneGraph] = {}
        self._needs_restart = False
        self._sensor_actors, self._queues, self._lights = [], {}, []
        self._slots: dict[int, int] = {}
        self.slot_actor_ids: list[int] = []
        """carla actor id in each TickView actor slot of the last view (-1: empty); names collision messages."""
        self.slot_type_ids: list[str] = []
        """Blueprint id in each slot of the last view ('' when empty)."""
        self._static_info: dict[int, tuple[int, int]] = {}

    # --- connection
    def connect(self) -> None:
        """Connect (launching the server first when a launcher is set), retrying like Bench2Drive."""
        if self.launcher is not None and (self._needs_restart or self.client is None):
            self.launcher.stop()
            self.launcher.start()
        error = None
        for attempt in range(self.config.connect_attempts):
            try:
                client = self.carla.Client(self.config.host, self.config.port)
                client.set_timeout(self.config.client_timeout)
                client.get_server_version()
                self.client, self._needs_restart = client, False
                return
            except RuntimeError as caught:
                error = caught
                if attempt + 1 < self.config.connect_attempts:
                    time.sleep(self.config.connect_retry_wait)
        self.client = None
        raise SimulationCrashed(f"no CARLA server at {self.config.host}:{self.config.port} after "
                                f"{self.config.connect_attempts} attempts: {error}") from error

    def _crash(self, what: str, error: Exception) -> SimulationCrashed:
        """Forget the server (the next reset reconnects, relaunching it when a launcher is set)."""
        self._needs_restart, self.client, self.world, self.ego, self._traffic_manager = True, None, None, None, None
        self._sensor_actors, self._queues = [], {}
        return SimulationCrashed(f"{what}: {error}")

    # --- episode
    def reset(self, route: B2DRoute, extras: RouteExtras | None = None) -> TickView:
        """Load the route's town, densify its keypoints, spawn the ego and its sensors; view of tick 0."""
        extras = extras or RouteExtras(None, None)
        self._destroy_actors()
        self.scenario = None
        if self.client is None or self._needs_restart:
            self.connect()
        try:
            self.world = self._load_world(route.town, extras)
            graph = self._graph(route.town)
            dense = densify_route(graph, route.keypoints)
            self._spawn_ego(dense, route.keypoints)
            limit = float(self.ego.get_speed_limit()) / 3.6
            self.scenario, light_ids, self._has_trigger = route_scenario_from_carla(
                route, extras, graph, dense, self.world, limit if limit > 0 else DEFAULT_SPEED_LIMIT,
                seed=self.config.tm_seed)
            by_id = {a.id: a for a in self.world.get_actors().filter("traffic.traffic_light*")}
            self._lights = [by_id[i] for i in light_ids]
            self._spawn_sensors()
            self._slots, self._static_info = {}, {}
            self._route_index, self._triggered, self._tick = 0, False, 0
            frame = None
            for _ in range(self.config.warmup_ticks):
                self.ego.apply_control(self.carla.VehicleControl())
                frame = self.world.tick(self.config.tick_timeout)
            self.sensors = self._read_sensors(frame) if frame is not None else SensorFrame(-1)
            return self._view()
        except RuntimeError as error:   # a dead server, a timeout, a failed spawn, a silent sensor
            raise self._crash(f"route {route.route_id} setup", error) from error

    def step(self, control: Tensor) -> TickView:
        """Apply (1, 3) or (3,) steer [-1, 1] (positive right), throttle [0, 1], brake [0, 1]; tick once."""
        if self.ego is None:
            raise RuntimeError("step() before reset() (or after a crash): call reset(route) first")
        values = torch.as_tensor(control, dtype=torch.float64).reshape(-1)
        if values.numel() != 3 or not bool(torch.isfinite(values).all()):
            raise ValueError(f"control={control!r}: need 3 finite values (steer, throttle, brake)")
        steer, throttle, brake = (float(v) for v in values)
        command = self.carla.VehicleControl(throttle=min(max(throttle, 0.0), 1.0),
                                            steer=STEER_SIGN * min(max(steer, -1.0), 1.0),
                                            brake=min(max(brake, 0.0), 1.0))
        try:
            self.ego.apply_control(command)
            frame = self.world.tick(self.config.tick_timeout)
            self.sensors = self._read_sensors(frame)
            self._tick += 1
            return self._view()
        except RuntimeError as error:
            raise self._crash(f"tick {self._tick + 1}", error) from error

    def close(self) -> None:
        """Destroy the route's actors, give the world back to asynchronous mode, stop a launched server."""
        self._destroy_actors()
        if self.world is not None and not self._needs_restart:
            try:   # as the leaderboard leaves it: asynchronous world and traffic manager
                settings = self.world.get_settings()
                settings.synchronous_mode, settings.fixed_delta_seconds = False, None
                self.world.apply_settings(settings)
                self._traffic_manager.set_synchronous_mode(False)
            except RuntimeError:
                pass   # the server is gone; nothing to give back
        if self.launcher is not None:
            self.launcher.stop()
        self.client = self.world = None

    # --- setup helpers
    def _load_world(self, town: str, extras: RouteExtras):
        carla, config = self.carla, self.config
        world = self.client.load_world(town, reset_settings=False)
        settings = world.get_settings()
        settings.synchronous_mode, settings.fixed_delta_seconds = True, config.dt
        settings.deterministic_ragdolls, settings.spectator_as_ego = True, False
        settings.tile_stream_distance = settings.actor_active_distance = 650.0   # leaderboard, large maps
        world.apply_settings(settings)
        traffic_manager = self._traffic_manager = self.client.get_trafficmanager(config.tm_port)
        traffic_manager.set_synchronous_mode(True)
        traffic_manager.set_random_device_seed(config.tm_seed)
        traffic_manager.set_hybrid_physics_mode(True)
        world.reset_all_traffic_lights()
        if extras.weather:
            weather = carla.WeatherParameters()
            for key, value in extras.weather.items():
                if hasattr(weather, key):   # leaderboard: unknown attributes are ignored
                    setattr(weather, key, value)
            world.set_weather(weather)
        world.tick(config.tick_timeout)
        return world

    def _graph(self, town: str) -> LaneGraph:
        if town not in self._graphs:
            self._graphs[town] = build_lane_graph(self.world.get_map())
        return self._graphs[town]

    def _spawn_ego(self, dense: np.ndarray, keypoints: np.ndarray) -> None:
        carla = self.carla
        blueprint = self.world.get_blueprint_library().find(self.config.ego_blueprint)
        blueprint.set_attribute("role_name", "hero")
        x, y, yaw = pose_to_carla(*dense[0])
        z = float(keypoints[0, 2]) if keypoints.shape[1] > 2 else 0.0
        transform = carla.Transform(carla.Location(x=x, y=y, z=z + 0.5), carla.Rotation(yaw=yaw))
        self.ego = self.world.try_spawn_actor(blueprint, transform)
        if self.ego is None:
            raise SimulationCrashed(f"could not spawn the ego at route[0] ({x:.2f}, {y:.2f}): spawn point occupied")

    def _spawn_sensors(self) -> None:
        carla, library = self.carla, self.world.get_blueprint_library()
        specs = [(c.name, "sensor.camera.rgb", c) for c in self.config.cameras]
        specs += [("collision", "sensor.other.collision", None), ("lane_invasion", "sensor.other.lane_invasion", None)]
        for name, type_id, camera in specs:
            blueprint = library.find(type_id)
            transform = carla.Transform()
            if camera is not None:
                for key, value in (("image_size_x", camera.width), ("image_size_y", camera.height),
                                   ("fov", camera.fov)):
                    blueprint.set_attribute(key, str(value))
                transform = carla.Transform(carla.Location(x=camera.x, y=camera.y, z=camera.z),
                                            carla.Rotation(pitch=camera.pitch, yaw=camera.yaw, roll=camera.roll))
            sensor = self.world.spawn_actor(blueprint, transform, attach_to=self.ego)
            self._queues[name] = queue.Queue()
            sensor.listen(self._queues[name].put)
            self._sensor_actors.append(sensor)

    def _destroy_actors(self) -> None:
        if self._needs_restart:
            self._sensor_actors, self._queues, self.ego = [], {}, None
            return
        try:
            for sensor in self._sensor_actors:
                sensor.stop()
                sensor.destroy()
            if self.ego is not None:
                self.ego.destroy()
        except RuntimeError:
            self._needs_restart = True
        self._sensor_actors, self._queues, self.ego = [], {}, None

    # --- per tick
    def _read_sensors(self, frame: int) -> SensorFrame:
        """Frame-matched sensor data: each camera's image of `frame` (older ones dropped), then every
        collision / lane-invasion event up to `frame` (those sensors only report when something happens)."""
        out = SensorFrame(frame)
        deadline = time.monotonic() + self.config.sensor_timeout
        for camera in self.config.cameras:
            while True:
                try:
                    item = self._queues[camera.name].get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    raise SimulationCrashed(f"camera {camera.name!r} sent no image for frame {frame} within "
                                            f"{self.config.sensor_timeout} s") from None
                if item.frame == frame:
                    pixels = np.frombuffer(item.raw_data, np.uint8).reshape(item.height, item.width, 4)
                    out.images[camera.name] = pixels[..., 2::-1].copy()   # BGRA -> RGB
                    break
        for name in ("collision", "lane_invasion"):
            while True:
                try:
                    event = self._queues[name].get_nowait()
                except queue.Empty:
                    break
                if name == "collision":
                    out.collisions.append((int(event.other_actor.id), str(event.other_actor.type_id)))
                else:
                    out.lane_invasions += 1
        return out

    def _actor_static(self, actor) -> tuple[int, int]:
        """(ActorKind, Role) of an actor from its blueprint and role_name, cached per id."""
        info = self._static_info.get(actor.id)
        if info is None:
            type_id, attributes = actor.type_id, actor.attributes
            if type_id.startswith("walker."):
                kind = ActorKind.PEDESTRIAN
            elif type_id.startswith("vehicle."):
                if type_id in EMERGENCY_BLUEPRINTS or attributes.get("special_type") == "emergency":
                    kind = ActorKind.EMERGENCY
                elif attributes.get("base_type") == "bicycle":
                    kind = ActorKind.BICYCLE
                else:
                    kind = ActorKind.VEHICLE
            else:
                kind = ActorKind.STATIC
            # leaderboard roles: hero, background (BackgroundBehavior), scenario; TM traffic counts as background
            role = Role.SCENARIO if attributes.get("role_name") == "scenario" else Role.BACKGROUND
            info = self._static_info[actor.id] = (int(kind), int(role))
        return info

    def _view(self) -> TickView:
        """TickView (B = 1) of the world now: ego, the nearest actors in `actor_radius` (stable slots), lights."""
        config, dtype, device = self.config, torch.float64, self.config.device
        snapshot = self.world.get_snapshot()
        ego_x, ego_y, ego_heading, ego_speed, ego_accel, ego_yaw_rate, ego_size = self._ego_state(snapshot)
        rows = []   # (distance, id, kind, role, x, y, heading, speed, length, width)
        type_ids = {}
        for actor in self.world.get_actors():
            type_id = type_ids[actor.id] = actor.type_id
            if actor.id == self.ego.id or not type_id.startswith(_BOX_ACTORS) or type_id.startswith(_NOT_BOXES):
                continue
            state = snapshot.find(actor.id)
            if state is None:
                continue
            kind, role = self._actor_static(actor)
            box = actor.bounding_box
            x, y, heading = _box_centre(state.get_transform(), box.location.x, box.location.y)
            distance = math.hypot(x - ego_x, y - ego_y)
            if distance <= config.actor_radius:
                velocity = state.get_velocity()
                speed = velocity.x * math.cos(heading) - velocity.y * math.sin(heading)  # along the box x axis
                rows.append((distance, actor.id, kind, role, x, y, heading, speed, 2 * box.extent.x, 2 * box.extent.y))
        rows = self._assign_slots(rows)
        count = config.max_actors
        table = torch.zeros(count, 8, dtype=dtype)
        present = torch.zeros(count, dtype=torch.bool)
        self.slot_actor_ids, self.slot_type_ids = [-1] * count, [""] * count
        if rows:
            slots = torch.tensor([slot for slot, _ in rows])
            table[slots] = torch.tensor([row[2:] for _, row in rows], dtype=dtype)
            present[slots] = True
        for slot, row in rows:
            self.slot_actor_ids[slot], self.slot_type_ids[slot] = row[1], type_ids[row[1]]
        lights = [_LIGHT_STATUS.get(getattr(light.get_state(), "name", str(light.get_state())), LightStatus.UNKNOWN)
                  for light in self._lights]
        active = self._scenario_active(ego_x, ego_y)
        as_row = lambda values, kind=dtype: torch.tensor([values], dtype=kind, device=device)  # noqa: E731
        return TickView(
            ego_pose=as_row([ego_x, ego_y, ego_heading]), ego_speed=as_row(ego_speed),
            ego_accel=as_row(ego_accel), ego_yaw_rate=as_row(ego_yaw_rate), ego_size=as_row(ego_size),
            actor_pose=table[None, :, 2:5].to(device), actor_speed=table[None, :, 5].to(device),
            actor_size=table[None, :, 6:8].to(device), actor_kind=table[None, :, 0].long().to(device),
            actor_role=table[None, :, 1].long().to(device), actor_present=present[None].to(device),
            light_state=torch.tensor([[int(s) for s in lights]], dtype=torch.int64, device=device).reshape(1, -1),
            tick=torch.tensor([self._tick], dtype=torch.int64, device=device), dt=config.dt,
            scenario_active=torch.tensor([active], device=device))

    @property
    def emergency_slot(self) -> int:
        """Slot of the first emergency vehicle with role `scenario` in the last view (YieldToEmergencyVehicle's
        vehicle, for the criteria's yield check), -1 for none."""
        for slot, type_id in enumerate(self.slot_type_ids):
            info = self._static_info.get(self.slot_actor_ids[slot])
            if type_id and info == (int(ActorKind.EMERGENCY), int(Role.SCENARIO)):
                return slot
        return -1

    def _ego_state(self, snapshot):
        state = snapshot.find(self.ego.id)
        box = self.ego.bounding_box
        x, y, heading = _box_centre(state.get_transform(), box.location.x, box.location.y)
        velocity, accel, angular = state.get_velocity(), state.get_acceleration(), state.get_angular_velocity()
        speed = velocity.x * math.cos(heading) - velocity.y * math.sin(heading)   # forward component (y flipped)
        return (x, y, heading, speed, [accel.x, -accel.y], -math.radians(angular.z),
                [2.0 * box.extent.x, 2.0 * box.extent.y])

    def _assign_slots(self, rows: list) -> list:
        """Keep each actor in its slot while it stays in range, so criteria dedup by slot works; the nearest
        newcomers take the free slots."""
        rows.sort()
        in_range = {row[1] for row in rows}
        self._slots = {i: s for i, s in self._slots.items() if i in in_range}
        free = sorted(set(range(self.config.max_actors)) - set(self._slots.values()), reverse=True)
        placed = []
        for row in rows:
            slot = self._slots.get(row[1])
            if slot is None and free:
                slot = self._slots[row[1]] = free.pop()
            if slot is not None:
                placed.append((slot, row))
        return placed

    def _scenario_active(self, x: float, y: float) -> bool:
        """Latched once the ego's route point (searched TRIGGER_WINDOW ahead, leaderboard ScenarioTriggerer)
        is within TRIGGER_DISTANCE of the trigger point; stays on to the route end (the end is unknown)."""
        route = self.scenario.route
        window = route[self._route_index:self._route_index + TRIGGER_WINDOW, :2]
        self._route_index += int(np.argmin(np.hypot(window[:, 0] - x, window[:, 1] - y)))
        if self._has_trigger and not self._triggered:
            gap = route[self._route_index, :2] - route[self.scenario.trigger_index, :2]
            self._triggered = bool(math.hypot(*gap) < TRIGGER_DISTANCE)
        return self._triggered


def _box_centre(transform, box_x: float, box_y: float) -> tuple[float, float, float]:
    """roadloop (x, y, heading) of a bounding box whose centre sits at (box_x, box_y) in the actor frame."""
    x, y, heading = transform_pose(transform)
    # actor-frame offsets are CARLA (y right); in roadloop's frame the lateral offset flips
    return (x + box_x * math.cos(heading) + box_y * math.sin(heading),
            y + box_x * math.sin(heading) - box_y * math.cos(heading), heading)
