"""Driving policies behind one batched contract (`agents.base`), registered by name for `agent=...`."""

from __future__ import annotations

from typing import Any, Callable

from agents.base import Agent, Obs, Samples, TrainableAgent


def _constant_velocity(**kwargs):
    from agents.baselines import ConstantVelocityAgent

    return ConstantVelocityAgent(**kwargs)


def _ego_mlp(**kwargs):
    from agents.baselines import EgoStatusMLPAgent

    return EgoStatusMLPAgent(**kwargs)


def _human(**kwargs):
    from agents.baselines import HumanAgent

    return HumanAgent(**kwargs)


def _pdm_closed(**kwargs):
    from agents.pdm_closed import PDMClosedAgent

    return PDMClosedAgent(**kwargs)


def _privileged_rules(**kwargs):
    from agents.bench2drive_rules import PrivilegedRulesAgent

    return PrivilegedRulesAgent(**kwargs)


def _route_steer(**kwargs):
    from agents.bench2drive_rules import RouteSteerAgent

    return RouteSteerAgent(**kwargs)


def _vla(head: str) -> Callable[..., Any]:
    def build(**kwargs):
        from importlib.util import find_spec

        if find_spec("transformers") is None:
            raise ImportError(f"agent 'vla_{head}' needs transformers: pip install 'transformers>=5' tokenizers")
        from agents.vla.config import VLAConfig
        from agents.vla.model import VLA

        return VLA(VLAConfig(head=head, **kwargs))
    return build


AGENTS: dict[str, Callable[..., Any]] = {
    "constant_velocity": _constant_velocity,
    "ego_mlp": _ego_mlp,
    "pdm_closed": _pdm_closed,
    "human": _human,
    "vla_token": _vla("token"),
    "vla_flow": _vla("flow"),
    "privileged_rules": _privileged_rules,
    "route_steer": _route_steer,
}
"""Agent name -> factory(**config fields)."""


def make_agent(name: str, **kwargs) -> Agent:
    """Build a registered agent: `make_agent("vla_flow", preset="tiny", flow_steps=8)`."""
    if name not in AGENTS:
        raise ValueError(f"agent={name!r}: unknown agent (valid: {', '.join(AGENTS)})")
    return AGENTS[name](**kwargs)


def load_agent(path, map_location=None) -> TrainableAgent:
    """A trainable agent from a checkpoint written by its `save` (the kind is read from the file)."""
    from pathlib import Path

    import torch

    if not Path(path).is_file():
        raise ValueError(f"path={str(path)!r}: no such checkpoint file")
    payload = torch.load(path, map_location="cpu", weights_only=False, mmap=True)   # mmap: only the header is read
    kind = payload.get("kind") if isinstance(payload, dict) else None
    if kind == "vla":
        from agents.vla.model import VLA

        return VLA.load(path, map_location)
    if kind == "ego_mlp":
        from agents.baselines import EgoStatusMLPAgent

        return EgoStatusMLPAgent.load(path, map_location)
    raise ValueError(f"path={str(path)!r}: checkpoint of kind {kind!r}; loadable kinds are 'vla', 'ego_mlp'")


__all__ = ["AGENTS", "Agent", "Obs", "Samples", "TrainableAgent", "load_agent", "make_agent"]
