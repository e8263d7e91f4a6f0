"""Flow-matching action head: a small transformer "action expert" cross-attending to the backbone's last
hidden states, trained with rectified flow, sampled with a deterministic Euler ODE or the Flow-GRPO SDE
whose per-step Gaussian log-densities make the policy's log-probability exact.

Conventions (posttraining.md §1.6, §6.3): x_t = (1 - t)·x_0 + t·ε with t = 1 noise and t = 0 the plan;
the expert predicts the velocity v = ε - x_0; integration runs t: start -> 0 over K uniform steps
(dt = t_next - t < 0). Actions are plans divided by `action_scale` (normalised units).

Log-probabilities are SUMMED over the 8 x 3 action dimensions (Flow-GRPO averages them): a sum is the
true log-density of each step, so exp(logp_new - logp_old) is the exact likelihood ratio and
importance weights of injected samples (posttraining.md §1.9) mean what they say. The initial state
x_K is not part of the log-probability (it does not depend on the weights).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class ActionExpert(nn.Module):
    """v_θ(x_t, t | context): (N, H, 3) noisy actions + (N,) times + (N, S, width) memory -> (N, H, 3) velocity.

    The memory is the backbone context (B, S, D) projected once by `encode_context` and then indexed
    per row, so the G samples and K steps of a scene share one projection.

    Each of the H poses is a token; layers are pre-norm transformer decoder layers (self-attention
    over poses, cross-attention to the context, MLP); the flow time enters as a sinusoidal embedding
    added to every pose token.
    """

    def __init__(self, context_dim: int, width: int = 128, layers: int = 2, heads: int = 4, horizon: int = 8):
        super().__init__()
        self.width = width
        self.action_in = nn.Linear(3, width)
        self.pose_embedding = nn.Parameter(0.02 * torch.randn(horizon, width))
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.context_in = nn.Linear(context_dim, width)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)
        self.action_out = nn.Linear(width, 3)

    def time_embedding(self, t: Tensor) -> Tensor:
        """(N,) flow times in [0, 1] -> (N, width) sinusoidal features of 1000·t."""
        half = self.width // 2
        freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angle = 1000.0 * t.float()[:, None] * freq
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)

    def encode_context(self, context: Tensor) -> Tensor:
        """(B, S, D) backbone hidden states -> (B, S, width) memory."""
        return self.context_in(context)

    def forward(self, x: Tensor, t: Tensor, memory: Tensor, memory_valid: Tensor) -> Tensor:
        tokens = self.action_in(x) + self.pose_embedding + self.time_mlp(self.time_embedding(t))[:, None]
        ignore = ~memory_valid.bool()
        for layer in self.layers:
            tokens = layer(tokens, memory, memory_key_padding_mask=ignore)
        return self.action_out(self.norm(tokens))


def time_grid(steps: int, start: float = 1.0, device=None) -> Tensor:
    """(K+1,) float32 flow times start, ..., 0 in K uniform steps."""
    if steps < 1:
        raise ValueError(f"steps={steps}: need at least one integration step")
    return torch.linspace(start, 0.0, steps + 1, device=device, dtype=torch.float32)


def sde_mean_std(x: Tensor, velocity: Tensor, t: Tensor, t_next: Tensor, noise_level: float,
                 t_first_step: float) -> tuple[Tensor, Tensor]:
    """Flow-GRPO SDE step (flow_grpo `sde_step_with_logprob`, type "sde") -> mean (N, H, 3), std (N, 1, 1).

    σ_t = a·sqrt(t / (1 - t')), t' = t except t' = t_first_step (the grid's second time) where t = 1;
    mean = x·(1 + σ_t²·dt / (2t)) + v·(1 + σ_t²·(1 - t) / (2t))·dt;  std = σ_t·sqrt(-dt).
    t, t_next: (N,) times of each row.
    """
    t = t.to(x.dtype).view(-1, 1, 1)
    dt = t_next.to(x.dtype).view(-1, 1, 1) - t
    denominator = 1.0 - torch.where(t >= 1.0, torch.full_like(t, t_first_step), t)
    sigma = noise_level * torch.sqrt(t / denominator)
    mean = x * (1 + sigma**2 * dt / (2 * t)) + velocity * (1 + sigma**2 * (1 - t) / (2 * t)) * dt
    return mean, sigma * torch.sqrt(-dt)


def gaussian_log_density(value: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Σ over the last two axes of log N(value; mean, std²): (N, H, 3) -> (N,)."""
    z = (value - mean) / std
    return (-0.5 * z**2 - torch.log(std) - LOG_SQRT_2PI).sum(dim=(-1, -2))


def sample_chain(velocity_fn, x_start: Tensor, grid: Tensor, noise_level: float,
                 gen: torch.Generator | None, stochastic: bool) -> tuple[Tensor, Tensor | None]:
    """Integrate from x_start (N, H, 3) at grid[0] to t = 0 -> chain (N, K+1, H, 3), step log-probs (N, K).

    velocity_fn(x (N, H, 3), t (N,)) -> (N, H, 3). stochastic: Flow-GRPO SDE steps with noise from `gen`
    (log-probs returned); otherwise Euler ODE steps x + v·dt (log-probs None).
    """
    states, step_logp = [x_start], []
    rows = x_start.shape[0]
    t_first_step = float(grid[1]) if len(grid) > 1 else 0.0
    x = x_start
    for k in range(len(grid) - 1):                        # sequential: each state depends on the last
        t, t_next = grid[k].expand(rows), grid[k + 1].expand(rows)
        velocity = velocity_fn(x, t).float()
        if stochastic:
            mean, std = sde_mean_std(x, velocity, t, t_next, noise_level, t_first_step)
            noise = torch.randn(x.shape, generator=gen, device=gen.device if gen is not None else x.device)
            x_next = mean + std * noise.to(x.device)
            step_logp.append(gaussian_log_density(x_next, mean, std))
        else:
            x_next = x + velocity * (t_next - t).view(-1, 1, 1)
        states.append(x_next)
        x = x_next
    chain = torch.stack(states, dim=1)
    return chain, (torch.stack(step_logp, dim=1) if stochastic else None)


def chain_log_prob(velocity_fn, chain: Tensor, grid: Tensor, noise_level: float) -> Tensor:
    """Per-step SDE log-densities (N, K) of a recorded chain (N, K+1, H, 3) under the current velocity field.

    All K steps go through `velocity_fn(x (N·K, H, 3), t (N·K,))` in one batch (row n·K + k is step k of
    chain n), so gradients reach every step at once.
    """
    rows, steps = chain.shape[0], chain.shape[1] - 1
    if steps != len(grid) - 1:
        raise ValueError(f"chain.shape={tuple(chain.shape)}: {steps} steps, but the sampler has {len(grid) - 1}")
    x = chain[:, :-1].reshape(rows * steps, *chain.shape[2:])
    t = grid[:-1].repeat(rows)
    t_next = grid[1:].repeat(rows)
    velocity = velocity_fn(x, t).float()
    mean, std = sde_mean_std(x, velocity, t, t_next, noise_level, float(grid[1]))
    target = chain[:, 1:].reshape(rows * steps, *chain.shape[2:])
    return gaussian_log_density(target, mean, std).view(rows, steps)


def flow_matching_loss(velocity_fn, actions: Tensor, gen: torch.Generator | None = None) -> Tensor:
    """Rectified-flow loss: mean over rows and dims of ‖v_θ(x_t, t) - (ε - x_0)‖², t ~ U(0, 1), ε ~ N(0, I).

    actions: (N, H, 3) normalised expert actions x_0.
    """
    device = gen.device if gen is not None else actions.device
    t = torch.rand(actions.shape[0], generator=gen, device=device).to(actions.device)
    noise = torch.randn(actions.shape, generator=gen, device=device).to(actions.device)
    noisy = (1 - t.view(-1, 1, 1)) * actions + t.view(-1, 1, 1) * noise
    return ((velocity_fn(noisy, t).float() - (noise - actions)) ** 2).mean()


def history_extrapolation(ego_status: Tensor, num_poses: int = 8, interval: float = 0.5,
                          max_yaw_rate: float = 1.0) -> Tensor:
    """Constant speed and yaw rate from the ego history: (B, 4, 7) -> (B, H, 3) ego-frame poses.

    Speed is |v| of the current frame; the yaw rate is the heading change from the previous history
    frame (0.5 s earlier) to now, clipped to ±max_yaw_rate [rad/s]; poses follow the exact arc.
    """
    speed = torch.linalg.vector_norm(ego_status[:, -1, 3:5], dim=-1)[:, None]             # (B, 1)
    previous = ego_status[:, -2, 2]
    yaw_rate = (-torch.atan2(torch.sin(previous), torch.cos(previous)) / interval).clamp(-max_yaw_rate, max_yaw_rate)[:, None]
    times = interval * torch.arange(1, num_poses + 1, device=ego_status.device, dtype=ego_status.dtype)
    heading = yaw_rate * times
    is_turning = yaw_rate.abs() > 1e-6
    safe_rate = torch.where(is_turning, yaw_rate, torch.ones_like(yaw_rate))
    x = torch.where(is_turning, speed * torch.sin(heading) / safe_rate, speed * times)
    y = torch.where(is_turning, speed * (1 - torch.cos(heading)) / safe_rate, torch.zeros_like(heading))
    return torch.stack([x, y, heading], dim=-1)
