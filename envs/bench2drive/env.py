"""Bench2Drive closed loop as Gymnasium environments: `roadloop/Bench2Drive-v0`, single (`Bench2DriveEnv`) and
natively batched (`Bench2DriveVectorEnv`). One route per episode at 20 Hz; the world is `envs.bench2drive.world`
(or a CARLA server through `envs.bench2drive.carla_backend`), scoring `envs.bench2drive.criteria` and `.record`,
observations `.observation`, rewards `.reward`. No physics or scoring lives here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from envs.bench2drive import criteria as crit_lib
from envs.bench2drive import record as record_lib
from envs.bench2drive import world as world_lib
from envs.bench2drive.env_routes import RouteSource, prepare_route, put_rows
from envs.bench2drive.observation import ObservationConfig, build_observations, observation_space
from envs.bench2drive.reward import RewardInputs, RewardMode, reward_terms, total_reward
from envs.bench2drive.route_scenario import RouteScenario
from envs.bench2drive.vehicle_control import initial_pid_state, pid_control
from envs.metrics.bench2drive_results import SPEED_INFRACTIONS

WAYPOINT_LIMIT = 100.0
"""[m] bound of planned x, y in the waypoints action Box (3 s at 33 m/s)."""
_CONTROL_LOW = np.array([-1.0, 0.0, 0.0], np.float32)
_CONTROL_LOW64 = _CONTROL_LOW.astype(np.float64)


class Backend(str, Enum):
    """Which world runs the routes."""

    BUILTIN = "builtin"
    """The built-in batched world and the 220 built-in routes (`scenarios.bench2drive`)."""
    CARLA = "carla"
    """A CARLA 0.9.16 server (`envs.bench2drive.carla_backend`), routes from a Bench2Drive route XML; one env."""


class ActionMode(str, Enum):
    """What an action is."""

    CONTROL = "control"
    """Box(3): steer [-1, 1] (positive right, CARLA's sign), throttle [0, 1], brake [0, 1]."""
    WAYPOINTS = "waypoints"
    """Box(T, 2): planned ego-frame points (x forward, y left) [m] at 0.5 s spacing (2 Hz), tracked by the
    Bench2Drive baselines' PID (`vehicle_control.pid_control`) with the first target point as route target."""


@dataclass
class Bench2DriveConfig:
    """Everything a Bench2Drive env is built from (Hydra mirrors it under `env`)."""

    backend: Backend = Backend.BUILTIN
    routes: str | tuple[int, ...] = "builtin"
    """builtin: `builtin` (all 220 built-in routes) or a tuple of built-in route ids; carla: path of a route XML."""
    action: ActionMode = ActionMode.CONTROL
    waypoints: int = 6
    """T: planned points per action in `waypoints` mode (UniAD/VAD: 6 x 0.5 s)."""
    dt: float = 0.05
    """[s] per tick (Bench2Drive: 20 Hz)."""
    reward: RewardMode = RewardMode.DS
    obs: ObservationConfig = field(default_factory=ObservationConfig)
    max_ticks: int = crit_lib.MAX_TICKS
    """Episodes end (truncated, `Failed - TickRuntime`) on the tick that exceeds this count (Bench2Drive: 4000)."""
    terminate_on_collision: bool = False
    """End the episode (terminated, status Failed) at the first counted collision (CaRL-style RL)."""
    metric_info: bool = True
    """Keep the per-tick ego kinematics and return them as `metric_info` at the episode end (Comfortness)."""
    device: str = "cpu"
    carla: Any = None
    """backend=carla: a `CarlaConfig` or its fields as a dict."""

    def __post_init__(self):
        self.backend = _choice(Backend, "backend", self.backend)
        self.action = _choice(ActionMode, "action", self.action)
        self.reward = _choice(RewardMode, "reward", self.reward)
        if isinstance(self.obs, dict):
            self.obs = ObservationConfig(**self.obs)
        if not isinstance(self.routes, str):
            self.routes = tuple(int(r) for r in self.routes)
            if not self.routes:
                raise ValueError("routes=(): need at least one route id")
        if self.backend is Backend.CARLA and (not isinstance(self.routes, str) or self.routes == "builtin"):
            raise ValueError(f"routes={self.routes!r}: backend=carla needs the path of a Bench2Drive route XML")
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt={self.dt!r}: must be a positive number of seconds")
        for name in ("waypoints", "max_ticks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name}={value!r}: must be an int >= 2")


def _choice(enum: type[Enum], name: str, value: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(m.value for m in enum)}") from None


def action_space(config: Bench2DriveConfig) -> spaces.Box:
    """Box(3) control or Box(T, 2) waypoints (see ActionMode)."""
    if config.action is ActionMode.CONTROL:
        return spaces.Box(low=_CONTROL_LOW, high=np.ones(3, np.float32), dtype=np.float32)
    return spaces.Box(low=-WAYPOINT_LIMIT, high=WAYPOINT_LIMIT, shape=(config.waypoints, 2), dtype=np.float32)


def check_action(action: Any, batch: int, config: Bench2DriveConfig) -> np.ndarray:
    """Validate a batch of actions -> float64 (B, 3) or (B, T, 2); ValueError names the problem."""
    values = np.asarray(action, dtype=np.float64)
    shape = (3,) if config.action is ActionMode.CONTROL else (config.waypoints, 2)
    if values.shape == shape and batch == 1:
        values = values[None]
    if values.shape != (batch, *shape):
        raise ValueError(f"action.shape={np.shape(action)}: expected ({batch}, {', '.join(map(str, shape))})")
    if config.action is ActionMode.CONTROL and ((values >= _CONTROL_LOW64) & (values <= 1.0)).all():
        return values                                         # finite and in range: the common case
    if not np.isfinite(values).all():
        raise ValueError(f"action={float(values[~np.isfinite(values)][0])!r}: must be finite")
    if config.action is ActionMode.CONTROL:
        low, high = _CONTROL_LOW.astype(np.float64), np.ones(3)
        bad = (values < low) | (values > high)
        if bad.any():
            b, k = np.argwhere(bad)[0]
            name = ("steer", "throttle", "brake")[k]
            raise ValueError(f"action.{name}={float(values[b, k])!r}: must lie in [{low[k]:g}, {high[k]:g}]")
    elif np.abs(values).max() > WAYPOINT_LIMIT:
        raise ValueError(f"action={float(np.abs(values).max())!r}: waypoints must lie within +-{WAYPOINT_LIMIT:g} m")
    return values


class Bench2DriveBatch:
    """B route episodes stepped together (one world step, one criteria step): the engine of both envs.

    With `autoreset` (the vector env), rows whose episode ended start a new route in the same step.
    """

    def __init__(self, config: Bench2DriveConfig, num_envs: int, autoreset: bool):
        if config.backend is Backend.CARLA and num_envs != 1:
            raise ValueError(f"num_envs={num_envs}: backend=carla drives one server, use one env per server")
        self.config, self.num_envs, self.autoreset = config, num_envs, autoreset
        self.routes = RouteSource(config)
        self.device = torch.device(config.device)
        self.generator = torch.Generator(device=self.device)
        self.backend = None
        if config.backend is Backend.CARLA:
            from envs.bench2drive.carla_backend import CarlaBackend, CarlaConfig

            carla = config.carla if config.carla is not None else {}
            carla = CarlaConfig(**{"dt": config.dt, "device": config.device, **carla}) if isinstance(carla, dict) else carla
            mounted = {c.name: (c.height, c.width) for c in carla.cameras}
            wanted = (config.obs.image_height, config.obs.image_width)
            missing = [name for name in config.obs.cameras if mounted.get(name) != wanted]
            if missing:
                raise ValueError(f"obs.cameras={missing!r}: backend=carla renders cameras itself; add CameraSpec(name, "
                                 f"width={wanted[1]}, height={wanted[0]}) for each to carla.cameras")
            self.backend = CarlaBackend(carla)
        self.logs: list[record_lib.EpisodeLog] = []
        self.messages = _objects([])
        self.episodes_done = 0
        self.started = False

    # --- episodes
    @torch.inference_mode()      # no autograd bookkeeping: ~10 % less overhead per op (tensors stay internal)
    def reset(self, rng: np.random.Generator, options: dict | None = None) -> tuple[dict, dict]:
        options = options or {}
        if "route_id" in options and self.num_envs == 1:
            ids = [self.routes.check(options["route_id"])]
        elif "route_ids" in options:
            ids = [self.routes.check(i) for i in options["route_ids"]]
            if len(ids) != self.num_envs:
                raise ValueError(f"options.route_ids has {len(ids)} ids: expected num_envs={self.num_envs}")
        else:
            ids = self.routes.draw(rng, self.num_envs)
        self.generator.manual_seed(int(rng.integers(2**62)))
        if self.backend is not None:
            route = self.routes.xml_routes[ids[0]]
            self.view = self.backend.reset(route, self.routes.extras.get(route.route_id))
            self.prepared = [prepare_route(self.backend.scenario, self.config.obs, self.config.device, self.config.dt,
                                           with_world=False)]
            self.ctx = crit_lib.criteria_context([self.backend.scenario], self.config.device)
        else:
            self.prepared = [self.routes.prepared(i) for i in ids]
            if self.num_envs == 1 and not self.autoreset:     # autoreset writes rows in place: own the batch
                self.static, self.state = self.prepared[0].world
            else:
                self.static, self.state = world_lib.world_init([p.scenario for p in self.prepared], self.device,
                                                               self.config.dt)
            self.view = world_lib.tick_view(self.static, self.state)
            self.ctx = put_rows(None, [p.context for p in self.prepared], None)
        self.route_ids = np.array(ids, dtype=np.int64)
        self.scenario_types = _objects([p.scenario.scenario_type for p in self.prepared])
        self.ctx = _with_max_ticks(self.ctx, self.config.max_ticks)
        self.crit = crit_lib.initial_criteria(self.ctx)
        self.penalty = self.crit.penalty
        self.table = put_rows(None, [p.table for p in self.prepared], None)
        self.pid = initial_pid_state(self.num_envs, self.device)
        self.logs = [record_lib.EpisodeLog() for _ in range(self.num_envs)]
        self.messages = _objects([()] * self.num_envs)
        self.kinematics: list[tuple[Tensor, Tensor, Tensor]] = []
        self.row_start = np.zeros(self.num_envs, np.int64)
        self.wall_start = np.full(self.num_envs, time.time())
        self.started = True
        return self._observe(), self._info()

    def _restart_rows(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        """Autoreset: rows (B,) bool start a fresh route (world rows via world.reset_rows, one route at a time).

        The batch's static tables (world, criteria context, observation table) are this env's own: the fresh
        rows are written into them in place, so a reset costs the rows' size, not the batch's."""
        index = np.flatnonzero(rows).tolist()
        ids = self.routes.draw(rng, len(index))
        fresh = [self.routes.prepared(i) for i in ids]
        for b, prepared in zip(index, fresh):
            mask = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            mask[b] = True
            self.static, self.state = world_lib.reset_rows(self.static, self.state, *prepared.world, mask, inplace=True)
            self.prepared[b] = prepared
            self.logs[b], self.messages[b] = record_lib.EpisodeLog(), ()
        self.row_start[index] = len(self.kinematics)
        self.wall_start[index] = time.time()
        self.route_ids[index] = ids
        self.scenario_types[index] = [p.scenario.scenario_type for p in fresh]
        self.view = world_lib.tick_view(self.static, self.state)
        self.ctx = _with_max_ticks(put_rows(self.ctx, [p.context for p in fresh], index, inplace=True),
                                   self.config.max_ticks)
        self.crit = crit_lib.reset_criteria_rows(self.ctx, self.crit, torch.as_tensor(rows, device=self.device))
        self.penalty = self.crit.penalty
        self.table = put_rows(self.table, [p.table for p in fresh], index, inplace=True)
        fresh_pid = initial_pid_state(self.num_envs, self.device)
        mask = torch.as_tensor(rows, device=self.device)[:, None]
        self.pid = type(self.pid)(torch.where(mask, fresh_pid.turn_window, self.pid.turn_window),
                                  torch.where(mask, fresh_pid.speed_window, self.pid.speed_window))

    # --- stepping
    @torch.inference_mode()
    def step(self, action: Any, rng: np.random.Generator):
        if not self.started:
            raise RuntimeError("step() before reset(): call reset() first")
        if not self.autoreset and bool(self.crit.done.any()):
            raise RuntimeError("step() after the episode ended: call reset() first")
        values = torch.as_tensor(check_action(action, self.num_envs, self.config), device=self.device)
        if self.config.action is ActionMode.WAYPOINTS:
            control, self.pid = pid_control(values, self.view.ego_speed, self.pid, target=self.targets[:, 0])
        else:
            control = values
        previous = self.crit
        self._log_kinematics()
        crashed = self._advance(control)
        if crashed:
            return self._crash_step(previous)
        self.crit, events = crit_lib.criteria_step(self.ctx, self.crit, self.view)
        penalty = self.crit.penalty
        stop = self.crit.done
        if self.config.terminate_on_collision:
            stop = stop | (events.collision_key >= 0)
        ended = bool(stop.any())
        final_events = None
        if ended:
            self.crit, final_events = crit_lib.finalize(self.ctx, self.crit, self.view, rows=stop)
            penalty = self.crit.penalty          # a yield-to-emergency failure may lower it at the end
        self._book(events, final_events)
        terms = reward_terms(self.config.reward, RewardInputs(
            route_completion=self.crit.route_completion, previous_completion=previous.route_completion,
            penalty=penalty, previous_penalty=self.penalty, speed=self.view.ego_speed,
            speed_limit=self.table.speed_limit, outside_lanes=events.outside_lanes,
            hard_infraction=events.hard_infraction if self.config.reward is RewardMode.CARL else None,
            episode_end=self.crit.done))
        reward = total_reward(terms).cpu().numpy()
        self.penalty = penalty
        done = self.crit.done.cpu().numpy()
        truncated = done & (self.crit.status.cpu().numpy() == int(crit_lib.RouteStatus.TICK_RUNTIME))
        terminated = done & ~truncated
        info = self._info(terms)
        if ended:
            self._end_episodes(done, info)
        obs = self._observe()
        if self.autoreset and ended:
            final_info = {**info, **{f"_{k}": done.copy() for k in info if not k.startswith("_")}}
            final_obs = np.full(self.num_envs, None, dtype=object)
            for b in np.flatnonzero(done).tolist():
                final_obs[b] = _row(obs, b)
            self._restart_rows(done, rng)
            obs = self._observe()
            info.update(self._info())
            info.update(final_obs=final_obs, _final_obs=done.copy(), final_info=final_info, _final_info=done.copy())
        return obs, reward, terminated, truncated, info

    def _advance(self, control: Tensor) -> bool:
        """Apply the control for one tick; True when the CARLA server crashed (the route then ends)."""
        if self.backend is None:
            self.state, self.view = world_lib.world_step(self.static, self.state, control, self.generator)
        else:
            from envs.bench2drive.carla_backend import SimulationCrashed

            try:
                self.view = self.backend.step(control)
            except SimulationCrashed:
                return True
        return False

    def _crash_step(self, previous):
        """The server died: the route ends 'Failed - Simulation crashed' (RC 0, DS 0, as the leaderboard
        counts it); truncated, since the MDP did not reach a terminal state."""
        self.crit = previous
        info = self._info()
        record = record_lib.crashed_record(self.prepared[0].scenario, self.episodes_done)
        self.episodes_done += 1
        info.update(record=_objects([record]), _record=np.ones(1, bool), status=_objects([record["status"]]))
        self.started = False
        return self._observe(), np.zeros(1), np.zeros(1, bool), np.ones(1, bool), info

    @property
    def targets(self) -> Tensor:
        """(B, K, 2) float64 target points of the last observation (ego frame): the PID's route target."""
        return torch.as_tensor(self._target_points, dtype=torch.float64, device=self.device)

    # --- bookkeeping
    def _log_kinematics(self) -> None:
        """Keep the ego state the agent acts on this tick (one metric_info sample per agent step, as
        AutonomousAgent.get_metric_info): references to the view's pose, yaw rate and acceleration, which
        every tick creates anew; they are only stacked when an episode ends."""
        if not self.config.metric_info:
            return
        self.kinematics.append((self.view.ego_pose, self.view.ego_yaw_rate, self.view.ego_accel))
        first = int(self.row_start.min())
        if first > 2 * self.config.max_ticks:         # drop ticks no running episode needs any more
            del self.kinematics[:first]
            self.row_start -= first

    def _book(self, events, final_events) -> None:
        """Official messages of the tick's events into the episode logs (python work only on event ticks)."""
        for tick_events in (events, final_events):
            if tick_events is None:
                continue
            logged = tick_events.any()
            if not bool(logged.any()):
                continue
            record_lib.log_events(self.logs, tick_events, self.ctx)
            for b in torch.nonzero(logged)[:, 0].tolist():
                lists = self.logs[b].infractions
                if sum(len(messages) for messages in lists.values()) - len(lists[SPEED_INFRACTIONS]) != len(
                        self.messages[b]):            # only min-speed checkpoints were logged: nothing to show
                    self.messages[b] = tuple(message for key, messages in lists.items()
                                             if key != SPEED_INFRACTIONS for message in messages)

    def _observe(self) -> dict:
        obs = build_observations(self.view, self.table, self.crit.route_index, [p.drawing for p in self.prepared],
                                 self.config.obs)
        self._target_points = obs["target_points"]
        if self.backend is not None and self.config.obs.cameras:   # CARLA renders the cameras itself
            for name in self.config.obs.cameras:
                obs[name] = self.backend.sensors.images[name][None]
        return obs

    def _info(self, terms: dict[str, Tensor] | None = None) -> dict:
        crit = self.crit
        numbers = torch.stack([crit.route_completion, self.penalty, crit.route_completion * self.penalty]).cpu().numpy()
        status = _STATUS_STRINGS[crit.status.cpu().numpy()]
        info: dict[str, Any] = {
            "route_completion": numbers[0], "penalty": numbers[1], "driving_score": numbers[2], "status": status,
            "route_id": self.route_ids.copy(), "tick": crit.tick.cpu().numpy(),
            "scenario_type": self.scenario_types.copy(),
            "infractions": self.messages.copy(),
        }
        if terms is not None:
            info["reward_terms"] = {name: value.cpu().numpy() for name, value in terms.items()}
        return info

    def _end_episodes(self, done: np.ndarray, info: dict) -> None:
        """Official record and metric_info of every row that ended this tick, into `info` with `_` masks."""
        records = np.full(self.num_envs, None, dtype=object)
        metric = np.full(self.num_envs, None, dtype=object)
        ended = np.flatnonzero(done).tolist()
        first = int(self.row_start[ended].min()) if ended else 0
        series = ([torch.stack(s) for s in zip(*self.kinematics[first:])]
                  if self.config.metric_info and len(self.kinematics) > first else None)   # (T, B, ...) each
        for b in ended:
            scenario = self.prepared[b].scenario
            ticks = int(self.crit.tick[b])
            records[b] = record_lib.route_record(scenario, self.logs[b], self.crit, b, ticks * self.config.dt,
                                                 time.time() - self.wall_start[b], self.episodes_done)
            self.episodes_done += 1
            if series is not None and len(self.kinematics) > self.row_start[b]:
                pose, yaw_rate, accel = (s[self.row_start[b] - first:, b] for s in series)
                metric[b] = record_lib.metric_info_steps(accel, yaw_rate, pose)
        info["record"], info["_record"] = records, done.copy()
        if self.config.metric_info:
            info["metric_info"], info["_metric_info"] = metric, done.copy()

    def render(self, index: int = 0) -> np.ndarray:
        """Colour BEV picture (384, 384, 3) uint8 of row `index` with the route ahead drawn as the plan."""
        from envs.bench2drive.observation import EGO_REAR_AXLE_TO_CENTER, world_frames
        from envs.sim.bev import BEVConfig, bev_rgb

        frame = world_frames(self.view, [p.drawing for p in self.prepared], [index])[0]
        targets = self.targets[index].cpu().numpy()
        title = f"{self.prepared[index].scenario.scenario_name} RC {float(self.crit.route_completion[index]):.1f}"
        return bev_rgb(frame, BEVConfig(size=384, meters_per_pixel=0.25, forward_offset=16.0),
                       plans=targets + [EGO_REAR_AXLE_TO_CENTER, 0.0], title=title)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


_STATUS_STRINGS = np.asarray(record_lib.STATUS_STRINGS, dtype=object)


def _objects(values: Sequence[Any]) -> np.ndarray:
    """1-D object array of `values` (tuples and dicts stay whole)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _with_max_ticks(ctx, max_ticks: int):
    return ctx if ctx.max_ticks == max_ticks else replace(ctx, max_ticks=max_ticks)


def _row(tree: Any, index: int) -> Any:
    """Element `index` of every batched value of a (nested) obs/info dict; keys masked out by `_key` are dropped."""
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            if key.startswith("_"):
                continue
            mask = tree.get(f"_{key}")
            if mask is None or bool(mask[index]):
                out[key] = _row(value, index)
        return out
    value = tree[index]
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------- envs


class Bench2DriveEnv(gym.Env):
    """Bench2Drive closed loop: one route per episode, one 0.05 s tick per step, scored like the leaderboard.

    Observation: Dict (see `envs.bench2drive.observation.observation_space`): `ego` (4,) speed, longitudinal /
    lateral acceleration, yaw rate; `target_points` (K, 2) route points ahead in the ego frame [m]; `command`
    (6,) one-hot RoadOption; optional cameras (H, W, 3) uint8, `bev` (C, S, S) uint8, `privileged` vectors.
    Action: Box(3) steer [-1, 1] (positive right), throttle, brake [0, 1]; or Box(T, 2) ego-frame waypoints at
    2 Hz tracked by the baselines' PID (`action='waypoints'`). Out-of-range, NaN or misshaped actions raise
    ValueError.
    Reward: `reward='ds'` DS increments (sum = route DS / 100), 'carl' CaRL-style progress x penalties, 'sparse'
    DS / 100 at the end; the terms go out in info["reward_terms"].
    Terminated: route completed, deviated (> 30 m), blocked (60 s), route timeout, or (terminate_on_collision)
    a collision. Truncated: the 4000-tick cap (`Failed - TickRuntime`) or a crashed CARLA server.
    Info: route_completion [%], penalty, driving_score (RC x P), status (leaderboard string), infractions
    (official messages of the infractions so far), route_id, scenario_type, tick, reward_terms; at the episode end also
    `record` (the official route record dict) and `metric_info` (per-step kinematics for Comfortness).
    Reset options: {"route_id": id} picks the route (otherwise drawn from the route set with the seed).
    Versions: v0 (Bench2Drive v0.0.3 scoring rules).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None, config: Bench2DriveConfig | None = None, **overrides):
        self.config = config or Bench2DriveConfig(**overrides)
        self.batch = Bench2DriveBatch(self.config, 1, autoreset=False)
        self.render_mode = render_mode
        self.observation_space = observation_space(self.config.obs)
        self.action_space = action_space(self.config)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.batch.reset(self.np_random, options)
        return _row(obs, 0), _row(info, 0)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.batch.step(action, self.np_random)
        return _row(obs, 0), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _row(info, 0)

    def render(self):
        return self.batch.render(0)

    def close(self):
        self.batch.close()

    @property
    def scenario(self) -> RouteScenario:
        """The current route (privileged: for teachers and rule-based agents)."""
        return self.batch.prepared[0].scenario


class Bench2DriveVectorEnv(VectorEnv):
    """B Bench2Drive envs stepped as one batch (`gymnasium.make_vec("roadloop/Bench2Drive-v0", num_envs=B)`).

    Same spaces, rewards and infos as `Bench2DriveEnv`, batched (infos are dicts of arrays; episode-end keys
    carry `_key` masks). Autoreset mode SAME_STEP: a finished row starts a new route in the same step, the
    returned observation is the new episode's, the finished one's is in info["final_obs"] and its info in
    info["final_info"]. Reset options: {"route_ids": [B ids]}.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, config: Bench2DriveConfig | None = None,
                 **overrides):
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs}: must be >= 1")
        self.config = config or Bench2DriveConfig(**overrides)
        self.num_envs = num_envs
        self.batch = Bench2DriveBatch(self.config, num_envs, autoreset=True)
        self.render_mode = render_mode
        self.single_observation_space = observation_space(self.config.obs)
        self.single_action_space = action_space(self.config)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return self.batch.reset(self.np_random, options)

    def step(self, actions):
        return self.batch.step(actions, self.np_random)

    def render(self):
        return self.batch.render(0)

    def close_extras(self, **kwargs):
        self.batch.close()

    @property
    def scenarios(self) -> list[RouteScenario]:
        """The current routes (privileged)."""
        return [p.scenario for p in self.batch.prepared]
