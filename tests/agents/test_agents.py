"""The agent registry and the batched contract, for every registered agent."""

import numpy as np
import pytest
import torch

from agents import AGENTS, Agent, TrainableAgent, load_agent, make_agent

TINY = {"vla_token": {"codebook_size": 32}, "vla_flow": {"flow_steps": 3}, "ego_mlp": {"hidden": 32}}


BENCH2DRIVE_AGENTS = ("privileged_rules", "route_steer")
NAVSIM_AGENTS = sorted(set(AGENTS) - set(BENCH2DRIVE_AGENTS))
"""The Bench2Drive rule agents act on that env's observations; tests/agents/test_bench2drive_rules.py covers them."""


@pytest.fixture(scope="module")
def agents():
    return {name: make_agent(name, **TINY.get(name, {})) for name in NAVSIM_AGENTS}


def test_registry_names():
    assert set(AGENTS) == {"constant_velocity", "ego_mlp", "pdm_closed", "human", "vla_token", "vla_flow",
                           "privileged_rules", "route_steer"}
    with pytest.raises(ValueError, match="agent='nope': unknown agent \\(valid: constant_velocity"):
        make_agent("nope")


def test_agents_say_their_benchmark(agents):
    assert all(getattr(agents[name], "benchmark", "navsim") == "navsim" for name in NAVSIM_AGENTS)
    assert all(make_agent(name).benchmark == "bench2drive" for name in BENCH2DRIVE_AGENTS)


@pytest.mark.parametrize("name", NAVSIM_AGENTS)
def test_contract(name, agents, obs, scenes):
    agent = agents[name]
    assert isinstance(agent, Agent) and agent.name == name
    assert isinstance(agent.inputs, frozenset) and isinstance(agent.privileged, bool)
    if isinstance(agent, torch.nn.Module):
        agent.eval()
    kept = {k: v for k, v in obs.items() if k in agent.inputs}          # declared inputs are enough
    given = scenes if agent.privileged else None
    with torch.no_grad():
        plans = agent.act(kept, scenes=given)
        again = agent.act(kept, scenes=given)
    assert plans.shape == (2, 8, 3) and plans.dtype == np.float32 and np.isfinite(plans).all()
    np.testing.assert_array_equal(plans, again)
    if not hasattr(agent, "sample"):
        return
    assert isinstance(agent, TrainableAgent)
    with torch.no_grad():
        samples = agent.sample(kept, 4, torch.Generator().manual_seed(0))
        logp, _ = agent.log_prob(kept, samples)
    assert samples.plans.shape == (2, 4, 8, 3) and samples.logp.shape == (2, 4)
    assert torch.isfinite(samples.plans).all() and torch.isfinite(samples.logp).all()
    torch.testing.assert_close(logp, samples.logp, rtol=1e-5, atol=1e-5)
    expert = torch.tensor(np.stack([s.human_trajectory.poses for s in scenes]), dtype=torch.float32)
    assert torch.isfinite(agent.imitation_loss(kept, expert))


@pytest.mark.parametrize("name", ["ego_mlp", "vla_flow"])
def test_load_agent_reads_the_kind(name, agents, obs, tmp_path):
    agent = agents[name].eval()
    agent.save(tmp_path / "a.pt")
    loaded = load_agent(tmp_path / "a.pt").eval()
    assert type(loaded) is type(agent)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    torch.save({"kind": "other"}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="kind 'other'"):
        load_agent(tmp_path / "b.pt")
