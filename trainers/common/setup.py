"""Run set-up every trainer repeats: run and agent config, device and seeds, the run folder, the
trainable agent (fresh, from a checkpoint, or from a short SFT run made on the spot), the training
vector env, resuming from the latest checkpoint, and the Hydra entry over a structured config."""

from __future__ import annotations

import math
import random
import warnings
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from trainers.common.checkpoint import load_latest, set_rng_state
from trainers.common.logging import flatten_config, run_name

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "configs"
"""The Hydra tree: `configs/{sft,grpo,ppo}.yaml` plus the `env/` and `agent/` groups."""


class Resume(str, Enum):
    auto = "auto"
    """Continue from the latest checkpoint in `run.dir` when there is one."""
    never = "never"
    """Always start from step 0 (an existing checkpoint in `run.dir` is overwritten as training goes)."""


@dataclass
class AgentSpec:
    """Which agent to train (`agents.make_agent(name, **kwargs)`)."""

    name: str = "vla_token"
    """A trainable agent: `vla_token`, `vla_flow`, `ego_mlp`."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Constructor arguments (the agent's config fields, e.g. `preset`, `cameras` for the VLA agents)."""


@dataclass
class RunConfig:
    """Seed, folder and resume of one run."""

    seed: int = 0
    """Seeds python, numpy, torch and every generator of the run."""
    dir: str | None = None
    """Run folder; None: `{root}/{algo}__{env}__{seed}__{YYYYmmdd-HHMMSS}` (fresh, so pass `dir` to resume)."""
    root: str = "runs"
    """Parent folder of generated run folders."""
    resume: Resume = Resume.auto
    """`auto`: continue from the latest checkpoint in `dir`; `never`: start over."""


def check_ranges(cfg: Any, *, at_least_one: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                 positive: tuple[str, ...] = (), unit: tuple[str, ...] = (), device: str | None = None) -> None:
    """ValueError naming the first field of `cfg` out of its range: counts in `at_least_one` >= 1, values in
    `non_negative` finite and >= 0, in `positive` finite and > 0, in `unit` within [0, 1]. A field set to
    None passes (None means "off" or "all"). `device`: a torch device string or `auto`."""
    rules = ((at_least_one, lambda v: v >= 1, "must be >= 1"),
             (non_negative, lambda v: math.isfinite(v) and v >= 0, "must be finite and >= 0"),
             (positive, lambda v: math.isfinite(v) and v > 0, "must be positive and finite"),
             (unit, lambda v: 0 <= v <= 1, "must be within [0, 1]"))
    for names, is_valid, reason in rules:
        for name in names:
            value = getattr(cfg, name)
            if value is not None and not is_valid(value):
                raise ValueError(f"{name}={value!r}: {reason}")
    if device is not None and device != "auto":
        torch.device(device)    # raises for a malformed device string


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; any other name as given."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else torch.device(name)


