"""The CARLA backend (envs/bench2drive/carla_backend.py) against the in-process `carla` stand-in that runs the
built-in world: frame conversions, sync settings, sensors, crash/reconnect, and scores equal to the built-in
loop's on the same route and controls."""

import math
import sys

import numpy as np
import pytest
import torch

from envs.backends.bench2drive_routes import B2DRoute
from envs.bench2drive.carla_backend import CameraSpec, CarlaBackend, CarlaConfig, SimulationCrashed
from envs.bench2drive.carla_route import RouteExtras, resample
from envs.bench2drive.route_scenario import (ActorKind, ActorSpec, Behaviour, LightProgram, LightSpec, Role,
                                             RouteScenario)
from envs.sim.scene import LightStatus
from tests.envs.bench2drive.carla_standin import StandinServer, make_carla_module
from tests.envs.bench2drive.test_carla_route import arc_left, carla_keypoints, line, two_lane_map

FAST = dict(warmup_ticks=0, actor_radius=1e4, connect_retry_wait=0.0, connect_attempts=3, sensor_timeout=0.05)


def short_scenario(route_id: int, town: str) -> RouteScenario:
    """35 m straight along the right lane, nothing else."""
    path = line(5, 0, 40, 0, 36)
    route = np.column_stack([path, np.zeros(len(path))])
    return RouteScenario(route_id=route_id, scenario_type="ControlLoss", scenario_name="ControlLoss_1", town=town,
                         road_map=two_lane_map(), route=route, speed_limit=10.0, trigger_index=5)


def turn_scenario(route_id=3, town="Town01") -> RouteScenario:
    """Left turn on the two-lane map: a car on the left lane, a cone on the ego lane at x = 40 (hit when
    driving straight on), a bike further on, a light before the junction (green 10 s, then red)."""
    path = np.vstack([line(5, 0, 60, 0), arc_left(60, 20, 20, 41)[1:], line(80, 20, 80, 50)[1:]])
    heading = np.arctan2(*np.gradient(path, axis=0).T[::-1])
    route = resample(np.column_stack([path, heading]))
    specs = (ActorSpec(ActorKind.VEHICLE, line(0, 3.5, 60, 3.5), (4.5, 2.0), s0=25, speed0=4, target_speed=4),
             ActorSpec(ActorKind.STATIC, line(40, 0, 41, 0), (0.6, 0.6), behaviour=Behaviour.PARKED, role=Role.SCENARIO),
             ActorSpec(ActorKind.BICYCLE, line(80, 25, 80, 50), (1.8, 0.7), behaviour=Behaviour.PARKED))
    light = LightSpec(np.array([[58.0, -1.75], [58.0, 1.75]]), 0.0,
                      LightProgram(cycle=((int(LightStatus.GREEN), 10.0), (int(LightStatus.RED), 10.0))))
    return RouteScenario(route_id=route_id, scenario_type="Accident", scenario_name="Accident_1", town=town,
                         road_map=two_lane_map(), route=route, speed_limit=10.0, actors=specs,
                         lights=(light,), trigger_index=10)


def route_of(scenario: RouteScenario) -> tuple[B2DRoute, RouteExtras]:
    """The scenario as a Bench2Drive route XML would give it: keypoints every 2 m and the trigger, CARLA frame."""
    keypoints = carla_keypoints(scenario.route[:, :2])
    keypoints[:, 2] = 0.3
    t = scenario.route[scenario.trigger_index]
    extras = RouteExtras(scenario.scenario_name, (t[0], -t[1], 0.3, -math.degrees(t[2])), {"cloudiness": 30.0})
    return B2DRoute(str(scenario.route_id), scenario.town, scenario.scenario_type, True, keypoints), extras


@pytest.fixture
def standin():
    server = StandinServer({"Town01": turn_scenario()})
    return server, make_carla_module(server)


def test_missing_carla_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "carla", None)   # import carla -> ImportError
    with pytest.raises(ImportError, match=r"roadloop\[carla\]"):
        CarlaBackend(CarlaConfig())


def test_box_centre_offsets_in_the_actor_frame():
    from envs.bench2drive.carla_backend import _box_centre
    from tests.envs.bench2drive.carla_standin_map import Location, Rotation, Transform

    # CARLA: actor at (10, 5) facing yaw 90 (forward (0, 1), right (-1, 0)); box centre 1 m ahead, 0.5 m right
    # -> CARLA (9.5, 6) -> roadloop (9.5, -6), heading -90 deg
    centre = _box_centre(Transform(Location(10.0, 5.0, 0.0), Rotation(yaw=90.0)), 1.0, 0.5)
    assert centre == pytest.approx((9.5, -6.0, -math.pi / 2))


