"""epdms.py: EPDMS weights, the human filter (fixed and pre-fix) and navhard two-stage aggregation."""

import math

import pytest
import torch

from envs.metrics.epdms import (
    EPDMS_WEIGHTS,
    HUMAN_FILTERED,
    apply_human_filter,
    epdm_score,
    two_stage_score,
    two_stage_weights,
)
from envs.metrics.pdms import SubScores

NAMES = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "c", "lk", "hc", "ec")


def scores(rows: int = 1, **values) -> SubScores:
    """SubScores (rows, P) from per-field lists (repeated over rows); unspecified fields are 1."""
    length = max((len(v) for v in values.values()), default=1)
    return SubScores(
        **{
            n: torch.tensor(values.get(n, [1.0] * length), dtype=torch.float64)[None].repeat(rows, 1)
            for n in NAMES
        }
    )


def f64(values):
    return torch.tensor(values, dtype=torch.float64)


# ------------------------------------------------------------------------------------------- weights


def test_weights_are_navsim_v2():
    assert dict(EPDMS_WEIGHTS) == {"ep": 5.0, "ttc": 5.0, "lk": 2.0, "hc": 2.0, "ec": 2.0}


def test_hand_worked_values():
    s = scores(
        ep=[0.5, 1.0, 1.0, 1.0, 1.0, 1.0],
        ttc=[0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        ec=[1.0, 0.0, 1.0, 1.0, 1.0, 1.0],
        ddc=[1.0, 1.0, 0.5, 1.0, 1.0, 1.0],
        tlc=[1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
        lk=[1.0, 1.0, 1.0, 1.0, 0.0, 1.0],
        c=[0.0] * 6,  # v1 comfort is not part of EPDMS
    )
    expected = [(2.5 + 0 + 2 + 2 + 2) / 16, 14 / 16, 0.5, 0.0, 14 / 16, 1.0]
    torch.testing.assert_close(epdm_score(s), f64([expected]))


def test_without_ec_the_denominator_is_14():
    s = scores(ep=[0.5, 0.5], ttc=[0.0, 0.0], ec=[0.0, 0.0])
    torch.testing.assert_close(epdm_score(s, include_ec=False), f64([[6.5 / 14, 6.5 / 14]]))
    per_item = epdm_score(s, include_ec=torch.tensor([[True, False]]))
    torch.testing.assert_close(per_item, f64([[6.5 / 16, 6.5 / 14]]))


def test_include_ec_must_be_bool():
    with pytest.raises(ValueError, match="include_ec"):
        epdm_score(scores(), include_ec=1)
    with pytest.raises(ValueError, match="include_ec.shape"):
        epdm_score(scores(ep=[1.0, 1.0]), include_ec=torch.tensor([True, False, True]))


# -------------------------------------------------------------------------------------- human filter


def test_human_ddc_zero_makes_agent_ddc_one():
    agent = scores(ddc=[0.0])
    human = scores(ddc=[0.0], ep=[1.0], hc=[1.0])
    assert epdm_score(agent).item() == 0.0

    fixed = apply_human_filter(agent, human, fixed=True)
    assert fixed.reported.ddc.item() == 1.0
    assert epdm_score(fixed.scored).item() == 1.0  # the fix lets the filter change the score

    pre_fix = apply_human_filter(agent, human, fixed=False)
    assert pre_fix.reported.ddc.item() == 1.0  # the column shows the filtered value ...
    assert epdm_score(pre_fix.scored).item() == 0.0  # ... but the score ignores it


def test_only_exact_zero_triggers_and_ec_is_never_filtered():
    agent = scores(nc=[0.0], ddc=[0.5], ec=[0.0], c=[0.0])
    human = scores(nc=[0.5], ddc=[0.5], ec=[0.0], c=[0.0])
    out = apply_human_filter(agent, human).reported
    assert (out.nc.item(), out.ddc.item(), out.ec.item(), out.c.item()) == (0.0, 0.5, 0.0, 0.0)
    assert "ec" not in HUMAN_FILTERED and "c" not in HUMAN_FILTERED


def test_every_pdm_result_column_is_filtered():
    zeros = {n: [0.0] for n in HUMAN_FILTERED}
    out = apply_human_filter(scores(**zeros), scores(**zeros)).reported
    for name in HUMAN_FILTERED:
        assert getattr(out, name).item() == 1.0, name


def test_human_row_broadcasts_over_proposals_and_respects_has_human():
    agent = scores(rows=2, tlc=[0.0, 1.0, 0.0])  # (B=2, P=3)
    human = scores(rows=2, tlc=[0.0])  # (B=2, 1)
    out = apply_human_filter(agent, human, has_human=torch.tensor([True, False])).reported
    assert out.tlc.tolist() == [[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]  # scene 1 is synthetic: no filter


def test_human_filter_rejects_bad_shapes():
    with pytest.raises(ValueError, match="human.shape"):
        apply_human_filter(scores(ep=[1.0, 1.0, 1.0]), scores(ep=[1.0, 1.0]))
    with pytest.raises(ValueError, match="has_human"):
        apply_human_filter(scores(), scores(), has_human=torch.tensor([1]))


# ------------------------------------------------------------------------------------------ two-stage


def test_two_stage_hand_worked_group():
    # now: planned endpoint (0, 0); synthetic starts at distance 0 and 0.5 m -> exp(0) and
    # exp(-0.25 / 0.2); prev: endpoint (10, 0), both synthetic starts on it -> 1/2 each
    w_far = math.exp(-0.25 / (2 * 0.1))
    w_now = [1 / (1 + w_far), w_far / (1 + w_far)]
    s2_now = 0.8 * w_now[0] + 0.4 * w_now[1]
    s2_prev = 0.5 * 0.6 + 0.5 * 1.0
    group = 0.5 * (0.9 * s2_now + 0.5 * s2_prev)

    result = two_stage_score(
        now_score=f64([0.9]),
        prev_score=f64([0.5]),
        now_endpoint=f64([[0.0, 0.0]]),
        prev_endpoint=f64([[10.0, 0.0]]),
        syn_now_score=f64([[0.8, 0.4]]),
        syn_prev_score=f64([[0.6, 1.0]]),
        syn_now_start=f64([[[0.0, 0.0], [0.3, 0.4]]]),
        syn_prev_start=f64([[[10.0, 0.0], [10.0, 0.0]]]),
        syn_valid=torch.tensor([[True, True]]),
    )
    torch.testing.assert_close(result.weights_now, f64([w_now]))
    torch.testing.assert_close(result.weights_prev, f64([[0.5, 0.5]]))
    torch.testing.assert_close(result.stage_two_now, f64([s2_now]))
    torch.testing.assert_close(result.group, f64([group]))
    torch.testing.assert_close(result.epdms, f64(group))
    torch.testing.assert_close(result.stage_one, f64(0.7))
    torch.testing.assert_close(result.stage_two, f64((s2_now + s2_prev) / 2))


def test_two_stage_mean_over_groups_with_padding():
    nan = float("nan")
    result = two_stage_score(
        now_score=f64([1.0, 0.5]),
        prev_score=f64([1.0, 1.0]),
        now_endpoint=f64([[0.0, 0.0], [0.0, 0.0]]),
        prev_endpoint=f64([[0.0, 0.0], [0.0, 0.0]]),
        syn_now_score=f64([[1.0, 0.0], [0.6, nan]]),  # group 1 has one synthetic pair + padding
        syn_prev_score=f64([[1.0, 0.0], [0.2, nan]]),
        syn_now_start=f64([[[0.0, 0.0], [50.0, 0.0]], [[3.0, 0.0], [nan, nan]]]),
        syn_prev_start=f64([[[0.0, 0.0], [50.0, 0.0]], [[3.0, 0.0], [nan, nan]]]),
        syn_valid=torch.tensor([[True, True], [True, False]]),
    )
    # group 0: the far scene gets weight exp(-12500) = 0 -> 0.5 * (1 * 1 + 1 * 1) = 1
    # group 1: one scene -> weight 1 -> 0.5 * (0.5 * 0.6 + 1.0 * 0.2) = 0.25
    torch.testing.assert_close(result.group, f64([1.0, 0.25]))
    torch.testing.assert_close(result.epdms, f64(0.625))
    assert result.weights_now[1].tolist() == [1.0, 0.0]


def test_two_stage_weights_fall_back_to_uniform():
    # every synthetic start 100 m away: all Gaussian weights underflow to 0 -> uniform 1/3
    w = two_stage_weights(
        f64([[0.0, 0.0]]), f64([[[100.0, 0.0], [0.0, 100.0], [-100.0, 0.0]]]), torch.tensor([[True] * 3])
    )
    torch.testing.assert_close(w, f64([[1 / 3, 1 / 3, 1 / 3]]))


def test_two_stage_rejects_bad_input():
    with pytest.raises(ValueError, match="no synthetic scene"):
        two_stage_weights(f64([[0.0, 0.0]]), f64([[[1.0, 0.0]]]), torch.tensor([[False]]))
    with pytest.raises(ValueError, match="sigma_squared"):
        two_stage_weights(f64([[0.0, 0.0]]), f64([[[1.0, 0.0]]]), torch.tensor([[True]]), sigma_squared=0.0)
    with pytest.raises(ValueError, match="syn_now_score"):
        two_stage_score(
            f64([1.0]), f64([1.0]), f64([[0.0, 0.0]]), f64([[0.0, 0.0]]),
            f64([[float("nan")]]), f64([[1.0]]), f64([[[0.0, 0.0]]]), f64([[[0.0, 0.0]]]),
            torch.tensor([[True]]),
        )
