"""Reward world model (IRL-VLA style, arXiv 2508.06571): a small network on (scene, plan) that predicts
every NAVSIM sub-score and combines them with the true PDMS / EPDMS formula, plus the buffer of
truly scored plans it learns from. Owned by PPO (`trainers.ppo`); other trainers import it explicitly.

IRL-VLA published no code, so the architecture is ours (spec posttraining.md §2.1 [infer]): the scene
is read from the observation's `privileged` vectors (agents, lanes, route) and ego status, and each
planned pose is related to them geometrically (agents moved at constant velocity to the pose's time,
distance to the nearest lane point and route point), so collision / drivable-area / progress
outcomes are learnable from a few thousand labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from envs.metrics.epdms import epdm_score
from envs.metrics.pdms import SubScores, pdm_score
from envs.metrics.scorer import Metric
from envs.navsim import PLAN_INTERVAL_S, PLAN_POSES

SUBSCORES = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec")
"""K = 10 predicted sub-scores, in `SubScores` field order (the last axis of labels and predictions)."""
REGRESSION = frozenset({"ep"})
"""Sub-scores with continuous values in [0, 1]: a linear output, MSE loss, clamped to [0, 1] when
predicting (a sigmoid output learns the ends of the range slowly). All others take values in
{0, 1} (or {0, 0.5, 1} for NC and DDC) and get one logit with BCE against the (soft) label, so the
sigmoid estimates E[score | scene, plan] — the same expectation a 3-class softmax over {0, 0.5, 1}
would give, with one output instead of three (spec §2.1: "BCE against {0, 0.5, 1}-valued labels")."""

POSITION_SCALE = 10.0
"""[m] positions and distances are divided by this inside the networks: NAVSIM plans reach ~40 m,
and lateral offsets of 1-2 m decide drivable area and lane keeping."""
SPEED_SCALE = 10.0
"""[m/s] velocity scale."""
ACCEL_SCALE = 5.0
"""[m/s^2] acceleration scale (NAVSIM's comfort bounds are a few m/s^2)."""
SIZE_SCALE = 5.0
"""[m] object length / width scale."""
NUM_AGENT_TYPES = 7
"""`envs.sim.scene.AgentType` values 0..6, one-hot encoded."""
FAR = 10.0
"""Scaled distance used when a scene has no lane (10 * POSITION_SCALE = 100 m)."""


@dataclass(frozen=True)
class SceneFeatures:
    """What the reward model and the critic read of B scenes (from `scene_features(obs)`), float32."""

    ego_status: Tensor = field(metadata={"dims": "B 4 7"})
    """History frames x, y [m], heading [rad], vx, vy [m/s], ax, ay [m/s^2] in the current ego frame."""
    command: Tensor = field(metadata={"dims": "B 4"})
    """One-hot driving command [left, straight, right, unknown]."""
    agents: Tensor = field(metadata={"dims": "B A 9"})
    """x, y, cos_heading, sin_heading, vx, vy, length, width, type (`envs.navsim_obs.AGENT_FEATURES`)."""
    agents_valid: Tensor = field(metadata={"dims": "B A"})
    """bool; padding slots are False."""
    lanes: Tensor = field(metadata={"dims": "B L P 2"})
    """Lane centerline points [m] in the ego frame."""
    lanes_valid: Tensor = field(metadata={"dims": "B L"})
    """bool; padding slots are False."""
    route: Tensor = field(metadata={"dims": "B R 2"})
    """Route centerline ahead, points 2 m apart [m] (all zeros when the scene has no route)."""

    def __post_init__(self):
        batch = self.ego_status.shape[0]
        for f in fields(self):
            value = getattr(self, f.name)
            dims = f.metadata["dims"].split()
            if value.ndim != len(dims) or value.shape[0] != batch:
                raise ValueError(f"{f.name}.shape={tuple(value.shape)}: expected ({', '.join(dims)}) with B={batch}")

    @property
    def batch_size(self) -> int:
        return self.ego_status.shape[0]

    def rows(self, index: Tensor | np.ndarray | slice) -> "SceneFeatures":
        """Scenes `index` (int indices or a slice) of the batch."""
        if isinstance(index, np.ndarray):
            index = torch.from_numpy(index)
        if isinstance(index, Tensor):
            index = index.to(self.ego_status.device)
        return SceneFeatures(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def to(self, device) -> "SceneFeatures":
        return SceneFeatures(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @staticmethod
    def cat(parts: list["SceneFeatures"]) -> "SceneFeatures":
        """Concatenate along B (shapes other than B must agree)."""
        return SceneFeatures(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(SceneFeatures)})

    def state(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def scene_features(obs: dict[str, Any], device=None) -> SceneFeatures:
    """SceneFeatures of a batched NAVSIM observation; it must hold `privileged` (enable
    `env.obs.privileged`: ground truth is fine here, the reward model and critic never drive)."""
    if "privileged" not in obs:
        raise ValueError(f"obs keys={sorted(obs)}: the reward model and critic need 'privileged' (env.obs.privileged=true)")
    tensor = lambda v, dtype=torch.float32: torch.as_tensor(np.asarray(v), device=device).to(dtype)
    priv = obs["privileged"]
    return SceneFeatures(
        ego_status=tensor(obs["ego_status"]), command=tensor(obs["command"]),
        agents=tensor(priv["agents"]), agents_valid=tensor(priv["agents_valid"], torch.bool),
        lanes=tensor(priv["lanes"]), lanes_valid=tensor(priv["lanes_valid"], torch.bool), route=tensor(priv["route"]),
    )


def predicted_score(subscores: Tensor, metric: Metric | str) -> Tensor:
    """PDMS (v1.1) or EPDMS (v2.2) of sub-scores (..., K) in `SUBSCORES` order -> (...).

    The true scorer's own formula (`envs.metrics.pdms.pdm_score`, `epdms.epdm_score` with EC); fed
    with predicted expectations it is the IRL-VLA reward r = prod(multiplicative) * weighted mean.
    """
    if subscores.shape[-1] != len(SUBSCORES):
        raise ValueError(f"subscores.shape={tuple(subscores.shape)}: last axis must be K={len(SUBSCORES)} ({SUBSCORES})")
    flat = subscores.reshape(-1, len(SUBSCORES)).to(torch.float64)
    parts = SubScores(**{name: flat[:, k : k + 1] for k, name in enumerate(SUBSCORES)})
    total = pdm_score(parts) if Metric(metric) is Metric.PDMS else epdm_score(parts)
    return total.reshape(subscores.shape[:-1]).to(subscores.dtype)


def subscore_errors(predicted: Tensor, labels: Tensor) -> Tensor:
    """Mean absolute error per sub-score: predicted, labels (..., K) -> (K,)."""
    if predicted.shape != labels.shape or predicted.shape[-1] != len(SUBSCORES):
        raise ValueError(f"predicted.shape={tuple(predicted.shape)}, labels.shape={tuple(labels.shape)}: "
                         f"expected equal shapes (..., {len(SUBSCORES)})")
    return (predicted - labels).abs().reshape(-1, len(SUBSCORES)).mean(0)


def ranking_accuracy(predicted: Tensor, target: Tensor) -> float:
    """Share of plan pairs of the same scene that `predicted` (B, G) orders like `target` (B, G);
    pairs with equal targets are skipped, equal predictions count 1/2; NaN when no pair differs.

    What a reward model must get right for group- or batch-normalised advantages: the order within
    a scene, not the absolute score."""
    if predicted.shape != target.shape or predicted.ndim != 2:
        raise ValueError(f"predicted.shape={tuple(predicted.shape)}, target.shape={tuple(target.shape)}: expected equal (B, G)")
    target_sign = torch.sign(target[:, :, None] - target[:, None, :])
    predicted_sign = torch.sign(predicted[:, :, None] - predicted[:, None, :])
    counted = target_sign != 0
    if not bool(counted.any()):
        return float("nan")
    agreement = torch.where(predicted_sign == 0, 0.5, (predicted_sign == target_sign).to(predicted.dtype))
    return float(agreement[counted].mean())


# --- networks ---------------------------------------------------------------------------------------


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _masked_max(values: Tensor, valid: Tensor) -> Tensor:
    """Max over axis -2 of values (..., N, D) where valid (..., N); 0 where nothing is valid."""
    pooled = values.masked_fill(~valid[..., None], -torch.inf).amax(dim=-2)
    return pooled.masked_fill(pooled == -torch.inf, 0.0)


def _agent_columns(agents: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """agents (..., 9) -> xy [m] (..., 2), heading cos/sin (..., 2), velocity (..., 2), size+type one-hot (..., 2+7)."""
    kind = F.one_hot(agents[..., 8].round().long().clamp(0, NUM_AGENT_TYPES - 1), NUM_AGENT_TYPES).to(agents.dtype)
    return agents[..., 0:2], agents[..., 2:4], agents[..., 4:6], torch.cat([agents[..., 6:8] / SIZE_SCALE, kind], -1)


_STATUS_SCALE = torch.tensor([POSITION_SCALE, POSITION_SCALE, 1.0, SPEED_SCALE, SPEED_SCALE, ACCEL_SCALE, ACCEL_SCALE])


class SceneEncoder(nn.Module):
    """SceneFeatures (B) -> (B, width): ego status + command, then max-pooled agents, lanes (points
    pooled per lane, then lanes pooled) and route points (with their arc length); any A, L, P, R."""

    def __init__(self, width: int):
        super().__init__()
        self.agent_net = _mlp([2 + 2 + 2 + 2 + NUM_AGENT_TYPES, width, width])
        self.lane_point_net = _mlp([2, width, width])
        self.lane_net = _mlp([width, width])
        self.route_net = _mlp([3, width, width])
        self.out = _mlp([4 * 7 + 4 + 3 * width, width, width])

    def forward(self, scene: SceneFeatures) -> Tensor:
        status = (scene.ego_status / _STATUS_SCALE.to(scene.ego_status)).flatten(1)
        xy, heading, velocity, rest = _agent_columns(scene.agents)
        agents = torch.cat([xy / POSITION_SCALE, heading, velocity / SPEED_SCALE, rest], -1)
        pooled_agents = _masked_max(self.agent_net(agents), scene.agents_valid)
        lanes = self.lane_net(self.lane_point_net(scene.lanes / POSITION_SCALE).amax(dim=2))
        pooled_lanes = _masked_max(lanes, scene.lanes_valid)
        arc = 2.0 * torch.arange(scene.route.shape[1], device=scene.route.device, dtype=scene.route.dtype)
        route = torch.cat([scene.route, arc[None, :, None].expand(scene.batch_size, -1, 1)], -1) / POSITION_SCALE
        pooled_route = self.route_net(route).amax(dim=1)
        return self.out(torch.cat([status, scene.command, pooled_agents, pooled_lanes, pooled_route], -1))


def plan_kinematics(plans: Tensor, ego_velocity: Tensor, interval: float = PLAN_INTERVAL_S) -> Tensor:
    """Per-pose plan features (B, G, H, 9): x, y, cos, sin of heading, velocity, acceleration (ego
    frame, finite differences from the origin pose and the ego's current velocity) and yaw rate, scaled.

    plans (B, G, H, 3) [m, m, rad]; ego_velocity (B, 2) [m/s].
    """
    origin = torch.zeros_like(plans[:, :, :1])
    poses = torch.cat([origin, plans], 2)                                        # (B, G, H+1, 3)
    velocity = (poses[:, :, 1:, :2] - poses[:, :, :-1, :2]) / interval           # (B, G, H, 2)
    start = ego_velocity[:, None, None, :].expand(-1, plans.shape[1], 1, 2)
    accel = (velocity - torch.cat([start, velocity[:, :, :-1]], 2)) / interval
    turn = poses[:, :, 1:, 2] - poses[:, :, :-1, 2]
    yaw_rate = torch.atan2(torch.sin(turn), torch.cos(turn)) / interval
    return torch.cat([
        plans[..., :2] / POSITION_SCALE, torch.cos(plans[..., 2:3]), torch.sin(plans[..., 2:3]),
        velocity / SPEED_SCALE, accel / ACCEL_SCALE, yaw_rate[..., None],
    ], -1)


def plan_geometry(scene: SceneFeatures, plans: Tensor, interval: float = PLAN_INTERVAL_S) -> tuple[Tensor, Tensor]:
    """How each planned pose relates to the scene.

    Returns agent features (B, G, H, A, 16) — each agent moved at constant velocity to the pose's time
    t_h = (h+1)·interval, its offset, distance, heading and velocity in the pose's frame, size, type —
    and map features (B, G, H, 3): distance to the nearest valid lane point, distance to the nearest
    route point and that point's arc length along the route (points are 2 m apart), all scaled.
    """
    B, G, H, _ = plans.shape
    times = interval * torch.arange(1, H + 1, device=plans.device, dtype=plans.dtype)     # (H,)
    xy, heading, velocity, rest = _agent_columns(scene.agents)                              # (B, A, .)
    moved = xy[:, None] + velocity[:, None] * times[None, :, None, None]                     # (B, H, A, 2)
    cos, sin = torch.cos(plans[..., 2])[..., None], torch.sin(plans[..., 2])[..., None]    # (B, G, H, 1)
    offset = moved[:, None] - plans[..., None, :2]                                          # (B, G, H, A, 2)
    rotate = lambda v: torch.stack([cos * v[..., 0] + sin * v[..., 1], -sin * v[..., 0] + cos * v[..., 1]], -1)
    local = rotate(offset)
    local_velocity = rotate(velocity[:, None, None].expand_as(offset))
    local_heading = rotate(heading[:, None, None].expand_as(offset))
    distance = torch.linalg.vector_norm(offset, dim=-1, keepdim=True)
    agents = torch.cat([
        local / POSITION_SCALE, distance / POSITION_SCALE, local_heading, local_velocity / SPEED_SCALE,
        rest[:, None, None].expand(B, G, H, -1, -1),
    ], -1)
    points = plans[..., :2].reshape(B, G * H, 2)
    lane_points = scene.lanes.flatten(1, 2)                                                 # (B, L*P, 2)
    lane_valid = scene.lanes_valid[:, :, None].expand(-1, -1, scene.lanes.shape[2]).flatten(1)
    exact = "donot_use_mm_for_euclid_dist"     # the matmul shortcut loses centimetres at 100 m offsets in float32
    lane_distance = torch.cdist(points, lane_points, compute_mode=exact).masked_fill(~lane_valid[:, None], torch.inf).amin(-1)
    lane_distance = torch.where(torch.isfinite(lane_distance), lane_distance / POSITION_SCALE, torch.full_like(lane_distance, FAR))
    route_distance, nearest = torch.cdist(points, scene.route, compute_mode=exact).min(-1)   # (B, G*H)
    route = torch.stack([lane_distance, route_distance / POSITION_SCALE, 2.0 * nearest.to(plans.dtype) / POSITION_SCALE], -1)
    return agents, route.view(B, G, H, 3)


@dataclass(frozen=True)
class RewardModelConfig:
    """Sizes of the reward world model."""

    width: int = 32
    """Width of the scene encoder and of the per-(pose, agent) network, which runs on B·G·H·A rows and
    dominates the cost (64 makes an update 3-4x slower for no gain on the synthetic rule)."""
    hidden: int = 256
    """Width of the two hidden layers of the trunk that reads all poses."""
    seed: int = 0
    """Seed of the weight initialisation."""

    def __post_init__(self):
        for name in ("width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be >= 1")


class RewardWorldModel(nn.Module):
    """(scene, plans) -> K sub-score outputs per plan. `predict` gives values in [0, 1]; `loss` is BCE
    (soft labels) for the {0, 0.5, 1} metrics plus MSE for EP (`REGRESSION`), summed over metrics."""

    def __init__(self, config: RewardModelConfig | None = None, **overrides):
        super().__init__()
        self.config = config or RewardModelConfig(**overrides)
        w, h = self.config.width, self.config.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.encoder = SceneEncoder(w)
            self.agent_net = _mlp([16, w, w])
            self.pose_net = _mlp([9 + w + 3, w, w])
            self.trunk = _mlp([w + (PLAN_POSES + 1) * w, h, h, len(SUBSCORES)])
        self.register_buffer("is_regression", torch.tensor([name in REGRESSION for name in SUBSCORES]))

    def forward(self, scene: SceneFeatures, plans: Tensor) -> Tensor:
        """Raw outputs (B, G, K): logits (BCE heads) and unclamped values (EP). plans (B, G, H, 3)."""
        if plans.ndim != 4 or plans.shape[2:] != (PLAN_POSES, 3) or plans.shape[0] != scene.batch_size:
            raise ValueError(f"plans.shape={tuple(plans.shape)}: expected ({scene.batch_size}, G, {PLAN_POSES}, 3)")
        plans = plans.to(scene.ego_status)
        B, G = plans.shape[:2]
        context = self.encoder(scene)                                                       # (B, w)
        kinematics = plan_kinematics(plans, scene.ego_status[:, -1, 3:5])                   # (B, G, H, 9)
        agents, route = plan_geometry(scene, plans)
        valid = scene.agents_valid[:, None, None].expand(B, G, PLAN_POSES, -1)
        pooled = _masked_max(self.agent_net(agents), valid)                                  # (B, G, H, w)
        per_pose = self.pose_net(torch.cat([kinematics, pooled, route], -1))                   # (B, G, H, w)
        # max over poses: "any pose off-road / in collision" metrics; the flat poses: progress, comfort
        plan = torch.cat([per_pose.amax(dim=2), per_pose.flatten(2)], -1)
        return self.trunk(torch.cat([context[:, None].expand(-1, G, -1), plan], -1))

    def predict(self, scene: SceneFeatures, plans: Tensor) -> Tensor:
        """Predicted sub-scores (B, G, K) in [0, 1] (expectations for the {0, 0.5, 1} metrics)."""
        outputs = self(scene, plans)
        return torch.where(self.is_regression, outputs.clamp(0.0, 1.0), torch.sigmoid(outputs))

    def loss(self, scene: SceneFeatures, plans: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Scalar training loss and its per-metric parts (K,); labels (B, G, K) in [0, 1]."""
        outputs = self(scene, plans)
        labels = labels.to(outputs)
        if labels.shape != outputs.shape:
            raise ValueError(f"labels.shape={tuple(labels.shape)}: expected {tuple(outputs.shape)}")
        bce = F.binary_cross_entropy_with_logits(outputs, labels, reduction="none")
        mse = (outputs - labels) ** 2
        per_metric = torch.where(self.is_regression, mse, bce).reshape(-1, len(SUBSCORES)).mean(0)
        return per_metric.sum(), per_metric.detach()


# --- training data ----------------------------------------------------------------------------------


class RewardDataset:
    """FIFO buffer of truly scored plans: scenes (N), plans (N, G, H, 3), labels (N, G, K), on the CPU.

    Every entry holds G plans of one scene (G fixed by the first `add`); the oldest scenes are dropped
    beyond `capacity`.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity={capacity}: must be >= 1")
        self.capacity = capacity
        self.scenes: SceneFeatures | None = None
        self.plans = torch.zeros(0, 0, PLAN_POSES, 3)
        self.labels = torch.zeros(0, 0, len(SUBSCORES))
        self.total_added = 0
        """Plans ever added (not reduced by eviction)."""

    def __len__(self) -> int:
        return self.plans.shape[0]

    def add(self, scenes: SceneFeatures, plans: Tensor, labels: Tensor) -> None:
        """Append B scenes with their G plans (B, G, H, 3) and sub-score labels (B, G, K)."""
        B, G = plans.shape[:2]
        if plans.shape != (scenes.batch_size, G, PLAN_POSES, 3) or labels.shape != (B, G, len(SUBSCORES)):
            raise ValueError(f"plans.shape={tuple(plans.shape)}, labels.shape={tuple(labels.shape)}: expected "
                             f"({scenes.batch_size}, G, {PLAN_POSES}, 3) and ({scenes.batch_size}, G, {len(SUBSCORES)})")
        if len(self) and G != self.plans.shape[1]:
            raise ValueError(f"plans G={G}: this dataset holds {self.plans.shape[1]} plans per scene")
        if not bool(torch.isfinite(labels).all()) or bool(((labels < 0) | (labels > 1)).any()):
            raise ValueError("labels: must be finite and within [0, 1]")
        scenes = scenes.to("cpu")
        plans, labels = plans.detach().float().cpu(), labels.detach().float().cpu()
        if len(self):
            scenes = SceneFeatures.cat([self.scenes, scenes])
            plans, labels = torch.cat([self.plans, plans]), torch.cat([self.labels, labels])
        keep = slice(max(0, plans.shape[0] - self.capacity), None)
        self.scenes, self.plans, self.labels = scenes.rows(keep), plans[keep], labels[keep]
        self.total_added += B * G

    def batch(self, index: Tensor) -> tuple[SceneFeatures, Tensor, Tensor]:
        """Scenes, plans and labels of the entries `index` (n,)."""
        return self.scenes.rows(index), self.plans[index], self.labels[index]

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "scenes": None if self.scenes is None else self.scenes.state(),
                "plans": self.plans, "labels": self.labels, "total_added": self.total_added}

    def load_state_dict(self, state: dict) -> None:
        self.capacity = int(state["capacity"])
        self.scenes = None if state["scenes"] is None else SceneFeatures(**state["scenes"])
        self.plans, self.labels, self.total_added = state["plans"], state["labels"], int(state["total_added"])


def fit_reward_model(model: RewardWorldModel, optimizer: torch.optim.Optimizer, dataset: RewardDataset,
                     updates: int, batch_size: int, gen: torch.Generator, max_grad_norm: float = 1.0) -> float:
    """`updates` optimizer steps on minibatches of `batch_size` scenes drawn uniformly (with
    replacement across steps) from the dataset with `gen` (CPU); returns the mean loss (NaN if none).

    The learning rate anneals from the optimizer's `lr` to 0 along a cosine over the `updates` steps
    (restarting at every call, SGDR-style): without it the shared trunk's late steps keep kicking the
    EP regression around while the classification heads sharpen. Gradients are clipped to
    `max_grad_norm`.
    """
    if len(dataset) == 0 or updates == 0:
        return float("nan")
    device = next(model.parameters()).device
    peak = [group["lr"] for group in optimizer.param_groups]
    model.train()
    losses = []
    try:
        for update in range(updates):
            for group, lr in zip(optimizer.param_groups, peak):
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * update / updates))
            index = torch.randint(len(dataset), (min(batch_size, len(dataset)),), generator=gen)
            scenes, plans, labels = dataset.batch(index)
            loss, _ = model.loss(scenes.to(device), plans.to(device), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        for group, lr in zip(optimizer.param_groups, peak):
            group["lr"] = lr
        model.eval()
    return float(np.mean(losses))