def test_config_ports_and_validation():
    config = CarlaConfig().for_worker(2)
    assert (config.port, config.tm_port) == (30300, 50300)
    with pytest.raises(ValueError, match="spacing"):
        CarlaConfig().for_worker(1, spacing=2)
    with pytest.raises(ValueError, match="dt"):
        CarlaConfig(dt=0.0)
    with pytest.raises(ValueError, match="warmup_ticks"):
        CarlaConfig(warmup_ticks=0, cameras=(CameraSpec("front"),))


def test_reset_sets_sync_mode_spawns_hero_and_matches_builtin_view(standin):
    server, carla = standin
    route, extras = route_of(server.towns["Town01"])
    backend = CarlaBackend(CarlaConfig(tm_port=8123, tm_seed=7, **FAST), carla_module=carla)
    view = backend.reset(route, extras)
    world = server.world
    assert world._settings.synchronous_mode and world._settings.fixed_delta_seconds == 0.05
    assert world._settings.tile_stream_distance == 650.0
    tm = server.traffic_managers[8123]
    assert tm.synchronous and tm.seed == 7
    assert world.weather.cloudiness == 30.0
    ego_id, attributes, transform, parent = world.spawned[0]
    assert ego_id == "vehicle.lincoln.mkz_2020" and attributes["role_name"] == "hero" and parent is None
    assert transform.location.z == pytest.approx(0.8)   # keypoint z 0.3 + 0.5 m
    assert (transform.location.x, transform.location.y, transform.rotation.yaw) == pytest.approx((5.0, 0.0, 0.0))
    assert [s[0] for s in world.spawned[1:]] == ["sensor.other.collision", "sensor.other.lane_invasion"]
    assert all(s[3] is backend.ego for s in world.spawned[1:])
    assert int(view.tick) == 0 and view.actor_pose.shape == (1, 64, 3)
    # the static context: dense route along the turn, the light's stop line across the ego lane at x = 58
    assert backend.scenario.route.shape == server.towns["Town01"].route.shape
    # 1 m samples along the lanes cut the polygonal arc's corners: a few mm shorter than the resampled polyline
    assert np.allclose(backend.scenario.route[:, :2], server.towns["Town01"].route[:, :2], atol=0.01)
    assert np.allclose(backend.scenario.route[:, 2], server.towns["Town01"].route[:, 2], atol=0.04)
    assert backend.scenario.trigger_index == 10 and len(backend.scenario.lights) == 1
    assert backend.scenario.lights[0].stop_line == pytest.approx(np.array([[58.0, 2.1], [58.0, -2.1]]))


def test_step_converts_frames_and_controls(standin):
    server, carla = standin
    route, extras = route_of(server.towns["Town01"])
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=carla)
    backend.reset(route, extras)
    for _ in range(20):
        view = backend.step(torch.tensor([[0.3, 0.6, 0.0]]))   # steer right
    inner = server.world._view
    assert torch.allclose(view.ego_pose, inner.ego_pose, atol=1e-9)
    assert float(view.ego_pose[0, 2]) < -0.05              # positive steer turned right (clockwise)
    assert torch.allclose(view.ego_speed, inner.ego_speed) and float(view.ego_speed[0]) > 1.0
    assert torch.allclose(view.ego_yaw_rate, inner.ego_yaw_rate, atol=1e-9) and float(view.ego_yaw_rate[0]) < 0
    assert torch.allclose(view.ego_accel, inner.ego_accel, atol=1e-9)
    assert view.ego_size[0].tolist() == pytest.approx(inner.ego_size[0].tolist())
    assert int(view.tick) == 20 and view.light_state.tolist() == [[int(LightStatus.GREEN)]]
    # actors by kind: the car (left lane), the cone and the bike, each with its built-in pose and size
    present = view.actor_present[0]
    kinds = sorted(view.actor_kind[0, present].tolist())
    assert kinds == sorted([ActorKind.VEHICLE, ActorKind.STATIC, ActorKind.BICYCLE])
    for slot in torch.nonzero(present)[:, 0].tolist():
        match = torch.isclose(inner.actor_pose[0, :, :2], view.actor_pose[0, slot, :2]).all(-1)
        (builtin,) = torch.nonzero(match)[:, 0].tolist()
        assert int(inner.actor_kind[0, builtin]) == int(view.actor_kind[0, slot])
        assert torch.allclose(inner.actor_size[0, builtin], view.actor_size[0, slot])
        assert float(view.actor_speed[0, slot]) == pytest.approx(float(inner.actor_speed[0, builtin]))
    role = {int(k): int(r) for k, r in zip(view.actor_kind[0, present], view.actor_role[0, present])}
    assert role[ActorKind.STATIC] == Role.SCENARIO and role[ActorKind.VEHICLE] == Role.BACKGROUND
    with pytest.raises(ValueError, match="control"):
        backend.step(torch.tensor([float("nan"), 0.0, 0.0]))


