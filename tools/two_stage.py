"""Official two-stage (navhard) evaluation of an agent: NAVSIM v2's `run_pdm_score.py` + scene aggregator.

Every real frame (t0 and t0 - 0.5 s) and every pre-generated follow-up of each group is planned by the
agent and scored with EPDMS (human filter on the real frames only, since follow-ups have no human);
extended comfort compares the simulated states of each (now, prev) pair; follow-ups are weighted
exp(-d^2 / 0.2) around the agent's planned endpoint; group = 1/2 [s(now) S2(now) + s(prev) S2(prev)]
(spec navsim.md §2.6). Used by `python -m tools.evaluate --split navhard`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from envs.metrics.comfort import extended_comfort
from envs.metrics.epdms import epdm_score, two_stage_score
from envs.metrics.scorer import SCORE_KEYS, Metric, ScoringConfig, prepare_scenes, score_poses
from envs.navsim import PLAN_INTERVAL_S, check_plans
from envs.navsim_obs import build_observations
from envs.sim.geometry import to_global
from envs.sim.scene import Scene
from trainers.common.rollout import agent_obs_config

FRAME_INTERVAL_S = 0.5
"""[s] between a 'now' frame and its 'prev' frame (EC pairs)."""


def _plan_and_score(agent, scenes: list[Scene], obs_config, human_filter: bool, device, batch_size: int):
    """Plans (N, 8, 3), sub-scores {key: (N,)} with EC = 1 and simulated states (N, 41) of `scenes`."""
    plans, rows, states = [], {k: [] for k in SCORE_KEYS[:-2]}, []
    config = ScoringConfig(metric=Metric.EPDMS, human_filter=human_filter)
    for start in range(0, len(scenes), batch_size):
        chunk = scenes[start : start + batch_size]
        prep = prepare_scenes(chunk, config, device=device)
        obs = build_observations(chunk, obs_config, [r.centerline for r in prep.routes])
        plan = check_plans(agent.act(obs, scenes=chunk if agent.privileged else None), len(chunk))
        scored = score_poses(prep, torch.as_tensor(plan[:, None], dtype=torch.float64, device=prep.device), PLAN_INTERVAL_S)
        plans.append(plan)
        for key in rows:
            rows[key].append(getattr(scored.scored, key)[:, 0].cpu())
        states.append(replace(scored.states, **{n: getattr(scored.states, n)[:, 0].cpu() for n in scored.states.__dataclass_fields__}))
    cat = lambda parts: replace(parts[0], **{n: torch.cat([getattr(p, n) for p in parts]) for n in parts[0].__dataclass_fields__})
    return np.concatenate(plans), {k: torch.cat(v) for k, v in rows.items()}, cat(states)


def _final(subscores: dict, ec: torch.Tensor) -> torch.Tensor:
    """Per-token EPDMS with its extended comfort (denominator 16)."""
    from envs.metrics.pdms import SubScores

    s = SubScores(**{k: v[:, None] for k, v in subscores.items() if k != "ec"}, ec=ec[:, None])
    return epdm_score(s)[:, 0]


def evaluate_two_stage(agent, env_config, max_groups: int | None = None, batch_size: int = 32, seed: int = 0) -> dict:
    """navhard EPDMS of `agent` with stage-one / stage-two summaries and per-sub-score stage means."""
    from scenarios.splits import load_navhard

    groups = load_navhard(cache_dir=env_config.data_root, max_groups=max_groups, families=env_config.families)
    obs_config = agent_obs_config(agent.inputs, env_config.obs)
    S = max(len(g.syn_now) for g in groups)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        real = [g.now for g in groups] + [g.prev for g in groups]
        real_plans, real_sub, real_states = _plan_and_score(agent, real, obs_config, True, env_config.device, batch_size)
        syn_scenes, slots = [], []
        for gi, g in enumerate(groups):
            for si, (now, prev) in enumerate(zip(g.syn_now, g.syn_prev)):
                syn_scenes += [now, prev]
                slots.append((gi, si))
        syn_plans, syn_sub, syn_states = _plan_and_score(agent, syn_scenes, obs_config, False, env_config.device, batch_size)
    G = len(groups)
    take = lambda st, idx: replace(st, **{n: getattr(st, n)[idx] for n in st.__dataclass_fields__})
    real_ec = extended_comfort(take(real_states, torch.arange(G)), take(real_states, torch.arange(G, 2 * G)), FRAME_INTERVAL_S)
    now_idx, prev_idx = torch.arange(0, len(syn_scenes), 2), torch.arange(1, len(syn_scenes), 2)
    syn_ec = extended_comfort(take(syn_states, now_idx), take(syn_states, prev_idx), FRAME_INTERVAL_S)
    real_ec2 = torch.cat([real_ec, real_ec])  # NAVSIM writes the pair's EC to both tokens
    syn_ec2 = torch.stack([syn_ec, syn_ec], 1).reshape(-1)
    real_final, syn_final = _final(real_sub, real_ec2), _final(syn_sub, syn_ec2)

    def endpoints(scenes, plans):
        origin = torch.as_tensor(np.stack([s.ego_pose for s in scenes]))
        return to_global(torch.as_tensor(plans[:, -1], dtype=torch.float64), origin)[:, :2]

    real_end = endpoints(real, real_plans)
    syn_grid = {name: torch.zeros(G, S, dtype=torch.float64) for name in ("now", "prev")}
    start_grid = {name: torch.zeros(G, S, 2, dtype=torch.float64) for name in ("now", "prev")}
    valid = torch.zeros(G, S, dtype=torch.bool)
    sub_grid = {key: {name: torch.zeros(G, S, dtype=torch.float64) for name in ("now", "prev")} for key in real_sub}
    for j, (gi, si) in enumerate(slots):
        valid[gi, si] = True
        for offset, name in ((0, "now"), (1, "prev")):
            row = 2 * j + offset
            syn_grid[name][gi, si] = syn_final[row]
            start_grid[name][gi, si] = torch.as_tensor(syn_scenes[row].ego_pose[:2])
            for key in real_sub:
                sub_grid[key][name][gi, si] = (syn_ec2 if key == "ec" else syn_sub[key])[row]
    args = dict(now_endpoint=real_end[:G], prev_endpoint=real_end[G:], syn_now_start=start_grid["now"],
                syn_prev_start=start_grid["prev"], syn_valid=valid)
    total = two_stage_score(real_final[:G], real_final[G:], syn_now_score=syn_grid["now"], syn_prev_score=syn_grid["prev"], **args)
    result = {"epdms": float(total.epdms), "stage_one": float(total.stage_one), "stage_two": float(total.stage_two),
              "num_groups": float(G)}
    for key in real_sub:
        real_value = real_ec2 if key == "ec" else real_sub[key]
        summary = two_stage_score(real_value[:G], real_value[G:], syn_now_score=sub_grid[key]["now"],
                                  syn_prev_score=sub_grid[key]["prev"], **args)
        result[f"{key}_stage_one"] = float(summary.stage_one)
        result[f"{key}_stage_two"] = float(summary.stage_two)
    return result
