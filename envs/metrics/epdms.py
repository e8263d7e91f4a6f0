"""NAVSIM v2.2 EPDMS: weights, the human false-positive filter, navhard two-stage aggregation.

Sources: navsim main `pdm_scorer.py`, `run_pdm_score.py`, `evaluate/pdm_score.py`, `scene_aggregator.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import torch
from torch import Tensor

from envs.metrics.pdms import SubScores

EPDMS_MULTIPLIERS = ("nc", "dac", "tlc", "ddc")
"""Multiplicative metrics of v2 (`MultiMetricIndex` order)."""

EPDMS_WEIGHTS = MappingProxyType({"ep": 5.0, "ttc": 5.0, "lk": 2.0, "hc": 2.0, "ec": 2.0})
"""Weighted metrics of v2 in `WeightedMetricIndex` order; identical in tags v2.0 .. v2.2."""

HUMAN_FILTERED = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "hc")
"""Sub-scores the human filter touches: the `PDMResults` columns of one scoring pass. EC is computed
later by the aggregator and never filtered; C is not an EPDMS column."""

TWO_STAGE_SIGMA_SQUARED = 0.1
"""[m^2] sigma^2 of the Gaussian stage-2 weights (`SceneAggregator.sigma_squared`, since v2.1.2)."""


def epdm_score(s: SubScores, include_ec: bool | Tensor = True) -> Tensor:
    """EPDMS (B, P) = NC * DAC * DDC * TLC * (5*EP + 5*TTC + 2*LK + 2*HC + 2*EC) / 16.

    `include_ec=False` drops EC and its weight (denominator 14): NAVSIM's per-proposal `pdm_score`
    column, and the one-stage score of a frame without a previous frame (EC NaN there). A bool
    tensor broadcastable to (B, P) chooses per item. Summation order follows NAVSIM.
    """
    if isinstance(include_ec, Tensor):
        if include_ec.dtype != torch.bool:
            raise ValueError(f"include_ec.dtype={include_ec.dtype}: expected bool")
        try:
            include = torch.broadcast_to(include_ec, s.shape)
        except RuntimeError:
            raise ValueError(f"include_ec.shape={tuple(include_ec.shape)!r}: not broadcastable to {s.shape}") from None
    elif isinstance(include_ec, bool):
        include = torch.full(s.shape, include_ec, dtype=torch.bool, device=s.nc.device)
    else:
        raise ValueError(f"include_ec={include_ec!r}: expected a bool or a bool tensor")

    weighted = None
    total_weight = None
    for name, weight in EPDMS_WEIGHTS.items():
        value = getattr(s, name)
        if name == "ec":
            # compute_final_scores zeroes the EC value and its weight where EC is unavailable
            weight_t = torch.where(include, weight, 0.0).to(value.dtype)
            value = torch.where(include, value, torch.zeros_like(value))
        else:
            weight_t = torch.full_like(value, weight)
        term = value * weight_t
        weighted = term if weighted is None else weighted + term
        total_weight = weight_t if total_weight is None else total_weight + weight_t
    product = None
    for name in EPDMS_MULTIPLIERS:
        value = getattr(s, name)
        product = value if product is None else product * value
    return product * (weighted / total_weight)


@dataclass(frozen=True)
class HumanFiltered:
    """Agent sub-scores after the human filter, in the two roles NAVSIM gave them.

    `reported` is what the result columns show. `scored` feeds `epdm_score`: the same as `reported`
    with the fix (commit 359c7f7, 2025-09-29), the unfiltered agent scores before it (the filter
    then changed only the displayed columns, never the EPDMS; navsim issues #151, #158).
    """

    reported: SubScores
    """(B, P) filtered sub-scores, as NAVSIM's result columns show them."""
    scored: SubScores
    """(B, P) sub-scores that the final EPDMS is computed from."""


def apply_human_filter(
    agent: SubScores, human: SubScores, fixed: bool = True, has_human: Tensor | None = None
) -> HumanFiltered:
    """NAVSIM v2 false-positive filter: a sub-score the human also fails (human value == 0 exactly) is 1.

    agent (B, P); human (B, 1) or (B, P): the logged human plan simulated and scored ALONE against the
    same scene (so its EP and HC are 1 and never trigger). Filters `HUMAN_FILTERED` (not EC, not C).
    A human 0.5 (NC, DDC) does not trigger. `has_human` (B,) bool limits the filter to scenes that
    have a human future (NAVSIM: ORIGINAL frames; synthetic stage-2 scenes have none); default all.
    `fixed=False` reproduces the pre-fix behaviour (see `HumanFiltered`).
    """
    if not isinstance(agent, SubScores) or not isinstance(human, SubScores):
        raise ValueError(f"agent, human: expected SubScores, got {type(agent).__name__}, {type(human).__name__}")
    batch, num_plans = agent.shape
    if human.shape not in ((batch, 1), (batch, num_plans)):
        raise ValueError(f"human.shape={human.shape!r}: expected ({batch}, 1) or ({batch}, {num_plans})")
    if not isinstance(fixed, bool):
        raise ValueError(f"fixed={fixed!r}: expected a bool")
    if has_human is None:
        applies = torch.ones(batch, 1, dtype=torch.bool, device=agent.nc.device)
    else:
        if not isinstance(has_human, Tensor) or has_human.dtype != torch.bool or has_human.shape != (batch,):
            shape = tuple(has_human.shape) if isinstance(has_human, Tensor) else type(has_human).__name__
            raise ValueError(f"has_human={shape!r}: expected a bool tensor of shape ({batch},)")
        applies = has_human[:, None]

    filtered = {}
    for name in HUMAN_FILTERED:
        value = getattr(agent, name)
        trigger = (getattr(human, name) == 0) & applies
        filtered[name] = torch.where(trigger, torch.ones_like(value), value)
    reported = replace(agent, **filtered)
    return HumanFiltered(reported=reported, scored=reported if fixed else agent)


# --------------------------------------------------------------------------------------------------
# two-stage (navhard) aggregation
# --------------------------------------------------------------------------------------------------


def _checked(value: Tensor, name: str, shape: tuple, valid: Tensor | None = None) -> Tensor:
    """float64 `value` of exactly `shape`, finite wherever `valid` (everywhere if None); 0 elsewhere."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}={type(value).__name__}: expected a torch.Tensor of shape {shape}")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name}.shape={tuple(value.shape)!r}: expected {tuple(shape)}")
    value = value.to(torch.float64)
    if valid is not None:
        # padding slots may hold anything (NaN included)
        mask = valid.reshape(valid.shape + (1,) * (value.ndim - valid.ndim))
        value = torch.where(mask, value, torch.zeros_like(value))
    bad = ~torch.isfinite(value)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}{list(first)}={value[first].item()!r}: must be finite")
    return value


def _checked_valid(valid: Tensor, num_groups: int) -> Tensor:
    if not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.ndim != 2 or valid.shape[0] != num_groups:
        shape = tuple(valid.shape) if isinstance(valid, Tensor) else type(valid).__name__
        raise ValueError(f"valid={shape!r}: expected a bool tensor of shape ({num_groups}, S)")
    empty = ~valid.any(dim=-1)
    if empty.any():
        raise ValueError(f"valid[{int(empty.nonzero()[0])}]: group has no synthetic scene")
    return valid


def two_stage_weights(
    endpoint: Tensor, starts: Tensor, valid: Tensor, sigma_squared: float = TWO_STAGE_SIGMA_SQUARED
) -> Tensor:
    """Stage-2 weights of G groups over S synthetic scenes (padded; `valid` (G, S) bool) -> (G, S).

    w_i = exp(-|endpoint - start_i|^2 / (2 sigma^2)) normalised over the valid scenes of a group;
    uniform 1/n where the sum is ~0 (`np.isclose`, |sum| <= 1e-8) or NaN. endpoint (G, 2): the
    agent's PLANNED last pose in the global frame (not the simulated one); starts (G, S, 2): each
    synthetic scene's initial ego rear axle [m]. Padding slots get weight 0.
    """
    if not (isinstance(sigma_squared, (int, float)) and math.isfinite(sigma_squared) and sigma_squared > 0):
        raise ValueError(f"sigma_squared={sigma_squared!r}: must be a positive finite number [m^2]")
    num_groups = endpoint.shape[0] if isinstance(endpoint, Tensor) and endpoint.ndim == 2 else -1
    endpoint = _checked(endpoint, "endpoint", (num_groups, 2))
    valid = _checked_valid(valid, num_groups)
    starts = _checked(starts, "starts", (*valid.shape, 2), valid)
    num_valid = valid.sum(dim=-1, keepdim=True)

    squared_distance = (endpoint[:, None, 0] - starts[..., 0]) ** 2 + (endpoint[:, None, 1] - starts[..., 1]) ** 2
    weight = torch.exp(-squared_distance / (2 * sigma_squared))
    weight = torch.where(valid, weight, torch.zeros_like(weight))
    total = weight.sum(dim=-1, keepdim=True)
    degenerate = (total.abs() <= 1e-8) | torch.isnan(total)
    uniform = valid.to(torch.float64) / num_valid
    safe_total = torch.where(degenerate, torch.ones_like(total), total)
    return torch.where(degenerate, uniform, weight / safe_total)


@dataclass(frozen=True)
class TwoStageResult:
    """navhard two-stage aggregation of G groups (one real frame pair + its synthetic follow-ups)."""

    epdms: Tensor = field(metadata={"dims": ""})
    """Mean of the group scores: the navhard EPDMS (`extended_pdm_score_combined`)."""
    group: Tensor = field(metadata={"dims": "G"})
    """0.5 * [s(now) * S2(now) + s(prev) * S2(prev)] per group."""
    stage_one: Tensor = field(metadata={"dims": ""})
    """Mean over the 2G real frames (`extended_pdm_score_stage_one`)."""
    stage_two: Tensor = field(metadata={"dims": ""})
    """Mean over the 2G weighted stage-2 averages (`extended_pdm_score_stage_two`)."""
    stage_two_now: Tensor = field(metadata={"dims": "G"})
    """S2(now): weighted average of the synthetic 'now' scores."""
    stage_two_prev: Tensor = field(metadata={"dims": "G"})
    """S2(prev): weighted average of the synthetic 'prev' scores."""
    weights_now: Tensor = field(metadata={"dims": "G S"})
    weights_prev: Tensor = field(metadata={"dims": "G S"})


def _weighted_average(scores: Tensor, weights: Tensor, valid: Tensor) -> Tensor:
    """`calculate_weighted_average_score`: sum(w * s) / sum(w) (sum(w) is 1 only up to rounding)."""
    scores = torch.where(valid, scores, torch.zeros_like(scores))
    return (scores * weights).sum(dim=-1) / weights.sum(dim=-1)


def two_stage_score(
    now_score: Tensor,
    prev_score: Tensor,
    now_endpoint: Tensor,
    prev_endpoint: Tensor,
    syn_now_score: Tensor,
    syn_prev_score: Tensor,
    syn_now_start: Tensor,
    syn_prev_start: Tensor,
    syn_valid: Tensor,
    sigma_squared: float = TWO_STAGE_SIGMA_SQUARED,
) -> TwoStageResult:
    """navhard EPDMS from per-token final scores (EC included), G groups x S synthetic pairs (padded).

    Per group (navsim `reactive_all_mapping` entry [now, prev, [[syn_now_i, syn_prev_i], ...]]):
      now_score, prev_score (G,): final score of the real frames at t0 and t0 - 0.5 s;
      now_endpoint, prev_endpoint (G, 2): the agent's planned endpoint on those frames (global);
      syn_now_score, syn_prev_score (G, S): final scores of the synthetic follow-ups;
      syn_now_start, syn_prev_start (G, S, 2): their initial ego rear-axle positions;
      syn_valid (G, S) bool: which of the S slots hold a synthetic pair.
    'now' synthetic scenes are weighted around the 'now' endpoint and 'prev' ones around the 'prev'
    endpoint (`two_stage_weights`); group = 0.5 * [s(now) * S2(now) + s(prev) * S2(prev)].
    Feed a sub-score instead of the final score to get its stage-one / stage-two summaries.
    """
    num_groups = now_score.shape[0] if isinstance(now_score, Tensor) and now_score.ndim == 1 else -1
    if num_groups < 1:
        raise ValueError(f"now_score: expected a non-empty tensor of shape (G,), got {now_score!r}")
    now_score = _checked(now_score, "now_score", (num_groups,))
    prev_score = _checked(prev_score, "prev_score", (num_groups,))
    syn_valid = _checked_valid(syn_valid, num_groups)
    syn_now_score = _checked(syn_now_score, "syn_now_score", syn_valid.shape, syn_valid)
    syn_prev_score = _checked(syn_prev_score, "syn_prev_score", syn_valid.shape, syn_valid)

    weights_now = two_stage_weights(now_endpoint, syn_now_start, syn_valid, sigma_squared)
    weights_prev = two_stage_weights(prev_endpoint, syn_prev_start, syn_valid, sigma_squared)
    stage_two_now = _weighted_average(syn_now_score, weights_now, syn_valid)
    stage_two_prev = _weighted_average(syn_prev_score, weights_prev, syn_valid)
    group = (now_score * stage_two_now + prev_score * stage_two_prev) / 2
    return TwoStageResult(
        epdms=group.mean(),
        group=group,
        # NAVSIM lists the stage values group by group: now, prev, now, prev, ...
        stage_one=torch.stack([now_score, prev_score], dim=-1).mean(),
        stage_two=torch.stack([stage_two_now, stage_two_prev], dim=-1).mean(),
        stage_two_now=stage_two_now,
        stage_two_prev=stage_two_prev,
        weights_now=weights_now,
        weights_prev=weights_prev,
    )