def test_close_destroys_actors_and_restores_async_mode(standin):
    server, carla = standin
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=carla)
    backend.reset(*route_of(server.towns["Town01"]))
    sensors = [a for a in server.world._actors.values() if a.type_id.startswith("sensor.")]
    backend.close()
    assert not server.world._settings.synchronous_mode and server.world._settings.fixed_delta_seconds is None
    assert not server.traffic_managers[8000].synchronous
    assert len(sensors) == 2 and not any(a.is_alive for a in sensors) and server.world._ego.is_alive is False


def test_slots_are_stable_and_radius_filters():
    server = StandinServer({"Town01": turn_scenario()})
    backend = CarlaBackend(CarlaConfig(**{**FAST, "actor_radius": 30.0, "max_actors": 2}),
                           carla_module=make_carla_module(server))
    view = backend.reset(*route_of(server.towns["Town01"]))
    # at x = 5 only the car (x = 25, y = 3.5) is within 30 m; the cone at 35 m and the bike are not
    assert view.actor_present[0].tolist() == [True, False]
    assert int(view.actor_kind[0, 0]) == ActorKind.VEHICLE
    slots = []
    for _ in range(80):
        view = backend.step(torch.tensor([0.0, 0.5, 0.0]))
        slots.append(int(torch.nonzero(view.actor_kind[0] == ActorKind.VEHICLE)[0, 0]))
    assert set(slots) == {0} and bool(view.actor_present[0].all())   # the cone came in range into slot 1


def test_camera_images_are_frame_matched():
    server = StandinServer({"Town01": turn_scenario()}, stale_images=True)
    config = CarlaConfig(**{**FAST, "warmup_ticks": 2},
                         cameras=(CameraSpec("front", width=8, height=4), CameraSpec("left", yaw=-60, width=8, height=4)))
    backend = CarlaBackend(config, carla_module=make_carla_module(server))
    backend.reset(*route_of(server.towns["Town01"]))
    spawned = {s[0]: s for s in server.world.spawned}
    assert spawned["sensor.camera.rgb"][1] == {"image_size_x": "8", "image_size_y": "4", "fov": "100.0"}
    for _ in range(3):
        backend.step(torch.tensor([0.0, 0.5, 0.0]))
        frame = backend.sensors.frame
        assert frame == server.world._frame
        for name in ("front", "left"):
            image = backend.sensors.images[name]
            assert image.shape == (4, 8, 3) and image.dtype == np.uint8
            assert (image[..., 0] == frame % 256).all()   # red channel written as BGRA byte 2 by the stand-in


def test_missing_sensor_data_is_a_crash():
    server = StandinServer({"Town01": turn_scenario()})
    config = CarlaConfig(**{**FAST, "warmup_ticks": 1}, cameras=(CameraSpec("front", width=4, height=2),))
    backend = CarlaBackend(config, carla_module=make_carla_module(server))
    backend.reset(*route_of(server.towns["Town01"]))
    server.mute_sensors_at_frame = server.world._frame + 2
    backend.step(torch.tensor([0.0, 0.5, 0.0]))
    with pytest.raises(SimulationCrashed, match="no image"):
        backend.step(torch.tensor([0.0, 0.5, 0.0]))


def test_collision_sensor_reports_the_cone():
    server = StandinServer({"Town01": turn_scenario()})
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server))
    backend.reset(*route_of(server.towns["Town01"]))
    hits = []
    for _ in range(200):
        backend.step(torch.tensor([0.0, 0.4, 0.0]))   # straight on at the cone (x = 40)
        hits += backend.sensors.collisions
        if hits:
            break
    assert hits and hits[0][1] == "static.prop.trafficcone01"
    assert float(backend.sensors and server.world._view.ego_pose[0, 0]) + 2.45 + 0.3 >= 40.0 - 1e-6