def start_run(run: RunConfig, algo: str, env: str) -> Path:
    """Seed python, numpy and torch with `run.seed`; the run folder (`run.dir` or a fresh name under `run.root`)."""
    random.seed(run.seed)
    np.random.seed(run.seed)
    torch.manual_seed(run.seed)
    return Path(run.dir) if run.dir else Path(run.root) / run_name(algo, env, run.seed)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML-able values (enums as their values, tuples as lists)."""

    def plain(value):
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(asdict(cfg))


def trainable_agent(spec: AgentSpec, checkpoint: str | Path | None, device: torch.device, needs: tuple[str, ...]):
    """The agent to train on `device`: loaded from `checkpoint` (its kind must be `spec.name`) or built
    fresh from `spec`. ValueError when it is not an nn.Module with every method in `needs`."""
    from agents import load_agent, make_agent

    try:
        agent = load_agent(checkpoint) if checkpoint else make_agent(spec.name, **spec.kwargs)
    except TypeError as error:
        raise ValueError(f"agent.kwargs={dict(spec.kwargs)!r}: {error}") from error
    if agent.name != spec.name:
        raise ValueError(f"init_checkpoint={str(checkpoint)!r}: holds a {agent.name!r} agent, agent.name={spec.name!r}")
    if not (isinstance(agent, torch.nn.Module) and all(hasattr(agent, method) for method in needs)):
        raise ValueError(f"agent.name={spec.name!r}: not a trainable agent (needs nn.Module + {' + '.join(needs)})")
    return agent.to(device)


def sft_start(cfg: Any, run_dir: Path, steps: int, lr: float) -> Path:
    """The start policy of an RL run given none: `{run_dir}/sft/agent.pt`, made by a short SFT of `cfg.agent`
    on `cfg.train_split` (first `cfg.max_train_scenes`) with `cfg.teacher`, unless that file exists."""
    from trainers.sft import SFTConfig, train as sft_train

    path = run_dir / "sft" / "agent.pt"
    if not path.is_file():
        steps = max(1, steps)
        sft_train(SFTConfig(env=cfg.env, agent=cfg.agent, run=RunConfig(seed=cfg.run.seed, dir=str(path.parent)),
                            device=cfg.device, train_split=cfg.train_split, max_train_scenes=cfg.max_train_scenes,
                            teacher=cfg.teacher, steps=steps, lr=lr, eval_every=0, log_every=max(1, steps // 20),
                            ckpt_every=steps, progress=cfg.progress))
    return path


def make_train_vec(env_id: str, num_envs: int, env_config):
    """`gym.make_vec(env_id)` of `num_envs` episodes on the native batched entry point."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the env ids)

    with warnings.catch_warnings():     # gymnasium flags v1 as "out of date" because v2 exists; v1 is PDMS on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", config=env_config)


def resume_latest(run_dir: Path, resume: Resume, parts: dict[str, Any], generators: dict, config: dict) -> tuple[int, dict]:
    """Restore the latest checkpoint of `run_dir` (when `resume` is auto and there is one) -> (step, state).

    parts: {checkpoint key: object with `load_state_dict`} (model, optimizer, ...), loaded in place;
    generators: the run's named generators, restored in place. (0, {}) when nothing was resumed.
    """
    state = load_latest(run_dir) if Resume(resume) is Resume.auto else None
    if state is None:
        return 0, {}
    for key, part in parts.items():
        part.load_state_dict(state[key])
    set_rng_state(state["rng"], generators)
    before = flatten_config(state.get("config", {}))
    changed = sorted(k for k, v in flatten_config(config).items() if before.get(k) != v)
    print(f"resumed {run_dir} at step {state['step']}" + (f"; changed settings: {', '.join(changed)}" if changed else ""))
    return int(state["step"]), state


def register_schema(schema: type, name: str) -> None:
    """Register a trainer's config dataclass as the structured Hydra schema `name` (unknown keys are errors)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    node = OmegaConf.structured(schema)
    OmegaConf.set_readonly(node.env.obs, False)  # ObservationConfig is frozen; overrides must still merge
    OmegaConf.set_struct(node.agent.kwargs, False)  # open: the agent's own config checks these names
    ConfigStore.instance().store(name=name, node=node)


def from_hydra(cfg) -> Any:
    """A composed Hydra config -> its validated dataclass (runs every __post_init__)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg)


def eval_summary(result: dict) -> str | None:
    """One line comparing a run's first and last evaluation (None without both), e.g.
    `evaluation pdms (64 scenes): 55.1 at the start -> 71.0 after 200 steps`."""
    first, last = result.get("first_eval"), result.get("last_eval")
    if not first or not last:
        return None
    metric = "epdms" if "epdms" in last else "pdms"
    return (f"evaluation {metric} ({int(last.get('num_scenes', 0))} scenes): {100 * first[metric]:.1f} at the start -> "
            f"{100 * last[metric]:.1f} after {result.get('step')} steps")


def hydra_main(config_name: str, schema: type, train: Callable[[Any], dict], shown: tuple[str, ...]) -> None:
    """`python -m trainers.<config_name> key=value ...`: compose `configs/<config_name>.yaml` over the
    schema, run `train`, print the `shown` entries of its result."""
    import hydra

    register_schema(schema, f"{config_name}_schema")

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)
    def run(cfg) -> None:
        result = train(from_hydra(cfg))
        print({k: v for k, v in result.items() if k in shown})
        summary = eval_summary(result)
        if summary:
            print(summary)

    run()
