"""Stable-Baselines3 PPO on `roadloop/Bench2Drive-v0`: the env used unchanged, with vector observations by
default (`MultiInputPolicy` over ego measurements, target points and command) or a 128² BEV (`--bev`, SB3's
CNN extractor). The batched native vector env is handed to SB3 through `SameStepVecEnv` (one world step
for all envs); `--sync` uses SB3's own DummyVecEnv over single envs instead.

    python -m trainers.sb3_ppo                                    # 50k steps, 8 envs, vector observations
    python -m trainers.sb3_ppo --bev --timesteps 200000 --reward carl --num-envs 16
    python -m trainers.sb3_ppo --routes 0,1,2 --timesteps 4000 --out runs/ppo_small

Saves `model.zip` (atomically) and `config.json` in the run folder, SB3's TensorBoard scalars in
`{run folder}/ppo_1`, and prints the mean return of the training episodes that finished. Needs the `sb3` extra (`pip install stable-baselines3 rich`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np


@dataclass
class SB3PPOConfig:
    """Every knob of the example (the CLI flags mirror the field names, `_` written `-`)."""

    timesteps: int = 50_000
    """Environment steps (ticks, summed over envs) to train for."""
    num_envs: int = 8
    """Routes stepped together in one batched world step."""
    bev: bool = False
    """Observe a 128x128 semantic BEV (and the vectors) instead of the vectors only."""
    reward: str = "ds"
    """Env reward mode: ds, carl or sparse."""
    action: str = "control"
    """Env action mode: control (steer, throttle, brake) or waypoints (PID-tracked plan)."""
    routes: str = "builtin"
    """`builtin` (all 220 built-in routes) or comma-separated route ids."""
    n_steps: int = 256
    """PPO rollout length per env."""
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    seed: int = 0
    sync: bool = False
    """Use SB3's DummyVecEnv over single envs (slower; exercises the single env)."""
    device: str = "cpu"
    out: str = ""
    """Run folder; default runs/sb3_ppo__bench2drive__{seed}__{YYYYmmdd-HHMMSS}."""
    progress: bool = True
    """Show SB3's tqdm/rich progress bar."""

    def __post_init__(self):
        for name in ("timesteps", "num_envs", "n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be >= 1")
        if not (self.learning_rate > 0 and 0 < self.gamma <= 1):
            raise ValueError(f"learning_rate={self.learning_rate!r}, gamma={self.gamma!r}: need lr > 0, 0 < gamma <= 1")

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `gym.make` / `gym.make_vec` for this run."""
        routes: Any = self.routes
        if routes != "builtin":
            routes = tuple(int(r) for r in str(routes).split(",") if r.strip())
        obs = {"bev": True} if self.bev else {}
        return {"reward": self.reward, "action": self.action, "routes": routes, "obs": obs}


def _sb3():
    try:
        import stable_baselines3
    except ImportError as error:  # an optional dependency
        raise ImportError("trainers.sb3_ppo needs stable-baselines3: pip install 'roadloop[sb3]'") from error
    return stable_baselines3


def same_step_vec_env(env: gym.vector.VectorEnv):
    """SB3 `VecEnv` over a gymnasium vector env with SAME_STEP autoreset (`final_obs` in its info)."""
    from stable_baselines3.common.vec_env import VecEnv

    class SameStepVecEnv(VecEnv):
        """Steps every env in one call of the wrapped vector env; SB3's per-env infos carry
        `terminal_observation` and `TimeLimit.truncated` as its own VecEnvs do."""

        def __init__(self, vector_env: gym.vector.VectorEnv):
            self.env = vector_env
            self._actions: np.ndarray | None = None
            super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)

        def reset(self):
            obs, _ = self.env.reset(seed=self._seeds[0])
            self._reset_seeds()
            return obs

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self):
            obs, reward, terminated, truncated, info = self.env.step(self._actions)
            done = np.logical_or(terminated, truncated)
            infos: list[dict] = [{} for _ in range(self.num_envs)]
            for i in np.flatnonzero(done).tolist():
                infos[i]["terminal_observation"] = info["final_obs"][i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                if "driving_score" in info.get("final_info", {}):
                    infos[i]["driving_score"] = float(info["final_info"]["driving_score"][i])
            return obs, np.asarray(reward, np.float32), done, infos

        def close(self) -> None:
            self.env.close()

        def get_attr(self, attr_name: str, indices=None) -> list:
            return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value, indices=None) -> None:
            setattr(self.env, attr_name, value)

        def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list:
            return [getattr(self.env, method_name)(*method_args, **method_kwargs)] * len(self._get_indices(indices))

        def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

    return SameStepVecEnv(env)


def make_vec_env(cfg: SB3PPOConfig):
    """The SB3 VecEnv of a run, wrapped in VecMonitor (episode returns for logging)."""
    _sb3()
    import envs  # noqa: F401  (registers the ids)
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    kwargs = cfg.env_kwargs()
    if cfg.sync:
        venv = DummyVecEnv([lambda: gym.make("roadloop/Bench2Drive-v0", **kwargs) for _ in range(cfg.num_envs)])
    else:
        venv = same_step_vec_env(gym.make_vec("roadloop/Bench2Drive-v0", num_envs=cfg.num_envs,
                                              vectorization_mode="vector_entry_point", **kwargs))
    venv.seed(cfg.seed)
    return VecMonitor(venv)


def _run_dir(cfg: SB3PPOConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    return Path("runs") / f"sb3_ppo__bench2drive__{cfg.seed}__{time.strftime('%Y%m%d-%H%M%S')}"


def train(cfg: SB3PPOConfig):
    """Train PPO; save model and config into the run folder -> (model, mean return of the finished training
    episodes or nan, run folder)."""
    sb3 = _sb3()
    folder = _run_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    venv = make_vec_env(cfg)
    model = sb3.PPO("MultiInputPolicy", venv, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                    learning_rate=cfg.learning_rate, gamma=cfg.gamma, seed=cfg.seed, device=cfg.device, verbose=0,
                    tensorboard_log=str(folder))     # SB3's rollout/ and train/ scalars in {folder}/ppo_1
    model.learn(total_timesteps=cfg.timesteps, progress_bar=cfg.progress, tb_log_name="ppo")
    temporary = folder / "model.tmp.zip"
    model.save(temporary)
    os.replace(temporary, folder / "model.zip")
    config_tmp = folder / "config.json.tmp"
    config_tmp.write_text(json.dumps(asdict(cfg), indent=2))
    os.replace(config_tmp, folder / "config.json")
    returns = [episode["r"] for episode in model.ep_info_buffer]
    venv.close()
    return model, float(np.mean(returns)) if returns else math.nan, folder


def parse_args(argv: Sequence[str] | None = None) -> SB3PPOConfig:
    """CLI flags from the SB3PPOConfig fields."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = SB3PPOConfig()
    for f in fields(SB3PPOConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    return SB3PPOConfig(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    cfg = parse_args(argv)
    _, mean_return, folder = train(cfg)
    print(f"mean return of finished training episodes: {mean_return:.4f}" if math.isfinite(mean_return)
          else "no training episode finished")
    print(f"saved {folder / 'model.zip'}")


if __name__ == "__main__":
    main()