def test_connect_retries_then_gives_up():
    server = StandinServer({"Town01": turn_scenario()}, refuse_connections=2)
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server))
    backend.connect()                                    # third attempt succeeds
    assert backend.client is not None
    server = StandinServer({"Town01": turn_scenario()}, refuse_connections=5)
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server))
    with pytest.raises(SimulationCrashed, match="after 3 attempts"):
        backend.connect()
    backend = CarlaBackend(CarlaConfig(**{**FAST, "port": 2003}), carla_module=make_carla_module(StandinServer({})))
    with pytest.raises(SimulationCrashed, match="2003"):
        backend.connect()


def test_tick_crash_then_restart_with_launcher():
    server = StandinServer({"Town01": turn_scenario()}, crash_at_tick=30)
    backend = CarlaBackend(CarlaConfig(**FAST), carla_module=make_carla_module(server), launcher=server)
    route, extras = route_of(server.towns["Town01"])
    backend.reset(route, extras)
    assert server.launches == 1
    with pytest.raises(SimulationCrashed, match="tick"):
        for _ in range(100):
            backend.step(torch.tensor([0.0, 0.5, 0.0]))
    with pytest.raises(RuntimeError, match="reset"):
        backend.step(torch.tensor([0.0, 0.5, 0.0]))
    view = backend.reset(route, extras)                  # relaunches, reconnects, reloads
    assert server.launches == 2 and server.stops >= 1 and int(view.tick) == 0
    assert float(backend.step(torch.tensor([0.0, 0.5, 0.0])).ego_speed[0]) > 0


# Every attribute of the `carla` API the backend and carla_route touch, by class.
USED_API = {
    "Client": ("set_timeout", "get_server_version", "load_world", "get_trafficmanager"),
    "TrafficManager": ("set_synchronous_mode", "set_random_device_seed", "set_hybrid_physics_mode"),
    "World": ("get_settings", "apply_settings", "reset_all_traffic_lights", "set_weather", "tick", "get_map",
              "get_blueprint_library", "try_spawn_actor", "spawn_actor", "get_actors", "get_snapshot"),
    "WorldSettings": ("synchronous_mode", "fixed_delta_seconds", "deterministic_ragdolls", "spectator_as_ego",
                      "tile_stream_distance", "actor_active_distance"),
    "WeatherParameters": ("cloudiness", "wetness", "sun_altitude_angle"),
    "BlueprintLibrary": ("find",),
    "ActorBlueprint": ("set_attribute",),
    "ActorList": ("filter",),
    "WorldSnapshot": ("find",),
    "ActorSnapshot": ("get_transform", "get_velocity", "get_acceleration", "get_angular_velocity"),
    "Actor": ("id", "type_id", "attributes", "bounding_box", "destroy"),
    "Vehicle": ("apply_control", "get_speed_limit"),
    "Sensor": ("listen", "stop"),
    "TrafficLight": ("get_state", "get_stop_waypoints"),
    "TrafficSign": ("trigger_volume",),
    "Map": ("get_topology", "name"),
    "Waypoint": ("transform", "road_id", "section_id", "lane_id", "s", "lane_width", "lane_type", "is_junction",
                 "next", "next_until_lane_end", "get_left_lane", "get_right_lane"),
    "Transform": ("location", "rotation"),
    "Location": ("x", "y", "z"),
    "Rotation": ("yaw", "pitch", "roll"),
    "BoundingBox": ("extent", "location", "rotation"),
    "VehicleControl": ("throttle", "steer", "brake"),
    "Image": ("raw_data", "width", "height", "frame"),
    "CollisionEvent": ("other_actor", "frame"),
    "LaneInvasionEvent": ("frame",),
    "TrafficLightState": ("Red", "Yellow", "Green"),
    "LaneType": ("Driving", "Parking"),
}


def test_used_api_exists_in_real_carla():
    """Names only (the real module needs no server for this): skipped where `carla` is not installed."""
    try:
        import carla
    except ImportError:
        pytest.skip("carla==0.9.16 not installed")
    if getattr(carla, "server", None) is not None:
        pytest.skip("sys.modules['carla'] is a stand-in")
    missing = [f"{cls}.{name}" for cls, names in USED_API.items() for name in names
               if not hasattr(getattr(carla, cls, None), name)]
    assert missing == []
    standin = make_carla_module(StandinServer({}))
    assert [cls for cls in USED_API if not hasattr(standin, cls)] == []
